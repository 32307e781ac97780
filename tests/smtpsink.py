"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 in the test process, recording
what it accepted and refusing on cue."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from digest.config import Config
from tests.helpers import DUMP_000, MakeConfig, drop


def free_port() -> int:
    # aiosmtpd 1.4.6 cannot bind port 0: ask the OS for a free port first.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    rcpt_tos: tuple[str, ...]
    mail_from: str
    message: EmailMessage
    peer: Any


@dataclass
class Recorder:
    """An aiosmtpd handler that records what it accepted and can refuse on cue."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address → reply, e.g. "550 …"
    data_replies: list[str] = field(default_factory=list)  # replies to the next DATA commands
    accepted: list[Received] = field(default_factory=list)
    offered: list[str] = field(default_factory=list)  # Message-IDs seen at DATA, accepted or not
    logins: list[str] = field(default_factory=list)
    offered_bytes: list[bytes] = field(default_factory=list)
    offered_rcpts: list[str] = field(default_factory=list)  # every RCPT TO address, refused or not

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.offered_rcpts.append(address)
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.offered.append(str(msg["Message-ID"]))
        self.offered_bytes.append(bytes(envelope.original_content))
        if self.data_replies:
            return self.data_replies.pop(0)
        self.accepted.append(Received(tuple(envelope.rcpt_tos), envelope.mail_from, msg, session.peer))
        return "250 2.0.0 accepted"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.accepted if address in r.rcpt_tos]


StartServer = Callable[..., Controller]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    started: list[Controller] = []

    def start(handler: Recorder, port: int | None = None, **smtp: Any) -> Controller:
        controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **smtp)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for c in started:
        c.stop()


SmtpConfig = Callable[..., Config]
"""The ``smtp_config`` fixture: ``smtp_config(port, env=None, **smtp_sections_options)``."""

SinkConfig = Callable[..., Config]
"""The ``sink_config`` fixture: ``sink_config(handler, *dumps, server=None, **smtp_config)``."""


def smtp_sections(
    port: int, to: Sequence[str], email: dict[str, Any] | None = None, timeout: str = "5s", **smtp: Any
) -> dict[str, dict[str, Any]]:
    """The config sections (``make_config(**...)``) of a run that mails ``to`` through an
    SMTP server on 127.0.0.1:``port``, without TLS unless ``smtp`` says so; ``email`` adds
    keys of the email section."""
    return {
        "email": {"transport": "smtp", "to": list(to), **(email or {})},
        "email__smtp": {"host": "127.0.0.1", "port": port, "security": "none", "timeout": timeout, **smtp},
    }


@pytest.fixture
def smtp_config(make_config: MakeConfig, request: pytest.FixtureRequest) -> SmtpConfig:
    """``smtp_sections`` loaded as a config, mailing the test module's ``READERS`` (one
    reader when it has none)."""
    readers = list(getattr(request.module, "READERS", ["reader@example.org"]))

    def make(port: int, env: dict[str, str] | None = None, **options: Any) -> Config:
        return make_config(env=env, **smtp_sections(port, readers, **options))

    return make


@pytest.fixture
def sink_config(start_server: StartServer, smtp_config: SmtpConfig, inbox: Path) -> SinkConfig:
    """Starts the sink with ``handler`` (``server``: aiosmtpd Controller options), drops
    ``dumps`` (DUMP_000 when none) into the inbox, and returns the ``smtp_config`` that
    mails through the sink (its port is ``config.email.smtp.port``)."""

    def make(handler: Recorder, *dumps: Path, server: dict[str, Any] | None = None, **options: Any) -> Config:
        controller = start_server(handler, **(server or {}))
        drop(inbox, *(dumps or (DUMP_000,)))
        return smtp_config(controller.port, **options)

    return make
