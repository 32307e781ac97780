"""Pure parser: the text of a "Daily Papers" listing page → papers.

Reads nothing itself: callers hand in bytes (or byte lines, to stream a large file).
Two layouts parse (see docs/DESIGN.md, "The input"): *spaced* (blank lines between title and abstract)
and *compact* (``Subscribe`` glued to the first title, no blank lines); a dump whose
content is a JSON list is the Hugging Face daily-papers format (:mod:`digest.parse_json`). Every
failure is a :class:`DumpError` naming ``file:line``.

Encoding policy: UTF-8, with or without a BOM; UTF-16 with a BOM (decoded as a stream).
Anything else (Latin-1, Windows-1252, binary) is refused rather than guessed, naming the
line and column of the first bad byte, because a wrong guess would store mangled titles,
and the title is the paper's identity forever. A NUL byte means binary data: refused.
Line ends: LF, CRLF and lone CR. Control characters (form feed, vertical tab, …) are
white space. A line over :data:`MAX_LINE_BYTES`, or an abstract joined past
:data:`MAX_ABSTRACT_CHARS`, is not a listing page: refused, so memory stays bounded.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Iterable, Iterator

from digest import parse_json, text
from digest.errors import DumpError
from digest.identity import paper_key
from digest.model import Layout, Paper, ParsedDump

FURNITURE = frozenset(
    {
        "new",
        "get trending papers in your email inbox!",
        "get trending papers in your email inbox once a day!",
        "subscribe",
        "daily papers",
        "byak and the research community",
    }
)
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
_DATE = re.compile(rf"^(?:{_MONTHS})[a-z]*\.? \d{{1,2}}(?:, \d{{4}})?$", re.IGNORECASE)
_GLUED = "Subscribe"
_CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A line is a paragraph (an abstract) rather than a title from this length or word count.
_PARAGRAPH_CHARS = 300
_PARAGRAPH_WORDS = 40
_BOMS_16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# No line of a real listing page comes near this (the longest abstracts are a few KB); a
# longer one is not a page, and refusing it keeps a one-line 200 MB file out of memory.
MAX_LINE_BYTES = 8 * 1024 * 1024
# A line made only of markup tags (``<!DOCTYPE html>``, ``<head>``, ``</body>``,
# ``<h1 class="x">``): a saved HTML page or an error page, not the text of one.
# Also an element whole on one line (``<title>Not found</title>``).
_MARKUP_LINE = re.compile(
    r"^(?:(?:<(?:![A-Za-z-]|/?[A-Za-z][\w:-]*(?=[\s/>])|\?xml\b)[^<>]*>\s*)+"
    r"|<([A-Za-z][\w:-]*)(?=[\s>])[^<>]*>.*</\1\s*>)$"
)
# A title followed by paragraph after paragraph is joined into one abstract up to this size.
MAX_ABSTRACT_CHARS = 8 * 1024 * 1024


# The bytes that send a line off the fast path: NUL, CR and what _CONTROL matches (in
# UTF-8 these bytes never occur inside a multi-byte character).
_ODD_BYTES = bytes([0x00, 0x0D, *range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def _is_paragraph(line: str) -> bool:
    return len(line) >= _PARAGRAPH_CHARS or line.count(" ") + 1 >= _PARAGRAPH_WORDS


def _split_cr(line: str) -> list[str]:
    """One LF-terminated line → its CR-separated parts (CRLF gives one part, lone CRs more)."""
    if line.endswith("\r"):
        line = line[:-1]
    return line.split("\r") if "\r" in line else [line]


def decode_runs(raw: Iterable[bytes], name: str) -> Iterator[tuple[int, list[str]]]:
    """Byte chunks → ``(number of the chunk's first line, its lines)``, control
    characters (form feed, vertical tab, …) turned into spaces: a page's text has none,
    one pasted in is white space to a reader, and must not reach the XML feeds. The
    lines are not stripped yet (a CRLF line still ends in its CR).

    A chunk holds one line or many, and every chunk but the last ends at a line end
    (:func:`digest.sources.read_chunks`; a binary file's lines do too). Accepts LF, CRLF
    and lone CR line ends and a UTF-8 BOM; a UTF-16 file with a BOM is decoded
    incrementally, so memory stays bounded for any size. Raises DumpError for a NUL byte,
    bytes that are not UTF-8, or a line longer than :data:`MAX_LINE_BYTES`, after
    handing on the lines before it.
    """
    chunks = iter(raw)
    first = next(chunks, b"")
    if first.startswith(_BOMS_16):
        for number, line in _decode_utf16(first, chunks, name):
            yield number, [line]
        return
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8) :]
    number = 0
    for chunk in _chain(first, chunks):
        # Deleting the odd bytes is one pass in C. The common chunk has none but the CRs
        # of CRLF line ends, and no line too long: decoding it is the only check left.
        odd = len(chunk) - len(chunk.translate(None, _ODD_BYTES))
        if len(chunk) <= MAX_LINE_BYTES and (not odd or odd == chunk.count(b"\r\n")):
            try:
                lines = chunk.decode("utf-8").split("\n")
            except UnicodeDecodeError:
                pass  # reported with its line and column below
            else:
                if not lines[-1]:
                    lines.pop()  # the chunk ended at a line end
                yield number + 1, lines
                number += len(lines)
                continue
        # Line by line, LF, CRLF and lone CR alike. The lines before a bad one are handed
        # on first: the parser may find a fault of its own there, and the first fault
        # in the file is the one to name, however the file was cut into chunks.
        checked: list[str] = []
        for piece in chunk.splitlines():
            number += 1
            try:
                checked.append(_checked_line(piece, name, number))
            except DumpError:
                if checked:
                    yield number - len(checked), checked
                raise
        yield number - len(checked) + 1, checked


def _checked_line(piece: bytes, name: str, number: int) -> str:
    """One line that failed the fast path: its text, or DumpError naming what is wrong."""
    if len(piece) > MAX_LINE_BYTES:
        _too_long(name, number)
    if b"\x00" in piece:
        raise DumpError(name, number, "binary data (NUL byte); a dump must be the text of a page")
    try:
        decoded = piece.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = piece[err.start]
        column = len(piece[: err.start].decode("utf-8")) + 1  # in characters, as an editor shows
        raise DumpError(
            name,
            number,
            f"not UTF-8 (byte 0x{bad:02x} at column {column}); "
            "save the page as UTF-8 (Latin-1 and other encodings are not guessed)",
        ) from err
    return _CONTROL.sub(" ", decoded)


def _too_long(name: str, number: int) -> None:
    raise DumpError(
        name,
        number,
        f"a line longer than {MAX_LINE_BYTES} bytes; this is not the text of a listing page",
    )


# Undecodable UTF-16 is marked in the text with a noncharacter and refused on the line it
# falls on, so the line named does not depend on how the bytes were split into reads.
_BAD_UTF16 = "\uffff"


def _mark_bad_utf16(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return _BAD_UTF16, err.end


codecs.register_error("digest-mark-bad-utf16", _mark_bad_utf16)


def _decode_utf16(first: bytes, rest: Iterator[bytes], name: str) -> Iterator[tuple[int, str]]:
    """UTF-16 (BOM first) → numbered lines. Byte lines split on 0x0A, which may fall inside
    a UTF-16 code unit, so the bytes are decoded as one stream and split afterwards."""
    decoder = codecs.getincrementaldecoder("utf-16")(errors="digest-mark-bad-utf16")
    pending = ""
    number = 0

    def emit(line: str) -> Iterator[tuple[int, str]]:
        nonlocal number
        for part in _split_cr(line):
            number += 1
            if "\x00" in part:
                raise DumpError(name, number, "binary data (NUL byte); a dump must be text")
            if _BAD_UTF16 in part:
                raise DumpError(
                    name,
                    number,
                    "broken UTF-16 (a lone surrogate or a cut-off character); save the page as UTF-8",
                )
            if len(part) > MAX_LINE_BYTES // 2:
                _too_long(name, number)
            yield number, _CONTROL.sub(" ", part).rstrip()

    def lines_of(text: str, final: bool) -> Iterator[tuple[int, str]]:
        nonlocal pending
        pending += text
        *complete, pending = pending.split("\n")
        for line in complete:
            yield from emit(line)
        if len(pending) > MAX_LINE_BYTES // 2:  # two bytes a character
            _too_long(name, number + 1)
        if final and pending:
            yield from emit(pending)

    for chunk in _chain(first, rest):
        yield from lines_of(decoder.decode(chunk), final=False)
    yield from lines_of(decoder.decode(b"", final=True), final=True)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    return itertools.chain((first,), rest) if first else rest


class DumpParser:
    """Parses one dump; after iterating :meth:`papers`, ``layout``, ``listing_date``
    and ``warnings`` describe what was found.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.layout: Layout = "spaced"
        self.listing_date: str | None = None
        self.warnings: list[str] = []

    def _body(self, runs: Iterator[tuple[int, list[str]]]) -> Iterator[list[tuple[int, str]]]:
        """Drops the page furniture before the first title; yields the non-blank body
        lines, stripped and numbered, a list per run of decoded lines."""
        saw_line = False
        blank_in_body = False
        in_header = True
        label_alone = False  # the Subscribe label had a line of its own: nothing is glued
        for first, lines in runs:
            start = 0
            if in_header:
                for at, raw_line in enumerate(lines):
                    line = raw_line.strip()  # control characters are spaces already (decode_runs)
                    if not line:
                        continue
                    saw_line = True
                    if line.casefold() in FURNITURE:
                        label_alone = label_alone or line == _GLUED
                        continue
                    if _DATE.match(line):
                        self.listing_date = line
                        continue
                    in_header = False
                    if line[:1] == "<" and _MARKUP_LINE.match(line):
                        self._markup(first + at, line)
                    if not label_alone and line.startswith(_GLUED) and len(line) > len(_GLUED):
                        # Compact pages glue the subscribe button's label to the first title.
                        self.layout = "compact"
                        line = line[len(_GLUED) :].strip()
                    yield [(first + at, line)]
                    start = at + 1
                    break
                else:
                    continue  # the whole run was header
            # Body: a run at a time, in C as far as possible.
            numbered = zip(itertools.count(first + start), map(str.strip, lines[start:] if start else lines))
            body = [(number, text) for number, text in numbered if text]
            if len(body) < len(lines) - start:
                blank_in_body = True
            if body:
                yield body
        if not saw_line:
            raise DumpError(self.name, 0, "empty file; a dump is the saved text of a listing page")
        if in_header:
            raise DumpError(
                self.name, 0, "only page furniture, no papers; was the page saved before it loaded?"
            )
        if not blank_in_body:
            self.layout = "compact"

    def _markup(self, number: int, line: str) -> None:
        raise DumpError(
            self.name,
            number,
            f"HTML markup ({line[:40]!r}), not the text of a listing page; save the page as "
            "text (or copy its text into a .txt file)",
        )

    def papers(self, raw: Iterable[bytes]) -> Iterator[Paper]:
        """Yields every paper of the dump in page order, each key once. A dump whose content
        is the daily-papers JSON list is handed to :class:`~digest.parse_json.JsonDumpParser`."""
        raw, is_json = parse_json.sniff(raw)
        if is_json:
            yield from self._json(raw)
            return
        runs = self._body(decode_runs(raw, self.name))
        # Body lines read but not yet used: buf[i] is the next one. Decisions look at most
        # three lines ahead (a title, its abstract, what follows), so buf is topped up to
        # three before each title.
        buf: list[tuple[int, str]] = []
        i = 0
        more = True
        seen: set[str] = set()
        # The paper being read: (title line, title, abstract paragraphs). It is built only
        # when the next title starts, so extra paragraphs join without re-copying the text.
        last: tuple[int, str, list[str]] | None = None
        last_size = 0
        started = False  # a title has been read (even one skipped as a duplicate)
        while True:
            while more and len(buf) - i < 3:
                run = next(runs, None)
                if run is None:
                    more = False
                else:
                    buf, i = buf[i:] + run, 0
            if i >= len(buf):
                break
            number, title = buf[i]
            i += 1
            if title[:1] == "<" and _MARKUP_LINE.match(title):
                self._markup(number, title)
            if _is_paragraph(title):
                if not started:
                    raise DumpError(
                        self.name,
                        number,
                        f"expected a paper title, found a paragraph of {len(title)} characters",
                    )
                # A blank line inside an abstract splits it into two paragraphs.
                self.warnings.append(f"{self.name}:{number}: paragraph joined to the abstract above")
                if last is not None:
                    last_size += len(title) + 2
                    if last_size > MAX_ABSTRACT_CHARS:
                        raise DumpError(
                            self.name,
                            number,
                            f"the abstract of line {last[0]} grows past {MAX_ABSTRACT_CHARS} "
                            "characters; this is not the text of a listing page",
                        )
                    last[2].append(title)
                continue
            if i >= len(buf):
                raise DumpError(
                    self.name,
                    number,
                    f"title {title[:80]!r} has no abstract: the file ends here (was it still being written?)",
                )
            abstract = buf[i][1]
            if not _is_paragraph(abstract) and i + 1 < len(buf) and _is_paragraph(buf[i + 1][1]):
                # Two short lines, then a paragraph: the first short line has no abstract.
                if not started:
                    self.warnings.append(f"{self.name}:{number}: skipped as page furniture")
                    continue
                self.warnings.append(f"{self.name}:{number}: title without an abstract")
                abstract = ""
            else:
                i += 1
            started = True
            if last is not None and (paper := self._paper(*last, seen)) is not None:
                yield paper
            last, last_size = (number, title, [abstract]), len(abstract)
        if last is not None and (paper := self._paper(*last, seen)) is not None:
            yield paper

    def _json(self, raw: Iterable[bytes]) -> Iterator[Paper]:
        parser = parse_json.JsonDumpParser(self.name)
        self.layout = parser.layout
        self.warnings = parser.warnings
        try:
            yield from parser.papers(raw)
        finally:
            self.listing_date = parser.listing_date

    def _paper(self, number: int, title: str, paragraphs: list[str], seen: set[str]) -> Paper | None:
        abstract = paragraphs[0] if len(paragraphs) == 1 else "\n\n".join(paragraphs)
        key = paper_key(title)
        if not key:
            self.warnings.append(f"{self.name}:{number}: title has no letters or digits, skipped")
            return None
        if key in seen:
            self.warnings.append(f"{self.name}:{number}: {title[:80]!r} listed twice, kept once")
            return None
        seen.add(key)
        return Paper(
            key=key,
            title=title,
            abstract=abstract,
            links=text.links(abstract),
            listing_date=self.listing_date,
            line=number,
        )


def parse_dump(data: bytes, name: str) -> ParsedDump:
    """Parses a whole dump held in memory. Raises DumpError (file:line) on bad input."""
    parser = DumpParser(name)
    papers = tuple(parser.papers(data.splitlines(keepends=True) if data else ()))
    return ParsedDump(
        layout=parser.layout,
        papers=papers,
        listing_date=parser.listing_date,
        warnings=tuple(parser.warnings),
    )
