"""Several instances send one outbox at once (issue 17, docs/DESIGN.md invariant 9): each
claims batches of rows for ``instance.lease``; a killed instance's rows are sent by
another after its lease ran out, never twice except the one message it may have had in
flight. Real PostgreSQL, real SMTP sink, real processes killed with SIGKILL.

Skips with the reason when no PostgreSQL answers on 127.0.0.1:5432; .ci/run starts one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.helpers import ingest_numbered, write_toml
from tests.smtpsink import Recorder, StartServer, free_port
from tests.test_store_postgres import pg_url  # noqa: F401  (fixture)

LEASE = 5.0  # seconds: short, so the test waits little for a dead instance's rows


def _config(root: Path, name: str, url: str, port: int, to: list[str]) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "inbox").mkdir()
    return write_toml(
        folder / "digest.toml",
        {
            "digest": {"title": "Cluster", "base_url": "https://example.org/d/"},
            "sources": {"inbox": "inbox", "settle_seconds": 0},
            "state": {"url": url},
            "instance": {"name": name, "lease": LEASE},
            "feed": {"output_dir": "site"},
            "email": {"transport": "smtp", "from": "Digest <digest@example.org>", "to": to},
            "email.smtp": {"host": "127.0.0.1", "port": port, "security": "none"},
        },
    )


def _run(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "-c", str(config), "run", "--wait", "120"],
        env=env,
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _claimed_by(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM deliveries WHERE claimed_by = :n AND status = 'pending'"),
                {"n": name},
            ).scalar_one()
        )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killing_one_of_three_sending_instances_loses_and_duplicates_nothing(
    pg_url: str,  # noqa: F811
    tmp_path: Path,
    start_server: StartServer,
) -> None:
    recipients = [f"reader{i:04}@example.org" for i in range(2000)]
    port = free_port()
    sink = Recorder()
    start_server(sink, port)
    configs = [_config(tmp_path, f"node{i}", pg_url, port, recipients) for i in range(3)]
    ingest_numbered(pg_url, 3, recipients=recipients)  # one digest, a pending row to each
    engine = sa.create_engine(pg_url)
    try:
        procs = [_run(c) for c in configs]
        victim = procs[0]
        deadline = time.monotonic() + 300
        # Kill node0 while it holds claimed rows and the outbox is well under way.
        while not (len(sink.accepted) >= 300 and _claimed_by(engine, "node0") > 0):
            assert victim.poll() is None, "node0 finished before it could be killed"
            assert time.monotonic() < deadline, "delivery never got under way"
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
        assert victim.returncode == -signal.SIGKILL
        stranded = _claimed_by(engine, "node0")
        assert stranded > 0  # rows only a takeover can send
        for p in procs[1:]:
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, (out.decode(), err.decode())
        # A survivor still sending when node0's lease ran out took its rows over; any left
        # wait for the next run of a survivor after the lease.
        time.sleep(LEASE + 0.5)
        again = _run(configs[1])
        out, err = again.communicate(timeout=600)
        assert again.returncode == 0, (out.decode(), err.decode())

        with engine.connect() as conn:
            statuses: dict[str, int] = dict(
                conn.execute(sa.text("SELECT status, count(*) FROM deliveries GROUP BY status")).all()
            )
        assert statuses == {"sent": len(recipients)}
    finally:
        engine.dispose()

    per_recipient = Counter(m.rcpt_tos[0] for m in sink.accepted)
    assert set(per_recipient) == set(recipients)
    extra = sum(n - 1 for n in per_recipient.values())
    assert extra <= 1, per_recipient.most_common(3)  # at most node0's one message in flight
    copies: dict[str, list[bytes]] = defaultdict(list)
    for mid, raw in zip(sink.offered, sink.offered_bytes, strict=True):
        copies[mid].append(raw)
    assert len(copies) == len(recipients)
    assert all(len(set(c)) == 1 for c in copies.values())  # a resent message is byte-identical
