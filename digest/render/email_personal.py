"""Pure: a subscriber's own email, their papers in their order (issue 15).

A reader with a profile gets "Top picks for you": their best papers in full (at most
their ``max_papers``), each saying why it is there (the ranker's reasons) and offering
"more like this" / "less like this" links; then "Also new": the rest by title, best
first, papers hitting an excluded keyword last; then, past ``email.max_bytes``, the rest
counted on one line linking to the digest's archive page (a weekly email, whose papers
come from several digests: the archive's index). With ``only_top`` the picks alone.
The frame (header, footer, headers) is the one of every email (``email_personal.html``
and ``.txt`` extend ``email.html`` and ``email.txt``).

Every message differs, so nothing is shared between readers but what a paper shows:
:class:`PersonalDigest` renders each paper's blocks once for a digest and encodes them
(quoted-printable works line by line, so pieces made of whole lines encode to pieces of
the whole); a reader costs their own lines, the frame and the headers.
:meth:`PersonalDigest.wire` writes the bytes :meth:`PersonalDigest.message` would give
(``tests/test_email_personal.py`` compares the two), by the splice of
:mod:`digest.render.email_shared`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import parseaddr
from functools import cache
from typing import Any

from markupsafe import escape

from digest import identity
from digest.render import budget, qp, templates
from digest.render.email import (
    _QP_WIDTH,
    _STAND_IN,
    _STAND_IN_ID,
    EmailPaper,
    EmailSettings,
    Personal,
    Wire,
    _assemble,
    _blocks,
    _boundary,
    _header,
    _personal_context,
    _qp,
    _text_environment,
    _wrap,
    email_paper,
    one_line,
    preheader,
    to_bytes,
)
from digest.render.email_shared import _split, _stand_in_personal, _unsubscribe_header
from digest.render.view import DigestView, PaperView

DEFAULT_SUBJECT = "{picks} pick{ps} for you · {count} new paper{s} · {date}"
_MARK = "@@3c1f9e07-papers@@"
_WHY, _MORE, _LESS = "@@3c1f9e07-why@@", "@@3c1f9e07-more@@", "@@3c1f9e07-less@@"
_SUBJECT_STAND_IN = "subject-stand-in-3c1f9e07"
_TEXT_STAND_IN = "text-part-stand-in-3c1f9e07\n"
_HTML_STAND_IN = "html-part-stand-in-3c1f9e07\n"


@dataclass(frozen=True, slots=True)
class Choice:
    """One paper of a reader's email: its position in the digest's papers and the
    ranker's reasons (``excluded: …`` when an excluded keyword hit it)."""

    index: int
    reasons: tuple[str, ...] = ()

    @property
    def why(self) -> str:
        return " · ".join(r for r in self.reasons if not r.startswith("excluded: "))

    @property
    def note(self) -> str:
        return " · ".join(r for r in self.reasons if r.startswith("excluded: "))


@dataclass(frozen=True, slots=True)
class Reader:
    """What one subscriber's email is made of: ``picks`` (best first, shown in full while
    they fit) and ``also`` (the rest, by title; empty with only-top), their own links,
    their page and ``votes``: paper key → its "more like this" and "less like this"
    links, asked only for the papers shown (None when the pages are not served)."""

    recipient: str
    message_id: str
    links: Personal
    picks: tuple[Choice, ...]
    also: tuple[Choice, ...] = ()
    page_url: str | None = None
    votes: Callable[[str], tuple[str, str]] | None = None


@dataclass(frozen=True, slots=True)
class Shown:
    """A reader's email laid out: picks in full, titles, and the count of the rest."""

    full: tuple[Choice, ...]
    titles: tuple[Choice, ...]
    rest: int


@dataclass(frozen=True, slots=True)
class Laid:
    """:meth:`PersonalDigest.layout`'s answer: what is shown, the subject, the HTML part's
    body as sent, and the reader's vote links by paper."""

    shown: Shown
    subject: str
    body: list[bytes]
    votes: Callable[[Choice], tuple[str, str] | None]


NO_PICKS = "No paper here matches what you asked for closely enough to be a top pick."


def subject_line(template: str, digest: DigestView, first: str, picks: int) -> str:
    """``email.personal_subject`` filled in (the placeholders of ``email.subject`` and
    ``{picks}``/``{ps}``)."""
    return one_line(
        template.format(
            count=digest.count,
            s="" if digest.count == 1 else "s",
            date=digest.day_label,
            title=first,
            picks=picks or "No",
            ps="" if picks == 1 else "s",
        )
    )


@cache
def _personal_blocks() -> Any:
    return templates.environment().get_template("email_personal_blocks.html").module


@cache
def _text_blocks() -> Any:
    return _text_environment().get_template("email_personal_blocks.txt").module


