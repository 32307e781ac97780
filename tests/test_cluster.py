"""Several instances on one PostgreSQL state (issue 17, docs/DESIGN.md invariant 9): the
database is the lock. Separate config folders (as separate machines have), one database,
one inbox; every paper in exactly one digest, every recipient one message per digest.

Skips with the reason when no PostgreSQL answers on 127.0.0.1:5432; .ci/run starts one.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.identity import message_ids
from digest.store import Store
from tests.helpers import NOW, ingest_numbered, write_toml
from tests.smtpsink import Recorder, StartServer, free_port
from tests.test_store_postgres import pg_url  # noqa: F401  (fixture)

RECIPIENTS = ["ann@example.org", "bob@example.org", "cat@example.org"]


def _open(url: str) -> int:
    with Store.open(url) as store:
        return len(store.digests())


@pytest.mark.slow  # concurrency: 4 processes (5.7 s at load 4)
def test_four_processes_create_the_schema_of_one_empty_database_at_once(pg_url: str) -> None:  # noqa: F811
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=ctx) as pool:
        results = list(pool.map(_open, [pg_url] * 4))
    assert results == [0, 0, 0, 0]


def test_two_stores_racing_past_the_lock_make_one_digest_of_a_paper(pg_url: str) -> None:  # noqa: F811
    """Even a process that skipped the run lock cannot put a paper in two digests: the
    digest claims its range by a unique first seq, and the loser makes none."""
    ingest_numbered(pg_url, 50)
    stores = [Store.open(pg_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def make(store: Store) -> int | None:
        barrier.wait()
        digest = store.create_digest(
            now=NOW, day=NOW.date(), recipients=RECIPIENTS, message_id=message_ids("x.org", "i")
        )
        return None if digest is None else digest.id

    try:
        with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
            made = [d for d in pool.map(make, stores) if d is not None]
        assert len(made) == 1
        with stores[0].transaction(read=True) as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM deliveries")).scalar_one() == 3
    finally:
        for store in stores:
            store.close()


def _instance(root: Path, name: str, url: str, inbox: Path, smtp_port: int) -> Path:
    folder = root / name
    folder.mkdir()
    return write_toml(
        folder / "digest.toml",
        {
            "digest": {"title": "Cluster", "base_url": "https://example.org/d/"},
            "sources": {"inbox": str(inbox), "settle_seconds": 0},
            "state": {"url": url},
            "feed": {"output_dir": "site"},
            "email": {
                "transport": "smtp",
                "from": "Digest <digest@example.org>",
                "to": RECIPIENTS,
            },
            "email.smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
        },
    )


def _dump(round_: int) -> bytes:
    lines = ["new", "", "Daily Papers", "", "Nov 3", ""]
    for i in range(5):
        lines += [
            f"Round {round_} paper {i} on cluster safety",
            "",
            f"Abstract of round {round_} paper {i}.",
            "",
        ]
    return "\n".join(lines).encode()


@pytest.mark.slow
@pytest.mark.timeout(1200)  # 60 runs, started three at a time
def test_three_instances_run_at_once_for_twenty_rounds(
    pg_url: str,  # noqa: F811
    tmp_path: Path,
    start_server: StartServer,
) -> None:
    port = free_port()
    sink = Recorder()
    start_server(sink, port)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    configs = [_instance(tmp_path, f"node{i}", pg_url, inbox, port) for i in range(3)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    rounds = 20
    for r in range(rounds):
        (inbox / f"dump-{r:02}.txt").write_bytes(_dump(r))
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "digest.cli", "-c", str(c), "run", "--wait", "120"],
                env=env,
                cwd=c.parent,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for c in configs
        ]
        for p in procs:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, (r, out.decode(), err.decode())

    with Store.open(pg_url) as store, store.transaction(read=True) as conn:
        digests = conn.execute(sa.text("SELECT first_seq, last_seq FROM digests ORDER BY first_seq")).all()
        seqs = [s for (s,) in conn.execute(sa.text("SELECT seq FROM papers"))]
    assert 1 <= len(digests) <= rounds
    assert len(seqs) == rounds * 5
    for seq in seqs:  # every paper in exactly one digest
        assert sum(first <= seq <= last for first, last in digests) == 1
    ids = Counter(str(m.message["Message-ID"]) for m in sink.accepted)
    assert all(n == 1 for n in ids.values()), ids.most_common(3)
    assert Counter(m.rcpt_tos[0] for m in sink.accepted) == {r: len(digests) for r in RECIPIENTS}


def test_healthz_names_the_instance_and_the_holder_of_the_run_lock(
    pg_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    from digest.config import load_config
    from digest.lock import state_lock
    from digest.schedule import Service

    path = write_toml(tmp_path / "digest.toml", {"state": {"url": pg_url}, "instance": {"name": "node-a"}})
    config = load_config(path, {})
    with Store.open(pg_url) as store:
        service = Service(config, store)
        assert service.instance() == {"name": "node-a", "run_lock": None}
        with state_lock(tmp_path / "unused.lock", pg_url, holder="node-b"):
            held = service.health()[1]["instance"]
        assert held["name"] == "node-a"
        assert held["run_lock"].startswith("node-b (pid ")
        assert service.instance()["run_lock"] is None


def test_stores_racing_to_ingest_one_dump_store_it_once_and_the_losers_do_nothing(
    pg_url: str,  # noqa: F811
) -> None:
    """Instances on several machines fetch the same dump: even past the run lock, the
    first to insert its bytes ingests it; the others wait for its commit and then store
    nothing, with no error (``IngestResult.raced``)."""
    from digest.identity import paper_key
    from digest.model import Paper

    papers = [Paper(key=paper_key(f"Paper {i}"), title=f"Paper {i}", abstract="x") for i in range(300)]
    stores = [Store.open(pg_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def ingest(store: Store) -> tuple[int, bool]:
        barrier.wait()
        result = store.ingest(
            name=f"fetched-{id(store)}.txt",
            sha256="1" * 64,
            size=1,
            mtime_ns=0,
            papers_in=iter(papers),
            layout=lambda: "spaced",
            now=NOW,
        )
        return result.new, result.raced

    try:
        with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
            results = sorted(pool.map(ingest, stores))
        assert results == [(0, True)] * 3 + [(300, False)]
        with stores[0].transaction(read=True) as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM papers")).scalar_one() == 300
            assert conn.execute(sa.text("SELECT status FROM dumps")).scalars().all() == ["ingested"]
            # every instance remembers its file, so none reads it again
            assert conn.execute(sa.text("SELECT count(*) FROM seen_files")).scalar_one() == 4
    finally:
        for store in stores:
            store.close()


def test_instances_racing_to_ingest_their_copies_of_one_dump_ingest_it_once(
    pg_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The same, one level up: two instances' ingests of the same bytes, each in its own
    inbox, at once (no run lock): one ingests it, the other's is a no-op, neither fails."""
    from digest.config import load_config
    from digest.ingest import ingest_inbox
    from digest.parse import parse_dump
    from tests.helpers import DUMP_002

    configs = []
    for name in ("m1", "m2"):
        (tmp_path / name / "inbox").mkdir(parents=True)
        (tmp_path / name / "inbox" / f"from-{name}.txt").write_bytes(DUMP_002.read_bytes())
        path = write_toml(
            tmp_path / name / "digest.toml",
            {"sources": {"inbox": str(tmp_path / name / "inbox")}, "state": {"url": pg_url}},
        )
        configs.append(load_config(path, {}))
    stores = [Store.open(pg_url) for _ in configs]
    barrier = threading.Barrier(2)

    def ingest(i: int) -> tuple[int, int, int]:
        barrier.wait()
        report = ingest_inbox(configs[i], stores[i], NOW)
        return report.ingested, report.failed, report.papers_new

    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            reports = sorted(pool.map(ingest, range(2)))
        distinct = len({p.key for p in parse_dump(DUMP_002.read_bytes(), DUMP_002.name).papers})
        assert reports == [(0, 0, 0), (1, 0, distinct)]
        assert [d.status for d in stores[0].dump_records()] == ["ingested"]
        assert all(ingest_inbox(c, s, NOW).ingested == 0 for c, s in zip(configs, stores, strict=True))
    finally:
        for store in stores:
            store.close()


def test_the_run_lock_of_another_database_on_the_server_is_not_this_ones(
    pg_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Advisory locks are per database, and so is the holder /healthz names: another
    install on the same PostgreSQL server holding its run lock is no holder here."""
    import uuid

    from digest.lock import state_lock
    from digest.store.pglock import lock_holder
    from tests.test_store_postgres import _admin

    other = f"digest_test_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{other}"')
    try:
        other_url = pg_url.rsplit("/", 1)[0] + f"/{other}"
        Store.open(other_url).close()
        with Store.open(pg_url) as store, state_lock(tmp_path / "unused.lock", other_url, holder="elsewhere"):
            with store.transaction(read=True) as conn:
                assert lock_holder(conn) is None
            with (
                state_lock(tmp_path / "unused2.lock", pg_url, holder="here"),
                store.transaction(read=True) as conn,
            ):
                assert (lock_holder(conn) or "").startswith("here (pid ")
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')
