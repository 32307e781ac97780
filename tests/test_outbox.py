"""The outbox around the transport: who gets which digest, the suppression list,
cancellation, and the email commands (preview, send-test, unsubscribe)."""

from __future__ import annotations

import email
import email.policy
import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from digest.cli import main
from digest.config import Config
from digest.ingest import ingest_inbox
from digest.pipeline import RunReport, run_once
from digest.store import Store
from digest.store.subscribers import Subscribers
from digest.subscribers import Preferences
from digest.transports import FileTransport, make_transport
from tests.helpers import DUMP_000, DUMP_002, NOW, MakeConfig, drop
from tests.smtpsink import free_port, smtp_sections


def outbox_files(config: Config) -> list[Path]:
    return sorted(config.email.outbox.glob("*.eml")) if config.email.outbox.is_dir() else []


def to_files(config: Config, store: Store) -> RunReport:
    """A run that delivers into ``config.email.outbox`` (the file transport)."""
    return run_once(config, store, FileTransport(config.email.outbox), NOW)


def nobody_listening(make_config: MakeConfig, to: list[str], **email: object) -> Config:
    """A config that mails ``to`` through an SMTP port where nobody listens."""
    return make_config(**smtp_sections(free_port(), to, email=email, timeout="2s"))


def sent_digests(store: Store) -> dict[str, list[int]]:
    """Recipient → the ids of the digests sent to them."""
    sent: dict[str, list[int]] = {}
    for row in store.deliveries("sent"):
        sent.setdefault(row.recipient, []).append(row.digest_id)
    return {r: sorted(ids) for r, ids in sorted(sent.items())}


def test_later_recipients_get_new_digests_not_the_backlog(
    make_config: MakeConfig, inbox: Path, store: Store
) -> None:
    drop(inbox, DUMP_000)
    to_files(make_config(email={"to": ["ann@example.org"]}), store)
    drop(inbox, DUMP_002)
    to_files(make_config(email={"to": ["ann@example.org", "new@example.org"]}), store)
    assert sent_digests(store) == {"ann@example.org": [1, 2], "new@example.org": [2]}
    assert {r.status for r in store.deliveries()} == {"sent"}


