"""Bounces from a real IMAP server (Dovecot, started by the test: tests/dovecot.py): a real
SMTP sink refusing one address with 550 and accepting the others, RFC 3464 reports for a
hard and a soft failure APPENDed to the mailbox, ``digest bounces`` over implicit TLS and
STARTTLS, the subscribers' states, idempotence, and ``digest serve`` reading the mailbox on
every poll."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.cli import main
from digest.config import Config
from digest.store import Store
from digest.store.subscribers import Subscribers
from tests.dovecot import PASSWORD, Dovecot
from tests.helpers import DUMP_000, ROOT, MakeConfig, drop, write_toml
from tests.smtpsink import Recorder, StartServer
from tests.test_bounce_run import dsn

READERS = ["ann@example.org", "bob@example.org", "cy@example.org", "dee@example.org"]
BOUNCE = "bounces@example.org"
JUNK = b"From: someone@example.com\r\nTo: bounces@example.org\r\nMessage-ID: <junk@x>\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture
def trust(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client verifies Dovecot's certificate for real, trusting only the test's own."""
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)


def imap_keys(dovecot: Dovecot, user: str, security: str = "ssl") -> dict[str, Any]:
    port = dovecot.imaps_port if security == "ssl" else dovecot.imap_port
    return {"host": "127.0.0.1", "port": port, "security": security, "username": user, "timeout": "10s"}


ImapConfig = Callable[..., tuple[str, Config]]
"""The ``imap_config`` fixture: ``imap_config(name, security="ssl", **sections)``."""


@pytest.fixture
def imap_config(dovecot: Dovecot, trust: None, make_config: MakeConfig) -> ImapConfig:
    """``make_config`` for a new Dovecot user ``name``, its ``[email.imap]`` keys set to
    reach the user's mailbox over ``security``; returns the user with the config."""

    def make(name: str, security: str = "ssl", **sections: dict[str, Any]) -> tuple[str, Config]:
        user = dovecot.user(name)
        return user, make_config(email__imap=imap_keys(dovecot, user, security), **sections)

    return make


def run(config: Config, *args: str) -> int:
    assert config.path is not None
    return main(["-c", str(config.path), *args])


