"""Pure: a digest → one MIME message per recipient (text part, then HTML part).

Byte-identical for the same input: Date is the digest's time, the Message-ID comes
from the outbox row, and the MIME boundary is derived from the Message-ID. The HTML
part's styles are written inline in the templates, so it reads the same in clients that
strip ``<style>`` (Gmail's app for other accounts) or ignore padding outside table
cells (Outlook); only the optional dark-mode and narrow-screen ``@media`` rules sit in a
``<style>`` block, after ``<meta charset>``.

The HTML part as sent (quoted-printable) stays within ``email.max_bytes``, under
Gmail's 102 KB clipping: :func:`layout` measures each paper's block and lets
:func:`digest.render.budget.split` choose which papers are shown in full, which by
title, and how many are counted with a link to the archive. The text part shows the
same choice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email import quoprimime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from functools import cache, partial
from typing import Any, Literal

import jinja2

from digest import identity
from digest.render import budget, templates
from digest.render.view import DigestView, PaperView
from digest.text import fill as text_fill

WIDTH = 72
MAX_AUTHORS = 4  # more are shown as "A, B, C, D and 7 others"


@dataclass(frozen=True, slots=True)
class EmailSettings:
    title: str
    base_url: str
    sender: str
    subject: str  # a format string with {count}, {s}, {date} and {title}
    language: str
    abstract_chars: int = 400
    max_papers: int = 50
    max_bytes: int = 90_000  # the HTML part as sent (quoted-printable), see layout()
    unsubscribe: tuple[str, ...] = ()  # mailto: / https: URLs; empty: mailto: the sender


@dataclass(frozen=True, slots=True)
class EmailPaper:
    """A paper as the email shows it: the view plus its (possibly cut) abstract."""

    view: PaperView
    excerpt: tuple[tuple[str, str | None], ...]
    cut: bool  # the abstract was shortened: offer "continue reading"
    byline: str  # authors (shortened) and upvotes, "" when the source gave neither
    code: tuple[tuple[str, str], ...]  # (label, url) of each code link
    ellipsis: str = "…"  # after a cut excerpt; "" when it ends a sentence (no ".…")


@dataclass(frozen=True, slots=True)
class Personal:
    """A subscriber's own links (signed, so different for each): the List-Unsubscribe
    targets (https one-click and/or mailto:) and the preferences page."""

    unsubscribe: tuple[str, ...]
    preferences: str | None = None

    @property
    def shape(self) -> tuple[tuple[str, ...], bool]:
        """What the message's structure depends on: the URL schemes (a mailto: with its
        address, which the footer shows) and whether a preferences link is there (see
        :class:`Prepared`)."""
        return tuple(_scheme(u) for u in self.unsubscribe), self.preferences is not None


# What a personal link may hold to go into a header and the HTML as it is.
_LINK_SAFE = re.compile(r"[A-Za-z0-9._~:/?=%@+-]+")
# Room kept in the byte budget for the personal links of the footer (quoted-printable
# worst case), so that the layout is the same for every recipient.
_PERSONAL_RESERVE = 3 * 700


def _scheme(url: str) -> str:
    scheme, _, rest = url.partition(":")
    return f"mailto:{rest.partition('?')[0]}" if scheme == "mailto" else scheme


def one_line(value: str) -> str:
    """Header-safe text: no CR, LF or other control characters, runs of space folded."""
    return " ".join("".join(" " if ord(c) < 32 or c == "\x7f" else c for c in value).split())


def subject(settings: EmailSettings, digest: DigestView, papers: Sequence[PaperView]) -> str:
    first = papers[0].title if papers else ""
    return one_line(
        settings.subject.format(
            count=digest.count, s="" if digest.count == 1 else "s", date=digest.day_label, title=first
        )
    )


def excerpt(
    segments: Sequence[tuple[str, str | None]], limit: int
) -> tuple[tuple[tuple[str, str | None], ...], bool]:
    """The first ``limit`` characters of an abstract given as (text, url) runs, cut at a
    word boundary and never inside a link; True when something was cut."""
    full = "".join(piece for piece, _ in segments)
    if len(full) <= limit:
        return tuple(segments), False
    # Where a cut may fall: before white space in plain text, before a link, or after a
    # link that is not glued to a word.
    cut = 0
    offset = 0
    for piece, url in segments:
        if offset > limit:
            break
        if url is None:
            # The last white space at or before the limit; searched from the end, since
            # a character-by-character scan of every abstract cost most of a send.
            window = piece[: limit - offset + 1]
            for i in range(len(window) - 1, -1, -1):
                if window[i].isspace():
                    cut = offset + i
                    break
        else:
            cut = offset
            end = offset + len(piece)
            if end <= limit and (end == len(full) or not full[end].isalnum()):
                cut = end
        offset += len(piece)
    out: list[tuple[str, str | None]] = []
    offset = 0
    for piece, url in segments:
        if offset + len(piece) <= cut:
            out.append((piece, url))
        elif url is None and offset < cut:
            out.append((piece[: cut - offset], None))
        offset += len(piece)
    # Trailing spaces and dangling punctuation read badly before the ellipsis.
    while out and out[-1][1] is None:
        text = out[-1][0].rstrip(" \n\t,;:-–—(")
        if text:
            out[-1] = (text, None)
            break
        out.pop()
    return tuple(out), True


def _byline(p: PaperView) -> str:
    parts: list[str] = []
    if p.authors:
        names = list(p.authors)
        if len(names) > MAX_AUTHORS + 1:
            parts.append(", ".join(names[:MAX_AUTHORS]) + f" and {len(names) - MAX_AUTHORS} others")
        else:
            parts.append(", ".join(names))
    if p.upvotes is not None:
        parts.append(f"▲ {p.upvotes} upvote{'' if p.upvotes == 1 else 's'}")
    return " · ".join(parts)


def _code_label(url: str) -> str:
    return re.sub(r"^https?://(www\.)?", "", url).rstrip("/")


_CLOSERS = "\"'”’)]"


def ends_sentence(segments: Sequence[tuple[str, str | None]]) -> bool:
    """Whether an excerpt ends with a sentence's end (``.``, ``!``, ``?``, ``…``, maybe
    followed by a closing quote or bracket): an ellipsis after it would read ``.…``."""
    if not segments or segments[-1][1] is not None:
        return False
    return segments[-1][0].rstrip(_CLOSERS).endswith((".", "!", "?", "…"))


def email_paper(p: PaperView, limit: int) -> EmailPaper:
    cut_segments, cut = excerpt(p.segments, limit)
    return EmailPaper(
        view=p,
        excerpt=cut_segments,
        cut=cut,
        byline=_byline(p),
        code=tuple((_code_label(u), u) for u in p.links),
        # A cut right after a sentence keeps the sentence whole, without an ellipsis.
        ellipsis="" if ends_sentence(cut_segments) else "…",
    )


def unsubscribe_urls(settings: EmailSettings) -> tuple[str, ...]:
    """``email.unsubscribe``, or ``mailto:`` the sender asking to unsubscribe."""
    if settings.unsubscribe:
        return settings.unsubscribe
    return (f"mailto:{parseaddr(settings.sender)[1]}?subject=unsubscribe",)


def list_id(settings: EmailSettings) -> str:
    """RFC 2919 List-Id: the title as its phrase, a dot-atom under the sender's domain."""
    domain = parseaddr(settings.sender)[1].rpartition("@")[2] or "localhost"
    label = re.sub(r"[^a-z0-9]+", "-", identity.paper_key(settings.title)).strip("-") or "digest"
    return formataddr((one_line(settings.title), f"{label}.{domain}"))


