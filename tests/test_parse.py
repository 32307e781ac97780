"""The parser against golden expectations for the real sample dumps, and small cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest.errors import DumpError
from digest.model import ParsedDump
from digest.parse import DumpParser, parse_dump
from tests import helpers
from tests.helpers import DUMP_000, DUMP_002, check_golden

GOLDEN = helpers.GOLDEN / "parse"


def as_json(parsed: ParsedDump) -> str:
    data = {
        "layout": parsed.layout,
        "listing_date": parsed.listing_date,
        "warnings": list(parsed.warnings),
        "papers": [
            {"line": p.line, "key": p.key, "title": p.title, "abstract": p.abstract, "links": list(p.links)}
            for p in parsed.papers
        ],
    }
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("dump", [DUMP_000, DUMP_002], ids=["spaced", "compact"])
def test_sample_dump_matches_golden(dump: Path) -> None:
    golden = GOLDEN / (dump.stem + ".json")
    actual = as_json(parse_dump(dump.read_bytes(), dump.name))
    check_golden(actual, golden)


def test_sample_counts_and_layouts() -> None:
    spaced = parse_dump(DUMP_000.read_bytes(), DUMP_000.name)
    compact = parse_dump(DUMP_002.read_bytes(), DUMP_002.name)
    assert (spaced.layout, len(spaced.papers), spaced.listing_date) == ("spaced", 81, "Aug 8")
    assert (compact.layout, len(compact.papers), compact.listing_date) == ("compact", 231, None)
    assert (
        compact.papers[0].title == "Cascaded Sparse Feature Propagation Network for Interactive Segmentation"
    )
    # The LaTeX artefact url{url} gives one clean link.
    assert compact.papers[0].links == ("https://github.com/kleinzcy/CSFPN",)
    assert spaced.papers[0].title == "Perturbation Analysis of Neural Collapse"
    assert spaced.papers[0].line == 13


ABSTRACT = (
    "We study a thing at length, with enough words that it reads like a real paragraph of an "
    "abstract and not like a title. The method works well on many benchmarks and the code is "
    "available at https://github.com/a/b{https://github.com/a/b}. We also release data."
)


def spaced(*pairs: tuple[str, str], date: str = "Aug 8") -> bytes:
    head = ["new", "", "Get trending papers in your email inbox!", "", "Subscribe", "", "Daily Papers", ""]
    head += ["byAK and the research community", "", date, ""]
    body = [line for t, a in pairs for line in (t, "", a, "")]
    return "\n".join(head + body).encode()


def compact(*pairs: tuple[str, str]) -> bytes:
    lines = [
        "Get trending papers in your email inbox once a day!",
        "Get trending papers in your email inbox!",
    ]
    body = [line for t, a in pairs for line in (t, a)]
    body[0] = "Subscribe" + body[0]
    return "\n".join(lines + body).encode()


def test_crlf_bom_and_trailing_spaces_are_tolerated() -> None:
    data = spaced(("World Models", ABSTRACT), ("[MASK] is all you need: W_+ é", ABSTRACT))
    noisy = b"\xef\xbb\xbf" + data.replace(b"\n", b"  \r\n")
    parsed = parse_dump(noisy, "x.txt")
    assert [p.title for p in parsed.papers] == ["World Models", "[MASK] is all you need: W_+ é"]
    assert parsed.papers[0].abstract == ABSTRACT
    assert parsed.papers[0].links == ("https://github.com/a/b",)


def test_compact_layout_splits_glued_subscribe() -> None:
    parsed = parse_dump(compact(("Short", ABSTRACT), ("Second", ABSTRACT)), "c.txt")
    assert parsed.layout == "compact"
    assert [p.title for p in parsed.papers] == ["Short", "Second"]


def test_missing_final_abstract_names_the_line() -> None:
    data = spaced(("One", ABSTRACT)) + b"\nTwo\n"
    with pytest.raises(DumpError) as caught:
        parse_dump(data, "cut.txt")
    assert str(caught.value).startswith("cut.txt:")
    assert caught.value.line == data.decode().split("\n").index("Two") + 1
    assert "no abstract" in str(caught.value)


def test_non_utf8_is_refused_with_line() -> None:
    data = spaced(("Caf\xe9", ABSTRACT)).decode().encode("latin-1")
    with pytest.raises(DumpError, match=r"^l1\.txt:13: not UTF-8"):
        parse_dump(data, "l1.txt")


def test_empty_and_furniture_only_fail() -> None:
    with pytest.raises(DumpError, match="empty file"):
        parse_dump(b"", "e.txt")
    with pytest.raises(DumpError, match="only page furniture"):
        parse_dump(b"new\n\nSubscribe\n\nDaily Papers\n", "f.txt")


def test_same_title_twice_in_one_dump_is_kept_once() -> None:
    parsed = parse_dump(spaced(("Same Title", ABSTRACT), ("same  title!", ABSTRACT)), "d.txt")
    assert [p.title for p in parsed.papers] == ["Same Title"]
    assert any("listed twice" in w for w in parsed.warnings)


def test_the_first_fault_is_named_however_the_file_is_cut() -> None:
    # Line 1 is a paragraph where a title belongs; line 4 is not UTF-8. Read whole, line
    # by line or as one chunk (as a run reads a small dump), line 1 is the fault named.
    data = b"A paragraph " * 30 + b"\nTitle\n" + b"abstract " * 40 + b"\n\x85 Latin-1\r\nmore\n"
    verdicts = set()
    for raw in (data.splitlines(keepends=True), [data]):
        with pytest.raises(DumpError) as caught:
            list(DumpParser("p.txt").papers(raw))
        verdicts.add(str(caught.value))
    assert len(verdicts) == 1 and verdicts.pop().startswith("p.txt:1: expected a paper title")


def test_a_title_starting_with_subscribe_is_cut_only_where_the_label_is_glued() -> None:
    abstract = "words " * 60
    spaced = f"new\nSubscribe\nDaily Papers\nAug 8\n\nSubscribe-to-Learn: Alerts\n\n{abstract}\n".encode()
    compact = f"Daily Papers\nSubscribeSubscribe-to-Learn: Alerts\n{abstract}\n".encode()
    assert [p.title for p in parse_dump(spaced, "s.txt").papers] == ["Subscribe-to-Learn: Alerts"]
    assert parse_dump(spaced, "s.txt").layout == "spaced"
    assert [p.title for p in parse_dump(compact, "c.txt").papers] == ["Subscribe-to-Learn: Alerts"]
    assert parse_dump(compact, "c.txt").layout == "compact"
