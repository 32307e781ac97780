"""Migration to subscribers (issue 14): a state file made by the previous main keeps every
suppression (as an ``unsubscribed`` subscriber) and every delivery, and goes on working."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from digest.cli import main
from digest.config import Config
from digest.pipeline import run_once
from digest.store import SCHEMA_VERSION, Store
from digest.store.subscribers import Subscribers
from digest.transports import FileTransport
from tests.helpers import MakeConfig

V5 = Path(__file__).parent / "data" / "state-v5.db"  # made by tests/data/make_v5_state.py at 2fb03d9


def rows(db: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


def old_state(tmp_path: Path) -> Path:
    db = tmp_path / "var" / "digest.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(V5, db)
    return db


def config_for(make_config: MakeConfig, db: Path) -> Config:
    return make_config(
        state={"url": f"sqlite:///{db}"},
        email={"to": ["ann@example.org", "Bob@Example.org", "carol@example.org"]},
    )


def test_every_suppression_and_delivery_survives_the_migration(tmp_path: Path) -> None:
    db = old_state(tmp_path)
    assert rows(db, "SELECT version FROM schema_version") == [(5,)]
    suppressions = rows(db, "SELECT address, created_at, reason FROM suppressions ORDER BY address")
    deliveries = rows(db, "SELECT * FROM deliveries ORDER BY id")
    papers = rows(db, "SELECT seq, key FROM papers ORDER BY seq")
    assert len(suppressions) == 2 and len(deliveries) == 5 and papers

    store = Store.open(f"sqlite:///{db}")
    try:
        subs = Subscribers(store)
        for address, created, reason in suppressions:
            sub = subs.get(str(address))
            assert sub is not None, address
            assert sub.status == "unsubscribed" and sub.source == "suppression"
            stamp = datetime.fromisoformat(str(created)).replace(tzinfo=UTC)
            assert sub.unsubscribed == stamp and sub.created == stamp
            assert sub.reason == reason  # "unsubscribed", "complaint"
        # Compared case-insensitively, as the suppression list was.
        assert store.suppressed() == {"bob@example.org", "zed@elsewhere.org"}
        assert subs.counts() == {"pending": 0, "active": 0, "unsubscribed": 2, "bounced": 0}
    finally:
        store.close()
    assert rows(db, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    # Every column the old state had keeps its value (later migrations add columns:
    # the outbox claim, empty on every old row).
    after = rows(db, "SELECT * FROM deliveries ORDER BY id")
    assert [row[: len(deliveries[0])] for row in after] == deliveries
    assert all(value is None for row in after for value in row[len(deliveries[0]) :])
    assert rows(db, "SELECT seq, key FROM papers ORDER BY seq") == papers
    # Opening again migrates nothing twice.
    Store.open(f"sqlite:///{db}").close()
    assert len(rows(db, "SELECT * FROM subscribers")) == 2


def test_the_migrated_state_goes_on_mailing_whom_it_did(tmp_path: Path, make_config: MakeConfig) -> None:
    db = old_state(tmp_path)
    config = config_for(make_config, db)
    store = Store.open(config.state.url)
    try:
        # The pending second digest goes to Ann and Carol; Bob stays unsubscribed though
        # email.to lists him; the config's addresses become active subscribers.
        report = run_once(
            config, store, FileTransport(config.email.outbox), datetime(2026, 11, 22, 7, tzinfo=UTC)
        )
        assert report.delivery.sent == 2
        sent = {(r.digest_id, r.recipient) for r in store.deliveries("sent")}
        assert sent == {(1, "ann@example.org"), (1, "Bob@Example.org"), (1, "carol@example.org"),
                        (2, "ann@example.org"), (2, "carol@example.org")}  # fmt: skip
        statuses = {s.address: (s.status, s.source) for s in Subscribers(store).all()}
        assert statuses == {
            "ann@example.org": ("active", "config"),
            "bob@example.org": ("unsubscribed", "suppression"),
            "carol@example.org": ("active", "config"),
            "zed@elsewhere.org": ("unsubscribed", "suppression"),
        }
    finally:
        store.close()
    # `digest unsubscribe --undo` of a bare suppression forgets it: Bob is the config's again.
    assert main(["-c", str(config.path), "unsubscribe", "--undo", "BOB@example.org"]) == 0
    store = Store.open(config.state.url)
    try:
        assert Subscribers(store).get("bob@example.org") is None
        assert store.suppressed() == {"zed@elsewhere.org"}
    finally:
        store.close()
