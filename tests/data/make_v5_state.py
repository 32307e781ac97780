"""Builds tests/data/state-v5.db: a state file made by paper-digest before subscribers
(main at 2fb03d9, schema version 5), for tests/test_subscribers_migration.py.

    git archive 2fb03d9 digest templates | tar -x -C /tmp/v5
    PYTHONPATH=/tmp/v5 python tests/data/make_v5_state.py tests/data/state-v5.db

It ingests two small dumps (cut from examples/dumps), builds two digests for three
recipients, sends the first (file transport), leaves the second pending (an SMTP server
that is not there), and suppresses two addresses: one listed in email.to (Bob, in
another case) and one not."""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from digest.deliver import FileTransport

from digest.config import build_config
from digest.pipeline import RunOptions, run_once
from digest.store import SCHEMA_VERSION, Store

ROOT = Path(__file__).resolve().parents[2]


def cut(source: Path, target: Path, lines: int) -> None:
    target.write_text("\n".join(source.read_text(encoding="utf-8").splitlines()[:lines]) + "\n")


def main(out: Path) -> None:
    assert SCHEMA_VERSION == 5, SCHEMA_VERSION
    work = Path(tempfile.mkdtemp())
    inbox = work / "inbox"
    inbox.mkdir()
    data: dict[str, dict[str, object]] = {
        "digest": {"title": "Old Digest", "base_url": "https://example.org/digest/"},
        "sources": {"inbox": str(inbox), "settle_seconds": 0},
        "state": {"url": f"sqlite:///{work / 'digest.db'}"},
        "feed": {"output_dir": str(work / "site")},
        "email": {
            "outbox": str(work / "outbox"),
            "from": "Paper Digest <digest@example.org>",
            "to": ["ann@example.org", "Bob@Example.org", "carol@example.org"],
        },
    }
    config = build_config(data, work, {})
    store = Store.open(config.state.url)
    cut(ROOT / "examples/dumps/000_1837666521755300.txt", inbox / "000.txt", 40)
    run_once(config, store, FileTransport(config.email.outbox), datetime(2026, 11, 20, 7, tzinfo=UTC))
    store.suppress("bob@example.org", datetime(2026, 11, 20, 9, tzinfo=UTC))
    store.suppress("Zed@Elsewhere.org", datetime(2026, 11, 20, 10, tzinfo=UTC), reason="complaint")
    cut(ROOT / "examples/dumps/002_2330d60cc52b9a08.txt", inbox / "002.txt", 12)
    # The second digest stays pending: nothing listens on port 9.
    email: dict[str, object] = {**data["email"], "transport": "smtp"}
    email["smtp"] = {"host": "127.0.0.1", "port": 9, "security": "none", "timeout": "2s"}
    smtp_config = build_config({**data, "email": email}, work, {})
    from digest.pipeline import make_transport

    run_once(
        smtp_config, store, make_transport(smtp_config), datetime(2026, 11, 21, 7, tzinfo=UTC), RunOptions()
    )
    store.close()
    shutil.copyfile(work / "digest.db", out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