def preheader(digest: DigestView, papers: Sequence[PaperView]) -> str:
    """The line inboxes show after the subject: the first titles."""
    shown = [p.title for p in papers[:3]]
    rest = len(papers) - len(shown)
    text = " · ".join(shown)
    return one_line(text + (f" and {rest} more" if rest > 0 else ""))


def _wrap(text: str, indent: str, first_indent: str | None = None) -> str:
    # Titles must never break inside a word or at a hyphen. text.fill gives textwrap's
    # output several times faster: wrapping was most of the email's render time (bench/).
    return text_fill(text, WIDTH, indent, first_indent)


@dataclass(frozen=True, slots=True)
class Layout:
    """What the email shows of a digest's papers (``papers``, in order): ``full`` in
    full, then ``titles`` by title, then ``rest`` papers counted on one line linking to
    the first of them on the archive page (``rest_url``)."""

    papers: tuple[PaperView, ...]
    full: tuple[EmailPaper, ...]
    titles: tuple[PaperView, ...]
    rest: int
    rest_url: str


def _personal_context(settings: EmailSettings, personal: Personal | None) -> dict[str, object]:
    urls = personal.unsubscribe if personal is not None else unsubscribe_urls(settings)
    mailto = next((u for u in urls if u.startswith("mailto:")), None)
    return {
        "unsubscribe_https": next((u for u in urls if u.startswith(("https:", "http:"))), None),
        "unsubscribe_mailto": mailto,
        "unsubscribe_address": mailto[len("mailto:") :].partition("?")[0] if mailto else None,
        "preferences_url": personal.preferences if personal is not None else None,
    }