def status_json(config: Config, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert run(config, "status", "--json") == 0
    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    return body


def test_bounces_from_imap_mark_subscribers_once(
    dovecot: Dovecot,
    imap_config: ImapConfig,
    start_server: StartServer,
    inbox: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = Recorder(rcpt_replies={"dee@example.org": "550 5.1.1 <dee@example.org>: no such user"})
    server = start_server(handler)
    user, config = imap_config(
        "e2e",
        email={"transport": "smtp", "to": READERS, "bounce_address": BOUNCE, "bounces_source": "imap:INBOX"},
        email__smtp={"host": "127.0.0.1", "port": server.port, "security": "none", "timeout": "5s"},
    )
    drop(inbox, DUMP_000)
    assert run(config, "run") == 1  # dee refused at RCPT TO: failed for good
    store = Store.open(config.state.url)
    subs = Subscribers(store)

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "digest.bouncing"]

    def states() -> dict[str, str]:
        return {a: subs.get(a).status for a in READERS}  # type: ignore[union-attr]

    try:
        # The synchronous 550 5.1.1 was a hard bounce already.
        assert states()["dee@example.org"] == "bounced"
        assert "refused at RCPT TO: 550 5.1.1" in (subs.get("dee@example.org").reason or "")  # type: ignore[union-attr]
        senders = {r.rcpt_tos[0]: r.mail_from for r in handler.accepted}
        assert set(senders) == {"ann@example.org", "bob@example.org", "cy@example.org"}
        hard = dsn("ann@example.org", "5.1.1", senders["ann@example.org"], 1)
        soft = dsn("bob@example.org", "4.2.2", senders["bob@example.org"], 2)
        dovecot.append(user, hard, soft, JUNK)

        caplog.set_level("WARNING", logger="digest.bouncing")
        capsys.readouterr()
        assert run(config, "bounces") == 0
        assert capsys.readouterr().out.startswith("3 reports read, 0 handled before, 1 kept unread; 1 marked")
        assert states() == {
            "ann@example.org": "bounced",
            "bob@example.org": "active",  # one soft bounce of the three it takes
            "cy@example.org": "active",
            "dee@example.org": "bounced",
        }
        assert "5.1.1" in (subs.get("ann@example.org").reason or "")  # type: ignore[union-attr]
        assert warnings() == ["imap:INBOX UID 3: not a delivery report; left in the mailbox"]
        flags = dovecot.flags(user)
        assert flags["<dsn1.ann@example.org@mx.example.net>"] >= {"\\Seen", "$DigestHandled"}
        assert flags["<dsn2.bob@example.org@mx.example.net>"] >= {"\\Seen", "$DigestHandled"}
        assert "\\Seen" not in flags["<junk@x>"] and "$DigestKept" in flags["<junk@x>"]
        assert status_json(config, capsys)["bounces"] == {"hard": 2, "soft": 1}

        # Idempotent: a second run fetches nothing and logs nothing.
        caplog.clear()
        capsys.readouterr()
        assert run(config, "bounces") == 0
        assert capsys.readouterr().out.startswith("0 reports read, 0 handled before, 0 kept unread")
        assert warnings() == []
        # A crash after recording a report but before flagging it: the next run fetches it
        # again, knows it by its hash and only flags it. Bob's one soft bounce stays one.
        conn = dovecot.connect(user)
        conn.select("INBOX")
        conn.uid("STORE", "1:3", "-FLAGS.SILENT", "(\\Seen $DigestHandled $DigestKept)")
        conn.logout()
        capsys.readouterr()
        assert run(config, "bounces") == 0
        assert capsys.readouterr().out.startswith("0 reports read, 3 handled before, 0 kept unread")
        assert warnings() == []  # the junk was logged once, on the run that first saw it
        assert status_json(config, capsys)["bounces"] == {"hard": 2, "soft": 1}
        assert states()["bob@example.org"] == "active"
        assert dovecot.flags(user)["<dsn2.bob@example.org@mx.example.net>"] >= {"$DigestHandled"}
    finally:
        store.close()


def test_starttls_and_an_untrusted_certificate(
    dovecot: Dovecot,
    imap_config: ImapConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user, config = imap_config(
        "tls", "starttls", email={"to": ["ann@example.org"], "bounces_source": "imap:INBOX"}
    )
    with Store.open(config.state.url) as store:
        Subscribers(store).sync_config(config.email.to, datetime.now(UTC))
    dovecot.append(user, dsn("ann@example.org", "5.2.1", BOUNCE))
    capsys.readouterr()
    assert run(config, "bounces") == 0
    assert capsys.readouterr().out.startswith("1 reports read, 0 handled before, 0 kept unread; 1 marked")

    # A server whose certificate is not trusted is refused, also over STARTTLS.
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.root / "missing.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(dovecot.root / "none"))
    assert run(config, "bounces") == 1
    assert "certificate verify failed" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_reads_the_bounce_mailbox_on_every_poll(
    dovecot: Dovecot, tmp_path: Path, inbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = dovecot.user("serve")
    path = write_toml(
        tmp_path / "digest.toml",
        {
            "digest": {"title": "Test Digest", "base_url": "https://example.org/digest/"},
            "sources": {"inbox": str(inbox), "settle_seconds": 0},
            "state": {"url": "sqlite:///var/digest.db"},
            "feed": {"output_dir": "var/site"},
            "email": {
                "outbox": "var/outbox",
                "from": "Paper Digest <digest@example.org>",
                "to": ["ann@example.org", "bob@example.org"],
                "bounces_source": "imap:INBOX",
                "soft_bounce_limit": 2,
            },
            "email.imap": imap_keys(dovecot, user),
            "schedule": {"poll": "1s", "digest": "on_ingest"},
        },
    )
    (tmp_path / ".env").write_text(f"DIGEST_IMAP_PASSWORD={PASSWORD}\n")
    env = {**os.environ, "SSL_CERT_FILE": str(dovecot.cert)}
    env.pop("SSL_CERT_DIR", None)
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "-c", str(path), "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    from digest.config import load_config

    config = load_config(path, {})

    def state(address: str) -> str | None:
        with Store.open(config.state.url) as store:
            sub = Subscribers(store).get(address)
            return sub.status if sub else None

    def wait(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()}"
            time.sleep(0.2)

    def handled() -> int:
        return sum("$DigestHandled" in f for f in dovecot.flags(user).values())

    try:
        drop(inbox, DUMP_000)
        wait("the first digest", lambda: state("ann@example.org") == "active")
        dovecot.append(user, dsn("ann@example.org", "5.1.1", BOUNCE, 1))
        wait("ann's hard bounce", lambda: state("ann@example.org") == "bounced")
        # Two soft bounces, in two polls: the second one crosses the limit.
        dovecot.append(user, dsn("bob@example.org", "4.2.2", BOUNCE, 2))
        wait("bob's first soft bounce handled", lambda: handled() == 2)
        assert state("bob@example.org") == "active"
        dovecot.append(user, dsn("bob@example.org", "4.2.2", BOUNCE, 3))
        wait("bob's second soft bounce", lambda: state("bob@example.org") == "bounced")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    text = log.read_text()
    assert "bounces: 1 reports read" in text and "bounces not read" not in text
    assert PASSWORD not in text


def test_a_wrong_password_is_one_line_without_it(
    imap_config: ImapConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Last in the module: after a failed login Dovecot delays the next one from the same
    address by seconds (its auth penalty)."""
    _, config = imap_config("wrong", email={"bounces_source": "imap:INBOX"})
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", "not-the-Pw-4xq")
    capsys.readouterr()
    assert run(config, "bounces") == 1
    err = capsys.readouterr().err
    assert "cannot log in to IMAP server 127.0.0.1" in err and "as 'wrong'" in err
    assert "DIGEST_IMAP_PASSWORD" in err and len(err.strip().splitlines()) == 1
    assert "not-the-Pw-4xq" not in err
