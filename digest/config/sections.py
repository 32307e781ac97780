"""Every config key, declared once: type, default, reader and help text in one field.

Adding a key is this one declaration in the section's dataclass (plus its row in the
README's key table, which ``tests/test_config_keys.py`` holds to the declarations)::

    window: float = key(7 * 86400.0, duration(positive=True), "how far back the feeds reach")

The default is the typed value (seconds, a ``Path``, a tuple); a relative path or SQLite
URL resolves against the config file's folder. A new table is a frozen dataclass of such
fields, declared in its parent with ``section(NewSection)``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from digest.config.crontab import CRONTAB
from digest.config.declare import key, secret, section
from digest.config.readers import (
    ADDRESS,
    ADDRESSES,
    BASE_URL,
    BOOL,
    BOUNCE_ADDRESS,
    EXPECT,
    LISTEN,
    MAILBOX,
    NONEMPTY,
    ON_INGEST,
    OPTIONAL_PATH,
    PATH,
    PATTERN,
    PERSONAL_SUBJECT,
    STATE_URL,
    SUBJECT,
    TEXT,
    TIMEZONE,
    UNSUBSCRIBE,
    URLS,
    choice,
    duration,
    integer,
    split_listen,
    sqlite_path,
)

PASSWORD_ENV = "DIGEST_SMTP_PASSWORD"
IMAP_PASSWORD_ENV = "DIGEST_IMAP_PASSWORD"
DKIM_KEY_ENV = "DIGEST_DKIM_KEY_FILE"
MIB = 1024 * 1024


@dataclass(frozen=True)
class DigestSection:
    title: str = key("Daily Papers Digest", NONEMPTY, "feed, page and email title")
    base_url: str = key("http://localhost:8080/", BASE_URL, "where the site and feeds are published")
    timezone: str = key("UTC", TIMEZONE, "the day a digest is dated with (an IANA name)")
    description: str = key(
        "New machine-learning papers from the Daily Papers listings.",
        TEXT,
        "the feeds' and pages' description",
    )
    language: str = key("en", NONEMPTY, "the feeds' and pages' language")


@dataclass(frozen=True)
class SourcesSection:
    inbox: Path = key(Path("inbox"), PATH, "folder scanned for dumps (never modified)")
    pattern: str = key("*.txt", PATTERN, "which files are dumps")
    settle_seconds: float = key(
        10.0, duration(), "the service reads a dump only once it has not changed for this long"
    )
    max_bytes: int = key(256 * MIB, integer(1, unit="bytes"), "larger dump files are refused")
    urls: tuple[str, ...] = key((), URLS, "http(s) URLs of dumps fetched into the inbox before each run")
    follow_redirects: bool = key(False, BOOL, "follow redirects to another host too")
    fetch_timeout: float = key(30.0, duration(positive=True), "longest wait to connect or for the next bytes")
    fetch_max_bytes: int = key(32 * MIB, integer(1, unit="bytes"), "a larger body is abandoned")
    fetch_retries: int = key(2, integer(0), "extra attempts after a 5xx, a timeout or a connection error")
    fetch_backoff: float = key(2.0, duration(), "wait before the first retry; doubles for each further one")
    fetch_interval: float = key(600.0, duration(), "a run fetches a URL at most this often")
    expect: str = key(
        "", EXPECT, 'when a new dump should arrive, in digest.timezone: "mon-fri 09:00"; "" checks nothing'
    )
    expect_grace: float = key(3 * 3600.0, duration(), "how late a dump may be before it is an alert")
    alert_after: int = key(3, integer(1), "failed fetches in a row of one URL that raise an alert")


@dataclass(frozen=True)
class StateSection:
    url: str = key("sqlite:///var/digest.db", STATE_URL, "SQLAlchemy URL of the state database")


def _default_instance(values: Mapping[str, Any]) -> str:
    # The clock and environment are read by the config edge, not by the pure core.
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class InstanceSection:
    """This process among several on one PostgreSQL state (docs/DESIGN.md invariant 9)."""

    name: str = key(
        "",
        TEXT,
        "names this instance in outbox claims and /healthz",
        doc="hostname-pid",
        derive=_default_instance,
    )
    lease: float = key(
        300.0,
        duration(positive=True),
        "an instance's claim on outbox rows; another instance takes them over after it",
    )


@dataclass(frozen=True)
class FeedSection:
    output_dir: Path = key(Path("var/site"), PATH, "where the feeds, pages and archive are written")
    max_items: int = key(100, integer(1), "the feeds hold at least this many papers, even beyond feed.window")
    ttl: int = key(60, integer(0), "minutes a reader may cache the feed")
    window: float = key(
        7 * 86400.0, duration(positive=True), "every paper of the digests this long before the newest"
    )
    max_items_hard: int = key(2000, integer(1), "never more items than this (logged when it cuts)")


@dataclass(frozen=True)
class ArchiveSection:
    page_size: int = key(500, integer(10), "a digest page with more papers is split into pages")


@dataclass(frozen=True)
class SmtpSection:
    host: str = key("localhost", NONEMPTY, "the SMTP server")
    port: int = key(587, integer(1), "the SMTP server's port")
    security: str = key("starttls", choice("starttls", "ssl", "none"), "starttls, ssl (implicit TLS) or none")
    username: str = key("", TEXT, "log in when set")
    password: str = secret(PASSWORD_ENV, "the SMTP password")
    timeout: float = key(30.0, duration(positive=True), "per connection and reply")


@dataclass(frozen=True)
class ImapSection:
    """``[email.imap]``: the server of ``email.bounces_source = "imap:MAILBOX"``."""

    host: str = key("localhost", NONEMPTY, "the IMAP server holding the bounce mailbox")
    port: int = key(993, integer(1), "the IMAP server's port (143 for starttls)")
    security: str = key("ssl", choice("ssl", "starttls", "none"), "ssl (implicit TLS), starttls or none")
    username: str = key("", TEXT, "the IMAP login")
    password: str = secret(IMAP_PASSWORD_ENV, "the IMAP password")
    timeout: float = key(30.0, duration(positive=True), "per connection and reply")


@dataclass(frozen=True)
class DkimSection:
    """``[email.dkim]``: sign outgoing mail when all three are set (digest/signing.py)."""

    selector: str = key("", TEXT, "DKIM selector; set all three keys to sign every message")
    domain: str = key("", TEXT, "the signing domain (d=): the From domain or a parent of it")
    key_file: Path | None = key(None, OPTIONAL_PATH, f"PEM private key; {DKIM_KEY_ENV} overrides it")

    @property
    def enabled(self) -> bool:
        return bool(self.selector)


def _default_unsubscribe(values: Mapping[str, Any]) -> tuple[str, ...]:
    return (f"mailto:{parseaddr(values['from_'])[1]}?subject=unsubscribe",)


def _default_personal_subject(values: Mapping[str, Any]) -> str:
    return "{picks} pick{ps} for you · " + str(values["subject"])


@dataclass(frozen=True)
class EmailSection:
    enabled: bool = key(True, BOOL, "false: feeds only")
    transport: str = key("file", choice("file", "smtp"), "file writes .eml files into outbox; smtp sends")
    outbox: Path = key(Path("var/outbox"), PATH, "where the file transport writes .eml files")
    from_: str = key(
        "Paper Digest <digest@localhost>", ADDRESS, "sender; Message-IDs use its domain", name="from"
    )
    to: tuple[str, ...] = key((), ADDRESSES, "who gets the email; empty means feeds only")
    subject: str = key("{count} new paper{s} · {date}", SUBJECT, "subject with {count}, {s}, {date}, {title}")
    personal_subject: str = key(
        "{picks} pick{ps} for you · {count} new paper{s} · {date}",
        PERSONAL_SUBJECT,
        "subject of a subscriber's own email: email.subject's placeholders, {picks} and {ps}",
        doc="`{picks} pick{ps} for you · ` + `email.subject`",
        derive=_default_personal_subject,
    )
    smtp: SmtpSection = section(SmtpSection)
    dkim: DkimSection = section(DkimSection)
    imap: ImapSection = section(ImapSection)
    abstract_chars: int = key(400, integer(40), "abstracts longer than this are cut at a word boundary")
    max_papers: int = key(50, integer(1), "papers shown in full; the rest are listed by title")
    max_bytes: int = key(
        90_000,
        integer(10_000),
        "the HTML part's size as sent; papers past it are listed by title, then counted",
    )
    unsubscribe: tuple[str, ...] = key(
        (),
        UNSUBSCRIBE,
        "List-Unsubscribe URLs: mailto: and/or https:",
        doc="mailto: the From address",
        derive=_default_unsubscribe,
    )
    retry_for: float = key(3 * 86400.0, duration(), "how long a failing delivery is retried")
    bounce_address: str = key(
        "", BOUNCE_ADDRESS, 'envelope sender bounces+TOKEN@domain per delivery (VERP); "" = From'
    )
    bounces_source: str = key(
        "",
        MAILBOX,
        '"maildir:PATH", "mbox:PATH" or "imap:MAILBOX": where `digest bounces` reads reports '
        "and mailed unsubscribe requests",
    )
    soft_bounce_limit: int = key(3, integer(1), "soft bounces within 7 days that mark a subscriber bounced")

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
    poll: float = key(300.0, duration(positive=True), "how often `digest serve` looks for new dumps")
    digest: str = key("0 7 * * *", CRONTAB, 'when to send: a crontab line in digest.timezone, or "on_ingest"')
    misfire_grace: float = key(
        6 * 3600.0, duration(positive=True), "a digest missed by less is sent on start"
    )

    @property
    def on_ingest(self) -> bool:
        return self.digest == ON_INGEST


@dataclass(frozen=True)
class HttpSection:
    listen: str = key("", LISTEN, '"host:port" of the built-in web server; "" turns it off')

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, None when the listener is off."""
        return split_listen(self.listen) if self.listen else None


