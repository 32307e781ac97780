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
import email
import email.policy
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import feedparser
from aiosmtpd.controller import Controller

from digest.crashpoints import ENV, POINTS
from digest.errors import DumpError
from digest.identity import digest_path, message_id, paper_anchor, paper_guid
from digest.parse import parse_dump
from digest.render import feed
from digest.transports import FileTransport

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "examples" / "dumps").glob("*.txt"))
RECIPIENTS = ("ada@example.org", "bob@example.net", "cy@example.com")
DOMAIN = "example.org"
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

_TOPICS = (
    "sparse attention diffusion transformer graph neural network scaling laws retrieval "
    "augmented generation reinforcement learning from human feedback vision language model "
    "token pruning mixture of experts quantization distillation benchmark agents planning "
    "world models video synthesis 3D gaussian splatting protein folding speech recognition "
    "contrastive pretraining robust calibration federated privacy causal reasoning"
)
_WORDS = tuple(_TOPICS.split(" "))
_ODD = ("[MASK]", "W_+", "é", "Über", "(Re)", "ß", "1.5B", "x2", "--", "naïve")


# --- the install ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Install:
    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def config(self) -> Path:
        return self.root / "digest.toml"

    @property
    def site(self) -> Path:
        return self.root / "var" / "site"

    @property
    def outbox(self) -> Path:
        return self.root / "var" / "outbox"

    @property
    def db(self) -> Path:
        return self.root / "var" / "digest.db"


def make_install(root: Path, smtp_port: int | None = None) -> Install:
    """A config with three recipients and a feed long enough for all; the file transport,
    or SMTP to 127.0.0.1:``smtp_port``."""
    install = Install(root)
    transport = (
        f'transport = "smtp"\n[email.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        if smtp_port
        else 'transport = "file"\n'
    )
    install.inbox.mkdir(parents=True)
    to = ", ".join(f'"{r}"' for r in RECIPIENTS)
    install.config.write_text(
        "[digest]\n"
        'title = "Crash Digest"\n'
        'base_url = "https://example.org/crash/"\n'
        "[sources]\n"
        'inbox = "inbox"\n'
        "[state]\n"
        'url = "sqlite:///var/digest.db"\n'
        "[feed]\n"
        'output_dir = "var/site"\n'
        "max_items = 100000\n"
        "max_items_hard = 100000\n"
        # One page per digest: check() counts a digest's papers on its page.
        "[archive]\n"
        "page_size = 100000\n"
        "[email]\n"
        'outbox = "var/outbox"\n'
        f'from = "Crash Digest <digest@{DOMAIN}>"\n'
        f"to = [{to}]\n" + transport,
        encoding="utf-8",
    )
    return install


# --- dumps ---------------------------------------------------------------------------------


def _title(rng: random.Random, n: int) -> str:
    words = rng.sample(_WORDS, rng.randint(2, 7))
    if rng.random() < 0.2:
        words.insert(rng.randrange(len(words) + 1), rng.choice(_ODD))
    head = " ".join(words).capitalize()
    return f"{head} {n}" if rng.random() < 0.7 else f"P{n}: {head}"


def _abstract(rng: random.Random, n: int) -> str:
    body = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(45, 90)))
    link = f" Code is available at https://github.com/lab{n}/repo{n}." if rng.random() < 0.3 else ""
    return f"We study paper {n}: {body}.{link}"


def _render(papers: Sequence[tuple[str, str]], compact: bool, crlf: bool) -> bytes:
    if compact:
        lines = [
            "Get trending papers in your email inbox once a day!",
            "Get trending papers in your email inbox!",
        ]
        for i, (t, a) in enumerate(papers):
            lines += [("Subscribe" + t) if i == 0 else t, a]
    else:
        lines = [
            "new",
            "",
            "Subscribe",
            "",
            "Daily Papers",
            "",
            "byAK and the research community",
            "",
            "Nov 3",
            "",
        ]
        for t, a in papers:
            lines += [t, "", a, ""]
    eol = "\r\n" if crlf else "\n"
    return (eol.join(lines) + eol).encode("utf-8")


Dump = tuple[str, bytes]
Row = tuple[Any, ...]  # a row read back from the state


