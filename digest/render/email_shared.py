"""Pure: one digest's email rendered once and cut per recipient (:class:`Prepared`).

Split from :mod:`digest.render.email` for size; ``Prepared`` is re-exported there.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr

from digest.render.email import (
    _HTML_SAFE,
    _LINK_SAFE,
    _STAND_IN,
    _STAND_IN_ID,
    EmailSettings,
    Personal,
    Wire,
    _assemble,
    _boundary,
    _context,
    _header,
    _personal_context,
    _qp,
    _scheme,
    _text_recipient_block,
    html_part,
    layout,
    message,
    text_part,
    to_bytes,
)
from digest.render.view import DigestView, PaperView

_STAND_IN_LINK = "3c1f9e07-link-stand-in-"  # + an index: each personal link's place


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
        shown = layout(settings, digest, papers, personal is not None)
        self._context = _context(settings, digest, shown, _STAND_IN, stand_in)
        text = text_part(settings, digest, papers, _STAND_IN, shown, stand_in)
        html = html_part(settings, digest, papers, _STAND_IN, shown, stand_in)
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