SECRET_KEY_ENV = "DIGEST_SECRET_KEY"


@dataclass(frozen=True)
class SubscribeSection:
    """Sign-up, confirmation and the subscriber pages of the built-in server (issue 14)."""

    confirm_for: float = key(3 * 86400.0, duration(positive=True), "how long a confirmation link stays valid")
    rate_window: float = key(3600.0, duration(positive=True), "the window the two sign-up limits count in")
    max_per_address: int = key(3, integer(1), "confirmation emails to one address per rate_window")
    max_per_client: int = key(20, integer(1), "sign-up requests from one client (IP) per rate_window")
    secret_key: str = secret(SECRET_KEY_ENV, "signs the links; else a key generated once into the state")


@dataclass(frozen=True)
class AlertsSection:
    to: tuple[str, ...] = key((), ADDRESSES, "who gets dump-health alerts (not the subscribers)")


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``path`` is the file it came from (None: defaults)."""

    digest: DigestSection = section(DigestSection)
    sources: SourcesSection = section(SourcesSection)
    state: StateSection = section(StateSection)
    instance: InstanceSection = section(InstanceSection)
    feed: FeedSection = section(FeedSection)
    archive: ArchiveSection = section(ArchiveSection)
    email: EmailSection = section(EmailSection)
    schedule: ScheduleSection = section(ScheduleSection)
    http: HttpSection = section(HttpSection)
    subscribe: SubscribeSection = section(SubscribeSection)
    alerts: AlertsSection = section(AlertsSection)
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