def dump_batches(
    rng: random.Random, *, large: int = 1100, samples: bool = True
) -> tuple[list[Dump], list[Dump]]:
    """Two batches of dumps: (first, later). Papers overlap between synthetic dumps and
    within a batch; one dump is larger than a store batch; a sample appears again under
    a new name; one file is binary garbage (a recorded failure)."""
    pool = [(_title(rng, n), _abstract(rng, n)) for n in range(large + 400)]

    def pick(k: int) -> list[tuple[str, str]]:
        return rng.sample(pool, k)

    first: list[Dump] = [(p.name, p.read_bytes()) for p in SAMPLES] if samples else []
    first.append(("100_large.txt", _render(pick(large), compact=False, crlf=rng.random() < 0.5)))
    first.append(("101_small.txt", _render(pick(rng.randint(5, 40)), compact=True, crlf=False)))
    first.append(("102_garbage.txt", bytes(rng.randrange(256) for _ in range(3000))))
    later: list[Dump] = [
        ("200_more.txt", _render(pick(rng.randint(30, 120)), compact=rng.random() < 0.5, crlf=False)),
        ("201_more.txt", _render(pick(rng.randint(5, 60)), compact=False, crlf=True)),
    ]
    if samples:
        later.append(("202_copy.txt", SAMPLES[0].read_bytes()))  # the same bytes under a second name
    return first, later


def drop(install: Install, dumps: Iterable[Dump]) -> None:
    for name, data in dumps:
        tmp = install.inbox / f".{name}.part"
        tmp.write_bytes(data)
        tmp.rename(install.inbox / name)


# --- an SMTP sink ------------------------------------------------------------------------------


def free_port() -> int:
    # aiosmtpd 1.4.6 cannot bind port 0: ask the OS for a free port first.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """A real SMTP server (aiosmtpd) in this process, counting what it accepted per
    (Message-ID, recipient) and keeping the bytes."""

    def __init__(self) -> None:
        self.received: dict[tuple[str, str], list[bytes]] = collections.defaultdict(list)
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received[(str(msg["Message-ID"]), rcpt)].append(bytes(envelope.content))
        return "250 2.0.0 accepted"

    def count(self, mid: str, recipient: str) -> int:
        with self.lock:
            return len(self.received.get((mid, recipient), []))

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


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


# --- checks ----------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def temp_leftovers(folder: Path) -> list[Path]:
    """write_atomic's temp files (``.<name>.<random>.tmp``) anywhere under ``folder``."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob(".*.tmp"))


def outbox_snapshot(install: Install) -> dict[str, str]:
    if not install.outbox.exists():
        return {}
    return {p.name: _sha(p.read_bytes()) for p in install.outbox.glob("*.eml")}


def pending_rows(install: Install) -> list[tuple[str, str]]:
    """(recipient, Message-ID) of every pending delivery."""
    if not install.db.exists():
        return []
    with sqlite3.connect(f"file:{install.db}?mode=ro", uri=True) as db:
        try:
            return [
                (r, m)
                for r, m in db.execute(
                    "SELECT recipient, message_id FROM deliveries WHERE status = 'pending'"
                )
            ]
        except sqlite3.OperationalError:
            return []


def pending_with_file(install: Install) -> dict[str, str]:
    """Pending deliveries whose ``.eml`` already exists: the accept→mark_sent window.
    file name → Message-ID."""
    found: dict[str, str] = {}
    transport = FileTransport(install.outbox)
    for recipient, mid in pending_rows(install):
        msg = email.message.EmailMessage()
        msg["Message-ID"] = mid
        path = transport.path_for(msg, recipient)
        if path.exists():
            found[path.name] = mid
    return found


def progress(install: Install) -> tuple[int, ...]:
    """(dumps, papers, digests, published digests, sent deliveries, pending deliveries)."""
    if not install.db.exists():
        return (0, 0, 0, 0, 0, 0)
    with sqlite3.connect(f"file:{install.db}?mode=ro", uri=True) as db:
        try:
            return tuple(
                db.execute(q).fetchone()[0]
                for q in (
                    "SELECT count(*) FROM dumps",
                    "SELECT count(*) FROM papers",
                    "SELECT count(*) FROM digests",
                    "SELECT count(*) FROM digests WHERE published_at IS NOT NULL",
                    "SELECT count(*) FROM deliveries WHERE status = 'sent'",
                    "SELECT count(*) FROM deliveries WHERE status = 'pending'",
                )
            )
        except sqlite3.OperationalError:
            return (0, 0, 0, 0, 0, 0)


