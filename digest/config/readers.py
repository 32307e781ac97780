"""Readers: each turns one TOML value into the typed value of a config key, or raises a
ConfigError that names the key and the fix.

A :class:`Reader` is the type of a key: ``read`` validates and converts what the file
says, ``show`` turns the typed value back into the TOML-shaped value ``check-config``
prints (durations as ``"5m"``, paths as strings), and ``doc`` is how the README's key
table writes the default (``256 MiB``, ``5m``). One reader per kind of value: every
duration key uses :func:`duration`.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import ConfigError
from digest.mailaddr import ascii_address

ON_INGEST = "on_ingest"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_MIB = 1024 * 1024

ReadFn = Callable[[str, Any, Path], Any]


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _doc(shown: Any) -> str:
    if isinstance(shown, bool):
        return "true" if shown else "false"
    if isinstance(shown, list):
        return "[" + ", ".join(f'"{v}"' for v in shown) + "]"
    return str(shown)


@dataclass(frozen=True)
class Reader:
    """One kind of config value: how it is read, shown by check-config, and documented."""

    read: ReadFn
    show: Callable[[Any], Any] = _plain
    doc: Callable[[Any], str] | None = None
    relative: bool = False  # the value depends on the config folder: the default is read too

    def __call__(self, key: str, value: Any, base: Path) -> Any:
        return self.read(key, value, base)

    def document(self, value: Any) -> str:
        """The default as the README's key table writes it."""
        return self.doc(value) if self.doc else _doc(self.show(value))


# --- durations ---------------------------------------------------------------------------


def parse_duration(key: str, value: object) -> float:
    """A number of seconds (``30``, ``2.5``) or a string ``"30s"``, ``"5m"``, ``"2h"``, ``"3d"``,
    or a sum like ``"1h30m"`` → seconds (a float, 0 or more)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return float(text)
        parts = _DURATION.findall(text)
        if parts and "".join(a + b for a, b in parts) == text:
            return sum(float(n) * _UNITS[u] for n, u in parts)
    raise ConfigError(
        key,
        f"{value!r} is not a duration",
        'write a number of seconds or a string like "30s", "5m", "2h" or "3d"',
    )


def format_duration(seconds: float) -> str:
    """Seconds → the shortest string :func:`parse_duration` reads back: 300 → ``"5m"``,
    5400 → ``"1h30m"``, 2.5 → ``"2.5s"``, 0 → ``"0s"``."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest, out = int(seconds), ""
    for unit, size in _UNITS.items():
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out or "0s"


def duration(*, positive: bool = False) -> Reader:
    """The one reader of every duration key; ``positive`` refuses 0."""

    def read(key: str, value: Any, base: Path) -> float:
        seconds = parse_duration(key, value)
        if positive and seconds <= 0:
            raise ConfigError(key, "must be longer than 0 seconds", 'write it like "30s" or "5m"')
        return seconds

    return Reader(read, show=format_duration, doc=format_duration)


# --- scalars -----------------------------------------------------------------------------


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


TEXT = Reader(_str)
NONEMPTY = Reader(_nonempty)
BOOL = Reader(_bool)


def integer(minimum: int, *, unit: str = "") -> Reader:
    """A whole number of at least ``minimum``; ``unit="bytes"`` documents it in MiB."""

    def read(key: str, value: Any, base: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(key, f"expected a whole number of at least {minimum}, got {value!r}")
        return value

    def doc(value: int) -> str:
        return f"{value // _MIB} MiB" if unit == "bytes" and value and value % _MIB == 0 else str(value)

    return Reader(read, doc=doc)


def choice(*options: str) -> Reader:
    def read(key: str, value: Any, base: Path) -> str:
        if value not in options:
            raise ConfigError(
                key,
                f"{value!r} is not one of {', '.join(map(repr, options))}",
                f'write it like {key.rpartition(".")[2]} = "{options[0]}"',
            )
        return str(value)

    return Reader(read)


def _path(key: str, value: Any, base: Path) -> Path:
    return (base / Path(_nonempty(key, value, base)).expanduser()).resolve()


PATH = Reader(_path, relative=True)
"""A path; a relative one resolves against the config file's folder (so does the default)."""


def _optional_path(key: str, value: Any, base: Path) -> Path | None:
    return _path(key, value, base) if _str(key, value, base).strip() else None


# A path that may be left out: "" (the default) is None.
OPTIONAL_PATH = Reader(
    _optional_path, show=lambda v: "" if v is None else str(v), doc=lambda v: "(none)", relative=True
)


def _base_url(key: str, value: Any, base: Path) -> str:
    url = _nonempty(key, value, base)
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(
            key, f"{url!r} is not an http(s) URL", 'write it like "https://example.org/digest/"'
        )
    return url if url.endswith("/") else url + "/"


BASE_URL = Reader(_base_url)


def _timezone(key: str, value: Any, base: Path) -> str:
    name = _nonempty(key, value, base)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(
            key, f"unknown time zone {name!r}", 'use an IANA name like "Europe/Berlin"'
        ) from err
    return name


TIMEZONE = Reader(_timezone)


# A bare address as SMTP takes it: dot-atom local part, dot-atom domain. Stricter than
# RFC 5322 on purpose: what parseaddr makes of "a@b.c, x@y.z" or of an encoded word
# ("=?utf-8?q?A_x@y.z?=") passes a looser test and mails someone else.
_ADDR_SPEC = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)


