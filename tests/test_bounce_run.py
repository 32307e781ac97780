"""Bounces end to end: VERP envelope senders over a real SMTP server (aiosmtpd), delivery
reports in a real maildir/mbox, ``digest bounces`` and the subscribers it marks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from digest.cli import main
from digest.config import Config
from digest.store import Store
from tests.helpers import DUMP_000, MakeConfig, drop
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
