"""Pure parser: the Hugging Face daily-papers JSON → papers.

The API (``https://huggingface.co/api/daily_papers``) returns a list of objects::

    [{"paper": {"id": "2308.01234", "title": "…", "summary": "…",
                "authors": [{"name": "…"}, …], "upvotes": 12, …},
      "publishedAt": "2023-08-08T…Z", …}, …]

A dump is recognised as JSON by content (:func:`looks_like_json`), not by its name.
``paper.title`` and ``paper.summary`` are required; ``paper.id`` (the arXiv id),
``paper.authors``, ``paper.upvotes`` and ``publishedAt`` are kept when present and
valid, and a warning names the item when they are not. Errors and warnings name
``file:line``: the line where the item (or the JSON syntax error) starts.

The key is the normalised title, exactly as for text dumps, so a paper listed in a
text dump and in a JSON dump is one paper.
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from digest import text
from digest.errors import DumpError
from digest.identity import paper_key
from digest.model import Layout, Paper

LAYOUT: Layout = "json"
# New-style (2308.01234, 2308.01234v2) and old-style (hep-th/9901001, math.GT/0309136) ids.
_ARXIV_ID = re.compile(r"^(?:\d{4}\.\d{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$")
_WS = " \t\r\n"
_WS_BYTES = _WS.encode("ascii")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_BOMS_16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def looks_like_json(head: bytes) -> bool:
    """True when the first non-blank character is ``[`` and the next one is ``{`` or ``]``.

    ``head`` is the start of the file (a few hundred bytes suffice). The second
    character keeps a text dump that happens to start with a title like ``[MASK] …``
    from being taken for JSON.
    """
    if head.startswith(_BOMS_16):
        try:
            decoded = head.decode("utf-16", errors="ignore")
        except UnicodeDecodeError:  # pragma: no cover - errors="ignore" does not raise
            return False
        stripped = decoded.lstrip(_WS + "\ufeff")
        if not stripped.startswith("["):
            return False
        return stripped[1:].lstrip(_WS)[:1] in ("{", "]")
    # Bytes, not decoded: the head may be a whole 1 MiB chunk of a text dump.
    data = head.removeprefix(codecs.BOM_UTF8).lstrip(_WS_BYTES)
    if not data.startswith(b"["):
        return False
    return data[1:].lstrip(_WS_BYTES)[:1] in (b"{", b"]")


def sniff(raw: Iterable[bytes]) -> tuple[Iterator[bytes], bool]:
    """Peeks at the start of a stream of byte chunks (:func:`digest.sources.read_chunks`).

    Returns an iterator over the same chunks, nothing consumed, and whether the
    content is JSON. Reads only as far as the first two non-blank characters.
    """
    chunks = iter(raw)
    head: list[bytes] = []
    size = 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        joined = b"".join(head)
        body = joined.removeprefix(codecs.BOM_UTF8)
        if joined.startswith(_BOMS_16):
            if size >= 4096:
                break
            continue
        visible = body.lstrip(_WS_BYTES)
        if visible and visible[:1] != b"[":
            break  # decided: not JSON
        if len(visible[1:].lstrip(_WS_BYTES)) >= 1:
            break  # the character after "[" is known
    joined = b"".join(head)
    return _chain(head, chunks), looks_like_json(joined)


def _chain(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    return itertools.chain(head, rest)


def _decode(data: bytes, name: str) -> str:
    if data.startswith(_BOMS_16):
        try:
            return data.decode("utf-16").lstrip("\ufeff")
        except UnicodeDecodeError as err:
            raise DumpError(name, 0, f"broken UTF-16 ({err.reason}); save the JSON as UTF-8") from err
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DumpError(name, line, f"not UTF-8 (byte 0x{data[err.start]:02x}); JSON must be UTF-8") from err


def _line(doc: str, pos: int) -> int:
    return doc.count("\n", 0, pos) + 1


class _Lines:
    """Line numbers of positions met in increasing order, counting each newline once:
    counting from the start for every item made a list of n items cost n² (1M items did
    not finish in 15 minutes)."""

    __slots__ = ("_doc", "_line", "_pos")

    def __init__(self, doc: str) -> None:
        self._doc = doc
        self._pos = 0
        self._line = 1

    def at(self, pos: int) -> int:
        if pos < self._pos:  # not met in order: count from the start (errors only)
            return _line(self._doc, pos)
        self._line += self._doc.count("\n", self._pos, pos)
        self._pos = pos
        return self._line


def _skip_ws(doc: str, pos: int) -> int:
    while pos < len(doc) and doc[pos] in _WS:
        pos += 1
    return pos


def _items(doc: str, name: str) -> Iterator[tuple[int, Any]]:
    """``(line, value)`` for every element of the top-level JSON list, in order."""
    decoder = json.JSONDecoder()
    lines = _Lines(doc)
    pos = _skip_ws(doc, 0)
    if doc[pos : pos + 1] != "[":
        raise DumpError(name, _line(doc, pos), "expected a JSON list of papers ('[' …)")
    pos = _skip_ws(doc, pos + 1)
    if doc[pos : pos + 1] == "]":
        pos += 1
    else:
        while True:
            try:
                value, end = decoder.raw_decode(doc, pos)
            except json.JSONDecodeError as err:
                raise DumpError(
                    name,
                    err.lineno,
                    f"broken JSON ({err.msg} at column {err.colno}); was the download cut short?",
                ) from err
            yield lines.at(pos), value
            pos = _skip_ws(doc, end)
            sep = doc[pos : pos + 1]
            if sep == "]":
                pos += 1
                break
            if sep != ",":
                found = f"{sep!r}" if sep else "the end of the file"
                raise DumpError(
                    name,
                    lines.at(pos),
                    f"broken JSON (expected ',' or ']' after an item, found {found}); "
                    "was the download cut short?",
                )
            pos = _skip_ws(doc, pos + 1)
    pos = _skip_ws(doc, pos)
    if pos < len(doc):
        raise DumpError(name, _line(doc, pos), "broken JSON (text after the closing ']')")


def _clean_title(value: str) -> str:
    return " ".join(value.split())


def _clean_abstract(value: str) -> str:
    # The API hard-wraps summaries; keep paragraph breaks, fold the rest like a text dump.
    paragraphs = (" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(value.strip()))
    return "\n\n".join(p for p in paragraphs if p)


def _listing_date(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return f"{moment:%b} {moment.day}, {moment.year}"  # as a listing page prints it, with the year


class JsonDumpParser:
    """Parses one JSON dump; like :class:`digest.parse.DumpParser`, ``layout``,
    ``listing_date`` and ``warnings`` describe what was found after :meth:`papers`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.layout = LAYOUT
        self.listing_date: str | None = None
        self.warnings: list[str] = []

    def papers(self, raw: Iterable[bytes]) -> Iterator[Paper]:
        """Yields every paper in list order, each key once. The whole document is held in
        memory (json needs it); the caller bounds its size (``sources.max_bytes``)."""
        doc = _decode(b"".join(raw), self.name)
        if not doc.strip():
            raise DumpError(self.name, 0, "empty file; a dump is the saved text of a listing page")
        seen: set[str] = set()
        dates: set[str | None] = set()
        index = 0
        for index, (line, item) in enumerate(_items(doc, self.name), start=1):
            paper = self._paper(index, line, item)
            dates.add(paper.listing_date)
            if paper.key in seen:
                self.warnings.append(f"{self.name}:{line}: {paper.title[:80]!r} listed twice, kept once")
                continue
            seen.add(paper.key)
            yield paper
        if index == 0:
            self.warnings.append(f"{self.name}:1: an empty list, no papers")
        if len(dates) == 1:
            self.listing_date = dates.pop()

    def _paper(self, index: int, line: int, item: Any) -> Paper:
        where = f"item {index}"
        if not isinstance(item, dict):
            raise DumpError(self.name, line, f'{where} is not an object; expected {{"paper": {{…}}}}')
        # The daily-papers list nests the paper; a plain list of papers is accepted too.
        paper = item.get("paper", item)
        if not isinstance(paper, dict):
            raise DumpError(self.name, line, f"{where}: 'paper' is not an object")
        title = paper.get("title")
        if not isinstance(title, str) or not title.strip():
            raise DumpError(self.name, line, f"{where} has no paper.title (a non-empty string)")
        title = _clean_title(title)
        key = paper_key(title)
        if not key:
            raise DumpError(self.name, line, f"{where}: title {title[:80]!r} has no letters or digits")
        summary = paper.get("summary")
        if not isinstance(summary, str):
            raise DumpError(self.name, line, f"{where} ({title[:60]!r}) has no paper.summary (a string)")
        abstract = _clean_abstract(summary)
        return Paper(
            key=key,
            title=title,
            abstract=abstract,
            links=text.links(abstract),
            listing_date=_listing_date(item.get("publishedAt", paper.get("publishedAt"))),
            arxiv_id=self._arxiv_id(line, where, paper.get("id")),
            authors=self._authors(line, where, paper.get("authors")),
            upvotes=self._upvotes(line, where, paper.get("upvotes")),
            line=line,
        )

    def _warn(self, line: int, message: str) -> None:
        self.warnings.append(f"{self.name}:{line}: {message}")

    def _arxiv_id(self, line: int, where: str, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str) and _ARXIV_ID.match(value.strip()):
            return value.strip()
        self._warn(line, f"{where}: paper.id {value!r} is not an arXiv id; linking by title instead")
        return None

    def _authors(self, line: int, where: str, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self._warn(line, f"{where}: paper.authors is not a list; ignored")
            return ()
        names: list[str] = []
        for author in value:
            name = author.get("name") if isinstance(author, dict) else author
            if isinstance(name, str) and name.strip():
                names.append(" ".join(name.split()))
            else:
                self._warn(line, f"{where}: an author without a name; skipped")
        return tuple(names)

    def _upvotes(self, line: int, where: str, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        self._warn(line, f"{where}: paper.upvotes {value!r} is not a count; ignored")
        return None
