"""The service in a cluster (issue 17, docs/DESIGN.md invariant 9): three `digest serve`
processes, each with its own config folder, lock files and site, on one PostgreSQL
database (a fresh one per test), reading one shared inbox and sending to one SMTP sink.
Twenty rounds of new dumps (papers of the real example dumps, a dump per round, each
repeating a few papers of the round before) with ``schedule.digest = "on_ingest"``, then
with a crontab: every paper in exactly one digest, no more digests than rounds, every
recipient one message per digest, every instance's own site brought up to date from the
state, and no instance exiting or logging an error.

And over HTTP: a digest made and published by instance A (the only one whose inbox gets
the dump) is served by instance B within one poll, byte for byte as A serves it.

Skips with the reason when no PostgreSQL answers on 127.0.0.1:5432; .ci/run starts one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from digest.parse import parse_dump
from digest.site import MARKER
from tests import helpers
from tests.helpers import DUMP_000, DUMP_002, write_toml
from tests.smtpsink import Recorder, StartServer, free_port
from tests.test_store_postgres import pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow  # real services, twenty rounds

RECIPIENTS = ["ann@example.org", "bob@example.org", "cat@example.org"]
ROUNDS = 20
POLL = 0.5  # seconds: schedule.poll of every instance
OVERLAP = 3  # papers of the round before that each dump lists again


def round_dumps(rounds: int = ROUNDS) -> list[bytes]:
    """``rounds`` dumps in the spaced layout made of the example dumps' real papers: each
    round's new papers plus :data:`OVERLAP` of the round before (the same paper is listed
    in many dumps)."""
    seen: dict[str, tuple[str, str]] = {}
    for dump in (DUMP_000, DUMP_002):
        for p in parse_dump(dump.read_bytes(), dump.name).papers:
            seen.setdefault(p.key, (p.title, p.abstract))
    papers = list(seen.values())
    per = len(papers) // rounds
    out = []
    for r in range(rounds):
        chosen = papers[max(0, r * per - OVERLAP) : (r + 1) * per if r + 1 < rounds else None]
        lines = ["new", "", "Daily Papers", "", "byAK and the research community", "", "Nov 3", ""]
        for title, abstract in chosen:
            lines += [" ".join(title.split()), "", " ".join(abstract.split()), ""]
        out.append("\n".join(lines).encode())
    return out


def _keys(dumps: list[bytes]) -> set[str]:
    return {p.key for i, d in enumerate(dumps) for p in parse_dump(d, f"round-{i:02}.txt").papers}


class Serve:
    """One `digest serve` instance in its own folder, logging JSON lines to a file."""

    def __init__(self, folder: Path, config: Path) -> None:
        self.folder = folder
        self.log = folder / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "--log-format", "json", "-c", str(config), "serve"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"level": "text", "message": line})
        return out

    def problems(self) -> list[str]:
        """Log lines that are errors, tracebacks or signs of a race between instances."""
        signs = ("Traceback", "IntegrityError", "UniqueViolation", "deadlock", "duplicate key", "could not")
        return [
            json.dumps(r)
            for r in self.records()
            if r.get("level") in ("error", "critical")
            or "exception" in r
            or any(s in str(r.get("message", "")) for s in signs)
        ]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def services() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def _instance(
    root: Path, name: str, url: str, inbox: Path, smtp_port: int, digest: str, **extra: dict[str, Any]
) -> tuple[Path, Path]:
    folder = root / name
    folder.mkdir()
    data: dict[str, dict[str, Any]] = {
        "digest": {"title": "Cluster", "base_url": "https://example.org/d/"},
        "sources": {"inbox": str(inbox), "settle_seconds": 0},
        "state": {"url": url},
        "instance": {"name": name},
        "feed": {"output_dir": "site"},
        "email": {"transport": "smtp", "from": "Digest <digest@example.org>", "to": RECIPIENTS},
        "email.smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
        "schedule": {"poll": f"{POLL}s", "digest": digest},
    }
    for section, table in extra.items():
        data.setdefault(section, {}).update(table)
    return folder, write_toml(folder / "digest.toml", data)


def wait_for(what: str, check: Callable[[], Any], timeout: float, alive: Sequence[Serve] = ()) -> Any:
    """Polls ``check`` until it returns something truthy; fails naming ``what``, or at
    once when one of ``alive`` exited."""

    def running() -> None:
        for s in alive:
            assert s.proc.poll() is None, f"{s.folder.name} exited {s.proc.returncode}: {s.problems()}"

    return helpers.wait_for(what, check, timeout, poll=0.05, each=running)


def _drop(inbox: Path, name: str, data: bytes) -> None:
    """A dump arrives whole (written beside the inbox, renamed into it)."""
    tmp = inbox.parent / f".{name}.part"
    tmp.write_bytes(data)
    tmp.rename(inbox / name)


def _scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def _all_digested(engine: sa.Engine, dumps: int) -> bool:
    with engine.connect() as conn:
        ingested = conn.execute(sa.text("SELECT count(*) FROM dumps WHERE status = 'ingested'")).scalar_one()
        top = conn.execute(sa.text("SELECT coalesce(max(seq), 0) FROM papers")).scalar_one()
        covered = conn.execute(sa.text("SELECT coalesce(max(last_seq), 0) FROM digests")).scalar_one()
    return bool(ingested == dumps and top == covered)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("schedule", ["on_ingest", "* * * * *"], ids=["on_ingest", "cron"])
def test_three_services_on_one_state_send_every_paper_once(
    schedule: str,
    pg_url: str,  # noqa: F811
    tmp_path: Path,
    start_server: StartServer,
    services: list[Serve],
) -> None:
    dumps = round_dumps()
    keys = _keys(dumps)
    assert len(keys) == 297 and all(len(parse_dump(d, "x.txt").papers) >= 14 for d in dumps)
    port = free_port()
    sink = Recorder()
    start_server(sink, port)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    folders = [_instance(tmp_path, f"node{i}", pg_url, inbox, port, schedule) for i in range(3)]
    services.extend(Serve(folder, config) for folder, config in folders)
    engine = sa.create_engine(pg_url)
    try:
        wait_for("the instances' first polls", lambda: _polls(engine) >= 3, 60, services)
        # Cron: a dump every 2.5 s, so the 20 rounds span one or two of the minutely digest
        # jobs; on_ingest: the next dump once the last one's digest is made.
        for r, data in enumerate(dumps):
            _drop(inbox, f"round-{r:02}.txt", data)
            if schedule == "on_ingest":
                wait_for(f"round {r}'s digest", partial(_all_digested, engine, r + 1), 60, services)
            else:
                time.sleep(2.5)
        wait_for("every paper digested", lambda: _all_digested(engine, ROUNDS), 150, services)
        digests = _scalar(engine, "SELECT count(*) FROM digests")
        wait_for(
            "every message sent",
            lambda: _scalar(engine, "SELECT count(*) FROM deliveries WHERE status = 'sent'") == 3 * digests,
            60,
            services,
        )
        newest = _scalar(engine, "SELECT max(id) FROM digests")
        # Every instance's own site is brought up to date from the state within a poll or two.
        for folder, _ in folders:
            wait_for(
                f"{folder.name}'s site",
                partial(_shows, folder, newest),
                10,
                services,
            )
        time.sleep(3 * POLL)  # a few more polls: nothing more is made or sent
        with engine.connect() as conn:
            spans = conn.execute(sa.text("SELECT first_seq, last_seq FROM digests ORDER BY first_seq")).all()
            seqs = [s for (s,) in conn.execute(sa.text("SELECT seq FROM papers"))]
            statuses: dict[str, int] = dict(
                conn.execute(sa.text("SELECT status, count(*) FROM deliveries GROUP BY status")).all()
            )
    finally:
        engine.dispose()
    codes = [s.stop() for s in services]
    problems = {s.folder.name: s.problems() for s in services if s.problems()}
    assert codes == [0, 0, 0], problems
    assert problems == {}

    assert len(spans) == digests and 1 <= digests <= ROUNDS
    if schedule == "on_ingest":
        assert digests == ROUNDS  # a digest per round: each round brought new papers
    assert len(seqs) == len(keys)  # a paper is new once, however many dumps list it
    for seq in seqs:  # every paper in exactly one digest
        assert sum(first <= seq <= last for first, last in spans) == 1, seq
    assert statuses == {"sent": 3 * digests}
    ids = Counter(str(m.message["Message-ID"]) for m in sink.accepted)
    assert all(n == 1 for n in ids.values()), ids.most_common(3)
    assert Counter(m.rcpt_tos[0] for m in sink.accepted) == {r: digests for r in RECIPIENTS}
    sites = [
        {p.relative_to(f / "site"): p.read_bytes() for p in (f / "site").rglob("*") if p.is_file()}
        for f, _ in folders
    ]
    assert sites[0] == sites[1] == sites[2]  # each its own copy of one site


def _answers(url: str) -> bool:
    return httpx.get(url).status_code == 200


def _shows(folder: Path, newest: int) -> bool:
    """Whether the site in ``folder`` shows every digest up to ``newest`` (its marker)."""
    return (folder / "site" / MARKER).read_text().strip() == str(newest)


def _polls(engine: sa.Engine) -> int:
    try:
        return int(
            _scalar(engine, "SELECT count(*) FROM job_runs WHERE job = 'poll' AND finished_at IS NOT NULL")
        )
    except sa.exc.ProgrammingError:  # the schema is not there yet
        return 0


@pytest.mark.timeout(300)
def test_a_digest_published_by_one_instance_is_served_by_the_other_within_a_poll(
    pg_url: str,  # noqa: F811
    tmp_path: Path,
    start_server: StartServer,
    services: list[Serve],
) -> None:
    poll = 2.0
    port = free_port()
    start_server(Recorder(), port)
    web = {name: free_port() for name in ("a", "b")}
    inboxes = {name: tmp_path / f"inbox-{name}" for name in web}
    for inbox in inboxes.values():
        inbox.mkdir()
    nodes = {
        name: _instance(
            tmp_path,
            name,
            pg_url,
            inboxes[name],
            port,
            "on_ingest",
            schedule={"poll": f"{poll}s"},
            http={"listen": f"127.0.0.1:{web[name]}"},
        )
        for name in web
    }
    a, b = (Serve(*nodes[name]) for name in web)
    services.extend([a, b])
    urls = {name: f"http://127.0.0.1:{p}" for name, p in web.items()}
    for name in web:
        wait_for(f"{name}'s /healthz", partial(_answers, f"{urls[name]}/healthz"), 60)

    def items(name: str, count: int) -> bool:
        got = httpx.get(f"{urls[name]}/feed.json")
        return got.status_code == 200 and len(got.json()["items"]) == count

    # Only A's inbox gets the dumps: A makes and publishes every digest, B only reads them.
    for dump, total in ((DUMP_000, 81), (DUMP_002, 297)):
        _drop(inboxes["a"], dump.name, dump.read_bytes())
        wait_for(f"A serving {dump.name}", partial(items, "a", total), 60, services)
        on_a = time.monotonic()
        wait_for(f"B serving {dump.name}", partial(items, "b", total), poll + 5, services)
        assert time.monotonic() - on_a <= poll + 2.0  # within one poll (plus its run)
        for path in ("/feed.xml", "/feed.json", "/digests.json", "/"):
            assert httpx.get(urls["a"] + path).content == httpx.get(urls["b"] + path).content, path
    assert not any(p.name.startswith("round") for p in inboxes["b"].iterdir())
    healths = [httpx.get(f"{urls[n]}/healthz").json() for n in web]
    assert [h["instance"]["name"] for h in healths] == ["a", "b"]
    for s in (a, b):
        assert s.stop() == 0
        assert s.problems() == []
    made_by = [
        r["counts"]["digest"]
        for s in (a, b)
        for r in s.records()
        if r.get("job") == "poll" and (r.get("counts") or {}).get("digest")
    ]
    assert len(made_by) == 2
    assert all(
        (r.get("counts") or {}).get("digest") is None for r in b.records() if r.get("job") == "poll"
    )  # B made none