def _address(key: str, value: Any, base: Path) -> str:
    """One address, bare or with a display name; anything else (two addresses in one
    string, an encoded word where the address goes, a line break) is refused."""
    text = _nonempty(key, value, base)
    fix = 'write one address per entry: "Name <user@example.org>" or "user@example.org"'
    if "\r" in text or "\n" in text:
        raise ConfigError(key, f"{text!r} holds a line break", fix)
    pairs = getaddresses([text])
    if len(pairs) != 1:
        raise ConfigError(key, f"{text!r} holds {len(pairs)} addresses, not one", fix)
    addr = pairs[0][1]
    if not addr.isascii() and "@" in addr:
        try:  # the one rule for addresses: an IDNA domain, an ASCII local part
            ascii_addr = ascii_address(addr)
        except ValueError as err:
            raise ConfigError(key, f"{text!r} is not an email address we can mail ({err})", fix) from None
        head, _, tail = text.rpartition(addr)
        text, addr = head + ascii_addr + tail, ascii_addr
    if not _ADDR_SPEC.match(addr) or addr.startswith("=?") or parseaddr(text)[1] != addr:
        raise ConfigError(key, f"{text!r} is not an email address", fix)
    return text


ADDRESS = Reader(_address)


def _list(key: str, value: Any, what: str, example: str) -> list[Any]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ConfigError(key, f"expected a list of {what}, got {value!r}", f"write {example}")
    return items


def _addresses(key: str, value: Any, base: Path) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for i, item in enumerate(_list(key, value, "addresses", 'to = ["a@example.org"]')):
        out.setdefault(parseaddr(_address(f"{key}[{i}]", item, base))[1])
    return tuple(out)


ADDRESSES = Reader(_addresses)


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, None for other URLs or in-memory."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or url.endswith(":memory:"):
        return None
    return Path(url[len(prefix) :])


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
            key, f"{url!r} is not a database URL", 'write "sqlite:///var/digest.db" or a postgresql:// URL'
        )
    return url


STATE_URL = Reader(_state_url, relative=True)
"""A SQLAlchemy URL; a relative SQLite file resolves against the config file's folder."""


def _pattern(key: str, value: Any, base: Path) -> str:
    text = _nonempty(key, value, base)
    if "/" in text:
        raise ConfigError(
            key, "a file name pattern must not contain '/'", 'write a name pattern like "*.txt"'
        )
    return text


PATTERN = Reader(_pattern)


def _each_url(
    key: str, items: list[Any], base: Path, valid: Callable[[str], object], what: str, fix: str
) -> list[str]:
    """Every item a URL that ``valid`` accepts; the first that is not is the error of
    ``key[i]``: ``f"{url!r} {what}"`` with ``fix``."""
    out: list[str] = []
    for i, item in enumerate(items):
        url = _nonempty(f"{key}[{i}]", item, base).strip()
        if not valid(url):
            raise ConfigError(f"{key}[{i}]", f"{url!r} {what}", fix)
        out.append(url)
    return out


_HTTP_URL = re.compile(r"^https?://[^/\s?#]+(?:[/?#]\S*)?$")


def _urls(key: str, value: Any, base: Path) -> tuple[str, ...]:
    items = _list(key, value, "URLs", 'urls = ["https://…/dump.txt"]')
    fix = 'write it like "https://example.org/papers.txt"'
    return tuple(dict.fromkeys(_each_url(key, items, base, _HTTP_URL.match, "is not an http(s) URL", fix)))


URLS = Reader(_urls)


_SUBJECT_FIELDS = ("count", "s", "date", "title")
# A personal email's subject (email.personal_subject) may also name the reader's picks.
_PERSONAL_FIELDS = (*_SUBJECT_FIELDS, "picks", "ps")
_FIELD_DOCS = {"s": "{s} (plural s)", "ps": "{ps} (plural s of picks)"}


def _subject_reader(names: tuple[str, ...]) -> Reader:
    allowed = frozenset(names)
    listed = [_FIELD_DOCS.get(n, f"{{{n}}}") for n in names]
    fix = f"use only {', '.join(listed[:-1])} and {listed[-1]}; write {{{{ and }}}} for braces"

    def read(key: str, value: Any, base: Path) -> str:
        """A format string using only the named placeholders, whole: ``{count.nope}`` was a
        traceback at send time and ``{count.__class__}`` mailed ``<class 'int'>``."""
        text = _nonempty(key, value, base)
        try:
            fields = list(string.Formatter().parse(text))
            for _, name, spec, _ in fields:
                if name is not None and (name not in allowed or "{" in (spec or "")):
                    raise ConfigError(key, f"bad placeholder {{{name}}} in {text!r}", fix)
            text.format(**{n: 1 if n in ("count", "picks") else "" for n in names})
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as err:
            raise ConfigError(key, f"bad placeholder in {text!r} ({err})", fix) from err
        return text

    return Reader(read)


