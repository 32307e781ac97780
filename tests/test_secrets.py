"""The SMTP password (DIGEST_SMTP_PASSWORD) never shows: not in logs, ``-v`` debug output,
tracebacks, ``check-config``, ``status``, ``send-test``, the state or the outputs. Every
command runs as a real process against a real SMTP server on 127.0.0.1 that refuses the
login (so the password is sent and the failure is reported), then one that accepts it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.helpers import DUMP_000, drop, write_toml
from tests.smtpsink import Recorder, free_port

PASSWORD = "hunter2-Zq9!secret-7f3a"
USER = "digest-bot"


def forms(secret: str) -> list[str]:
    """The password and the encodings it travels in (AUTH PLAIN and AUTH LOGIN use base64)."""
    plain = base64.b64encode(f"\0{USER}\0{secret}".encode()).decode()
    return [secret, base64.b64encode(secret.encode()).decode(), plain, secret[: len(secret) // 2 + 4]]


def start(accept: bool) -> Controller:
    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = accept and isinstance(data, LoginPassword) and data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        Recorder(),
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    return controller


def digest(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DIGEST_SMTP_PASSWORD": PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def config_for(tmp_path: Path, inbox: Path, port: int) -> Path:
    return write_toml(
        tmp_path / "digest.toml",
        {
            "sources": {"inbox": str(inbox)},
            "email": {"transport": "smtp", "to": ["reader@example.org"]},
            "email.smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "username": USER,
                "timeout": "5s",
            },
        },
    )


def assert_no_secret(where: str, text: str) -> None:
    for form in forms(PASSWORD):
        assert form not in text, f"the password (as {form!r}) appears in {where}"


@pytest.mark.slow
def test_password_never_appears_anywhere(tmp_path: Path, inbox: Path) -> None:
    drop(inbox, DUMP_000)
    refusing = start(accept=False)
    try:
        config = config_for(tmp_path, inbox, refusing.port)
        outputs: dict[str, subprocess.CompletedProcess[str]] = {
            "-v run (login refused)": digest(config, "-v", "run"),
            "run (login refused)": digest(config, "run"),
            "-v send-test": digest(config, "-v", "send-test", "someone@example.org"),
            "status": digest(config, "status"),
            "-v status --json": digest(config, "-v", "status", "--json"),
            "check-config": digest(config, "check-config"),
            "-v check-config": digest(config, "-v", "check-config"),
        }
    finally:
        refusing.stop()
    # The refused login is reported, naming the user and where to fix it, not the password.
    failed_run = outputs["-v run (login refused)"]
    assert failed_run.returncode == 1
    assert "cannot log in to 127.0.0.1" in failed_run.stderr and "DIGEST_SMTP_PASSWORD" in failed_run.stderr
    send_test = outputs["-v send-test"]
    assert send_test.returncode == 1 and "Traceback" in send_test.stderr  # -v shows the exception chain
    assert "cannot log in" in outputs["status"].stdout  # the delivery error is shown...
    assert 'password = "********"' in outputs["check-config"].stdout  # masked, yet shown to be set

    server_down = digest(config, "-v", "run")  # ...and with nobody listening at all
    outputs["-v run (server down)"] = server_down

    accepting = start(accept=True)
    try:
        config = config_for(tmp_path, inbox, accepting.port)
        outputs["-v run (login accepted)"] = digest(config, "-v", "run")
        assert outputs["-v run (login accepted)"].returncode == 0, outputs["-v run (login accepted)"].stderr
        received = accepting.handler.accepted
    finally:
        accepting.stop()
    assert len(received) == 1
    assert_no_secret("the delivered message", received[0].message.as_string())

    for name, proc in outputs.items():
        assert_no_secret(f"stdout of {name}", proc.stdout)
        assert_no_secret(f"stderr of {name}", proc.stderr)
    for path in tmp_path.rglob("*"):  # the state database, the site, the outbox, the config
        if path.is_file():
            assert_no_secret(str(path), path.read_bytes().decode("utf-8", "replace"))


def test_password_in_the_config_file_is_refused_without_echoing_it(tmp_path: Path, inbox: Path) -> None:
    config = write_toml(
        tmp_path / "digest.toml",
        {"sources": {"inbox": str(inbox)}, "email.smtp": {"host": "127.0.0.1", "password": PASSWORD}},
    )
    for args in (["check-config"], ["-v", "run"], ["-v", "status"]):
        proc = digest(config, *args)
        assert proc.returncode == 1
        assert "email.smtp.password" in proc.stderr and "DIGEST_SMTP_PASSWORD" in proc.stderr
        assert_no_secret(f"output of {args}", proc.stdout + proc.stderr)


@pytest.mark.parametrize("form", forms(PASSWORD))
def test_the_check_can_fail(form: str) -> None:
    with pytest.raises(AssertionError):
        assert_no_secret("a leaky log", f"login with {form} failed")
