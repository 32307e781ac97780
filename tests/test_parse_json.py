"""The Hugging Face daily-papers JSON: recognised by content, fields kept, file:line errors."""

from __future__ import annotations

import codecs
import json
from typing import Any

import pytest

from digest.errors import DumpError
from digest.identity import paper_key
from digest.parse import DumpParser, parse_dump
from digest.parse_json import looks_like_json, sniff
from tests.helpers import DUMP_000


def item(title: str = "World Models", **paper: Any) -> dict[str, Any]:
    fields = {"id": "2308.01234", "title": title, "summary": "We study things.", "authors": [{"name": "Ann"}]}
    fields.update(paper)
    return {"paper": fields, "publishedAt": "2023-08-08T10:00:00.000Z"}


def dump(*items: Any) -> bytes:
    return json.dumps(list(items), indent=2).encode()


def test_fields_are_kept_and_text_is_folded() -> None:
    data = dump(
        item(
            "Cascaded Sparse\n  Feature Propagation",
            summary="First line\nwrapped here.\n\nSecond paragraph with https://github.com/a/b{https://github.com/a/b}.",
            authors=[{"name": "Ann  Lee"}, {"name": "Bo"}],
            upvotes=12,
        ),
        item("World Models", id="2401.00001v2", upvotes=0),
    )
    parsed = parse_dump(data, "daily.json")
    assert (parsed.layout, parsed.listing_date, parsed.warnings) == ("json", "Aug 8, 2023", ())
    first, second = parsed.papers
    assert first.title == "Cascaded Sparse Feature Propagation"
    assert first.key == paper_key("Cascaded Sparse Feature Propagation")
    assert first.abstract == (
        "First line wrapped here.\n\nSecond paragraph with https://github.com/a/b{https://github.com/a/b}."
    )
    assert first.links == ("https://github.com/a/b",)
    assert (first.arxiv_id, first.authors, first.upvotes, first.line) == (
        "2308.01234",
        ("Ann Lee", "Bo"),
        12,
        2,
    )
    assert (second.arxiv_id, second.upvotes, second.line) == ("2401.00001v2", 0, 19)


def test_the_key_matches_the_text_dump_title() -> None:
    text = parse_dump(DUMP_000.read_bytes(), DUMP_000.name).papers[0]
    as_json = parse_dump(dump(item(text.title.upper())), "x.json").papers[0]
    assert as_json.key == text.key


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'[{"paper": {}}]', True),
        (b"\n\n  [\n\n  {", True),
        (b"[]", True),
        (codecs.BOM_UTF8 + b"[ {", True),
        ("[{}]".encode("utf-16"), True),
        (b"[MASK] is all you need\n", False),  # a text dump starting with a bracketed title
        (b"new\n\nGet trending papers", False),
        (b'{"paper": {}}', False),
        (b"", False),
    ],
)
def test_recognised_by_content(head: bytes, expected: bool) -> None:
    assert looks_like_json(head) is expected


