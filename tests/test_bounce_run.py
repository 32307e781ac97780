"""Bounces end to end: VERP envelope senders over a real SMTP server (aiosmtpd), delivery
reports in a real maildir/mbox, ``digest bounces`` and the subscribers it marks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from digest.cli import main
from digest.config import Config
from digest.store import Store
from tests.helpers import DUMP_000, DUMP_002, MakeConfig, drop
from tests.smtpsink import Recorder, StartServer

READERS = ["ann@example.org", "bob@example.org", "cy@example.org", "dee@example.org"]
BOUNCE = "bounces@example.org"


@pytest.fixture
def smtp_config(make_config: MakeConfig) -> Callable[..., Config]:
    def make(port: int, **email: Any) -> Config:
        return make_config(
            email={"transport": "smtp", "to": READERS, "bounce_address": BOUNCE, **email},
            email__smtp={"host": "127.0.0.1", "port": port, "security": "none", "timeout": "5s"},
        )

    return make


def run(config: Config, *args: str) -> int:
    assert config.path is not None
    return main(["-c", str(config.path), *args])


def test_each_message_goes_out_with_its_own_verp_sender(
    start_server: StartServer, smtp_config: Callable[..., Config], inbox: Path, store: Store
) -> None:
    handler = Recorder(rcpt_replies={"dee@example.org": "550 5.1.1 no such user"})
    server = start_server(handler)
    config = smtp_config(server.port)
    drop(inbox, DUMP_000)
    assert run(config, "run") == 1  # one delivery failed for good
    rows = {r.recipient: r for r in store.deliveries()}
    assert rows["dee@example.org"].status == "failed"
    for addr in READERS[:3]:
        [got] = handler.to(addr)
        assert got.mail_from == f"bounces+d{rows[addr].id}@example.org"
        assert "Return-Path" not in got.message  # over SMTP the final MTA adds it
        assert got.message["From"] == "Paper Digest <digest@example.org>"


def test_file_transport_writes_the_return_path(make_config: MakeConfig, inbox: Path, store: Store) -> None:
    config = make_config(email={"to": ["ann@example.org"], "bounce_address": BOUNCE})
    drop(inbox, DUMP_000)
    assert run(config, "run") == 0
    [row] = store.deliveries()
    [eml] = sorted(config.email.outbox.rglob("*.eml"))
    assert eml.read_bytes().startswith(f"Return-Path: <bounces+d{row.id}@example.org>\r\n".encode())


def test_without_bounce_address_the_sender_is_from(
    make_config: MakeConfig, inbox: Path, store: Store
) -> None:
    config = make_config(email={"to": ["ann@example.org"]})
    drop(inbox, DUMP_000)
    assert run(config, "run") == 0
    [eml] = sorted(config.email.outbox.rglob("*.eml"))
    assert b"Return-Path" not in eml.read_bytes()


def dsn(rcpt: str, status: str, to: str, n: int = 0) -> bytes:
    """A DSN as an MTA sends it back to the VERP envelope sender ``to``."""
    action = "failed" if status.startswith("5") else "delayed"
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: {to}\r\nDelivered-To: {to}\r\n"
        f"Message-ID: <dsn{n}.{rcpt}@mx.example.net>\r\n"
        f"Subject: Delivery Status Notification\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        f"--B\r\nContent-Type: text/plain\r\n\r\nDelivery to {rcpt} failed.\r\n"
        f"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n--B--\r\n"
    ).encode()


def maildir(root: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def test_bounces_from_a_maildir_mark_subscribers_once(
    start_server: StartServer, smtp_config: Callable[..., Config], inbox: Path, store: Store, tmp_path: Path
) -> None:
    from digest.store.subscribers import Subscribers

    box = maildir(tmp_path / "Maildir")
    handler = Recorder(rcpt_replies={"dee@example.org": "550 5.1.1 no such user"})
    server = start_server(handler)
    config = smtp_config(server.port, bounces_source=f"maildir:{box}")
    drop(inbox, DUMP_000)
    assert run(config, "run") == 1  # dee refused at RCPT: failed for good, a hard bounce
    senders = {r.rcpt_tos[0]: r.mail_from for r in handler.accepted}
    # ann: a hard bounce to her VERP address; bob: one soft; cy: three soft (the limit).
    files = {
        "1.ann": dsn("ann@example.org", "5.1.1", senders["ann@example.org"]),
        "2.bob": dsn("bob@example.org", "4.2.2", senders["bob@example.org"]),
        **{f"3.cy{i}": dsn("cy@example.org", "4.4.1", senders["cy@example.org"], i) for i in range(3)},
        "4.junk": b"From: someone@example.com\r\nTo: bounces@example.org\r\nSubject: hi\r\n\r\nhello\r\n",
    }
    for name, data in files.items():
        (box / "new" / name).write_bytes(data)
    assert run(config, "bounces") == 0
    subs = Subscribers(store)
    status = {a: subs.get(a).status for a in READERS}  # type: ignore[union-attr]
    assert status == {
        "ann@example.org": "bounced",
        "bob@example.org": "active",
        "cy@example.org": "bounced",
        "dee@example.org": "bounced",  # by the 550 5.1.1 at RCPT TO
    }
    assert "5.1.1" in (subs.get("ann@example.org").reason or "")  # type: ignore[union-attr]
    assert sorted(p.name for p in (box / "new").iterdir()) == ["4.junk"]  # kept, logged
    assert sorted(p.name for p in (box / "cur").iterdir()) == sorted(
        f"{n}:2,S" for n in files if n != "4.junk"
    )

    # Idempotent: the same reports again (copied back into new/) change nothing.
    for name, data in files.items():
        (box / "new" / name).write_bytes(data)
    (box / "new" / "2.bob").write_bytes(files["2.bob"])
    assert run(config, "bounces") == 0
    assert {a: subs.get(a).status for a in READERS} == status  # type: ignore[union-attr]

    # A bounced subscriber gets no more mail; the operator brings one back.
    handler.accepted.clear()
    handler.offered_rcpts.clear()
    drop(inbox, DUMP_002)
    run(config, "run")
    got = {r.rcpt_tos[0] for r in handler.accepted}
    assert "ann@example.org" not in got and "cy@example.org" not in got
    assert "bob@example.org" in got
    assert "dee@example.org" not in handler.offered_rcpts  # not even tried again
    assert run(config, "subscribers", "set", "cy@example.org", "--status", "active") == 0
    assert subs.get("cy@example.org").status == "active"  # type: ignore[union-attr]
    assert run(config, "bounces") == 0  # her old soft bounces no longer count
    assert subs.get("cy@example.org").status == "active"  # type: ignore[union-attr]


def test_bounces_from_an_mbox_are_counted_once(make_config: MakeConfig, store: Store, tmp_path: Path) -> None:
    from digest.store.subscribers import Subscribers

    mbox = tmp_path / "bounces.mbox"
    config = make_config(
        email={
            "to": ["ann@example.org", "bob@example.org"],
            "bounce_address": BOUNCE,
            "bounces_source": f"mbox:{mbox}",
            "soft_bounce_limit": 2,
        }
    )
    subs = Subscribers(store)
    from datetime import UTC, datetime, timedelta

    subs.sync_config(config.email.to, datetime.now(UTC) - timedelta(days=1))
    # No VERP token (a plain Return-Path): the report's Final-Recipient names the subscriber.
    body = b"".join(
        b"From MAILER-DAEMON Thu Nov 26 10:00:00 2026\n"
        + dsn("bob@example.org", "4.2.2", BOUNCE, i).replace(b"\r\n", b"\n")
        + b"\n"
        for i in range(1)
    )
    mbox.write_bytes(body)
    assert run(config, "bounces") == 0
    assert run(config, "bounces") == 0  # the same soft bounce read again is not a second one
    assert subs.get("bob@example.org").status == "active"  # type: ignore[union-attr]
    mbox.write_bytes(
        body
        + b"From MAILER-DAEMON Thu Nov 26 11:00:00 2026\n"
        + dsn("bob@example.org", "4.2.2", BOUNCE, 9).replace(b"\r\n", b"\n")
        + b"\n"
    )
    assert run(config, "bounces") == 0
    assert subs.get("bob@example.org").status == "bounced"  # type: ignore[union-attr]
    assert subs.get("ann@example.org").status == "active"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("reply", "bounced"),
    [
        ("550 5.1.1 <dee@example.org>: Recipient address rejected: User unknown", True),
        ("554 5.7.1 <dee@example.org>: Relay access denied", False),  # our relay's fault
        ("450 4.2.0 try again later", False),  # temporary: retried, never a bounce
    ],
)  # every reply class: tests/test_bounces.py::test_which_refusals_at_rcpt_are_hard_bounces
def test_a_refusal_at_rcpt_is_a_hard_bounce_only_when_the_address_is_bad(
    reply: str,
    bounced: bool,
    start_server: StartServer,
    smtp_config: Callable[..., Config],
    inbox: Path,
    store: Store,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from digest.store.subscribers import Subscribers

    handler = Recorder(rcpt_replies={"dee@example.org": reply})
    server = start_server(handler)
    config = smtp_config(server.port)
    drop(inbox, DUMP_000)
    assert run(config, "run") == 1
    subs = Subscribers(store)
    dee = subs.get("dee@example.org")
    assert dee is not None
    assert dee.status == ("bounced" if bounced else "active")
    assert {a: subs.get(a).status for a in READERS[:3]} == dict.fromkeys(READERS[:3], "active")  # type: ignore[union-attr]
    err = capsys.readouterr().err
    assert ("the subscriber is marked bounced" in err) is bounced
    capsys.readouterr()
    assert run(config, "status", "--json") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["bounces"] == {"hard": int(bounced), "soft": 0}
    assert body["subscribers"]["bounced"] == int(bounced)
    assert run(config, "status") == 0
    assert ("bounces: 1 hard, 0 soft" in capsys.readouterr().out) is bounced
    if bounced:
        assert reply in (dee.reason or "")
        # A second digest is not offered to dee at all; her failed row is history.
        handler.offered_rcpts.clear()
        drop(inbox, DUMP_002)
        assert run(config, "run") == 0
        assert "dee@example.org" not in handler.offered_rcpts


def test_bad_bounces_source_is_one_line(
    make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(email={"bounces_source": f"maildir:{tmp_path / 'nope'}"})
    assert run(config, "bounces") != 0
    assert "email.bounces_source" in capsys.readouterr().err
