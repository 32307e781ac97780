"""Edge: the mailbox ``digest bounces`` reads delivery reports from (``email.bounces_source``).

:func:`open_source` yields the source's messages, each with two callbacks the caller
uses once it decided: ``done`` (the report was handled) and ``keep`` (not a report, or
it names nobody we know: left for a human). Nothing is ever deleted.

- ``maildir:PATH``: every message of ``new/`` and ``cur/``; ``done`` moves one from
  ``new/`` to ``cur/`` flagged seen (``:2,S``); ``keep`` leaves it where it is.
- ``mbox:PATH``: the whole file every time, never written (handled reports are known by
  their hash in the state).
- ``imap:MAILBOX``: that mailbox on the ``[email.imap]`` server, over implicit TLS
  (``ssl``, port 993) or ``starttls`` (verified against the system's CAs, or
  ``SSL_CERT_FILE``), logged in as ``email.imap.username`` with the password from
  ``DIGEST_IMAP_PASSWORD``. Only messages without our keywords are fetched, with
  ``BODY.PEEK[]`` so fetching marks nothing; ``done`` sets ``\\Seen`` and
  ``$DigestHandled``, ``keep`` sets ``$DigestKept`` and leaves the message unseen for a
  human. A crash between recording a report and flagging it is harmless: the next run
  fetches it again, knows its hash and only flags it.

Every failure is a :class:`~digest.errors.DigestError` naming the key to check; the
password is never part of one (docs/DESIGN.md invariant 11).
"""

from __future__ import annotations

import contextlib
import imaplib
import mailbox
import os
import re
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.config import Config
    from digest.config.sections import ImapSection

HANDLED = "$DigestHandled"
KEPT = "$DigestKept"


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Item:
    """One message of the source: where it is (for logs), its bytes, and what to do with
    it once it was handled (``done``) or is left for a human (``keep``)."""

    where: str
    raw: bytes
    done: Callable[[], None] = _nothing
    keep: Callable[[], None] = _nothing


@contextmanager
def open_source(config: Config) -> Iterator[Iterator[Item]]:
    """The messages of ``email.bounces_source`` (see the module docstring)."""
    source = config.email.bounces_source
    if not source:
        raise DigestError(
            'email.bounces_source is not set; write e.g. bounces_source = "maildir:/var/mail/bounces" '
            'or "imap:INBOX" with [email.imap]'
        )
    kind, _, location = source.partition(":")
    if kind == "imap":
        with Imap(config.email.imap, location) as imap:
            yield imap.items()
        return
    if kind == "maildir":
        yield _maildir(Path(location))
        return
    yield _mbox(Path(location))


def _maildir(path: Path) -> Iterator[Item]:
    if not (path / "new").is_dir() or not (path / "cur").is_dir():
        raise DigestError(
            f"email.bounces_source: {path} is not a maildir (no new/ and cur/); "
            "point it at the folder holding new/, cur/ and tmp/"
        )
    # Listed first: a handled message moves from new/ to cur/ while this runs.
    files = [
        (sub, f)
        for sub in ("new", "cur")
        for f in sorted((path / sub).iterdir())
        if f.is_file() and not f.name.startswith(".")
    ]
    for sub, f in files:
        try:
            raw = f.read_bytes()
        except FileNotFoundError:  # another reader moved it meanwhile
            continue
        done = partial(_to_cur, f) if sub == "new" else _nothing
        yield Item(f"{path}/{sub}/{f.name}", raw, done)


def _to_cur(f: Path) -> None:
    # Maildir: a message read moves to cur/ with an info part; "S" = seen.
    target = f.parent.parent / "cur" / (f.name.split(":2,")[0] + ":2,S")
    os.replace(f, target)


def _mbox(path: Path) -> Iterator[Item]:
    if not path.is_file():
        raise DigestError(f"email.bounces_source: no mbox file at {path}; check the path")
    box = mailbox.mbox(path, create=False)
    try:
        for i, key in enumerate(box.keys()):
            yield Item(f"{path} message {i + 1}", box.get_bytes(key))
    finally:
        box.close()


