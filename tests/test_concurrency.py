"""Several ``digest run`` processes at once against one state and inbox (docs/DESIGN.md invariant 7):
one digest, one email per recipient, and every loser says why instead of crashing."""

from __future__ import annotations

import email
import email.policy
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from crash.harness import RECIPIENTS, Install, make_install
from tests.helpers import DUMP_000, DUMP_002

pytestmark = pytest.mark.slow  # races real processes

N = 5
LOCK_MESSAGE = "digest: error: another paper-digest run holds"


def _start_all(install: Install, *extra: str) -> list[tuple[int, str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    cmd = [sys.executable, "-m", "digest.cli", "-c", str(install.config), "run", *extra]
    procs = [
        subprocess.Popen(cmd, env=env, cwd=install.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(N)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=90)
        results.append((p.returncode, out.decode(), err.decode()))
    return results


def _state(install: Install) -> tuple[int, list[tuple[str, str]]]:
    with sqlite3.connect(install.db) as db:
        digests = db.execute("SELECT count(*) FROM digests").fetchone()[0]
        sent = db.execute("SELECT recipient, status FROM deliveries ORDER BY recipient").fetchall()
    return digests, sent


def _emails_per_recipient(install: Install) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in install.outbox.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        counts[str(msg["To"])] = counts.get(str(msg["To"]), 0) + 1
    return counts


@pytest.fixture
def install(tmp_path: Path) -> Install:
    """A fresh install (no state yet: the runs also race to create the schema)."""
    inst = make_install(tmp_path / "site")
    for dump in (DUMP_000, DUMP_002):
        (inst.inbox / dump.name).write_bytes(dump.read_bytes())
    return inst


def test_concurrent_runs_build_one_digest_and_losers_exit_cleanly(install: Install) -> None:
    results = _start_all(install)

    for code, _, err in results:
        assert "Traceback" not in err
        assert code == 0 or (code == 1 and LOCK_MESSAGE in err), (code, err)
    winners = [out for code, out, _ in results if code == 0 and "297 new papers" in out]
    assert len(winners) == 1
    assert _state(install) == (1, sorted((r, "sent") for r in RECIPIENTS))
    assert _emails_per_recipient(install) == dict.fromkeys(RECIPIENTS, 1)


def test_concurrent_runs_with_wait_all_complete(install: Install) -> None:
    results = _start_all(install, "--wait", "60")

    assert [code for code, _, _ in results] == [0] * N, [err for _, _, err in results]
    assert not any("Traceback" in err for _, _, err in results)
    assert sum("297 new papers" in out for _, out, _ in results) == 1
    assert sum("no digest" in out for _, out, _ in results) == N - 1
    assert _state(install) == (1, sorted((r, "sent") for r in RECIPIENTS))
    assert _emails_per_recipient(install) == dict.fromkeys(RECIPIENTS, 1)
