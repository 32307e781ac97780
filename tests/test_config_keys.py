"""The declarations are the one source of truth about config keys: the README's key tables
list exactly the declared keys with their declared defaults, every default reads back
through its own reader, and every duration key takes both spellings."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from digest.config import Config, build_config, declared, describe
from digest.config.declare import documented_default
from digest.errors import ConfigError
from tests.helpers import ROOT

KEYS = {name: (f, meta) for name, f, meta in declared(Config)}
SECTIONS = {f.name for f in fields(Config) if f.metadata}
ROW = re.compile(r"^\|\s*(`[^|]+`)\s*\|([^|]*)\|")


def _normal(text: str) -> str:
    """A default as written in a table cell, without the decoration around it."""
    text = re.sub(r"\s*\((?:off|none)\)", "", text.replace("`", "").strip())
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def readme_rows() -> dict[str, list[str]]:
    """Every row of the README's tables whose first cell names a config key (or two,
    ``a.b`` / ``c``), mapped to the defaults it gives."""
    rows: dict[str, list[str]] = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if not match:
            continue
        names = [n.strip().strip("`") for n in match[1].split(" / ")]
        if names[0].split(".")[0] not in SECTIONS:
            continue
        defaults = match[2].split(" / ") if len(names) > 1 else [match[2]]
        parent = names[0].rpartition(".")[0]
        for name, default in zip(names, defaults, strict=True):
            full = name if "." in name else f"{parent}.{name}"
            rows.setdefault(full, []).append(_normal(default))
    return rows


def test_readme_lists_every_declared_key_once_with_its_default() -> None:
    rows = readme_rows()
    keys = {name for name, (f, meta) in KEYS.items() if not meta.env}  # secrets: environment only
    missing = sorted(keys - set(rows))
    unknown = sorted(set(rows) - keys)
    twice = sorted(k for k, v in rows.items() if len(v) > 1)
    assert not missing, f"declared but not in the README's key tables: {missing}"
    assert not unknown, f"in the README but not declared: {unknown}"
    assert not twice, f"listed twice in the README: {twice}"
    wrong = {
        name: (rows[name][0], _normal(documented_default(f, meta)))
        for name, (f, meta) in KEYS.items()
        if name in keys and rows[name][0] != _normal(documented_default(f, meta))
    }
    assert not wrong, f"README default != declared default (README, declared): {wrong}"


def test_every_key_row_sits_in_a_table_with_a_header() -> None:
    """A row pasted after a paragraph, with no header and separator above it, renders as
    loose text: each key row must follow a ``|---|`` line in the same run of table lines,
    and a table's header must start after a blank line."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    orphans, in_table = [], False
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            in_table = False
        elif re.match(r"^\|\s*:?-{3,}", line):
            in_table = i >= 2 and lines[i - 1].startswith("|") and not lines[i - 2].strip()
        elif ROW.match(line) and not in_table:
            orphans.append(f"README.md:{i + 1}: {line[:60]}")
    assert not orphans, orphans


def test_every_key_has_help_and_every_default_reads_back_to_itself(tmp_path: Path) -> None:
    for name, (f, meta) in KEYS.items():
        assert meta.help.strip(), name
        if meta.env or meta.derive or meta.reader.relative:
            continue
        assert meta.reader(name, meta.reader.show(f.default), tmp_path) == f.default, name


DURATION_KEYS = [
    "sources.settle_seconds",
    "sources.fetch_timeout",
    "sources.fetch_backoff",
    "sources.fetch_interval",
    "sources.expect_grace",
    "email.retry_for",
    "email.smtp.timeout",
    "email.imap.timeout",
    "schedule.poll",
    "schedule.misfire_grace",
    "instance.lease",
    "feed.window",
    "subscribe.confirm_for",
    "subscribe.rate_window",
]


def _set(name: str, value: object) -> Config:
    *tables, last = name.split(".")
    data: dict[str, object] = {}
    table = data
    for part in tables:
        table = table.setdefault(part, {})  # type: ignore[assignment]
    table[last] = value
    return build_config(data, Path("/tmp"), {})


def _get(config: Config, name: str) -> object:
    obj: object = config
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name", DURATION_KEYS)
def test_every_duration_key_takes_seconds_and_unit_strings(name: str) -> None:
    """Issue 16: ``email.smtp.timeout = 30`` and ``schedule.poll = 300`` were refused while
    ``sources.fetch_timeout = 30`` was accepted and ``settle_seconds = "10s"`` refused."""
    assert _get(_set(name, 30), name) == 30.0
    assert _get(_set(name, 2.5), name) == 2.5
    assert _get(_set(name, "30s"), name) == 30.0
    assert _get(_set(name, "5m"), name) == 300.0
    assert _get(_set(name, "2h"), name) == 7200.0
    assert _get(_set(name, "3d"), name) == 3 * 86400.0
    assert describe(_set(name, 5400))[name.split(".")[0]] is not None
    for bad in ("5 minutes", -1, True, float("inf"), "10x"):
        with pytest.raises(
            ConfigError, match=rf"^config key '{re.escape(name)}': .* is not a duration; write"
        ):
            _set(name, bad)


def test_duration_keys_are_exactly_the_keys_read_by_the_duration_reader() -> None:
    durations = sorted(n for n, (f, meta) in KEYS.items() if meta.reader.show.__name__ == "format_duration")
    assert durations == sorted(DURATION_KEYS)


@pytest.mark.parametrize("name", ["sources.fetch_timeout", "email.smtp.timeout", "schedule.poll"])
def test_positive_durations_refuse_zero(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"'{re.escape(name)}': must be longer than 0 seconds"):
        _set(name, 0)
