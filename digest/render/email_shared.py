"""Pure: one digest's email rendered once and cut per recipient (:class:`Prepared`).

Split from :mod:`digest.render.email` for size; ``Prepared`` is re-exported there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email import quoprimime
from email.policy import SMTP
from email.utils import parseaddr

from digest.render.email import (
    _LINK_SAFE,
    EmailSettings,
    Personal,
    Wire,
    _assemble,
    _boundary,
    _context,
    _personal_context,
    _scheme,
    _text_recipient_block,
    html_part,
    message,
    text_part,
    to_bytes,
)
from digest.render.view import DigestView, PaperView

# Stand-ins for the recipient and Message-ID while a digest's message is built once for
# all its recipients (see Prepared). The address is a single word, so it wraps as one.
_STAND_IN = "recipient.stand-in.3c1f9e07@example.invalid"
_STAND_IN_ID = "<digest-stand-in.3c1f9e07a25b4d68@example.invalid>"
_STAND_IN_LINK = "3c1f9e07-link-stand-in-"  # + an index: each personal link's place
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


def _unsubscribe_header(urls: Sequence[str]) -> bytes:
    """List-Unsubscribe as :func:`_assemble` writes it for personal links."""
    value = ", ".join(f"<{u}>" for u in urls)
    if all(_LINK_SAFE.fullmatch(u) for u in urls):
        return f"List-Unsubscribe: {value}\r\n".encode("ascii")
    return _header("List-Unsubscribe", value)


def _lines_around(text: str, needles: Sequence[str]) -> tuple[int, int]:
    """Start of the first and end (after its newline) of the last line of ``text``
    holding one of ``needles``."""
    ats = [at for n in needles if (at := text.find(n)) >= 0]
    last = max(text.rfind(n) for n in needles)
    end = text.find("\n", last)
    return text.rfind("\n", 0, min(ats)) + 1, len(text) if end < 0 else end + 1


def _stand_in_personal(personal: Personal) -> Personal:
    """``personal`` with every link replaced by a stand-in of the same shape."""
    urls = tuple(
        f"{_scheme(u)}?subject={_STAND_IN_LINK}{i}"
        if u.startswith("mailto:")
        else f"https://{_STAND_IN_LINK}{i}"
        for i, u in enumerate(personal.unsubscribe)
    )
    prefs = f"https://{_STAND_IN_LINK}p" if personal.preferences is not None else None
    return Personal(urls, prefs)


def _links(personal: Personal) -> list[str]:
    return [*personal.unsubscribe, *([personal.preferences] if personal.preferences is not None else [])]


class Prepared:
    """One digest's email rendered once for all its recipients.

    Only the To and Message-ID headers, the boundary (from the Message-ID), the text
    part's ``recipient`` block and the HTML part's line naming the recipient differ
    between recipients. The message is built and serialised once with stand-ins for
    them; :meth:`wire` puts each recipient's values, encoded the way the email package
    encodes them, into that serialisation: byte for byte what :func:`message` and
    :func:`to_bytes` give (tests/test_email.py compares the two). A recipient whose
    address HTML-escaping or the CSS inliner would rewrite (quotes, ``&``, ``<``,
    control characters) gets the message built in full, as does every recipient when a
    stand-in is not found exactly where expected.
    """

    def __init__(
        self,
        settings: EmailSettings,
        digest: DigestView,
        papers: Sequence[PaperView],
        personal: Personal | None = None,
    ) -> None:
        self.settings, self.digest, self.papers = settings, digest, papers
        # With personal links, they are stand-ins too, in the same places as the
        # recipient's: the List-Unsubscribe header, the text part's recipient block and
        # the HTML footer lines.
        self._shape = personal.shape if personal is not None else None
        stand_in = _stand_in_personal(personal) if personal is not None else None
        self._stand_in_links = _links(stand_in) if stand_in is not None else []
        self._context = _context(settings, digest, papers, _STAND_IN, stand_in)
        text = text_part(settings, digest, papers, _STAND_IN, stand_in)
        html = html_part(settings, digest, papers, _STAND_IN, stand_in)
        msg = _assemble(settings, digest, papers, _STAND_IN, _STAND_IN_ID, text, html, stand_in)
        self._from = parseaddr(str(msg["From"]))[1]
        start, end = _lines_around(html, [_STAND_IN, *self._stand_in_links])
        self._html_lines = html[start:end]
        slots = {
            "to": _header("To", _STAND_IN),
            "id": _header("Message-ID", _STAND_IN_ID),
            "text": _qp(_text_recipient_block(self._context)),
            "html": _qp(self._html_lines),
            "boundary": _boundary(_STAND_IN_ID).encode("ascii"),
        }
        if stand_in is not None:
            slots["unsub"] = _unsubscribe_header(stand_in.unsubscribe)
        self._pieces = _split(to_bytes(msg), slots, _STAND_IN.encode("ascii"))

    @property
    def shared(self) -> bool:
        """Whether recipients with plain addresses get the shared serialisation."""
        return self._pieces is not None

    def wire(self, recipient: str, message_id: str, personal: Personal | None = None) -> Wire:
        """The message for ``recipient``, as ``Wire.of(message(...))`` would give it.
        ``personal`` must have the shape the rendering was prepared with, else (or for
        links with characters HTML would escape) the message is built in full."""
        links = _links(personal) if personal is not None else []
        if (
            self._pieces is None
            or not recipient.isprintable()
            or not _HTML_SAFE.isdisjoint(recipient)
            or (personal.shape if personal is not None else None) != self._shape
            or not all(_LINK_SAFE.fullmatch(link) for link in links)
        ):
            msg = message(self.settings, self.digest, self.papers, recipient, message_id, personal)
            return Wire(to_bytes(msg), message_id, self._from)
        html = self._html_lines.replace(_STAND_IN, recipient)
        for stand_in, link in zip(self._stand_in_links, links, strict=True):
            html = html.replace(stand_in, link)
        personal_context = _personal_context(self.settings, personal) if personal is not None else {}
        text = _text_recipient_block({**self._context, **personal_context, "recipient": recipient})
        values = {
            "to": _header("To", recipient),
            "id": _header("Message-ID", message_id),
            "text": _qp(text),
            "html": _qp(html),
            "boundary": _boundary(message_id).encode("ascii"),
        }
        if personal is not None:
            values["unsub"] = _unsubscribe_header(personal.unsubscribe)
        data = b"".join(piece if isinstance(piece, bytes) else values[piece[0]] for piece in self._pieces)
        return Wire(data, message_id, self._from)


def _split(data: bytes, slots: dict[str, bytes], stand_in: bytes) -> list[bytes | tuple[str]] | None:
    """``data`` cut into literal pieces and the slots where each of ``slots`` occurs: the
    boundary four times (the header and three delimiters), the others once each, at a
    line start. None when that is not so, or the stand-in is left anywhere else."""
    found: list[tuple[int, int, str]] = []
    for name, needle in slots.items():
        at = data.find(needle)
        while at >= 0:
            found.append((at, at + len(needle), name))
            at = data.find(needle, at + len(needle))
    counts = {name: sum(1 for _, _, n in found if n == name) for name in slots}
    if counts != {name: 4 if name == "boundary" else 1 for name in slots}:
        return None
    found.sort()
    pieces: list[bytes | tuple[str]] = []
    offset = 0
    for start, end, name in found:
        if start < offset or (name != "boundary" and data[start - 2 : start] != b"\r\n"):
            return None
        pieces += [data[offset:start], (name,)]
        offset = end
    pieces.append(data[offset:])
    if any(isinstance(p, bytes) and (stand_in in p or _STAND_IN_LINK.encode() in p) for p in pieces):
        return None
    return pieces
