"""Configuration: a TOML file plus the environment (and a ``.env`` beside the file).

``load_config`` returns a frozen :class:`Config`; every problem is a ConfigError that
names the key and the fix. Relative paths resolve against the config file's folder.
Secrets (the SMTP password) come only from the environment: ``DIGEST_SMTP_PASSWORD``.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from digest.errors import ConfigError

CONFIG_ENV = "DIGEST_CONFIG"
PASSWORD_ENV = "DIGEST_SMTP_PASSWORD"
DEFAULT_FILE = "digest.toml"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ON_INGEST = "on_ingest"


@dataclass(frozen=True)
class DigestSection:
    title: str = "Daily Papers Digest"
    base_url: str = "http://localhost:8080/"
    timezone: str = "UTC"
    description: str = "New machine-learning papers from the Daily Papers listings."
    language: str = "en"


@dataclass(frozen=True)
class SourcesSection:
    inbox: Path = Path("inbox")
    pattern: str = "*.txt"
    settle_seconds: float = 10.0
    max_bytes: int = 256 * 1024 * 1024
    urls: tuple[str, ...] = ()  # dumps fetched over HTTP into the inbox before each run
    follow_redirects: bool = False  # redirects to another host (same-host ones always)
    fetch_timeout: float = 30.0  # seconds to connect, and between two reads
    fetch_max_bytes: int = 32 * 1024 * 1024  # a larger body is abandoned, nothing written
    fetch_retries: int = 2  # extra attempts after a 5xx, a timeout or a connection error
    fetch_backoff: float = 2.0  # seconds before the first retry; doubles for each further one
    fetch_interval: float = 600.0  # a run fetches a URL at most this often (digest fetch: always)


@dataclass(frozen=True)
class StateSection:
    url: str = "sqlite:///var/digest.db"


@dataclass(frozen=True)
class FeedSection:
    output_dir: Path = Path("var/site")
    max_items: int = 100
    ttl: int = 60  # minutes a reader may cache the feed


@dataclass(frozen=True)
class SmtpSection:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0


@dataclass(frozen=True)
class EmailSection:
    enabled: bool = True
    transport: str = "file"
    outbox: Path = Path("var/outbox")
    from_: str = "Paper Digest <digest@localhost>"
    to: tuple[str, ...] = ()
    subject: str = "{count} new paper{s} · {date}"
    smtp: SmtpSection = field(default_factory=SmtpSection)
    abstract_chars: int = 400  # abstracts longer than this are cut at a word boundary
    max_papers: int = 50  # papers shown in full; the rest are listed by title
    unsubscribe: tuple[str, ...] = ()  # mailto: and/or https: URLs; default mailto: the From address
    retry_for: float = 3 * 86400.0  # seconds a delivery is retried before it is marked failed

    @property
    def recipients(self) -> tuple[str, ...]:
        """Who gets the digest: nobody when email is disabled."""
        return self.to if self.enabled else ()

    @property
    def domain(self) -> str:
        """The From address's domain: Message-IDs are minted under it."""
        return parseaddr(self.from_)[1].rpartition("@")[2] or "localhost"


@dataclass(frozen=True)
class ScheduleSection:
    poll: float = 300.0  # seconds between polls of the inbox
    digest: str = "0 7 * * *"  # a crontab line in digest.timezone, or "on_ingest"
    misfire_grace: float = 6 * 3600.0  # a digest missed by less than this still runs

    @property
    def on_ingest(self) -> bool:
        return self.digest == ON_INGEST


@dataclass(frozen=True)
class HttpSection:
    listen: str = ""  # "host:port"; empty: no built-in web server

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, None when the listener is off."""
        return split_listen(self.listen) if self.listen else None


@dataclass(frozen=True)
class SubscribeSection:
    """Sign-up on the built-in server (digest/web_subscribe.py)."""

    confirm_for: float = 3 * 86400.0  # seconds a confirmation link stays valid
    rate_window: float = 3600.0  # the window the two limits below count in
    max_per_address: int = 3  # confirmation emails to one address per window
    max_per_client: int = 20  # sign-up requests from one client (IP address) per window
    secret_key: str = field(default="", repr=False)  # DIGEST_SECRET_KEY; empty: kept in the state


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``path`` is the file it came from (None: defaults)."""

    digest: DigestSection = field(default_factory=DigestSection)
    sources: SourcesSection = field(default_factory=SourcesSection)
    state: StateSection = field(default_factory=StateSection)
    feed: FeedSection = field(default_factory=FeedSection)
    email: EmailSection = field(default_factory=EmailSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    http: HttpSection = field(default_factory=HttpSection)
    subscribe: SubscribeSection = field(default_factory=SubscribeSection)
    path: Path | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.digest.timezone)

    @property
    def lock_path(self) -> Path:
        """The OS lock file that keeps two runs from building or sending at once."""
        db = sqlite_path(self.state.url)
        if db is not None:
            return db.with_name(db.name + ".lock")
        base = self.path.parent if self.path else Path.cwd()
        return base / "paper-digest.lock"


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, None for other URLs or in-memory."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or url.endswith(":memory:"):
        return None
    return Path(url[len(prefix) :])


