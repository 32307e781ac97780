"""Reading a config file: TOML → the declared sections, and back for ``check-config``."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from digest.config.declare import KEY, SECTION, Key, declared, toml_name
from digest.config.readers import PATH
from digest.config.sections import DKIM_KEY_ENV, Config, DkimSection
from digest.errors import ConfigError

CONFIG_ENV = "DIGEST_CONFIG"
DEFAULT_FILE = "digest.toml"


def _unknown(key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key.rpartition(".")[2], known, n=1)
    fix = f"did you mean {close[0]!r}?" if close else f"known keys here: {', '.join(sorted(known))}"
    return ConfigError(key, "unknown key", f"remove it or fix its spelling ({fix})")


def _section(cls: type[Any], name: str, table: Mapping[str, Any], base: Path, env: Mapping[str, str]) -> Any:
    """Reads one table into ``cls``: every key through its declared reader, defaults for
    the rest (relative ones resolved against ``base``, derived ones computed last)."""
    declared_ = {toml_name(f): f for f in fields(cls) if KEY in f.metadata or SECTION in f.metadata}
    values: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{name}.{key}" if name else key
        f = declared_.get(key)
        if f is None:
            raise _unknown(full, list(declared_))
        if SECTION in f.metadata:
            if not isinstance(value, dict):
                raise ConfigError(full, "expected a table", f"write it as [{full}] with keys below it")
            values[f.name] = _section(f.metadata[SECTION], full, value, base, env)
            continue
        meta: Key = f.metadata[KEY]
        if meta.env:
            raise ConfigError(
                full,
                "secrets are not read from the config file",
                f"remove it and set {meta.env} in the environment or in .env",
            )
        values[f.name] = meta.reader(full, value, base)
    derived = []
    for key, f in declared_.items():
        if f.name in values:
            continue
        full = f"{name}.{key}" if name else key
        if SECTION in f.metadata:
            values[f.name] = _section(f.metadata[SECTION], full, {}, base, env)
            continue
        meta = f.metadata[KEY]
        if meta.env:
            values[f.name] = env.get(meta.env, f.default)
        elif meta.derive:
            derived.append(f)
        elif meta.reader.relative:
            values[f.name] = meta.reader(full, meta.reader.show(f.default), base)
    if derived:
        given = {f.name: f.default for f in declared_.values() if KEY in f.metadata} | values
        for f in derived:
            values[f.name] = f.metadata[KEY].derive(given)
    return cls(**values)


def build_config(
    data: Mapping[str, Any], base: Path, env: Mapping[str, str], path: Path | None = None
) -> Config:
    """Validates a parsed TOML document; ``base`` resolves relative paths."""
    config: Config = _section(Config, "", data, base, env)
    if config.feed.max_items > config.feed.max_items_hard:
        raise ConfigError(
            "feed.max_items",
            f"{config.feed.max_items} is above feed.max_items_hard ({config.feed.max_items_hard})",
            "lower feed.max_items or raise feed.max_items_hard",
        )
    return replace(config, path=path, email=replace(config.email, dkim=_dkim(config.email.dkim, base, env)))


def _dkim(dkim: DkimSection, base: Path, env: Mapping[str, str]) -> DkimSection:
    """``[email.dkim]`` is all or nothing; ``DIGEST_DKIM_KEY_FILE`` overrides its key_file."""
    if not (dkim.selector or dkim.domain or dkim.key_file):
        return dkim  # no signing, whatever the environment says
    if env.get(DKIM_KEY_ENV):
        dkim = replace(dkim, key_file=PATH(DKIM_KEY_ENV, env[DKIM_KEY_ENV], base))
    for name in ("selector", "domain", "key_file"):
        if not getattr(dkim, name):
            raise ConfigError(
                f"email.dkim.{name}",
                "is missing: DKIM signing needs selector, domain and key_file",
                "set all three (`digest dkim-keygen SELECTOR` makes a key) or remove [email.dkim]",
            )
    return dkim


def find_config_file(explicit: str | None, env: Mapping[str, str], cwd: Path) -> Path:
    """-c wins, then DIGEST_CONFIG, then ./digest.toml."""
    chosen = explicit or env.get(CONFIG_ENV) or DEFAULT_FILE
    path = (cwd / chosen).expanduser()
    if not path.is_file():
        how = "-c" if explicit else (CONFIG_ENV if env.get(CONFIG_ENV) else "the default")
        raise ConfigError(
            "config",
            f"no config file at {path} (from {how})",
            "pass -c FILE, set DIGEST_CONFIG, or copy config.example.toml to digest.toml",
        )
    return path.resolve()


def load_config(path: Path, environ: Mapping[str, str]) -> Config:
    """Reads ``path`` and the ``.env`` beside it; the real environment wins over ``.env``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            "config", f"{path} is not valid TOML ({err})", "fix the syntax at that line"
        ) from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError("config", f"cannot read {path} ({err})", "check the path and permissions") from err
    env = environment(path.parent, environ)
    return build_config(data, path.parent, env, path)


def environment(folder: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """``folder/.env`` merged under ``environ`` (the real environment wins)."""
    dotenv = folder / ".env"
    merged = {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if dotenv.is_file() else {}
    merged.update(environ)
    return merged


def describe(config: Config) -> dict[str, Any]:
    """The effective config as TOML-shaped data, in the form the file would write it
    (durations as ``"5m"``, paths as strings), secrets masked: for ``check-config``."""
    out: dict[str, Any] = {}
    for name, f, meta in declared(Config):
        *parents, last = name.split(".")
        table, obj = out, config
        for part in parents:
            table = table.setdefault(part, {})
            obj = getattr(obj, part)
        value = getattr(obj, f.name)
        table[last] = ("********" if value else "") if meta.env else meta.reader.show(value)
    return out


def as_toml(described: Mapping[str, Any]) -> str:
    """:func:`describe`'s output as a TOML document (``check-config``): tables in
    declaration order, each key as the file would write it, so it reads back."""
    import json

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        return repr(v)

    out: list[str] = []

    def table(name: str, data: Mapping[str, Any]) -> None:
        out.append(f"\n[{name}]")
        out.extend(f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict))
        for k, v in data.items():
            if isinstance(v, dict):
                table(f"{name}.{k}", v)

    for name, data in described.items():
        table(name, data)
    return "\n".join(out).lstrip("\n") + "\n"
