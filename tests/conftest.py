"""Shared fixtures: real files, a real SQLite state, a fixed clock. Helpers a test
imports (dumps, NOW, write_toml, drop) are in ``tests/helpers.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.config import Config, load_config
from digest.store import Store
from tests.helpers import MakeConfig, write_toml

# The SMTP sink's fixture (start_server), Dovecot's (dovecot) and the feeds' HTTP server
# (http_site) for every test module.
pytest_plugins = ["tests.smtpsink", "tests.subscribe_site", "tests.dovecot", "tests.newsboat"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests (real services on a schedule, crash runs, timing and scale checks)
    share one xdist worker, so at most one of them runs at a time: their waits and time
    limits allow for one other test beside them, not for several of their kind. The rest
    spreads over every worker (``-n auto --dist loadgroup`` in pyproject.toml)."""
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.xdist_group("slow"))


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """An empty inbox folder; copy dumps into it with :func:`tests.helpers.drop`."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


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
def store(config: Config) -> Iterator[Store]:
    s = Store.open(config.state.url)
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new state's URL: a SQLite file, then a fresh PostgreSQL database (``pg_url``,
    which the module using this imports from tests/test_store_postgres.py)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'digest.db'}"
    else:
        yield request.getfixturevalue("pg_url")
