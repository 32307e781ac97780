"""SMTP delivery against a real SMTP server (aiosmtpd) on 127.0.0.1, in the test process.

Invariants 3 and 4: nothing lost, nothing sent twice; temporary failures stay pending,
permanent ones fail only their recipient.
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from digest.cli import main
from digest.config import Config
from digest.pipeline import RunOptions, run_once
from digest.render.view import day_label
from digest.store import Store
from digest.transports import make_transport
from tests.helpers import DUMP_000, DUMP_002, NOW, MakeConfig, drop
from tests.smtpsink import Recorder, SinkConfig, SmtpConfig, StartServer, free_port, smtp_sections

READERS = ["ann@example.org", "bob@example.org", "cy@example.org"]


def run(config: Config) -> int:
    assert config.path is not None
    return main(["-c", str(config.path), "run"])


def text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parts(msg: EmailMessage) -> list[EmailMessage]:
    return list(msg.iter_parts())  # type: ignore[arg-type]


def test_three_recipients_get_one_message_each_over_one_connection(
    sink_config: SinkConfig, store: Store
) -> None:
    handler = Recorder()
    config = sink_config(handler)
    assert run(config) == 0
    rows = store.deliveries()
    assert [r.status for r in rows] == ["sent"] * 3
    assert sorted(r.rcpt_tos for r in handler.accepted) == [(a,) for a in READERS]
    assert len({r.peer for r in handler.accepted}) == 1  # one connection for the run
    [digest] = store.digests()
    subject = f"81 new papers · {day_label(digest.created, ZoneInfo('UTC'))}"
    titles = [p.title for p in store.digest_papers(digest)]
    assert len(titles) == 81
    for row in rows:
        [got] = handler.to(row.recipient)
        msg = got.message
        assert got.mail_from == "digest@example.org"
        assert msg["To"] == row.recipient  # recipients never see each other
        assert msg["From"] == "Paper Digest <digest@example.org>"
        assert msg["Subject"] == subject
        assert msg["Message-ID"] == row.message_id
        assert msg["Date"] == format_datetime(digest.created)  # the digest's time
        assert msg["List-Id"] == "Test Digest <test-digest.example.org>"
        # Each recipient's mailto: carries their own signed token (issue 14).
        assert msg["List-Unsubscribe"].startswith("<mailto:digest@example.org?subject=unsubscribe%20")
        assert msg.get_content_type() == "multipart/alternative"
        text, html = parts(msg)
        assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
        flat_text = " ".join(text.get_content().split())
        flat_html = " ".join(html.get_content().split())
        for title in titles:
            assert " ".join(title.split()) in flat_text, title
            assert " ".join(title.replace("&", "&amp;").split()) in flat_html.replace("&#39;", "'"), title
    assert len({handler.to(r.recipient)[0].message["List-Unsubscribe"] for r in rows}) == 3
    # A re-run with nothing new sends nothing.
    before = len(handler.offered)
    assert run(config) == 0
    assert len(handler.offered) == before


@dataclass(frozen=True)
class Tls:
    cert: Path  # what a client that trusts the server names in SSL_CERT_FILE
    context: ssl.SSLContext  # the server's, holding the certificate and its key


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    """A self-signed certificate for 127.0.0.1 and localhost, and a server context with it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return Tls(cert, context)


def test_login_over_starttls_with_a_self_signed_certificate(
    sink_config: SinkConfig, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls: Tls
) -> None:
    handler = Recorder()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (text(data.login), text(data.password)) == (
            "digest",
            "s3cret pw",
        )
        if ok:
            handler.logins.append(text(data.login))
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd replies 535

    server = {
        "tls_context": tls.context,
        "require_starttls": True,
        "authenticator": authenticator,
        "auth_require_tls": True,
    }
    config = sink_config(handler, server=server, security="starttls", username="digest")
    # The client verifies the certificate for real: trust only the test's own CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.cert))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    # The CLI reads the password from the environment, then from .env beside the config.
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    assert run(config) == 1
    rows = store.deliveries()
    assert {r.status for r in rows} == {"pending"}  # a bad password is a setting to fix, not a lost digest
    assert "cannot log in to 127.0.0.1" in (rows[0].last_error or "")
    assert "DIGEST_SMTP_PASSWORD" in (rows[0].last_error or "")
    assert handler.accepted == []

    monkeypatch.delenv("DIGEST_SMTP_PASSWORD")
    (tmp_path / ".env").write_text('DIGEST_SMTP_PASSWORD="s3cret pw"\n', encoding="utf-8")
    assert run(config) == 0
    assert handler.logins == ["digest"]  # one login: one connection for the whole run
    assert sorted(r.rcpt_tos for r in handler.accepted) == [(a,) for a in READERS]
    assert {r.status for r in store.deliveries()} == {"sent"}


