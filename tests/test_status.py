"""The status snapshot (digest/status.py): one read transaction of aggregates behind
``digest status``, ``status --json`` and ``/healthz``; 1,000,000 delivery rows answer in
under 0.5 s and 100 MiB (the bench row, run here at full size as a slow test)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.scenarios import write_config
from bench.status import TARGET_MIB, TARGET_SECONDS, build_state, measure_healthz, measure_status
from digest import status
from digest.cli import main
from digest.config import Config
from digest.model import Digest
from digest.schedule import Service
from digest.store import Store
from tests.helpers import DUMP_000, DUMP_002, MakeConfig, drop
from tests.test_store_postgres import pg_url  # noqa: F401  (a fixture)


def status_json(config: Config, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["-c", str(config.path), "status", "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_status_json_and_healthz_are_the_same_snapshot(
    make_config: MakeConfig, inbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(email={"to": ["ann@example.org", "bob@example.org"]})
    drop(inbox, DUMP_000)
    (inbox / "bad.txt").write_bytes(b"\xff\xfe not a dump")
    assert main(["-c", str(config.path), "run"]) == 0
    drop(inbox, DUMP_002)
    assert main(["-c", str(config.path), "run", "--no-send"]) == 0
    body = status_json(config, capsys)
    assert body["dumps"] == {"ingested": 2, "failed": 1}
    assert body["papers"] == 297 and body["papers_waiting"] == 0 and body["digests"] == 2
    assert body["deliveries"] == {"pending": 0, "sent": 2, "failed": 0, "cancelled": 0}
    assert body["failed_dumps"][0]["name"] == "bad.txt"
    assert body["last_digest"]["papers"] == 216
    # email.to's two readers, active subscribers the config vouches for
    assert body["subscribers"] == {"pending": 0, "active": 2, "unsubscribed": 0, "bounced": 0}
    store = Store.open(config.state.url)
    try:
        code, health = Service(config, store).health()
    finally:
        store.close()
    assert code == 200 and health["status"] == "ok"
    for key, value in body.items():
        assert health[key] == value, key


def test_the_snapshot_is_one_read_transaction(config: Config, inbox: Path, store: Store) -> None:
    drop(inbox, DUMP_000)
    assert main(["-c", str(config.path), "run"]) == 0
    begins: list[object] = []
    checkouts: list[object] = []
    sa.event.listen(store.engine, "begin", lambda conn: begins.append(conn))
    sa.event.listen(store.engine.pool, "checkout", lambda *a: checkouts.append(a))
    snap = status.snapshot(store, ("https://example.org/a.txt",))
    assert len(begins) == 1 and len(checkouts) == 1
    assert snap.papers == 81 and snap.deliveries["sent"] == 1


def test_delivery_errors_are_the_newest_twenty_with_the_total(
    config: Config, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    state = Path(config.path or ".").parent / "state"
    state.mkdir()
    path = write_config(state)
    build_state(path, n_digests=3, recipients=25_000)  # 75 failed rows, 5 pending
    loaded = json.loads(json.dumps(status_json(load(path), capsys)))
    assert loaded["deliveries"] == {"pending": 25, "sent": 74_900, "failed": 75, "cancelled": 0}
    assert loaded["delivery_errors_total"] == 100
    errors = loaded["delivery_errors"]
    assert len(errors) == status.LIST_LIMIT
    assert [e["digest"] for e in errors] == sorted(e["digest"] for e in errors)  # oldest first
    capsys.readouterr()
    assert main(["-c", str(path), "status"]) == 0
    out = capsys.readouterr().out
    assert "deliveries: 25 pending, 74900 sent, 75 failed, 0 cancelled" in out
    assert "… and 80 more delivery errors" in out


def load(path: Path) -> Config:
    from digest.config import load_config

    return load_config(path, {})


def test_subscribers_by_status(config: Config, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    from digest.store.subscribers import Subscribers

    subs = Subscribers(store)
    now = datetime(2026, 11, 22, tzinfo=UTC)
    for address, state in [
        ("a@x.org", "active"),
        ("b@x.org", "active"),
        ("c@x.org", "bounced"),
        ("d@x.org", "pending"),
    ]:
        sub = subs.add(address, now, status="pending" if state == "pending" else "active")
        if state == "bounced":
            subs.set_status(sub.id, "bounced", now)
    body = status_json(config, capsys)
    assert body["subscribers"] == {"pending": 1, "active": 2, "unsubscribed": 0, "bounced": 1}
    assert main(["-c", str(config.path), "status"]) == 0
    assert "subscribers: 1 pending, 2 active, 0 unsubscribed, 1 bounced" in capsys.readouterr().out


def test_renderings_are_pure() -> None:
    snap = status.Snapshot(
        dumps_ingested=1,
        dumps_failed=0,
        papers=3,
        papers_waiting=1,
        digests=1,
        deliveries={"pending": 0, "sent": 2, "failed": 0, "cancelled": 0},
        last_digest=None,
        failed_dumps=(),
        fetch_failures=(),
        delivery_errors=(),
        delivery_errors_total=0,
        last_runs={"poll": None, "digest": None},
        last_finished={"poll": None, "digest": None},
        last_ok={"poll": datetime(2026, 11, 22, 7, tzinfo=UTC), "digest": None},
        incidents=(
            ("late", "2026-11-25T09:00+00:00", datetime(2026, 11, 25, 12, tzinfo=UTC), "no new dump"),
        ),
    )
    assert status.to_json(snap) == status.to_json(snap)
    assert status.to_json(snap)["last_successful"] == {"poll": "2026-11-22T07:00:00+00:00", "digest": None}
    assert "  alert (late) open since 2026-11-25 12:00 UTC: no new dump" in status.lines(snap, "x", 0)
    created = datetime(2026, 11, 30, 7, tzinfo=UTC)
    for count, said in ((3, "3 papers"), (1, "1 paper")):
        last = Digest(id=3, slug="2026-11-30-3", created=created, first_seq=1, last_seq=3, paper_count=count)
        text = status.lines(replace(snap, digests=3, last_digest=last), "x", 0)
        assert f"digests: 3 (latest 2026-11-30-3, {said})" in text


@pytest.mark.slow
def test_a_million_delivery_rows_answer_in_half_a_second_and_100_mib(tmp_path: Path) -> None:
    path = write_config(tmp_path / "million")
    assert build_state(path, n_digests=100, recipients=10_000) == 1_000_000
    cli = measure_status(path)
    assert cli.body["deliveries"] == {"pending": 10, "sent": 998_990, "failed": 1000, "cancelled": 0}
    health = measure_healthz(path)
    assert health.body["status"] == "ok" and health.body["deliveries"] == cli.body["deliveries"]
    print(f"status --json {cli.seconds:.3f} s ({cli.imports:.3f} s imports) {cli.peak_mib:.0f} MiB")
    print(f"/healthz {health.seconds:.3f} s {health.peak_mib:.0f} MiB")
    assert cli.seconds < TARGET_SECONDS and cli.peak_mib < TARGET_MIB
    assert health.seconds < TARGET_SECONDS and health.peak_mib < TARGET_MIB


def test_the_snapshot_and_incidents_on_postgres(
    make_config: MakeConfig,
    pg_url: str,  # noqa: F811
    inbox: Path,
) -> None:
    from digest import health
    from digest.pipeline import run_once
    from digest.transports import FileTransport
    from tests.helpers import NOW

    config = make_config(state={"url": pg_url}, email={"to": ["a@example.org", "b@example.org"]})
    drop(inbox, DUMP_000)
    (inbox / "bad.txt").write_bytes(b"\xff\xfe not a dump")
    store = Store.open(config.state.url)
    try:
        run_once(config, store, FileTransport(config.email.outbox), NOW)
        decision = health.check(config, store, None, NOW)
        assert [(i.kind, i.key.split()[0]) for i in decision.open] == [("refused", "bad.txt")]
        snap = status.snapshot(store)
    finally:
        store.close()
    assert (snap.dumps_ingested, snap.dumps_failed, snap.papers, snap.digests) == (1, 1, 81, 1)
    assert snap.deliveries == {"sent": 2, "pending": 0, "failed": 0, "cancelled": 0}
    assert snap.subscribers is not None
    [(kind, _, opened, reason)] = snap.incidents
    assert kind == "refused" and opened == NOW and "bad.txt:1" in reason