def parse_duration(key: str, value: object) -> float:
    """``"30s"``, ``"5m"``, ``"2h"``, ``"1d"`` or a sum like ``"1h30m"`` → seconds."""
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = _DURATION.findall(text)
        if parts and "".join(a + b for a, b in parts) == text:
            return sum(float(n) * _UNITS[u] for n, u in parts)
    raise ConfigError(key, f"{value!r} is not a duration", 'write it like "30s", "5m", "2h" or "1d"')


# --- reading values ---------------------------------------------------------------------

Reader = Callable[[str, Any, Path], Any]


def _str(key: str, value: Any, base: Path) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {value!r}", f'write it as {key.split(".")[-1]} = "…"')
    return value


def _nonempty(key: str, value: Any, base: Path) -> str:
    text = _str(key, value, base)
    if not text.strip():
        raise ConfigError(key, "must not be empty", "give it a value or remove the key for the default")
    return text


def _bool(key: str, value: Any, base: Path) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, got {value!r}", "write true or false without quotes")
    return value


def _int_at_least(minimum: int) -> Reader:
    def read(key: str, value: Any, base: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(key, f"expected a whole number of at least {minimum}, got {value!r}")
        return value

    return read


def _number(key: str, value: Any, base: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(key, f"expected a number of seconds (0 or more), got {value!r}")
    return float(value)


def _duration(key: str, value: Any, base: Path) -> float:
    return parse_duration(key, value)


def _path(key: str, value: Any, base: Path) -> Path:
    return (base / Path(_nonempty(key, value, base)).expanduser()).resolve()


def _choice(*options: str) -> Reader:
    def read(key: str, value: Any, base: Path) -> str:
        if value not in options:
            raise ConfigError(key, f"{value!r} is not one of {', '.join(map(repr, options))}")
        return str(value)

    return read


def _base_url(key: str, value: Any, base: Path) -> str:
    url = _nonempty(key, value, base)
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(
            key, f"{url!r} is not an http(s) URL", 'write it like "https://example.org/digest/"'
        )
    return url if url.endswith("/") else url + "/"


def _timezone(key: str, value: Any, base: Path) -> str:
    name = _nonempty(key, value, base)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(
            key, f"unknown time zone {name!r}", 'use an IANA name like "Europe/Berlin"'
        ) from err
    return name


def _address(key: str, value: Any, base: Path) -> str:
    text = _nonempty(key, value, base)
    if "\r" in text or "\n" in text or "@" not in parseaddr(text)[1]:
        raise ConfigError(
            key,
            f"{text!r} is not an email address",
            'write "Name <user@example.org>" or "user@example.org"',
        )
    return text


def _addresses(key: str, value: Any, base: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(key, f"expected a list of addresses, got {value!r}", 'write to = ["a@example.org"]')
    out: dict[str, None] = {}
    for i, item in enumerate(value):
        out.setdefault(parseaddr(_address(f"{key}[{i}]", item, base))[1])
    return tuple(out)


def _state_url(key: str, value: Any, base: Path) -> str:
    url = _nonempty(key, value, base)
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        rest = url[len("sqlite:///") :]
        if not rest:
            raise ConfigError(key, "names no database file", 'write "sqlite:///var/digest.db"')
        # SQLAlchemy's form: sqlite:///relative.db, sqlite:////absolute.db.
        return "sqlite:///" + str((base / rest).resolve())
    if not re.match(r"^[a-z][a-z0-9+]*://", url):
        raise ConfigError(
            key,
            f"{url!r} is not a database URL",
            'write "sqlite:///var/digest.db" or a postgresql:// URL',
        )
    return url


def _pattern(key: str, value: Any, base: Path) -> str:
    text = _nonempty(key, value, base)
    if "/" in text:
        raise ConfigError(
            key, "a file name pattern must not contain '/'", 'write a name pattern like "*.txt"'
        )
    return text


def _seconds(key: str, value: Any, base: Path) -> float:
    # A bare number of seconds, or a duration string like "30s".
    if isinstance(value, str):
        return parse_duration(key, value)
    return _number(key, value, base)


def _timeout(key: str, value: Any, base: Path) -> float:
    seconds = _seconds(key, value, base)
    if seconds <= 0:
        raise ConfigError(key, "must be more than 0 seconds", 'write it like "30s"')
    return seconds


def _urls(key: str, value: Any, base: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(
            key, f"expected a list of URLs, got {value!r}", 'write urls = ["https://…/dump.txt"]'
        )
    out: dict[str, None] = {}
    for i, item in enumerate(value):
        url = _nonempty(f"{key}[{i}]", item, base).strip()
        if not re.match(r"^https?://[^/\s?#]+(?:[/?#]\S*)?$", url):
            raise ConfigError(
                f"{key}[{i}]",
                f"{url!r} is not an http(s) URL",
                'write it like "https://example.org/papers.txt"',
            )
        out.setdefault(url)
    return tuple(out)


def _subject(key: str, value: Any, base: Path) -> str:
    text = _nonempty(key, value, base)
    try:
        text.format(count=1, date="", title="", s="")
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(
            key, f"bad placeholder in {text!r} ({err})", "use {count}, {s} (plural s), {date} and {title}"
        ) from err
    return text


def _unsubscribe(key: str, value: Any, base: Path) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(
            key,
            f"expected a URL or a list of URLs, got {value!r}",
            'write unsubscribe = ["mailto:unsubscribe@example.org", "https://example.org/unsubscribe"]',
        )
    out: list[str] = []
    for i, item in enumerate(items):
        url = _nonempty(f"{key}[{i}]", item, base).strip()
        ok = re.match(r"^mailto:[^@\s<>]+@[^@\s<>]+$", url) or re.match(r"^https://[^/\s<>]+\S*$", url)
        if not ok or any(c in url for c in "\r\n<>,"):
            raise ConfigError(
                f"{key}[{i}]",
                f"{url!r} is neither a mailto: nor an https: URL",
                'write "mailto:unsubscribe@example.org" or "https://example.org/unsubscribe"',
            )
        out.append(url)
    return tuple(out)


def split_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` or ``"[::1]:8080"`` → (host, port); ValueError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(text)
    return host, int(port)


def _listen(key: str, value: Any, base: Path) -> str:
    text = _str(key, value, base).strip()
    if text:
        try:
            split_listen(text)
        except ValueError:
            raise ConfigError(
                key,
                f"{text!r} is not host:port",
                'write it like "127.0.0.1:8080" (or "" to turn the web server off)',
            ) from None
    return text


def _positive_duration(key: str, value: Any, base: Path) -> float:
    seconds = parse_duration(key, value)
    if seconds <= 0:
        raise ConfigError(key, "must be longer than 0 seconds", 'write it like "30s" or "5m"')
    return seconds


_WEEKDAY_FIELD = re.compile(r"^(\*|[a-z]{3}(-[a-z]{3})?)(,[a-z]{3}(-[a-z]{3})?)*$")


def _crontab(key: str, value: Any, base: Path) -> str:
    """A five-field crontab line for APScheduler 3, or ``"on_ingest"``.

    APScheduler 3 counts weekdays from Monday = 0 while cron counts Sunday = 0, so a
    numeric weekday would silently fire on the wrong day: only names are accepted.
    """
    text = " ".join(_nonempty(key, value, base).split())
    if text == ON_INGEST:
        return text
    fields_ = text.split(" ")
    if len(fields_) != 5:
        raise ConfigError(
            key,
            f"{text!r} has {len(fields_)} fields, a crontab line has 5 (minute hour day month weekday)",
            f'write it like "0 7 * * *", or "{ON_INGEST}" to send right after new papers arrive',
        )
    weekday = fields_[4].lower()
    if not _WEEKDAY_FIELD.match(weekday):
        raise ConfigError(
            key,
            f"weekday field {fields_[4]!r} is ambiguous or invalid (cron counts Sunday as 0, "
            "the scheduler counts Monday as 0)",
            'name the days instead, like "mon-fri" or "sat,sun"',
        )
    from apscheduler.triggers.cron import CronTrigger  # only needed to validate here

    try:
        CronTrigger.from_crontab(" ".join([*fields_[:4], weekday]))
    except ValueError as err:
        raise ConfigError(
            key, f"{text!r} is not a valid crontab line ({err})", 'write it like "0 7 * * *"'
        ) from err
    return " ".join([*fields_[:4], weekday])


SCHEMA: dict[str, dict[str, Reader]] = {
    "digest": {
        "title": _nonempty,
        "base_url": _base_url,
        "timezone": _timezone,
        "description": _str,
        "language": _nonempty,
    },
    "sources": {
        "inbox": _path,
        "pattern": _pattern,
        "settle_seconds": _number,
        "max_bytes": _int_at_least(1),
        "urls": _urls,
        "follow_redirects": _bool,
        "fetch_timeout": _timeout,
        "fetch_max_bytes": _int_at_least(1),
        "fetch_retries": _int_at_least(0),
        "fetch_backoff": _seconds,
        "fetch_interval": _seconds,
    },
    "state": {"url": _state_url},
    "feed": {"output_dir": _path, "max_items": _int_at_least(1), "ttl": _int_at_least(0)},
    "email": {
        "enabled": _bool,
        "transport": _choice("file", "smtp"),
        "outbox": _path,
        "from": _address,
        "to": _addresses,
        "subject": _subject,
        "abstract_chars": _int_at_least(40),
        "max_papers": _int_at_least(1),
        "unsubscribe": _unsubscribe,
        "retry_for": _duration,
    },
    "email.smtp": {
        "host": _nonempty,
        "port": _int_at_least(1),
        "security": _choice("starttls", "ssl", "none"),
        "username": _str,
        "timeout": _duration,
    },
    "schedule": {"poll": _positive_duration, "digest": _crontab, "misfire_grace": _positive_duration},
    "http": {"listen": _listen},
    "subscribe": {
        "confirm_for": _positive_duration,
        "rate_window": _positive_duration,
        "max_per_address": _int_at_least(1),
        "max_per_client": _int_at_least(1),
    },
}
_SECTION_TYPES: dict[str, type] = {
    "digest": DigestSection,
    "sources": SourcesSection,
    "state": StateSection,
    "feed": FeedSection,
    "email": EmailSection,
    "email.smtp": SmtpSection,
    "schedule": ScheduleSection,
    "http": HttpSection,
    "subscribe": SubscribeSection,
}
SECRET_KEY_ENV = "DIGEST_SECRET_KEY"
_SECRETS = {"email.smtp.password": PASSWORD_ENV, "subscribe.secret_key": SECRET_KEY_ENV}


def _unknown(key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key.rpartition(".")[2], known, n=1)
    fix = f"did you mean {close[0]!r}?" if close else f"known keys here: {', '.join(sorted(known))}"
    return ConfigError(key, "unknown key", f"remove it or fix its spelling ({fix})")


def _section(name: str, table: Mapping[str, Any], base: Path, env: Mapping[str, str]) -> Any:
    schema = SCHEMA[name]
    values: dict[str, Any] = {}
    children = [s.rpartition(".")[2] for s in SCHEMA if s.startswith(name + ".")]
    for key, value in table.items():
        full = f"{name}.{key}"
        if full in _SECRETS:
            raise ConfigError(
                full,
                "secrets are not read from the config file",
                f"remove it and set {_SECRETS[full]} in the environment or in .env",
            )
        if key in children:
            if not isinstance(value, dict):
                raise ConfigError(full, "expected a table", f"write it as [{full}]")
            values[key] = _section(full, value, base, env)
            continue
        if key not in schema:
            raise _unknown(full, [*schema, *children])
        values["from_" if key == "from" else key] = schema[key](full, value, base)
    if name == "email.smtp":
        values["password"] = env.get(PASSWORD_ENV, "")
    if name == "subscribe":
        values["secret_key"] = env.get(SECRET_KEY_ENV, "")
    for child in children:
        values.setdefault(child, _section(f"{name}.{child}", {}, base, env))
    cls = _SECTION_TYPES[name]
    # Defaults with paths resolve against the config folder too.
    for f in fields(cls):
        if f.name not in values and isinstance(f.default, Path):
            values[f.name] = (base / f.default).resolve()
        if name == "state" and f.name == "url" and "url" not in values:
            values["url"] = _state_url("state.url", f.default, base)
    return cls(**values)


def build_config(
    data: Mapping[str, Any], base: Path, env: Mapping[str, str], path: Path | None = None
) -> Config:
    """Validates a parsed TOML document; ``base`` resolves relative paths."""
    tops = [s for s in SCHEMA if "." not in s]
    sections: dict[str, Any] = {}
    for name, table in data.items():
        if name not in tops:
            raise _unknown(name, tops)
        if not isinstance(table, dict):
            raise ConfigError(name, "expected a table", f"write it as [{name}] with keys below it")
    for name in tops:
        sections[name] = _section(name, data.get(name, {}), base, env)
    return Config(path=path, **sections)


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
    """The resolved config as TOML-shaped data, secrets masked, for ``check-config``."""

    def section(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(obj):
            value = getattr(obj, f.name)
            key = "from" if f.name == "from_" else f.name
            if f.name in ("password", "secret_key"):
                out[key] = "********" if value else ""
            elif hasattr(value, "__dataclass_fields__"):
                out[key] = section(value)
            elif isinstance(value, Path):
                out[key] = str(value)
            elif isinstance(value, tuple):
                out[key] = list(value)
            else:
                out[key] = value
        return out

    full = section(config)
    full.pop("path", None)
    return full