def test_implicit_tls_and_an_untrusted_certificate(
    sink_config: SinkConfig, store: Store, monkeypatch: pytest.MonkeyPatch, tls: Tls
) -> None:
    handler = Recorder()
    config = sink_config(handler, server={"ssl_context": tls.context}, security="ssl")
    # Not trusted yet: the certificate is verified, so nothing goes out and nothing is lost.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.cert) + ".missing")
    monkeypatch.setenv("SSL_CERT_DIR", str(tls.cert.parent / "none"))
    assert run(config) == 1
    rows = store.deliveries()
    assert {r.status for r in rows} == {"pending"} and "CERTIFICATE_VERIFY_FAILED" in (
        rows[0].last_error or ""
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.cert))
    assert run(config) == 0
    assert sorted(r.rcpt_tos for r in handler.accepted) == [(a,) for a in READERS]


def test_a_451_leaves_everything_pending_and_the_next_run_delivers_exactly_once(
    sink_config: SinkConfig, store: Store
) -> None:
    handler = Recorder(data_replies=["451 4.3.0 try again later"] * 3)
    config = sink_config(handler)
    assert run(config) == 1
    first = store.deliveries()
    assert [(r.status, r.attempts) for r in first] == [("pending", 1)] * 3
    assert all("451 4.3.0 try again later" in (r.last_error or "") for r in first)
    assert handler.accepted == []
    assert run(config) == 0
    assert {r.status for r in store.deliveries()} == {"sent"}
    for row in first:
        [got] = handler.to(row.recipient)  # exactly once
        assert got.message["Message-ID"] == row.message_id
    # Both attempts carried the same Message-ID, in fact the same bytes, per recipient.
    assert sorted(handler.offered) == sorted([r.message_id for r in first] * 2)
    assert len(set(handler.offered_bytes)) == 3