def stage(before: tuple[int, ...], after: tuple[int, ...], window: bool) -> str:
    """Where a killed run died, judged from what it committed."""
    dumps, _, digests, published, sent, _ = (a - b for a, b in zip(after, before, strict=True))
    if window:
        return "accept→mark_sent"
    if sent:
        return "delivering" if after[5] else "after delivery"
    if published:
        return "published, before delivery"
    if digests or after[2] > after[3]:
        return "digest created, not published"
    if dumps:
        return "ingest (dumps committed, no digest yet)"
    return "start-up (nothing committed)"


def check(install: Install, dropped: Sequence[Dump], *, smtp: bool = False) -> list[str]:
    """Every problem with the state and outputs after a completed run; [] when all is well.
    With ``smtp`` the messages went to a sink (checked by the trial), not to ``.eml`` files."""
    problems: list[str] = []
    expected: dict[str, set[str]] = {}  # dump sha → keys
    bad: dict[str, str] = {}  # name → sha
    latest = dict(dropped)  # a name dropped twice holds its second version
    for name, data in latest.items():
        if (install.inbox / name).read_bytes() != data:
            problems.append(f"input {name} was changed")
    for name, data in dropped:
        try:
            expected[_sha(data)] = {p.key for p in parse_dump(data, name).papers}
        except DumpError:
            bad[name] = _sha(data)
    all_keys = set().union(*expected.values()) if expected else set()

    db = sqlite3.connect(f"file:{install.db}?mode=ro", uri=True)
    try:
        dumps = {
            sha: (status, err) for sha, status, err in db.execute("SELECT sha256, status, error FROM dumps")
        }
        papers = db.execute(
            "SELECT seq, key, d.sha256 FROM papers JOIN dumps d ON d.id = papers.dump_id"
        ).fetchall()
        digests = db.execute(
            "SELECT id, slug, first_seq, last_seq, paper_count, published_at FROM digests ORDER BY id"
        ).fetchall()
        deliveries = db.execute("SELECT digest_id, recipient, status, message_id FROM deliveries").fetchall()
        seen = {name: sha for name, sha in db.execute("SELECT name, sha256 FROM seen_files")}
        [(install_id,)] = db.execute("SELECT value FROM meta WHERE name = 'install_id'").fetchall()
    finally:
        db.close()

    # Dumps: each good one ingested, each bad one failed with a reason naming it.
    for sha in expected:
        if dumps.get(sha, ("missing",))[0] != "ingested":
            problems.append(f"dump {sha[:12]} is {dumps.get(sha, ('missing',))[0]}, not ingested")
    for name, sha in bad.items():
        status, err = dumps.get(sha, ("missing", None))
        if status != "failed" or not err or name not in err:
            problems.append(f"bad dump {name}: status {status}, error {err!r}")
    for name, data in latest.items():
        if seen.get(name) != _sha(data):
            problems.append(f"{name}: the stat cache holds {seen.get(name)}, not its content hash")

    # Papers: exactly the keys of the good dumps, each once, each from a dump listing it.
    keys = [k for _, k, _ in papers]
    if len(keys) != len(set(keys)):
        problems.append(f"{len(keys) - len(set(keys))} papers stored twice")
    if set(keys) != all_keys:
        problems.append(
            f"papers: {len(all_keys - set(keys))} missing, {len(set(keys) - all_keys)} unexpected"
        )
    for _, key, sha in papers:
        if key not in expected.get(sha, set()):
            problems.append(f"paper {key!r} attributed to a dump that does not list it")
            break

    # Digests: their seq ranges partition the papers; each published.
    seqs = sorted(s for s, _, _ in papers)
    covered: list[int] = []
    for _, slug, first, last, count, published in digests:
        inside = [s for s in seqs if first <= s <= last]
        if len(inside) != count or count == 0:
            problems.append(f"digest {slug}: paper_count {count}, {len(inside)} papers in its range")
        covered += inside
        if published is None:
            problems.append(f"digest {slug} never marked published")
    if sorted(covered) != seqs:
        problems.append("digest ranges do not cover every paper exactly once")

    problems += _check_site(install, papers, digests)
    problems += _check_outbox(install, install_id, digests, deliveries, files=not smtp)
    return problems