def _context(
    settings: EmailSettings,
    digest: DigestView,
    shown: Layout,
    recipient: str,
    personal: Personal | None = None,
) -> dict[str, object]:
    papers = shown.papers
    return {
        "title": settings.title,
        "language": settings.language,
        "digest": digest,
        "papers": list(shown.full),
        "titles": list(shown.titles),
        "rest": shown.rest,
        "rest_url": shown.rest_url,
        "recipient": recipient,
        "subject": subject(settings, digest, papers),
        "preheader": preheader(digest, papers),
        "feed_url": identity.site_url(settings.base_url, "feed.xml"),
        "archive_url": settings.base_url,
        **_personal_context(settings, personal),
    }


# An address is at most 254 characters (RFC 5321); the layout is measured with the
# stand-in below and keeps room for the longest, each character quoted-printable encoded.
_LONGEST_ADDRESS = 254


def _blocks() -> Any:
    """The macros of templates/email_blocks.html, one per repeated block."""
    return templates.environment().get_template("email_blocks.html").module


def encoded_size(html: str) -> int:
    """Bytes of ``html`` as the HTML part's quoted-printable body (CRLF line ends)."""
    return len(_qp(html))


def layout(
    settings: EmailSettings, digest: DigestView, papers: Sequence[PaperView], personal: bool = False
) -> Layout:
    """The papers in full, by title and counted, so that the HTML part as sent is at most
    ``settings.max_bytes`` for any recipient, with at most ``settings.max_papers`` in
    full. The same for every recipient (Prepared relies on it); with ``personal``, room is
    kept for a subscriber's own links in the footer."""
    papers = tuple(papers)
    full = [email_paper(p, settings.abstract_chars) for p in papers[: settings.max_papers]]
    by_view = {id(e.view): e for e in full}
    blocks = _blocks()
    n = len(papers)
    rest_url = max((p.url for p in papers), key=len, default=digest.url)
    nothing = Layout(papers, (), (), 0, "")
    reserve = 3 * max(0, _LONGEST_ADDRESS - len(_STAND_IN)) + (_PERSONAL_RESERVE if personal else 0)
    frame = encoded_size(html_part(settings, digest, papers, _STAND_IN, nothing)) + reserve
    costs: budget.Costs[PaperView] = budget.Costs(
        room=settings.max_bytes - frame,
        full=lambda p: encoded_size(str(blocks.full_paper(by_view[id(p)]))),
        title=lambda p: encoded_size(str(blocks.title_item(p))),
        titles_section=encoded_size(str(blocks.titles_open(n)) + str(blocks.titles_close())),
        rest_line=encoded_size(str(blocks.rest_line(n, rest_url))),
    )
    while True:
        chosen = budget.split(papers, costs, settings.max_papers)
        shown = Layout(
            papers,
            tuple(by_view[id(p)] for p in chosen.full),
            chosen.titles,
            len(chosen.rest),
            chosen.rest[0].url if chosen.rest else "",
        )
        over = (
            encoded_size(html_part(settings, digest, papers, _STAND_IN, shown)) + reserve - settings.max_bytes
        )
        # The blocks' costs add up exactly (quoted-printable is line by line); should a
        # template change break that, shrink until the whole part fits.
        if over <= 0 or not (chosen.full or chosen.titles):
            return shown
        costs = replace(costs, room=costs.room - over)


@cache
def _text_environment() -> jinja2.Environment:
    env = templates.environment().overlay()
    env.filters["wrap_title"] = lambda s, indent="   ": _wrap(s, indent).lstrip()
    env.filters["wrap_text"] = lambda s, indent="   ": _wrap(s, indent)
    return env


def render_part(
    kind: Literal["txt", "html"],
    settings: EmailSettings,
    digest: DigestView,
    papers: Sequence[PaperView],
    recipient: str,
    shown: Layout | None = None,
    personal: Personal | None = None,
) -> str:
    """The text (``"txt"``) or HTML (``"html"``) part of the message to ``recipient``."""
    shown = shown or layout(settings, digest, papers, personal is not None)
    env = _text_environment() if kind == "txt" else templates.environment()
    return env.get_template(f"email.{kind}").render(**_context(settings, digest, shown, recipient, personal))


text_part = partial(render_part, "txt")
html_part = partial(render_part, "html")


def _text_recipient_block(context: dict[str, object]) -> str:
    """The text part's ``recipient`` block alone: the only recipient-specific lines."""
    template = _text_environment().get_template("email.txt")
    return "".join(template.blocks["recipient"](template.new_context(context)))