SUBJECT = _subject_reader(_SUBJECT_FIELDS)
PERSONAL_SUBJECT = _subject_reader(_PERSONAL_FIELDS)


def _unsubscribe(key: str, value: Any, base: Path) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(
            key,
            f"expected a URL or a list of URLs, got {value!r}",
            'write unsubscribe = ["mailto:unsubscribe@example.org", "https://example.org/unsubscribe"]',
        )
    fix = 'write "mailto:unsubscribe@example.org" or "https://example.org/unsubscribe"'
    return tuple(_each_url(key, items, base, _unsubscribe_url, "is neither a mailto: nor an https: URL", fix))


def _unsubscribe_url(url: str) -> bool:
    ok = re.match(r"^mailto:[^@\s<>]+@[^@\s<>]+$", url) or re.match(r"^https://[^/\s<>]+\S*$", url)
    return bool(ok) and not any(c in url for c in "\r\n<>,")


UNSUBSCRIBE = Reader(_unsubscribe)


# --- optional text: empty is off -----------------------------------------------------------


def optional(
    parse: Callable[[str, Path], str], what: str, fix: str, *, tidy: Callable[[str], str] = str.strip
) -> Reader:
    """A text key that is off when empty (the default): otherwise ``parse(text, base)``
    gives the value kept, and a ValueError from it is the key's error,
    ``f"{text!r} {what}"`` with ``fix``. ``tidy`` cleans the text first."""

    def read(key: str, value: Any, base: Path) -> str:
        text = tidy(_str(key, value, base))
        if not text:
            return ""
        try:
            return parse(text, base)
        except ValueError:
            raise ConfigError(key, f"{text!r} {what}", fix) from None

    return Reader(read)


def _checked(check: Callable[[str], object]) -> Callable[[str, Path], str]:
    """A parse for :func:`optional` that keeps the text ``check`` accepts as it is."""

    def parse(text: str, base: Path) -> str:
        check(text)
        return text

    return parse


def split_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` or ``"[::1]:8080"`` → (host, port); ValueError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(text)
    return host, int(port)


LISTEN = optional(
    _checked(split_listen),
    "is not host:port",
    'write it like "127.0.0.1:8080" (or "" to turn the web server off)',
)


# --- expected dump times ------------------------------------------------------------------

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_expect(text: str) -> tuple[frozenset[int], int, int]:
    """``"mon-fri 09:00"``, ``"mon,wed,fri 7:30"`` or ``"daily 09:00"`` → (weekdays with
    Monday = 0, hour, minute); ValueError otherwise."""
    days_text, _, time_text = " ".join(text.lower().split()).partition(" ")
    hour_text, sep, minute_text = time_text.partition(":")
    if not sep or not hour_text.isdigit() or not minute_text.isdigit() or len(minute_text) != 2:
        raise ValueError(text)
    hour, minute = int(hour_text), int(minute_text)
    if hour > 23 or minute > 59:
        raise ValueError(text)
    if days_text in ("daily", "*"):
        return frozenset(range(7)), hour, minute
    days: set[int] = set()
    for part in days_text.split(","):
        first, dash, last = part.partition("-")
        if first not in _DAYS or (dash and last not in _DAYS):
            raise ValueError(text)
        a, b = _DAYS.index(first), _DAYS.index(last) if dash else _DAYS.index(first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days), hour, minute


EXPECT = optional(
    _checked(parse_expect),
    "is not weekdays and a time",
    'write it like "mon-fri 09:00", "mon,wed,fri 07:30" or "daily 09:00" (in digest.timezone)',
    tidy=lambda text: " ".join(text.split()),
)


def _bounce_address(text: str, base: Path) -> str:
    """One bare address without ``+`` in its local part (VERP adds it)."""
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or "+" in local or any(c in text for c in " <>\r\n,;"):
        raise ValueError(text)
    return text


BOUNCE_ADDRESS = optional(
    _bounce_address, "is not a bare address", 'write e.g. "bounces@example.org" (no "+", no name)'
)


def _mailbox(key: str, value: Any, base: Path) -> str:
    """Empty, ``maildir:PATH`` / ``mbox:PATH`` (a relative PATH is under the config's
    folder) or ``imap:MAILBOX`` (a mailbox on the ``[email.imap]`` server, e.g. INBOX)."""
    text = _str(key, value, base).strip()
    if not text:
        return ""
    kind, colon, path = text.partition(":")
    if not colon or kind not in ("maildir", "mbox", "imap") or not path.strip():
        fix = 'write "maildir:/path/to/Maildir", "mbox:/path/to/file" or "imap:INBOX"'
        raise ConfigError(key, f"{text!r} names no mailbox", fix)
    if kind == "imap":
        if any(c in path for c in "\r\n\0"):
            raise ConfigError(key, f"{text!r}: a mailbox name is one line", 'write e.g. "imap:INBOX"')
        return f"imap:{path.strip()}"
    return f"{kind}:{base / Path(path).expanduser()}"


MAILBOX = Reader(_mailbox)