def _check_site(
    install: Install, papers: Sequence[tuple[int, str, str]], digests: Sequence[Row]
) -> list[str]:
    problems: list[str] = []
    leftovers = temp_leftovers(install.site)
    if leftovers:
        problems.append(
            f"temp files left in the site: {[str(p.relative_to(install.site)) for p in leftovers]}"
        )
    if not digests:
        return problems
    want = {paper_guid(k) for _, k, _ in papers}
    for name in (feed.RSS_FILE, feed.ATOM_FILE, feed.JSON_FILE):
        path = install.site / name
        if not path.exists():
            problems.append(f"{name} missing")
            continue
        if name == feed.JSON_FILE:
            try:
                ids = [item.get("id") for item in json.loads(path.read_bytes())["items"]]
            except (ValueError, KeyError) as err:
                problems.append(f"{name} is not a JSON Feed: {err}")
                continue
        else:
            parsed = feedparser.parse(path.read_bytes())
            if parsed.bozo:
                problems.append(f"{name} does not parse: {parsed.bozo_exception}")
            ids = [e.get("id") for e in parsed.entries]
        if len(ids) != len(set(ids)) or set(ids) != want:
            problems.append(f"{name}: {len(ids)} entries, {len(set(ids) & want)} of {len(want)} papers")
    index = (
        (install.site / "index.html").read_text(encoding="utf-8")
        if (install.site / "index.html").exists()
        else ""
    )
    if not index.rstrip().endswith("</html>"):
        problems.append("index.html missing or incomplete")
    by_seq = {s: k for s, k, _ in papers}
    for _, slug, first, last, count, _ in digests:
        path = install.site / digest_path(slug)
        if f'{digest_path(slug)}"' not in index:
            problems.append(f"index.html does not link {slug}")
        if not path.exists():
            problems.append(f"page of digest {slug} missing")
            continue
        # A digest over archive.page_size papers is split into <slug>-p2.html, -p3.html, ...
        pages = [path.read_text(encoding="utf-8")]
        while (install.site / digest_path(slug, len(pages) + 1)).exists():
            pages.append((install.site / digest_path(slug, len(pages) + 1)).read_text(encoding="utf-8"))
        page = "".join(pages)
        anchors = {paper_anchor(k) for s, k in by_seq.items() if first <= s <= last}
        if any(not p.rstrip().endswith("</html>") for p in pages) or page.count('class="paper" id=') != count:
            problems.append(f"page of digest {slug} incomplete")
        elif any(f'class="paper" id="{a}"' not in page for a in anchors):
            problems.append(f"page of digest {slug} lacks some of its papers")
    return problems


def _check_outbox(
    install: Install,
    install_id: str,
    digests: Sequence[Row],
    deliveries: Sequence[Row],
    *,
    files: bool = True,
) -> list[str]:
    problems: list[str] = []
    leftovers = temp_leftovers(install.outbox)
    if leftovers:
        problems.append(f"temp files left in the outbox: {[p.name for p in leftovers]}")
    rows = {(d, r): (status, mid) for d, r, status, mid in deliveries}
    transport = FileTransport(install.outbox)
    want_files: set[str] = set()
    for did, slug, *_ in digests:
        for r in RECIPIENTS:
            status, mid = rows.get((did, r), ("missing", ""))
            if status != "sent":
                problems.append(f"delivery of {slug} to {r} is {status}")
                continue
            if mid != message_id(did, r, DOMAIN, install_id):
                problems.append(f"delivery of {slug} to {r} has Message-ID {mid}")
            if not files:
                continue
            msg = email.message.EmailMessage()
            msg["Message-ID"] = mid
            path = transport.path_for(msg, r)
            want_files.add(path.name)
            if not path.exists():
                problems.append(f"{slug} to {r}: marked sent, no {path.name}")
                continue
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if parsed["Message-ID"] != mid or parsed["To"] != r or parsed.get_body(("html",)) is None:
                problems.append(f"{path.name}: wrong or incomplete message")
    if len(rows) != len(digests) * len(RECIPIENTS):
        problems.append(f"{len(rows)} outbox rows for {len(digests)} digests")
    have = set(outbox_snapshot(install))
    if files and have != want_files:
        problems.append(
            f"outbox: {len(have - want_files)} unexpected .eml files, {len(want_files - have)} missing"
        )
    return problems


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
