"""Pure text helpers shared by the parser and the renderers: code links in abstracts."""

from __future__ import annotations

import re

from digest import latex

# A URL runs until white space, a brace (the LaTeX artefact ``url{url}``) or an angle bracket.
_URL = re.compile(r"https?://[^\s{}<>\"]+")
_ARTEFACT = re.compile(r"\{(https?://[^\s{}]*)\}")
_TRAILING = ".,;:!?'\""
# Characters XML 1.0 forbids (C0 controls but tab, CR and LF; surrogates; U+FFFE/U+FFFF).
# lxml refuses them outright, so one in a title would stop every feed from being written.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_OPENERS = {")": "(", "]": "["}


def counted(n: int, singular: str, plural: str = "") -> str:
    """``1 paper``, ``2 papers``: a count with its noun in the right number."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def displayable(text: str) -> str:
    """``text`` with every character XML cannot carry replaced by a space: safe for the
    feeds, the pages and the email alike."""
    return _NOT_XML.sub(" ", text)


def display(text: str) -> str:
    """``text`` as every output shows it: recognisable LaTeX turned into Unicode text
    (:func:`digest.latex.to_text`) and made :func:`displayable`. Identity (the paper
    key, GUIDs, anchors) stays on the original text."""
    return displayable(latex.to_text(text))


def _clean(url: str) -> str:
    """Drop trailing punctuation and closing brackets that have no opening one in the URL."""
    while url:
        last = url[-1]
        opener = _OPENERS.get(last)
        if last in _TRAILING or (opener and url.count(opener) < url.count(last)):
            url = url[:-1]
        else:
            break
    return url


def segments(text: str) -> tuple[tuple[str, str | None], ...]:
    """Split ``text`` into ``(piece, url)`` runs; ``url`` is None for plain text.

    A ``url{url}`` artefact is shown once; punctuation after a URL stays as text.
    Joining every piece gives ``text`` without the artefacts.
    """
    out: list[tuple[str, str | None]] = []
    pos = 0
    while match := _URL.search(text, pos):
        start = match.start()
        url = _clean(match.group())
        if not url.partition("://")[2]:
            out.append((text[pos : match.end()], None))
            pos = match.end()
            continue
        if start > pos:
            out.append((text[pos:start], None))
        out.append((url, url))
        pos = start + len(url)
        # The artefact follows the URL directly: ``https://a/b{https://a/b}``.
        artefact = _ARTEFACT.match(text, pos)
        if artefact and _clean(artefact.group(1)) == url:
            pos = artefact.end()
    if pos < len(text):
        out.append((text[pos:], None))
    # Merge adjacent plain runs so callers see one piece per gap between links.
    merged: list[tuple[str, str | None]] = []
    for piece, link in out:
        if link is None and merged and merged[-1][1] is None:
            merged[-1] = (merged[-1][0] + piece, None)
        else:
            merged.append((piece, link))
    return tuple(merged)


def links(text: str) -> tuple[str, ...]:
    """The distinct cleaned URLs in ``text``, in order of appearance."""
    if "http" not in text:
        return ()  # most abstracts: nothing the URL pattern could match
    # The URLs :func:`segments` finds, without building the runs: what a cleaned URL
    # leaves of its match is closing punctuation, where no other URL can start, and an
    # artefact ``{url}`` repeats a URL already seen.
    seen: dict[str, None] = {}
    for match in _URL.findall(text):
        url = _clean(match)
        if url.partition("://")[2]:
            seen.setdefault(url)
    return tuple(seen)


def plain(text: str) -> str:
    """``text`` with ``url{url}`` artefacts removed."""
    return "".join(piece for piece, _ in segments(text))


def fill(text: str, width: int, indent: str = "", first_indent: str | None = None) -> str:
    """``textwrap.fill(text, width, initial_indent=first_indent or indent,
    subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)``, same output.

    Text whose only white space is single spaces between words (every abstract seen so
    far) is wrapped by one regular expression, many times faster than textwrap's loop
    over chunks; anything else goes to textwrap itself.
    """
    first = indent if first_indent is None else first_indent
    room = width - len(indent)
    simple = room == width - len(first) and room > 0 and _SINGLE_SPACED.fullmatch(text)
    if not simple:
        import textwrap  # the general case: tabs, runs of spaces, other white space

        return textwrap.fill(
            text,
            width=width,
            initial_indent=first,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
    lines = [short or long for short, long in _line_pattern(room).findall(text)]
    return first + f"\n{indent}".join(lines)


# Words (runs of anything but white space) separated by single spaces, nothing else.
_SINGLE_SPACED = re.compile(r"\S+(?: \S+)*")
_LINE_PATTERNS: dict[int, re.Pattern[str]] = {}


def _line_pattern(room: int) -> re.Pattern[str]:
    # The longest run of whole words that fits, else one word too long to break.
    pattern = _LINE_PATTERNS.get(room)
    if pattern is None:
        pattern = _LINE_PATTERNS[room] = re.compile(rf"(.{{1,{room}}})(?: |$)|(\S+)(?: |$)")
    return pattern