def _quoted(name: str) -> str:
    """An IMAP quoted string (RFC 3501 §4.3): imaplib sends mailbox names as given."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Imap:
    """One IMAP session on the bounce mailbox: connect, log in, select; then
    :meth:`items`; closed (and logged out) on exit."""

    def __init__(self, settings: ImapSection, mailbox_name: str) -> None:
        self.s = settings
        self.mailbox = mailbox_name
        self.where = f"IMAP server {settings.host}:{settings.port}"
        self.conn: imaplib.IMAP4 | None = None

    def __enter__(self) -> Imap:
        s = self.s
        if not s.username:
            raise DigestError(
                "email.imap.username is not set; email.bounces_source reads an IMAP mailbox "
                "and needs a login (the password comes from DIGEST_IMAP_PASSWORD)"
            )
        stage = "connect to"
        try:
            if s.security == "ssl":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    s.host, s.port, ssl_context=ssl.create_default_context(), timeout=s.timeout
                )
            else:
                conn = imaplib.IMAP4(s.host, s.port, timeout=s.timeout)
            self.conn = conn
            if s.security == "starttls":
                stage = "start TLS with"
                conn.starttls(ssl.create_default_context())
            stage = "log in to"
            conn.login(s.username, s.password)
            stage = f"open the mailbox {self.mailbox!r} on"
            typ, data = conn.select(_quoted(self.mailbox))
            if typ != "OK":
                raise imaplib.IMAP4.error(_text(data))
        except (imaplib.IMAP4.error, ssl.SSLError, OSError) as err:
            self.close()
            check = {
                "log in to": "email.imap.username and DIGEST_IMAP_PASSWORD",
                "connect to": "email.imap.host, port and security",
                "start TLS with": "email.imap.security and port",
            }.get(stage, "email.bounces_source")
            who = f" as {s.username!r}" if stage == "log in to" else ""
            raise DigestError(f"cannot {stage} {self.where}{who}: {self._why(err)} (check {check})") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            # LOGOUT only: CLOSE would expunge whatever a human flagged \Deleted meanwhile.
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            with contextlib.suppress(OSError):
                conn.shutdown()

    def _why(self, err: BaseException) -> str:
        if isinstance(err, TimeoutError):
            return "timed out"
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
        if isinstance(err, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {err.verify_message} (a private CA: set SSL_CERT_FILE)"
        arg = err.args[0] if err.args else None
        text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(err)
        text = " ".join(text.split()) or type(err).__name__
        return text.replace(self.s.password, "********") if self.s.password else text

    def _command(self, what: str, *args: str) -> list[object]:
        assert self.conn is not None
        try:
            typ, data = self.conn.uid(*args)
        except (imaplib.IMAP4.error, OSError) as err:
            raise DigestError(f"{self.where}: cannot {what}: {self._why(err)}") from None
        if typ != "OK":
            raise DigestError(f"{self.where}: cannot {what}: {_text(data)}")
        return list(data)

    def items(self) -> Iterator[Item]:
        """Every message of the mailbox without our keywords, oldest first."""
        found = self._command("search the mailbox", "SEARCH", "UNKEYWORD", HANDLED, "UNKEYWORD", KEPT)
        uids = [u for chunk in found if isinstance(chunk, bytes) for u in chunk.decode().split()]
        name = f"imap:{self.mailbox}"
        for uid in uids:
            data = self._command(f"fetch message UID {uid}", "FETCH", uid, "(BODY.PEEK[])")
            raw = next((part[1] for part in data if isinstance(part, tuple) and len(part) == 2), None)
            if not isinstance(raw, bytes):
                continue  # expunged by another client meanwhile
            yield Item(
                f"{name} UID {uid}",
                raw,
                done=partial(self._flag, uid, f"(\\Seen {HANDLED})"),
                keep=partial(self._flag, uid, f"({KEPT})"),
            )

    def _flag(self, uid: str, flags: str) -> None:
        self._command(f"flag message UID {uid}", "STORE", uid, "+FLAGS.SILENT", flags)


def _text(data: object) -> str:
    parts = data if isinstance(data, list) else [data]
    out = " ".join(p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p) for p in parts if p)
    return re.sub(r"\s+", " ", out).strip() or "refused"