def message(
    settings: EmailSettings,
    digest: DigestView,
    papers: Sequence[PaperView],
    recipient: str,
    message_id: str,
    personal: Personal | None = None,
) -> EmailMessage:
    """The digest for ``recipient``: multipart/alternative, UTF-8, fixed Date and boundary.
    ``personal`` links replace ``settings.unsubscribe`` in the headers and the footer."""
    shown = layout(settings, digest, papers, personal is not None)
    return _assemble(
        settings,
        digest,
        papers,
        recipient,
        message_id,
        text_part(settings, digest, papers, recipient, shown, personal),
        html_part(settings, digest, papers, recipient, shown, personal),
        personal,
    )


def _boundary(message_id: str) -> str:
    return "=_" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def _assemble(
    settings: EmailSettings,
    digest: DigestView,
    papers: Sequence[PaperView],
    recipient: str,
    message_id: str,
    text: str,
    html: str,
    personal: Personal | None = None,
) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = settings.sender
    msg["To"] = recipient
    msg["Subject"] = subject(settings, digest, papers)
    msg["Date"] = format_datetime(digest.created)
    msg["Message-ID"] = message_id
    msg["MIME-Version"] = "1.0"
    msg["List-Id"] = list_id(settings)
    urls = personal.unsubscribe if personal is not None else unsubscribe_urls(settings)
    value = ", ".join(f"<{u}>" for u in urls)
    if personal is not None and all(_LINK_SAFE.fullmatch(u) for u in urls):
        # Signed links make the line longer than 78: written as it is (RFC 5322 allows
        # 998), since the folder would turn it into RFC 2047 words no client reads as URLs.
        msg.set_raw("List-Unsubscribe", value)
    else:
        msg["List-Unsubscribe"] = value
    if any(u.startswith(("https:", "http:")) for u in urls):
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    msg.set_boundary(_boundary(message_id))
    return msg


@dataclass(frozen=True, slots=True)
class Wire:
    """A message already serialised: what :func:`to_bytes` gives, plus the two things a
    transport reads from its headers."""

    data: bytes
    message_id: str
    envelope_from: str  # the From header's bare address

    @classmethod
    def of(cls, msg: EmailMessage | Wire) -> Wire:
        if isinstance(msg, Wire):
            return msg
        return cls(to_bytes(msg), str(msg["Message-ID"]), parseaddr(str(msg["From"]))[1])


# Headers set with set_raw (only List-Unsubscribe with signed links) are written as given.
_WIRE_POLICY = SMTP.clone(refold_source="none")


def to_bytes(msg: EmailMessage | Wire) -> bytes:
    """The message as it goes on the wire and into a ``.eml`` file (CRLF line ends)."""
    if isinstance(msg, Wire):
        return msg.data
    return msg.as_bytes(policy=_WIRE_POLICY)


# Stand-ins for the recipient and Message-ID while a digest's message is built once for
# all its recipients (see Prepared). The address is a single word, so it wraps as one.
_STAND_IN = "recipient.stand-in.3c1f9e07@example.invalid"
_STAND_IN_ID = "<digest-stand-in.3c1f9e07a25b4d68@example.invalid>"
_QP_WIDTH = SMTP.max_line_length or 78  # what set_content passes (78 in the SMTP policy)
_HTML_SAFE = frozenset("&<>\"'\xa0")


_DOT_ATOM = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
_PLAIN = {
    "To": re.compile(f"{_DOT_ATOM}@{_DOT_ATOM}"),
    "Message-ID": re.compile(f"<{_DOT_ATOM}@{_DOT_ATOM}>"),
}


def _header(name: str, value: str) -> bytes:
    """One header as ``msg[name] = value`` stores and ``to_bytes`` writes it (folded, CRLF).
    header_store_parse refuses CR and LF, as setting the header does.

    A plain address or Message-ID that fits on the line is written as it is, which is
    what the email package's parser and folder make of it (tests/test_email.py checks)
    at a tenth of the cost: parsing the two was most of what a recipient costs."""
    plain = _PLAIN.get(name)
    if plain is not None and len(name) + 2 + len(value) <= _QP_WIDTH and plain.fullmatch(value):
        return f"{name}: {value}\r\n".encode("ascii")
    return SMTP.fold_binary(*SMTP.header_store_parse(name, value))


def _qp(text: str) -> bytes:
    """``text`` as set_content(cte="quoted-printable") encodes it and the generator writes
    it. Quoted-printable works line by line, so pieces that start and end at line
    boundaries encode to pieces of the whole."""
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    encoded = quoprimime.body_encode(body.decode("latin-1"), _QP_WIDTH)
    return encoded.replace("\n", "\r\n").encode("ascii")


# The shared rendering cut per recipient (a module of its own for size; imported last:
# it builds on everything above).
from digest.render.email_shared import Prepared  # noqa: E402

__all__ = ["EmailSettings", "Layout", "Personal", "Prepared", "Wire", "layout", "message", "to_bytes"]
