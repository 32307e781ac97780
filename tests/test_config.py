"""Config: defaults, relative paths, .env and environment, errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from digest.config import Config, describe, find_config_file, load_config, parse_duration
from digest.errors import ConfigError
from tests.helpers import ROOT, write_toml


def load(tmp_path: Path, data: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    return load_config(write_toml(tmp_path / "digest.toml", data), env or {})


def test_example_config_loads_with_paths_relative_to_it() -> None:
    config = load_config(ROOT / "config.example.toml", {})
    assert config.sources.inbox == ROOT / "examples" / "dumps"
    assert config.state.url == f"sqlite:///{ROOT / 'var' / 'digest.db'}"
    assert config.feed.output_dir == ROOT / "var" / "site"
    assert config.email.outbox == ROOT / "var" / "outbox"
    assert config.email.recipients == ("reader@example.org",)
    assert config.digest.base_url == "https://example.org/digest/"


def test_defaults_fill_missing_keys(tmp_path: Path) -> None:
    config = load(tmp_path, {})
    assert config.sources.pattern == "*.txt"
    assert config.feed.max_items == 100
    assert config.sources.inbox == tmp_path / "inbox"
    assert config.lock_path == tmp_path / "var" / "digest.db.lock"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"feed": {"max_itmes": 3}},
            "config key 'feed.max_itmes': unknown key; remove it or fix its spelling (did you mean 'max_items'?)",
        ),
        ({"feeds": {}}, "config key 'feeds': unknown key"),
        ({"feed": {"max_items": 0}}, "config key 'feed.max_items': expected a whole number of at least 1"),
        (
            {"digest": {"timezone": "Mars/Base"}},
            "config key 'digest.timezone': unknown time zone 'Mars/Base'",
        ),
        (
            {"digest": {"base_url": "example.org"}},
            "config key 'digest.base_url': 'example.org' is not an http(s) URL",
        ),
        (
            {"email": {"to": ["not-an-address"]}},
            "config key 'email.to[0]': 'not-an-address' is not an email address",
        ),
        ({"email": {"enabled": "yes"}}, "config key 'email.enabled': expected true or false"),
        (
            {"email.smtp": {"password": "hunter2"}},
            "config key 'email.smtp.password': secrets are not read from the config file; remove it and set DIGEST_SMTP_PASSWORD",
        ),
        ({"email": {"subject": "{nope}"}}, "config key 'email.subject': bad placeholder"),
        ({"state": {"url": "nonsense"}}, "config key 'state.url': 'nonsense' is not a database URL"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(tmp_path: Path, data: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, data)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "digest.toml"
    path.write_text("[digest\n")
    with pytest.raises(ConfigError, match=r"digest.toml is not valid TOML"):
        load_config(path, {})


def test_dotenv_beside_config_and_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DIGEST_SMTP_PASSWORD=from-dotenv\n")
    assert load(tmp_path, {}).email.smtp.password == "from-dotenv"
    assert load(tmp_path, {}, {"DIGEST_SMTP_PASSWORD": "from-env"}).email.smtp.password == "from-env"


def test_describe_masks_the_password(tmp_path: Path) -> None:
    config = load(tmp_path, {}, {"DIGEST_SMTP_PASSWORD": "hunter2"})
    described = describe(config)
    assert described["email"]["smtp"]["password"] == "********"
    assert "hunter2" not in repr(described) and "hunter2" not in repr(config)


def test_config_file_lookup(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("")
    (tmp_path / "other.toml").write_text("")
    assert find_config_file(None, {}, tmp_path) == tmp_path / "digest.toml"
    assert find_config_file(None, {"DIGEST_CONFIG": "other.toml"}, tmp_path) == tmp_path / "other.toml"
    assert find_config_file("other.toml", {"DIGEST_CONFIG": "x"}, tmp_path) == tmp_path / "other.toml"
    with pytest.raises(ConfigError, match=r"copy config\.example\.toml to digest\.toml"):
        find_config_file("missing.toml", {}, tmp_path)


def test_durations() -> None:
    assert parse_duration("k", "30s") == 30
    assert parse_duration("k", "5m") == 300
    assert parse_duration("k", "1h30m") == 5400
    assert parse_duration("k", "1d") == 86400
    with pytest.raises(ConfigError, match="'k': '5 minutes' is not a duration"):
        parse_duration("k", "5 minutes")
