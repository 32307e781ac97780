"""Pure: a digest → one MIME message per recipient (text part, then HTML part).

Byte-identical for the same input: Date is the digest's time, the Message-ID comes
from the outbox row, and the MIME boundary is derived from the Message-ID.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from digest import identity
from digest.render import templates
from digest.render.view import DigestView, PaperView
from digest.text import fill as text_fill

WIDTH = 72


@dataclass(frozen=True, slots=True)
class EmailSettings:
    title: str
    base_url: str
    sender: str
    subject: str  # a format string with {count}, {date} and {title}
    language: str


def one_line(value: str) -> str:
    """Header-safe text: no CR, LF or other control characters, runs of space folded."""
    return " ".join("".join(" " if ord(c) < 32 or c == "\x7f" else c for c in value).split())


def subject(settings: EmailSettings, digest: DigestView, papers: Sequence[PaperView]) -> str:
    first = papers[0].title if papers else ""
    return one_line(settings.subject.format(count=digest.count, date=digest.day_label, title=first))


def _wrap(text: str, indent: str, first_indent: str | None = None) -> str:
    # Titles must never break inside a word or at a hyphen. text.fill gives textwrap's
    # output several times faster: wrapping was most of the email's render time (bench/).
    return text_fill(text, WIDTH, indent, first_indent)


def text_part(
    settings: EmailSettings, digest: DigestView, papers: Sequence[PaperView], recipient: str
) -> str:
    env = templates.environment().overlay()
    env.filters["wrap_title"] = lambda s: _wrap(s, "   ").lstrip()
    env.filters["wrap_text"] = lambda s: _wrap(s, "   ")
    return env.get_template("email.txt").render(**_context(settings, digest, papers, recipient))


def _context(
    settings: EmailSettings, digest: DigestView, papers: Sequence[PaperView], recipient: str
) -> dict[str, object]:
    return {
        "title": settings.title,
        "language": settings.language,
        "digest": digest,
        "papers": papers,
        "recipient": recipient,
        "subject": subject(settings, digest, papers),
        "feed_url": identity.site_url(settings.base_url, "feed.xml"),
        "archive_url": settings.base_url,
    }


def html_part(
    settings: EmailSettings, digest: DigestView, papers: Sequence[PaperView], recipient: str
) -> str:
    return templates.render("email.html", **_context(settings, digest, papers, recipient))


def message(
    settings: EmailSettings,
    digest: DigestView,
    papers: Sequence[PaperView],
    recipient: str,
    message_id: str,
) -> EmailMessage:
    """The digest for ``recipient``: multipart/alternative, UTF-8, fixed Date and boundary."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = settings.sender
    msg["To"] = recipient
    msg["Subject"] = subject(settings, digest, papers)
    msg["Date"] = format_datetime(digest.created)
    msg["Message-ID"] = message_id
    msg["MIME-Version"] = "1.0"
    msg.set_content(text_part(settings, digest, papers, recipient), cte="quoted-printable")
    msg.add_alternative(
        html_part(settings, digest, papers, recipient), subtype="html", cte="quoted-printable"
    )
    msg.set_boundary("=_" + hashlib.sha256(message_id.encode()).hexdigest()[:32])
    return msg


def to_bytes(msg: EmailMessage) -> bytes:
    """The message as it goes on the wire and into a ``.eml`` file (CRLF line ends)."""
    return msg.as_bytes(policy=SMTP)
