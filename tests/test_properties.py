"""Property tests (hypothesis) of the parser and of paper keys.

What a generated page may contain is what a real listing page can show, and no more:

- a title is one line of 1-15 words (so never a paragraph: under 300 characters and 40
  words), with at least one letter or digit, no leading or trailing white space, and it
  is not itself a furniture line (``Subscribe``, ``new``, …) or a listing date (``Aug 8``):
  the page's own chrome is never a paper's title;
- an abstract is one paragraph of 40-80 words (a paragraph by the parser's rule, as every
  real abstract is), and may carry code links and the LaTeX ``url{url}`` artefact;
- a page lists each paper once (distinct keys).

Words mix ASCII, accented Latin, Greek and CJK letters, digits and the punctuation titles
use (``[MASK]``, ``W_+``, ``:``). Under those rules any list of papers written in either
layout, with any line ends and any accepted encoding, parses back to the same titles
and abstracts, whole or streamed line by line.
"""

from __future__ import annotations

import io
import os
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from digest.errors import DumpError
from digest.identity import paper_key
from digest.parse import _DATE, FURNITURE, DumpParser, parse_dump

# Few examples in the suite (it must stay fast); DIGEST_HYPOTHESIS_EXAMPLES=1500 for a deep run.
EXAMPLES = int(os.environ.get("DIGEST_HYPOTHESIS_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LETTERS = string.ascii_letters + "éèüößçñåøÉÜ" + "αβγΔΣλ" + "中文模型学习" + string.digits
PUNCT = ":-,.()[]_+'?!&/"

word = st.text(alphabet=LETTERS, min_size=1, max_size=10)
tagged = st.sampled_from(["[MASK]", "W_+", "(LLMs)", "3D", "GPT-4o:", "Q&A", "e.g.", "é"])
title_words = st.lists(st.one_of(word, word, word, tagged), min_size=1, max_size=15)


def _real_title(title: str) -> bool:
    return bool(paper_key(title)) and title.casefold() not in FURNITURE and not _DATE.match(title)


titles = title_words.map(" ".join).filter(_real_title)
abstract_words = st.lists(
    st.one_of(
        word,
        st.sampled_from(["https://github.com/a/b{https://github.com/a/b}.", "(see", "§3)", "—", "[MASK]"]),
    ),
    min_size=40,
    max_size=80,
)
abstracts = abstract_words.map(" ".join)
papers = st.lists(st.tuples(titles, abstracts), min_size=1, max_size=8, unique_by=lambda p: paper_key(p[0]))

SPACED_HEADER = "new\nGet trending papers in your email inbox!\nSubscribe\nDaily Papers\nbyAK and the research community\nAug 8\n"
COMPACT_HEADER = "Get trending papers in your email inbox!\nDaily Papers\nSubscribe"


def spaced(items: list[tuple[str, str]]) -> str:
    return SPACED_HEADER + "".join(f"{t}\n\n{a}\n\n" for t, a in items)


def compact(items: list[tuple[str, str]]) -> str:
    # The subscribe button's label is glued to the first title, and no line is blank.
    return COMPACT_HEADER + "".join(f"{t}\n{a}\n" for t, a in items)


def streamed(data: bytes, name: str = "p.txt") -> list[tuple[str, str]]:
    """Parses the lines a binary file yields (split at LF only), one at a time."""
    parser = DumpParser(name)
    return [(p.title, p.abstract) for p in parser.papers(io.BytesIO(data))]


def chunked(data: bytes, name: str = "p.txt") -> list[tuple[str, str]]:
    """Parses as ``digest run`` does: chunks of many lines (:func:`digest.sources.read_chunks`),
    here the whole file as one, like any dump under a MiB."""
    parser = DumpParser(name)
    return [(p.title, p.abstract) for p in parser.papers([data] if data else [])]


@pytest.mark.slow
@SETTINGS
@given(
    items=papers,
    layout=st.sampled_from(["spaced", "compact"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
@example(items=[("World Models", " ".join(["word"] * 40))], layout="compact", newline="\r", encoding="utf-16")
def test_any_papers_in_either_layout_parse_back(
    items: list[tuple[str, str]], layout: str, newline: str, encoding: str
) -> None:
    page = (spaced if layout == "spaced" else compact)(items).replace("\n", newline)
    data = page.encode(encoding)
    parsed = parse_dump(data, "p.txt")
    assert [(p.title, p.abstract) for p in parsed.papers] == items
    assert parsed.layout == layout
    assert parsed.listing_date == ("Aug 8" if layout == "spaced" else None)
    assert streamed(data) == items


@pytest.mark.slow
@SETTINGS
@given(items=papers, extra=st.lists(abstracts, min_size=1, max_size=3))
def test_a_blank_line_inside_an_abstract_joins_its_paragraphs(
    items: list[tuple[str, str]], extra: list[str]
) -> None:
    title, first = items[-1]
    whole = "\n\n".join([first, *extra])
    page = spaced([*items[:-1], (title, whole)])
    parsed = parse_dump(page.encode(), "p.txt")
    assert [(p.title, p.abstract) for p in parsed.papers] == [*items[:-1], (title, whole)]


# Lines a hostile or broken page is made of: furniture, dates, titles, paragraphs,
# blank lines, a glued Subscribe, stray CRs, BOMs, NULs and invalid bytes.
LINE_BITS = st.one_of(
    st.sampled_from(
        [
            b"",
            b"new",
            b"Subscribe",
            b"SubscribeX",
            b"Aug 8",
            b"Sept 31, 2025",
            b"\r",
            b"\xef\xbb\xbf",
            b"\xff\xfe",
            b"\x00",
            b"\xe9",
            b"Daily Papers",
            b"  ",
            b"\xe2\x80\xa8",
            b"\x85",
            b"\x0c",
        ]
    ),
    titles.map(str.encode),
    abstracts.map(str.encode),
    st.binary(max_size=40),
)


@SETTINGS
@given(lines=st.lists(LINE_BITS, max_size=30), sep=st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n"]))
def test_the_parser_only_raises_dump_error(lines: list[bytes], sep: bytes) -> None:
    data = sep.join(lines)
    try:
        whole = [(p.title, p.abstract) for p in parse_dump(data, "p.txt").papers]
    except DumpError as err:
        assert str(err).startswith("p.txt")
        for parse in (streamed, chunked):
            try:
                parse(data)
            except DumpError as again:
                assert str(again) == str(err)  # same verdict, same file:line, however it is read
            else:
                raise AssertionError(f"{parse.__name__} accepted what the whole parse refused")
        return
    assert streamed(data) == whole
    assert chunked(data) == whole


def _verdict(parse: Callable[[], object]) -> object:
    try:
        return parse()
    except DumpError as err:
        return str(err)


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_or_raise_dump_error(data: bytes) -> None:
    whole = _verdict(lambda: [(p.title, p.abstract) for p in parse_dump(data, "p.txt").papers])
    assert whole == _verdict(lambda: streamed(data))
    assert whole == _verdict(lambda: chunked(data))


FINDINGS = sorted((Path(__file__).parents[1] / "fuzz" / "findings").glob("*"))


@pytest.mark.parametrize("finding", FINDINGS, ids=[f.name for f in FINDINGS])
def test_fuzzer_findings_stay_fixed(finding: Path) -> None:
    """Inputs atheris once broke the parser with (fuzz/README.md): whole and streamed
    parses agree, and nothing but DumpError escapes."""
    data = finding.read_bytes()
    whole = _verdict(lambda: [(p.title, p.abstract) for p in parse_dump(data, "p.txt").papers])
    assert whole == _verdict(lambda: streamed(data))
    assert whole == _verdict(lambda: chunked(data))


# --- paper_key -------------------------------------------------------------------------------

any_text = st.text(max_size=80)
separators = st.text(alphabet=" \t-–—_:;,.!?'\"“”()[]/\\|\u00a0\u2009\u3000", min_size=1, max_size=4)
plain_words = st.lists(st.text(alphabet=LETTERS, min_size=1, max_size=10), min_size=1, max_size=8)


@SETTINGS
@given(any_text)
def test_paper_key_is_idempotent(title: str) -> None:
    key = paper_key(title)
    assert paper_key(key) == key
    assert key == key.strip() and "  " not in key


@SETTINGS
@given(plain_words, st.lists(separators, min_size=9, max_size=9), separators, separators)
def test_paper_key_ignores_spacing_and_punctuation(
    words: list[str], seps: list[str], lead: str, tail: str
) -> None:
    plain = " ".join(words)
    noisy = lead + "".join(w + s for w, s in zip(words, seps, strict=False)) + tail
    assert paper_key(noisy) == paper_key(plain)


@SETTINGS
@given(plain_words)
def test_paper_key_ignores_case(words: list[str]) -> None:
    # Words of the letters titles use (not every script has a reversible case mapping:
    # Turkish dotless ı upper-cases to I, which folds back to i).
    title = " ".join(words)
    assert (
        paper_key(title.upper()) == paper_key(title.lower()) == paper_key(title.title()) == paper_key(title)
    )
