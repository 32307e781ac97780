"""Shared fixtures: real files, a real SQLite state, a fixed clock."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.config import Config, load_config
from digest.store import Store

# The SMTP sink's fixture (start_server) for every test module.
pytest_plugins = ["tests.smtpsink"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "dumps"
DUMP_000 = EXAMPLES / "000_1837666521755300.txt"
DUMP_002 = EXAMPLES / "002_2330d60cc52b9a08.txt"
NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def write_toml(path: Path, data: dict[str, dict[str, Any]]) -> Path:
    """Writes nested dicts as TOML tables ({"email.smtp": {...}} for sub-tables)."""
    lines: list[str] = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """An empty inbox folder; copy dumps into it with :func:`drop`."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def drop(inbox: Path, *dumps: Path) -> None:
    for dump in dumps:
        shutil.copyfile(dump, inbox / dump.name)


MakeConfig = Callable[..., Config]


@pytest.fixture
def make_config(tmp_path: Path, inbox: Path) -> MakeConfig:
    """Writes a digest.toml into tmp_path (sections merged over the defaults) and loads it."""

    def make(env: dict[str, str] | None = None, **sections: dict[str, Any]) -> Config:
        data: dict[str, dict[str, Any]] = {
            "digest": {"title": "Test Digest", "base_url": "https://example.org/digest/"},
            "sources": {"inbox": str(inbox)},
            "state": {"url": "sqlite:///var/digest.db"},
            "feed": {"output_dir": "var/site"},
            "email": {
                "outbox": "var/outbox",
                "from": "Paper Digest <digest@example.org>",
                "to": ["reader@example.org"],
            },
        }
        for name, table in sections.items():
            name = name.replace("__", ".")
            data.setdefault(name, {}).update(table)
        path = write_toml(tmp_path / "digest.toml", data)
        return load_config(path, env or {})

    return make


@pytest.fixture
def config(make_config: MakeConfig) -> Config:
    return make_config()


@pytest.fixture
def store(config: Config) -> Store:
    s = Store.open(config.state.url)
    yield s  # type: ignore[misc]
    s.close()