def test_a_550_for_one_recipient_fails_only_that_one(
    sink_config: SinkConfig, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = Recorder(rcpt_replies={"bob@example.org": "550 5.1.1 <bob@example.org>: no such user"})
    config = sink_config(handler)
    assert run(config) == 1
    status = {r.recipient: r.status for r in store.deliveries()}
    assert status == {"ann@example.org": "sent", "bob@example.org": "failed", "cy@example.org": "sent"}
    assert len(handler.to("ann@example.org")) == len(handler.to("cy@example.org")) == 1
    capsys.readouterr()
    assert main(["-c", str(config.path), "status"]) == 0
    out = capsys.readouterr().out
    assert (
        "failed delivery of digest 1 to bob@example.org: "
        "server refused the recipient: 550 5.1.1 <bob@example.org>: no such user"
    ) in out
    # A failed row is not retried: the next run sends nothing and succeeds.
    assert run(config) == 0
    assert len(handler.accepted) == 2


def test_a_run_whose_every_delivery_was_refused_says_so(
    sink_config: SinkConfig, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not "nothing to deliver": three messages were due and refused for good."""
    handler = Recorder(rcpt_replies=dict.fromkeys(READERS, "554 5.7.1 rejected by policy"))
    assert run(sink_config(handler)) == 1
    out = capsys.readouterr().out
    assert "email: none sent: 3 failed for good" in out.splitlines()
    assert "nothing to deliver" not in out
    assert {r.status for r in store.deliveries()} == {"failed"}


def test_server_down_loses_nothing_and_a_later_run_delivers(
    start_server: StartServer,
    smtp_config: SmtpConfig,
    inbox: Path,
    store: Store,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()  # nobody listens here yet
    config = smtp_config(port)
    drop(inbox, DUMP_000)
    assert run(config) == 1
    out, err = capsys.readouterr()
    assert "connection refused" in err and "retried on the next run" in err
    # The failed attempts are what happened, not "nothing to deliver".
    assert "email: none sent: 3 pending, will be retried on the next run" in out.splitlines()
    assert "nothing to deliver" not in out
    rows = store.deliveries()
    assert [(r.status, r.attempts) for r in rows] == [("pending", 1)] * 3
    drop(inbox, DUMP_002)  # a second digest waits behind the first
    assert run(config) == 1
    assert [r.status for r in store.deliveries()] == ["pending"] * 6
    handler = Recorder()
    start_server(handler, port=port)
    assert run(config) == 0
    assert [r.status for r in store.deliveries()] == ["sent"] * 6
    for reader in READERS:
        got = handler.to(reader)
        assert [g.message["Subject"].split(" · ")[0] for g in got] == ["81 new papers", "216 new papers"]
    assert len({r.peer for r in handler.accepted}) == 1


def test_a_dropped_connection_is_reopened_once(sink_config: SinkConfig, store: Store) -> None:
    # 421 makes smtplib close the connection; the next recipient must reconnect.
    handler = Recorder(data_replies=["421 4.4.2 closing connection"])
    config = sink_config(handler)
    report = run_once(config, store, make_transport(config), NOW)
    assert (report.delivery.sent, report.delivery.pending, report.delivery.failed) == (2, 1, 0)
    assert len({r.peer for r in handler.accepted}) == 1  # both after the reconnect
    report = run_once(config, store, make_transport(config), NOW)
    assert report.delivery.sent == 1 and report.ok
    assert sorted(r.rcpt_tos for r in handler.accepted) == sorted((a,) for a in READERS)


def test_service_backoff_and_giving_up_after_retry_for(
    make_config: MakeConfig, inbox: Path, store: Store
) -> None:
    config = make_config(**smtp_sections(free_port(), ["ann@example.org"], email={"retry_for": "1d"}))
    drop(inbox, DUMP_000)
    run_once(config, store, make_transport(config), NOW)
    [row] = store.deliveries()
    assert (row.status, row.attempts) == ("pending", 1)
    # The service skips a row still in its backoff (5 minutes after one failure)...
    service = RunOptions(respect_backoff=True)
    report = run_once(config, store, make_transport(config), NOW + timedelta(minutes=4), service)
    assert report.ok and store.deliveries()[0].attempts == 1
    # ...and tries again once it ran out; `digest run` (no backoff) always tries.
    run_once(config, store, make_transport(config), NOW + timedelta(minutes=6), service)
    assert store.deliveries()[0].attempts == 2
    run_once(config, store, make_transport(config), NOW + timedelta(minutes=7))
    assert store.deliveries()[0].attempts == 3
    # Still failing a day after the digest was made: failed, with the reason.
    report = run_once(config, store, make_transport(config), NOW + timedelta(days=1, minutes=1))
    [row] = store.deliveries()
    assert row.status == "failed" and report.delivery.failed == 1
    assert (row.last_error or "").startswith(
        "gave up after 4 attempts over 1 day, 0:01:00: cannot connect to"
    )


def test_send_test_goes_through_the_smtp_server(
    sink_config: SinkConfig, smtp_config: SmtpConfig, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = Recorder()
    config = sink_config(handler)
    assert main(["-c", str(config.path), "send-test", "me@example.org"]) == 0
    assert f"via SMTP 127.0.0.1:{config.email.smtp.port} (none)" in capsys.readouterr().out
    [got] = handler.accepted
    assert got.rcpt_tos == ("me@example.org",) and got.message["Subject"].startswith("[test] ")
    assert store.deliveries() == []
    down = smtp_config(free_port())
    assert main(["-c", str(down.path), "send-test", "me@example.org"]) == 1
    assert "connection refused" in capsys.readouterr().err
