"""The CLI: commands, help, one-line errors, exit codes, JSON status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from digest.cli import build_parser, main
from tests.helpers import DUMP_000, DUMP_002, drop, write_toml


@pytest.fixture
def config_file(tmp_path: Path, inbox: Path) -> Path:
    return write_toml(
        tmp_path / "digest.toml",
        {
            "sources": {"inbox": str(inbox)},
            "email": {"to": ["a@example.org", "b@example.org"]},
        },
    )


def test_every_command_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        assert command.description or any(c.dest == name and c.help for c in sub._choices_actions), name  # type: ignore[attr-defined]


def test_run_then_status_json(config_file: Path, inbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drop(inbox, DUMP_000, DUMP_002)
    assert main(["-c", str(config_file), "run"]) == 0
    capsys.readouterr()
    assert main(["-c", str(config_file), "status", "--json"]) == 0
    out = capsys.readouterr().out
    status = json.loads(out)  # only JSON on stdout
    assert status["dumps"] == {"ingested": 2, "failed": 0}
    assert status["papers"] == 297
    assert status["digests"] == 1
    assert status["deliveries"]["sent"] == 2 and status["deliveries"]["pending"] == 0


def test_status_lists_failed_dumps(
    config_file: Path, inbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (inbox / "bad.txt").write_bytes(b"caf\xe9\n")
    assert main(["-c", str(config_file), "run"]) == 0
    capsys.readouterr()
    assert main(["-c", str(config_file), "status"]) == 0
    out = capsys.readouterr().out
    assert "failed dump bad.txt: bad.txt:1: not UTF-8 (byte 0xe9 at column 4)" in out


def test_config_error_is_one_line_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_toml(tmp_path / "bad.toml", {"feed": {"max_items": -1}})
    assert main(["-c", str(bad), "run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("digest: error: config key 'feed.max_items'")
    assert "Traceback" not in "\n".join(err)


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["no-such-command"])
    assert caught.value.code == 2


def test_check_config_masks_secret(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "hunter2")
    assert main(["-c", str(config_file), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and '"password": "********"' in out


def test_console_script_runs_as_a_process(config_file: Path, inbox: Path) -> None:
    drop(inbox, DUMP_000)
    proc = subprocess.run(
        [sys.executable, "-m", "digest.cli", "-c", str(config_file), "run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "81 new papers" in proc.stdout