def _cut(rendered: str, marker: str) -> tuple[str, str]:
    before, found, after = rendered.partition(marker + "\n")
    if not found or marker in after:
        raise ValueError(f"the template must hold {marker!r} once, on a line of its own")
    return before, after


class PersonalDigest:
    """One digest's papers (or a week's, dated by the digest carrying them) prepared for
    any number of readers' own emails."""

    def __init__(
        self,
        settings: EmailSettings,
        personal_subject: str,
        digest: DigestView,
        papers: Sequence[PaperView],
        rest_url: str | None = None,
    ) -> None:
        self.settings, self.subject, self.digest = settings, personal_subject, digest
        self.papers = tuple(papers)
        # Where the line counting the papers left out links: the digest's page, or (a
        # weekly email, whose papers come from several digests) the archive's index.
        self.rest_url = rest_url or digest.url
        blocks, mine = _blocks(), _personal_blocks()
        self._qp_cache: dict[str, bytes] = {}
        self._full: dict[int, tuple[EmailPaper, str]] = {}
        self._text: dict[tuple[int, bool], tuple[str, str]] = {}
        self._why_line = str(mine.why_line(_WHY))
        self._votes_line = str(mine.votes_line(_MORE, _LESS))
        self._close = str(mine.pick_close())
        self._picks_open = str(mine.picks_open())
        self._no_picks = str(mine.no_picks(NO_PICKS))
        self._titles_close = str(blocks.titles_close())
        self._tail_votes = str(mine.also_tail("", _MORE, _LESS))
        self._tail_plain = str(mine.also_tail("", None, None))
        self._items = [str(mine.also_item(p)) for p in self.papers]
        self._skeletons: dict[object, list[bytes | tuple[str]] | None] = {}
        self._subjects: dict[str, bytes] = {}

    # --- pieces -----------------------------------------------------------------------------

    def _enc(self, piece: str, keep: bool = False) -> bytes:
        """``piece`` (whole lines) as the quoted-printable body holds it; kept for reuse
        when it is the same for every reader."""
        if not piece:
            return b""
        if keep:
            hit = self._qp_cache.get(piece)
            if hit is None:
                hit = self._qp_cache[piece] = qp.encode(piece, _QP_WIDTH)
            return hit
        return qp.encode(piece, _QP_WIDTH)

    def _paper(self, i: int) -> tuple[EmailPaper, str]:
        if i not in self._full:
            e = email_paper(self.papers[i], self.settings.abstract_chars)
            self._full[i] = (e, str(_blocks().paper_lines(e)))
        return self._full[i]

    def _pick_lines(self, c: Choice, votes: tuple[str, str] | None) -> str:
        why = self._why_line.replace(_WHY, str(escape(c.why))) if c.why else ""
        if votes is None:
            return why
        more, less = (str(escape(v)) for v in votes)
        return why + self._votes_line.replace(_MORE, more).replace(_LESS, less)

    def _tail(self, c: Choice, votes: tuple[str, str] | None) -> str:
        if c.note:
            more, less = votes or (None, None)
            return str(_personal_blocks().also_tail(c.note, more, less))
        if votes is None:
            return self._tail_plain
        more, less = (str(escape(v)) for v in votes)
        return self._tail_votes.replace(_MORE, more).replace(_LESS, less)

    def _full_pieces(self, c: Choice, votes: tuple[str, str] | None) -> list[tuple[str, bool]]:
        return [(self._paper(c.index)[1], True), (self._pick_lines(c, votes), False), (self._close, True)]

    def _title_pieces(self, c: Choice, votes: tuple[str, str] | None) -> list[tuple[str, bool]]:
        return [(self._items[c.index], True), (self._tail(c, votes), not c.note and votes is None)]

    def _votes(self, reader: Reader) -> Callable[[Choice], tuple[str, str] | None]:
        """The reader's vote links of a paper, each made once."""
        made: dict[int, tuple[str, str]] = {}
        ask = reader.votes
        if ask is None:
            return lambda c: None

        def votes(c: Choice) -> tuple[str, str]:
            if c.index not in made:
                made[c.index] = ask(self.papers[c.index].key)
            return made[c.index]

        return votes

    # --- layout -----------------------------------------------------------------------------

    def _frame(self, reader: Reader, picks: int) -> tuple[str, str, str]:
        """(subject, top, bottom) of the HTML part for ``reader`` with ``picks`` in full."""
        order = [self.papers[c.index] for c in (*reader.picks, *reader.also)]
        first = self.papers[reader.picks[0].index].title if reader.picks else ""
        subject = subject_line(self.subject, self.digest, first, picks)
        html = templates.render("email_personal.html", **self._context(reader, subject, order))
        top, bottom = _cut(html, _MARK)
        return subject, top, bottom

    def _context(self, reader: Reader, subject: str, order: Sequence[PaperView]) -> dict[str, object]:
        return {
            "title": self.settings.title,
            "language": self.settings.language,
            "digest": self.digest,
            "recipient": reader.recipient,
            "subject": subject,
            "preheader": preheader(self.digest, order),
            "feed_url": identity.site_url(self.settings.base_url, "feed.xml"),
            "archive_url": self.settings.base_url,
            "papers_marker": _MARK,
            "page_url": reader.page_url,
            **_personal_context(self.settings, reader.links),
        }

    def layout(self, reader: Reader) -> Laid:
        """What ``reader``'s email shows within ``email.max_bytes``, its subject, and the
        HTML part's body as sent (quoted-printable pieces)."""
        mine = _personal_blocks()
        votes = self._votes(reader)
        items = (*reader.picks, *reader.also)
        n = len(items)
        subject, top, bottom = self._frame(reader, len(reader.picks))
        frame = len(self._enc(top)) + len(self._enc(bottom))
        frame += len(self._enc(self._picks_open if reader.picks else self._no_picks, True))
        encoded: dict[tuple[bool, int], list[bytes]] = {}

        def enc(c: Choice, full: bool) -> list[bytes]:
            if (full, c.index) not in encoded:
                pieces = self._full_pieces(c, votes(c)) if full else self._title_pieces(c, votes(c))
                encoded[full, c.index] = [self._enc(p, k) for p, k in pieces]
            return encoded[full, c.index]

        costs: budget.Costs[Choice] = budget.Costs(
            room=self.settings.max_bytes - frame,
            full=lambda c: sum(map(len, enc(c, True))),
            title=lambda c: sum(map(len, enc(c, False))),
            titles_section=len(self._enc(str(mine.also_open(n, bool(reader.picks)))))
            + len(self._enc(self._titles_close, True)),
            rest_line=len(self._enc(str(_blocks().rest_line(n, self.rest_url)))),
        )
        chosen = budget.split(items, costs, len(reader.picks))
        shown = Shown(chosen.full, chosen.titles, len(chosen.rest))
        if len(shown.full) != len(reader.picks):  # fewer picks fit: the subject says so
            subject, top, bottom = self._frame(reader, len(shown.full))
        body: list[bytes] = [self._enc(top)]
        if shown.full:
            body.append(self._enc(self._picks_open, True))
        elif not reader.picks:
            body.append(self._enc(self._no_picks, True))
        for c in shown.full:
            body += enc(c, True)
        if shown.titles:
            body.append(self._enc(str(mine.also_open(len(shown.titles) + shown.rest, bool(reader.picks)))))
            for c in shown.titles:
                body += enc(c, False)
            body.append(self._enc(self._titles_close, True))
        if shown.rest:
            body.append(self._enc(str(_blocks().rest_line(shown.rest, self.rest_url))))
        body.append(self._enc(bottom))
        return Laid(shown, subject, body, votes)

    def _html(self, reader: Reader, laid: Laid) -> str:
        """The HTML part as a string (what :meth:`layout` encodes piece by piece)."""
        mine, shown, votes = _personal_blocks(), laid.shown, laid.votes
        _, top, bottom = self._frame(reader, len(shown.full))
        out = [top, self._picks_open if shown.full else "" if reader.picks else self._no_picks]
        for c in shown.full:
            out += [p for p, _ in self._full_pieces(c, votes(c))]
        if shown.titles:
            out.append(str(mine.also_open(len(shown.titles) + shown.rest, bool(reader.picks))))
            out += [p for c in shown.titles for p, _ in self._title_pieces(c, votes(c))]
            out.append(self._titles_close)
        if shown.rest:
            out.append(str(_blocks().rest_line(shown.rest, self.rest_url)))
        return "".join([*out, bottom])

    # --- the text part ----------------------------------------------------------------------

    def _paper_text(self, i: int, full: bool) -> tuple[str, str]:
        """A paper's text lines (in full, or its title and link), as (the first line, the
        rest): the first is numbered by the reader's order."""
        if (i, full) not in self._text:
            blocks, view = _text_blocks(), self.papers[i]
            text = str(blocks.paper_text(self._paper(i)[0]) if full else blocks.title_text(view))
            first, _, rest = text.partition("\n")
            self._text[i, full] = first, rest
        return self._text[i, full]

    def _text_pieces(self, reader: Reader, laid: Laid) -> list[tuple[str, bool]]:
        """The text part in pieces of whole lines, each with whether it is the same for
        every reader: the same papers in the same order as the HTML part."""
        shown, votes = laid.shown, laid.votes
        order = [self.papers[c.index] for c in (*reader.picks, *reader.also)]
        frame = _text_environment().get_template("email_personal.txt")
        top, bottom = _cut(frame.render(**self._context(reader, laid.subject, order)), _MARK)
        out = [(top, False)]
        if shown.full:
            out.append(("\n\nTop picks for you\n-----------------\n", True))
        elif not reader.picks:
            out.append(("\n\n" + NO_PICKS + "\n", True))
        number = 0
        for full, group in ((True, shown.full), (False, shown.titles)):
            if not full and group:
                count = len(shown.titles) + shown.rest
                more = " more" if reader.picks else ""
                heading = f"Also new: {count}{more} paper{'' if count == 1 else 's'}, best first for you"
                out.append((f"\n\n{heading}\n{'-' * len(heading)}\n", False))
            for c in group:
                number += 1
                first, rest = self._paper_text(c.index, full)
                out += [(f"\n{number}. {first}\n", False), (rest, True)]
                mine = _wrap("Why you see this: " + c.why, "   ") if full and c.why else ""
                if c.note:
                    mine = _wrap(f"({c.note})", "   ")
                out.append(((mine + "\n" if mine else "") + _text_votes(votes(c)), False))
        if shown.rest:
            rest_n = shown.rest
            line = f"\n\n{rest_n} more paper{'' if rest_n == 1 else 's'} on the archive page:\n"
            out.append((f"{line}   {self.rest_url}\n", False))
        out.append((bottom, False))
        return out

    def text(self, reader: Reader, laid: Laid) -> str:
        """The text part (what :meth:`wire` encodes piece by piece)."""
        return "".join(p for p, _ in self._text_pieces(reader, laid))

    # --- the message ------------------------------------------------------------------------

    def message(self, reader: Reader) -> EmailMessage:
        """``reader``'s email built by the email package: the reference :meth:`wire` keeps to."""
        laid = self.layout(reader)
        settings = replace(self.settings, subject=laid.subject.replace("{", "{{").replace("}", "}}"))
        text = self.text(reader, laid)
        html = self._html(reader, laid)
        return _assemble(
            settings, self.digest, [], reader.recipient, reader.message_id, text, html, reader.links
        )

    def wire(self, reader: Reader) -> Wire:
        """``Wire.of(self.message(reader))``, written from the pieces."""
        laid = self.layout(reader)
        pieces = self._skeleton(reader.links)
        if pieces is None or not _plain(reader.recipient):
            msg = self.message(reader)
            return Wire(to_bytes(msg), reader.message_id, parseaddr(str(msg["From"]))[1])
        values = {
            "to": _header("To", reader.recipient),
            "id": _header("Message-ID", reader.message_id),
            "subject": self._subject_header(laid.subject),
            "unsub": _unsubscribe_header(reader.links.unsubscribe),
            "text": b"".join(self._enc(p, k) for p, k in self._text_pieces(reader, laid)),
            "html": b"".join(laid.body),
            "boundary": _boundary(reader.message_id).encode("ascii"),
        }
        data = b"".join(p if isinstance(p, bytes) else values[p[0]] for p in pieces)
        return Wire(data, reader.message_id, parseaddr(self.settings.sender)[1])

    def _subject_header(self, subject: str) -> bytes:
        """The Subject header as written (readers' subjects repeat: kept)."""
        if subject not in self._subjects:
            self._subjects[subject] = _header("Subject", subject)
        return self._subjects[subject]

    def _skeleton(self, links: Personal) -> list[bytes | tuple[str]] | None:
        """The message for ``links``' shape with a stand-in in every place a reader's own
        bytes go, cut there (None: the stand-ins were not found where expected)."""
        shape = links.shape
        if shape not in self._skeletons:
            stand_in = _stand_in_personal(links)
            settings = replace(self.settings, subject=_SUBJECT_STAND_IN)
            msg = _assemble(
                settings, self.digest, [], _STAND_IN, _STAND_IN_ID, _TEXT_STAND_IN, _HTML_STAND_IN, stand_in
            )
            slots = {
                "to": _header("To", _STAND_IN),
                "id": _header("Message-ID", _STAND_IN_ID),
                "subject": _header("Subject", _SUBJECT_STAND_IN),
                "unsub": _unsubscribe_header(stand_in.unsubscribe),
                "text": _qp(_TEXT_STAND_IN),
                "html": _qp(_HTML_STAND_IN),
                "boundary": _boundary(_STAND_IN_ID).encode("ascii"),
            }
            self._skeletons[shape] = _split(to_bytes(msg), slots, _STAND_IN.encode("ascii"))
        return self._skeletons[shape]


def _plain(recipient: str) -> bool:
    return recipient.isprintable() and not any(c in recipient for c in "&<>\"'\xa0")


def _text_votes(votes: tuple[str, str] | None) -> str:
    if votes is None:
        return ""
    return f"   More like this: {votes[0]}\n   Less like this: {votes[1]}\n"