def test_unsubscribe_cancels_pending_and_suppresses_future_digests(
    make_config: MakeConfig, inbox: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    config = nobody_listening(make_config, ["ann@example.org", "Bob@Example.org"])
    drop(inbox, DUMP_000)
    assert main(["-c", str(config.path), "run"]) == 1  # nobody listens there: both stay pending
    assert main(["-c", str(config.path), "unsubscribe", "bob@example.org"]) == 0
    out = capsys.readouterr()
    assert "bob@example.org unsubscribed" in out.out and "1 pending deliveries cancelled" in out.out
    assert "still listed in email.to" in out.err
    rows = {r.recipient: (r.status, r.last_error) for r in store.deliveries()}
    assert rows["Bob@Example.org"] == ("cancelled", "unsubscribed")
    assert rows["ann@example.org"][0] == "pending"
    # A new digest has no row for the suppressed address, whatever its case in email.to.
    drop(inbox, DUMP_002)
    to_files(make_config(email={"to": ["ann@example.org", "Bob@Example.org"]}), store)
    rows2 = sorted((r.digest_id, r.recipient, r.status) for r in store.deliveries())
    assert rows2 == [
        (1, "Bob@Example.org", "cancelled"),
        (1, "ann@example.org", "sent"),
        (2, "ann@example.org", "sent"),
    ]
    # --undo takes the address off the list; the next digest reaches it again.
    capsys.readouterr()
    assert main(["-c", str(config.path), "unsubscribe", "--undo", "BOB@example.org"]) == 0
    assert store.suppressed() == frozenset()
    assert main(["-c", str(config.path), "unsubscribe", "--undo", "bob@example.org"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "BOB@example.org no longer unsubscribed",
        "bob@example.org had not unsubscribed",
    ]


def test_pending_rows_to_addresses_removed_from_the_config_are_cancelled(
    make_config: MakeConfig, inbox: Path, store: Store
) -> None:
    down = nobody_listening(make_config, ["ann@example.org", "gone@example.org"])
    drop(inbox, DUMP_000)
    assert main(["-c", str(down.path), "run"]) == 1
    config = make_config(email={"to": ["ann@example.org"]})
    report = to_files(config, store)
    assert report.ok and report.delivery.sent == 1
    rows = {r.recipient: (r.status, r.last_error) for r in store.deliveries()}
    assert rows == {
        "ann@example.org": ("sent", None),
        "gone@example.org": ("cancelled", "cancelled: the address is no longer in email.to"),
    }
    assert [p.name.split("-")[-2] for p in outbox_files(config)] == ["ann@example.org"]


def test_disabled_email_keeps_pending_rows_waiting(
    make_config: MakeConfig, inbox: Path, store: Store
) -> None:
    down = nobody_listening(make_config, ["reader@example.org"])
    drop(inbox, DUMP_000)
    assert main(["-c", str(down.path), "run"]) == 1
    report = to_files(make_config(email={"enabled": False}), store)
    assert report.ok and [r.status for r in store.deliveries()] == ["pending"]
    assert to_files(make_config(), store).delivery.sent == 1


def db_fingerprint(config: Config, store: Store) -> tuple[object, ...]:
    return (store.counts(), store.deliveries(), store.digests())


def test_preview_renders_the_next_digest_and_changes_nothing(
    config: Config, store: Store, inbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drop(inbox, DUMP_000)
    assert main(["-c", str(config.path), "run", "--no-send"]) == 0  # 81 papers digested
    drop(inbox, DUMP_002)
    ingest_inbox(config, store, NOW)  # 216 papers wait for the next digest, as after a service poll
    before = db_fingerprint(config, store)
    site = sorted(p.name for p in config.feed.output_dir.rglob("*"))
    capsys.readouterr()
    out_dir = tmp_path / "preview"
    assert main(["-c", str(config.path), "preview", "--out", str(out_dir)]) == 0
    captured = capsys.readouterr()
    html_path, eml_path = (Path(line) for line in captured.out.split())
    assert html_path.parent == eml_path.parent == out_dir
    assert "the next digest for reader@example.org: 216 new papers" in captured.err
    assert db_fingerprint(config, store) == before
    assert sorted(p.name for p in config.feed.output_dir.rglob("*")) == site
    assert outbox_files(config) == []
    msg = email.message_from_bytes(eml_path.read_bytes(), policy=email.policy.default)
    assert msg["To"] == "reader@example.org" and msg["Subject"].startswith("216 new papers")
    html = html_path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "216 more papers" not in html and "166 more papers" in html


def test_preview_falls_back_to_the_latest_digest(
    config: Config, store: Store, inbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drop(inbox, DUMP_000)
    assert main(["-c", str(config.path), "run"]) == 0
    capsys.readouterr()
    assert main(["-c", str(config.path), "preview", "--out", str(tmp_path / "p")]) == 0
    captured = capsys.readouterr()
    assert "the latest digest for reader@example.org: 81 new papers" in captured.err
    # The preview is the very message that was delivered, byte for byte.
    [sent] = outbox_files(config)
    eml = Path(captured.out.split()[1])
    assert hashlib.sha256(eml.read_bytes()).digest() == hashlib.sha256(sent.read_bytes()).digest()


def test_preview_of_a_pending_weekly_row_is_the_weekly_email_it_sends(
    make_config: MakeConfig, inbox: Path, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    down = nobody_listening(make_config, [])  # the weekly subscriber is the only reader
    Subscribers(store).add("wes@example.org", NOW, prefs=Preferences(cadence="weekly:mon"))
    drop(inbox, DUMP_000)
    run_once(down, store, make_transport(down), NOW)  # Sunday: digest 1, no row for wes
    drop(inbox, DUMP_002)
    monday = NOW + timedelta(days=1)
    run_once(down, store, make_transport(down), monday)  # digest 2 carries wes's weekly row
    [row] = store.deliveries("pending")
    assert row.recipient == "wes@example.org" and row.digest_id == 2 and row.attempts == 1
    capsys.readouterr()
    assert main(["-c", str(down.path), "preview", "--out", str(tmp_path / "p")]) == 0
    captured = capsys.readouterr()
    # The week's 81 + 216 papers, not digest 2's daily email of 216.
    assert "a pending delivery for wes@example.org: 297 new papers" in captured.err
    eml = Path(captured.out.split()[1])
    assert [r.status for r in store.deliveries()] == ["pending"]  # the preview changed nothing
    # The preview is the very message the row then sends, byte for byte.
    config = make_config(email={"to": []})
    assert to_files(config, store).delivery.sent == 1
    [sent] = outbox_files(config)
    assert eml.read_bytes() == sent.read_bytes()


def test_send_test_sends_a_sample(
    config: Config, store: Store, inbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(config.path), "send-test", "me@example.org"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sent a test digest to me@example.org as ")
    [path] = outbox_files(config)
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert msg["To"] == "me@example.org"
    assert msg["Subject"].startswith("[test] 1 new paper · ")
    assert "A sample paper to check the mail settings" in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert store.deliveries() == [] and store.digests() == []  # nothing recorded
    assert main(["-c", str(config.path), "send-test", "not an address"]) == 1
    assert "is not an email address" in capsys.readouterr().err