def test_sniff_gives_back_every_chunk_and_reads_only_what_it_needs() -> None:
    consumed: list[bytes] = []

    def lines() -> Any:
        for line in (b"new\n", b"\n", b"Subscribe\n"):
            consumed.append(line)
            yield line

    chunks, is_json = sniff(lines())
    assert not is_json and consumed == [b"new\n"]
    assert b"".join(chunks) == b"new\n\nSubscribe\n"
    chunks, is_json = sniff(iter([b"\n", b"[\n", b"\n", b"  {}]\n"]))
    assert is_json and b"".join(chunks) == b"\n[\n\n  {}]\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'[\n  {"paper": {"title": "A", "summary": "b"}},\n  {"paper": {"ti',
            "d.json:3: broken JSON (Unterminated string",
        ),
        (
            b'[\n  {"paper": {"title": "A", "summary": "b"}}\n  {"paper": {}}\n]',
            "d.json:3: broken JSON (expected ',' or ']' after an item, found '{')",
        ),
        (
            b'[\n  {"paper": {"title": "A", "summary": "b"}},\n',
            "d.json:3: broken JSON (Expecting value at column 1)",
        ),
        (
            b'[{"paper": {"title": "A", "summary": "b"}}] trailing',
            "d.json:1: broken JSON (text after the closing ']')",
        ),
        (b'[\n  {"paper": {"summary": "b"}}\n]', "d.json:2: item 1 has no paper.title (a non-empty string)"),
        (b'[\n  {"paper": {"title": "  ", "summary": "b"}}\n]', "d.json:2: item 1 has no paper.title"),
        (
            b'[\n  {"paper": {"title": "A"}},\n  {"paper": {"title": "B"}}\n]',
            "d.json:2: item 1 ('A') has no paper.summary (a string)",
        ),
        (b'[\n  {"paper": {"title": "A", "summary": "b"}},\n  "x"\n]', "d.json:3: item 2 is not an object"),
        (b'[\n  {"paper": "A"}\n]', "d.json:2: item 1: 'paper' is not an object"),
        (
            b'[\n  {"paper": {"title": "\xe9", "summary": "b"}}]',
            "d.json:2: not UTF-8 (byte 0xe9); JSON must be UTF-8",
        ),
    ],
)
def test_bad_json_names_file_and_line(data: bytes, message: str) -> None:
    with pytest.raises(DumpError) as err:
        parse_dump(data, "d.json")
    assert str(err.value).startswith(message)


def test_optional_fields_that_are_wrong_become_warnings() -> None:
    data = dump(
        item("One", id="not an id", authors="Ann", upvotes=-1),
        item("Two", id=None, authors=[{"name": ""}, "Plain String"], upvotes=True),
        item("one"),  # the same key as "One"
    )
    parsed = parse_dump(data, "w.json")
    one, two = parsed.papers
    assert (one.arxiv_id, one.authors, one.upvotes) == (None, (), None)
    assert (two.arxiv_id, two.authors, two.upvotes) == (None, ("Plain String",), None)
    assert parsed.warnings == (
        "w.json:2: item 1: paper.id 'not an id' is not an arXiv id; linking by title instead",
        "w.json:2: item 1: paper.authors is not a list; ignored",
        "w.json:2: item 1: paper.upvotes -1 is not a count; ignored",
        "w.json:12: item 2: an author without a name; skipped",
        "w.json:12: item 2: paper.upvotes True is not a count; ignored",
        "w.json:27: 'one' listed twice, kept once",
    )


def test_an_empty_list_is_a_dump_without_papers() -> None:
    parsed = parse_dump(b"[]\n", "empty.json")
    assert parsed.papers == () and parsed.warnings == ("empty.json:1: an empty list, no papers",)


def test_bom_and_utf16_are_read() -> None:
    text = json.dumps([item("Été Models")], ensure_ascii=False)
    for data in (codecs.BOM_UTF8 + text.encode(), text.encode("utf-16")):
        [paper] = parse_dump(data, "bom.json").papers
        assert paper.title == "Été Models"


def test_a_plain_list_of_papers_is_accepted() -> None:
    [paper] = parse_dump(b'[{"title": "World Models", "summary": "s", "id": "2308.01234"}]', "p.json").papers
    assert paper.arxiv_id == "2308.01234"


def test_a_single_line_json_read_in_pieces_parses_the_same() -> None:
    # The API answers with one long line; a reader that caps line length hands it on in pieces.
    data = json.dumps([item("One"), item("Two", id="2308.00002")]).encode()
    whole = parse_dump(data, "one-line.json").papers
    parser = DumpParser("one-line.json")
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert tuple(parser.papers(iter(pieces))) == whole and len(whole) == 2
    assert parser.layout == "json" and parser.listing_date == "Aug 8, 2023"
