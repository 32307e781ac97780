"""Crash-safety harness: SIGKILLs ``digest run`` at many moments, recovers, checks everything.

Each trial builds a fresh install in a temp folder (an inbox with the two sample dumps,
synthetic dumps, one of them larger than a store batch, a renamed copy and a binary
file; three recipients; the file transport), then:

1. drops the first dumps and runs ``digest run`` as a subprocess that is killed with
   SIGKILL, either at a named crash point (``DIGEST_CRASH_AT``, see
   :mod:`digest.crashpoints`) or after a random wall-clock delay;
2. sometimes drops more dumps and kills a second run;
3. runs ``digest run`` again until it exits 0 and checks the whole state and outputs;
4. drops the rest of the dumps (if not yet dropped), kills again, recovers, checks again;
5. saves one dump again, grown, under the same name, kills again, recovers, checks again;
6. runs once more, which must find nothing new and send nothing.

What a check demands (docs/DESIGN.md invariants 1-6): every paper of every good dump stored
exactly once, each in exactly one digest; every bad dump recorded as failed with its
reason; every digest published (valid feed, complete pages, no temp file left) and
delivered to every recipient, one ``.eml`` per digest and recipient, named from its
Message-ID; a message written again after a crash (the accept→mark_sent window) is
byte-identical, so it carries the same Message-ID; the inputs unchanged; no traceback.

Run by hand::

    python -m crash.harness --trials 200 --seed 1 --jobs 2

It prints one line per failing trial and a summary (kills per point, kills that landed,
re-deliveries seen); exit status 1 when any trial failed. ``--keep DIR`` keeps failing
trials' folders for inspection.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from crash.checks import (
    check,
    outbox_snapshot,
    pending_rows,
    pending_with_file,
    progress,
    stage,
)
from crash.world import (
    RECIPIENTS,
    Dump,
    Install,
    Sink,
    _abstract,
    _title,
    drop,
    dump_batches,
    make_install,
)
from digest.crashpoints import ENV, POINTS

__all__ = ["RECIPIENTS", "Install", "Kill", "Sink", "Trial", "make_install"]

MAX_RECOVERY_RUNS = 4

# How often each point is reached in a trial's run, roughly: the n-th hit is drawn below it.
_POINT_HITS = {
    "ingest.batch": 6,
    "ingest.dump_done": 6,
    "ingest.committed": 1,
    "site.file_written": 6,
    "publish.temp_written": 10,
    "deliver.file_written": 3,
    "outbox.accepted": 3,
    "outbox.marked_sent": 3,
}


# --- running digest --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Kill:
    """Where to kill a run: at the n-th hit of a crash point, or after a delay."""

    point: str | None = None
    n: int = 1
    delay: float = 0.0

    def label(self) -> str:
        return f"{self.point}:{self.n}" if self.point else f"delay {self.delay:.3f}s"


@dataclasses.dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def run_digest(install: Install, kill: Kill | None = None, *, extra: Sequence[str] = ()) -> Ran:
    """``digest run`` in a subprocess, killed as ``kill`` says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    if kill is not None and kill.point:
        env[ENV] = f"{kill.point}:{kill.n}"
    cmd = [sys.executable, "-m", "digest.cli", "-c", str(install.config), "run", *extra]
    proc = subprocess.Popen(cmd, env=env, cwd=install.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if kill is not None and not kill.point:
        try:
            proc.wait(timeout=kill.delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    return Ran(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def choose_kill(rng: random.Random, mode: str, duration: float) -> Kill:
    """A named point (``points``), a random delay (``random``) or either (``mixed``)."""
    if mode == "points" or (mode == "mixed" and rng.random() < 0.6):
        point = rng.choice(POINTS)
        return Kill(point=point, n=rng.randint(1, _POINT_HITS.get(point, 1)))
    return Kill(delay=rng.uniform(0.0, duration * 1.1))


# --- a trial -----------------------------------------------------------------------------------


@dataclasses.dataclass
class TrialResult:
    seed: int
    problems: list[str] = dataclasses.field(default_factory=list)
    kills: list[str] = dataclasses.field(default_factory=list)  # what was aimed at
    landed: int = 0  # runs actually killed
    runs: int = 0
    redelivered: int = 0  # messages written again after a crash in the accept→mark_sent window
    stages: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    digests: int = 0


class Trial:
    def __init__(
        self,
        seed: int,
        root: Path,
        mode: str,
        duration: float,
        *,
        large: int = 1100,
        samples: bool = True,
        sink: Sink | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.result = TrialResult(seed)
        self.sink = sink
        self.install = make_install(root, sink.port if sink else None)
        # (Message-ID, recipient) → copies the sink held while the row was still pending
        # after a killed run: the accept→mark_sent window; one more copy follows.
        self.window_copies: dict[tuple[str, str], int] = {}
        self.mode = mode
        self.duration = duration
        self.first, self.later = dump_batches(self.rng, large=large, samples=samples)
        self.dropped: list[Dump] = []

    def _run(self, kill: Kill | None) -> Ran:
        window = pending_with_file(self.install)
        before = outbox_snapshot(self.install)
        counts = progress(self.install)
        ran = run_digest(self.install, kill)
        self.result.runs += 1
        if kill is not None:
            self.result.kills.append(kill.point or "delay")
            self.result.landed += ran.killed
            if ran.killed and self.sink is not None:
                for r, mid in pending_rows(self.install):
                    if self.sink.count(mid, r):
                        self.window_copies[(mid, r)] = self.sink.count(mid, r)
            if ran.killed and not kill.point:
                died = stage(counts, progress(self.install), self._in_window())
                self.result.stages[died] += 1
        if "Traceback" in ran.stderr:
            self.result.problems.append(f"traceback after {kill.label() if kill else 'a clean start'}")
        after = outbox_snapshot(self.install)
        for name in before:
            if name in after and after[name] != before[name]:
                self.result.problems.append(f"{name} was rewritten with different bytes")
        # A pending row whose file existed is sent again by a run that gets that far.
        self.result.redelivered += sum(1 for name in window if name in after and not ran.killed)
        return ran

    def _in_window(self) -> bool:
        if self.sink is None:
            return bool(pending_with_file(self.install))
        return any(self.sink.count(mid, r) for r, mid in pending_rows(self.install))

    def _check_sink(self) -> list[str]:
        """Each sent delivery reached the sink once, plus once per crash in its window,
        every copy byte-identical; nothing else reached it."""
        assert self.sink is not None
        problems: list[str] = []
        with sqlite3.connect(f"file:{self.install.db}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT recipient, message_id FROM deliveries WHERE status = 'sent'").fetchall()
        sent = {(mid, r) for r, mid in rows}
        with self.sink.lock:
            received = {k: list(v) for k, v in self.sink.received.items()}
        for key in sent:
            copies = received.get(key, [])
            want = self.window_copies.get(key, 0) + 1
            if len(copies) != want:
                problems.append(f"{key[1]} got {len(copies)} copies of {key[0]}, expected {want}")
            if len(set(copies)) > 1:
                problems.append(f"the copies of {key[0]} to {key[1]} differ")
        for key in set(received) - sent:
            problems.append(f"the sink got {key[0]} for {key[1]}, which is not a sent delivery")
        self.result.redelivered = sum(self.window_copies.values())
        return problems

    def _recover(self, what: str) -> None:
        for _ in range(MAX_RECOVERY_RUNS):
            ran = self._run(None)
            if ran.returncode == 0:
                break
            self.result.problems.append(
                f"{what}: recovery run exited {ran.returncode}: {ran.stderr.strip()[-300:]}"
            )
        problems = check(self.install, self.dropped, smtp=self.sink is not None)
        if self.sink is not None:
            problems += self._check_sink()
        self.result.problems += [f"{what}: {p}" for p in problems]

    def run(self) -> TrialResult:
        rng = self.rng
        self._drop(self.first)
        self._run(choose_kill(rng, self.mode, self.duration))
        later_dropped = rng.random() < 0.5
        if later_dropped:
            self._drop(self.later)
        if rng.random() < 0.3:
            self._run(choose_kill(rng, self.mode, self.duration))
        self._recover("phase 1")
        if not later_dropped:
            self._drop(self.later)
            self._run(choose_kill(rng, self.mode, self.duration / 2))
            self._recover("phase 2")
        # The same name with new bytes (a dump saved again, grown): the stat cache must notice.
        name, data = next(d for d in self.dropped if d[0] == "101_small.txt")
        grown = [(_title(rng, 90_000 + n), _abstract(rng, 90_000 + n)) for n in range(rng.randint(1, 8))]
        extra = b"".join(f"{t}\n{a}\n".encode() for t, a in grown)
        self._drop([(name, data + extra)])
        self._run(choose_kill(rng, self.mode, self.duration / 2))
        self._recover("phase 3")
        # Nothing new: one more run must change nothing and send nothing.
        before = outbox_snapshot(self.install)
        ran = self._run(None)
        if ran.returncode != 0 or "no digest" not in ran.stdout or outbox_snapshot(self.install) != before:
            self.result.problems.append(f"an idle run did something: {ran.stdout.strip()}")
        if self.sink is not None:
            self.result.problems += [f"after an idle run: {p}" for p in self._check_sink()]
        with sqlite3.connect(f"file:{self.install.db}?mode=ro", uri=True) as db:
            self.result.digests = db.execute("SELECT count(*) FROM digests").fetchone()[0]
        return self.result

    def crash_once(self, kill: Kill) -> TrialResult:
        """The short trial the test suite runs: drop the first dumps, kill one run at
        ``kill``, drop the later dumps, recover and check."""
        self._drop(self.first)
        self._run(kill)
        self._drop(self.later)
        self._recover("recovery")
        return self.result

    def _drop(self, dumps: list[Dump]) -> None:
        drop(self.install, dumps)
        self.dropped += dumps


def calibrate(workdir: Path, large: int = 1100) -> float:
    """Seconds a clean first run takes here (interpreter start included)."""
    trial = Trial(0, workdir / "calibrate", "points", 1.0, large=large)
    trial._drop(trial.first)
    started = time.monotonic()
    run_digest(trial.install)
    return time.monotonic() - started


def run_trial(
    seed: int, workdir: Path, mode: str, duration: float, keep: Path | None, large: int, smtp: bool = False
) -> TrialResult:
    root = workdir / f"trial-{seed}"
    if smtp:
        with Sink() as sink:
            result = Trial(seed, root, mode, duration, large=large, sink=sink).run()
    else:
        result = Trial(seed, root, mode, duration, large=large).run()
    if result.problems and keep is not None:
        shutil.copytree(root, keep / root.name, dirs_exist_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    return result


def summarize(results: Sequence[TrialResult]) -> str:
    aimed = collections.Counter(k for r in results for k in r.kills)
    failed = [r for r in results if r.problems]
    stages = sum((r.stages for r in results), collections.Counter[str]())
    lines = [
        f"{len(results)} trials, {sum(r.runs for r in results)} runs of digest, "
        f"{sum(len(r.kills) for r in results)} kills aimed, {sum(r.landed for r in results)} landed "
        "(a point not reached that often, or a delay after the run ended, lets the run finish)",
        f"{sum(r.digests for r in results)} digests built, "
        f"{sum(r.redelivered for r in results)} messages re-delivered after a crash in the "
        "accept→mark_sent window (each byte-identical, same Message-ID)",
        "kills by target: " + ", ".join(f"{k} {n}" for k, n in sorted(aimed.items())),
        "random-delay kills died at: " + ", ".join(f"{k} {n}" for k, n in stages.most_common()),
        f"{len(failed)} trials with problems",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1, help="first trial's seed; trial i uses seed+i")
    parser.add_argument("--mode", choices=("points", "random", "mixed"), default="mixed")
    parser.add_argument("--jobs", type=int, default=1, help="trials run at once")
    parser.add_argument("--large", type=int, default=1100, help="papers in the large synthetic dump")
    parser.add_argument("--keep", type=Path, help="copy failing trials' folders here")
    parser.add_argument(
        "--smtp", action="store_true", help="deliver over SMTP to a sink in this process, not to .eml files"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="digest-crash-") as tmp:
        workdir = Path(tmp)
        duration = calibrate(workdir, args.large)
        print(f"a clean first run takes {duration:.2f}s; random kills land in [0, {duration * 1.1:.2f}]s")
        seeds = range(args.seed, args.seed + args.trials)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [
                pool.submit(run_trial, s, workdir, args.mode, duration, args.keep, args.large, args.smtp)
                for s in seeds
            ]
            results = []
            for future in futures:
                result = future.result()
                results.append(result)
                if result.problems:
                    print(
                        f"trial {result.seed} ({', '.join(result.kills)}): " + "; ".join(result.problems[:5])
                    )
    print(summarize(results))
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
