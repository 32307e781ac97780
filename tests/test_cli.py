"""The CLI: commands, help, one-line errors, exit codes, JSON status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from digest.cli import build_parser, main
from digest.config import Config
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


def _help(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """What ``digest ARGS --help`` prints, its line wrapping undone."""
    with pytest.raises(SystemExit) as done:
        main([*args, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_says_what_the_commands_do_now(capsys: pytest.CaptureFixture[str]) -> None:
    # publish writes the six feeds (README), every year page and the readers' own folders.
    top = _help(capsys)
    assert "every digest and year page, the index, the six feeds and each reader's own page and feeds" in top
    assert "three feeds" not in top
    # unsubscribe makes an unsubscribed subscriber: there is no suppression list any more.
    unsub = _help(capsys, "unsubscribe")
    assert "make ADDRESS an unsubscribed subscriber" in unsub and "suppression" not in unsub
    # set replaces a list it is given (and '' clears it); add has no list to replace.
    changing = _help(capsys, "subscribers", "set")
    assert "replaces the list, --keyword '' clears it" in changing
    assert "replaces the list, --exclude '' clears it" in changing
    assert "replaces" not in _help(capsys, "subscribers", "add")


@pytest.mark.parametrize(
    ("command", "code", "says"),
    [
        ("preview", 1, "nothing to preview"),
        ("publish", 0, "nothing to publish: no digest yet"),
    ],
)
def test_a_command_on_an_empty_state_says_there_is_nothing_to_do(
    config: Config, command: str, code: int, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(config.path), command]) == code
    captured = capsys.readouterr()
    assert says in (captured.err if code else captured.out)


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


@pytest.mark.parametrize("top", ["0", "-1", "x"])
def test_rank_top_below_one_is_a_usage_error(
    config_file: Path, top: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["-c", str(config_file), "rank", "--interests", "x", "--top", top])
    assert caught.value.code == 2
    assert "argument --top:" in capsys.readouterr().err


def test_check_config_masks_secret(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "hunter2")
    assert main(["-c", str(config_file), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and 'password = "********"' in out


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


ONE_PAPER = (
    "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"
    "byAK and the research community\n\nAug 8\n\n"
    "A Single Paper About Counting\n\nIts abstract is one sentence long.\n"
)


def _digest(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_status_into_a_closed_pipe_is_quiet(config_file: Path) -> None:
    """``digest status | head -1``: the reader is gone before status writes; no traceback, exit 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "-c", str(config_file), "status"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has even started: every write hits EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


def test_config_and_verbose_work_before_and_after_the_command(
    config_file: Path, inbox: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drop(inbox, DUMP_000)
    assert main(["run", "-c", str(config_file)]) == 0
    capsys.readouterr()
    assert main(["status", "--json", "--config", str(config_file), "-v"]) == 0
    assert json.loads(capsys.readouterr().out)["papers"] == 81
    assert main(["-v", "status", "--json", "-c", str(config_file)]) == 0
    assert json.loads(capsys.readouterr().out)["papers"] == 81
    # Given on both sides, the one after the command wins.
    missing = tmp_path / "missing.toml"
    assert main(["-c", str(missing), "status", "--json", "-c", str(config_file)]) == 0
    args = build_parser().parse_args(["-c", "a.toml", "-v", "status"])
    assert (args.config, args.verbose) == ("a.toml", True)
    args = build_parser().parse_args(["status"])
    assert (args.config, args.verbose) == (None, False)


def test_check_config_refuses_a_missing_inbox_like_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = write_toml(tmp_path / "digest.toml", {"sources": {"inbox": "nowhere"}})
    assert main(["-c", str(config_file), "check-config"]) == 1
    err = capsys.readouterr().err
    assert f"digest: warning: sources.inbox: {tmp_path / 'nowhere'}" in err
    assert "inbox folder does not exist; create it or fix sources.inbox" in err
    assert "config OK" not in err
    assert main(["-c", str(config_file), "run"]) == 1  # which run indeed refuses
    assert "inbox folder does not exist" in capsys.readouterr().err


def test_check_config_prints_the_effective_config_in_the_files_own_terms(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tomllib

    from digest.config import build_config, load_config

    assert main(["-c", str(config_file), "check-config"]) == 0
    captured = capsys.readouterr()
    *warnings, last = captured.err.strip().splitlines()
    assert last == "config OK"
    assert all("email.bounces_source is not set" in w for w in warnings)  # the one warning
    text = captured.out
    assert 'poll = "5m"' in text and 'retry_for = "3d"' in text and 'timeout = "30s"' in text
    assert 'unsubscribe = ["mailto:digest@localhost?subject=unsubscribe"]' in text
    assert "unsubscribe = []" not in text
    # What it prints is a config file that reads back to the same config.
    data = tomllib.loads(text)
    data["email"]["smtp"].pop("password")
    data["email"]["imap"].pop("password")
    data["subscribe"].pop("secret_key")
    again = build_config(data, config_file.parent, {}, config_file)
    assert again == load_config(config_file, {})


def test_check_config_json_prints_only_json(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(config_file), "check-config", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)  # nothing but JSON on stdout
    assert data["schedule"]["poll"] == "5m" and data["email"]["retry_for"] == "3d"
    assert data["email"]["unsubscribe"] == ["mailto:digest@localhost?subject=unsubscribe"]


def test_run_summary_counts_in_words_and_says_where_outputs_went(config_file: Path, inbox: Path) -> None:
    (inbox / "one.txt").write_text(ONE_PAPER)
    proc = _digest("-c", str(config_file), "run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("1 file seen, 1 ingested, 0 failed, 1 new paper; digest ")
    assert "(1 paper);" in lines[0]
    assert "1 new papers" not in proc.stdout and "(1 papers)" not in proc.stdout
    site = config_file.parent / "var" / "site"
    outbox = config_file.parent / "var" / "outbox"
    assert lines[1].startswith("site: ") and lines[1].endswith(f"files written into {site}")
    assert lines[2] == f"email: 2 .eml files written into {outbox}"
    assert len(list(outbox.glob("*.eml"))) == 2
    # Said once: not again as a log line on stderr.
    assert "1 new paper" not in proc.stderr


def test_run_without_mail_says_why(config_file: Path, inbox: Path) -> None:
    (inbox / "one.txt").write_text(ONE_PAPER)
    proc = _digest("-c", str(config_file), "run", "--no-send")
    assert proc.returncode == 0, proc.stderr
    assert "email: none sent (--no-send)" in proc.stdout.splitlines()
