"""The email's size budget (Gmail clips at 102 KB), the choice of papers in full, by
title and counted, the ellipsis after a cut abstract, and the HTML as linters and
clients that drop <style> see it."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.identity import message_id, paper_key
from digest.model import Digest, Paper, StoredPaper
from digest.parse import parse_dump
from digest.render import budget
from digest.render import email as render
from digest.render.view import DigestView, PaperView, digest_view, paper_view
from tests.helpers import DUMP_000, DUMP_002, EMAIL_SETTINGS, NOW

BASE_60 = "https://papers.research-group.example-university.edu/digest/"
assert len(BASE_60) == 60
SETTINGS = replace(EMAIL_SETTINGS, base_url=BASE_60)
MID = message_id(1, "reader@example.org", "example.org", "0123456789abcdef")


def dump_papers(*dumps: Path) -> list[Paper]:
    seen: dict[str, Paper] = {}
    for dump in dumps:
        for p in parse_dump(dump.read_bytes(), dump.name).papers:
            seen.setdefault(p.key, p)
    return list(seen.values())


def long_titles(papers: list[Paper]) -> list[Paper]:
    """Every title made 200 characters or more, as some arXiv titles are."""
    out = []
    for p in papers:
        title = p.title + ": " + " ".join(["Scaling Laws, Benchmarks and Ablations"] * 5)
        out.append(replace(p, title=title, key=paper_key(title)))
    return out


def views(papers: list[Paper], base: str = BASE_60) -> tuple[DigestView, list[PaperView]]:
    digest = Digest(
        id=1, slug="2026-11-22", created=NOW, first_seq=1, last_seq=len(papers), paper_count=len(papers)
    )
    stored = [
        StoredPaper(seq=i + 1, paper=p, first_seen=NOW, dump_name="x.txt") for i, p in enumerate(papers)
    ]
    return digest_view(digest, base, ZoneInfo("UTC")), [paper_view(s, digest.slug, base) for s in stored]


def html_body_as_sent(data: bytes) -> bytes:
    """The HTML part's body exactly as it goes on the wire (quoted-printable, CRLF)."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    boundary = msg.get_boundary()
    assert boundary
    html_part = next(p for p in data.split(b"--" + boundary.encode()) if b"Content-Type: text/html" in p)
    return html_part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")


def parts(data: bytes) -> tuple[str, str]:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    text, html = msg.iter_parts()
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


def new_in_002() -> list[Paper]:
    """The 216-paper digest: dump 002 after dump 000."""
    known = {p.key for p in dump_papers(DUMP_000)}
    return [p for p in dump_papers(DUMP_002) if p.key not in known]


CASES: dict[str, Callable[[], list[Paper]]] = {
    "002 after 000 (216)": new_in_002,
    "002 alone (231)": lambda: dump_papers(DUMP_002),
    "quick start (297)": lambda: dump_papers(DUMP_000, DUMP_002),
    "297, long titles": lambda: long_titles(dump_papers(DUMP_000, DUMP_002)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("max_papers", [50, 1000])
def test_the_largest_digests_fit_the_budget_and_every_paper_stays_reachable(
    case: str, max_papers: int
) -> None:
    papers = CASES[case]()
    assert len(papers) in (216, 231, 297)
    settings = replace(SETTINGS, max_papers=max_papers)
    digest, shown = views(papers)
    data = render.to_bytes(render.message(settings, digest, shown, "reader@example.org", MID))
    body = html_body_as_sent(data)
    assert len(body) <= 90_000, len(body)
    # The delivery path (one rendering, spliced per recipient) gives the same bytes.
    assert render.Prepared(settings, digest, shown).wire("reader@example.org", MID).data == data

    text, html = parts(data)
    flat_text, flat_html = " ".join(text.split()), " ".join(unescape(html).split())
    layout = render.layout(settings, digest, shown)
    n_full, n_titles = len(layout.full), len(layout.titles)
    assert n_full + n_titles + layout.rest == len(papers)
    assert 1 <= n_full <= max_papers
    # In order: in full, then by title, then counted with a link to the first left out.
    assert [e.view for e in layout.full] + list(layout.titles) == shown[: n_full + n_titles]
    for i, p in enumerate(shown):
        title = " ".join(p.title.split())
        opening = " ".join(p.abstract.split()[:8])
        if i < n_full + n_titles:
            assert f'href="{p.url}"' in html and title in flat_html and title in flat_text, (i, title)
            assert (opening in flat_html) == (i < n_full) or opening in title, (i, title)
            assert (opening in flat_text) == (i < n_full) or opening in title, (i, title)
    if layout.rest:
        first_left = shown[n_full + n_titles]
        line = f"{layout.rest} more paper{'s' if layout.rest > 1 else ''} on the archive page"
        assert line in flat_html and line in flat_text
        assert layout.rest_url == first_left.url and f'href="{first_left.url}"' in html
        assert first_left.url in text
    if n_titles:
        heading = f"{n_titles + layout.rest} more papers in this digest"
        assert heading in flat_html and heading in flat_text
    # The budget is spent: the next paper would not have fitted.
    assert len(body) > 80_000 or (n_full == min(max_papers, len(papers)) and layout.rest == 0)


def test_a_digest_that_fits_shows_everything_as_before() -> None:
    papers = dump_papers(DUMP_000)[:30]
    digest, shown = views(papers)
    layout = render.layout(replace(SETTINGS, max_papers=20), digest, shown)
    assert (len(layout.full), len(layout.titles), layout.rest) == (20, 10, 0)


def test_a_small_budget_counts_the_rest_and_the_text_part_follows() -> None:
    papers = dump_papers(DUMP_002)[:40]
    digest, shown = views(papers)
    settings = replace(SETTINGS, max_bytes=20_000)
    data = render.to_bytes(render.message(settings, digest, shown, "reader@example.org", MID))
    assert len(html_body_as_sent(data)) <= 20_000
    layout = render.layout(settings, digest, shown)
    assert layout.full and layout.titles and layout.rest
    text, _ = parts(data)
    numbered = re.findall(r"^(\d+)\. ", text, re.M)
    assert [int(n) for n in numbered] == list(range(1, len(layout.full) + len(layout.titles) + 1))
    assert f"{layout.rest} more papers on the archive page:\n   {layout.rest_url}" in text


# --- budget.split, pure -------------------------------------------------------------------


@given(
    costs=st.lists(st.tuples(st.integers(1, 500), st.integers(1, 100)), max_size=60),
    room=st.integers(0, 5000),
    max_full=st.integers(0, 70),
    section=st.integers(0, 50),
    rest_line=st.integers(0, 50),
)
def test_split_keeps_order_fits_the_room_and_stops_at_the_first_misfit(
    costs: list[tuple[int, int]], room: int, max_full: int, section: int, rest_line: int
) -> None:
    items = list(range(len(costs)))
    c: budget.Costs[int] = budget.Costs(
        room=room,
        full=lambda i: costs[i][0],
        title=lambda i: costs[i][1],
        titles_section=section,
        rest_line=rest_line,
    )
    s = budget.split(items, c, max_full)
    assert list(s.full + s.titles + s.rest) == items
    assert len(s.full) <= max_full
    used = sum(costs[i][0] for i in s.full) + sum(costs[i][1] for i in s.titles)
    used += (section if s.titles else 0) + (rest_line if s.rest else 0)
    if s.full or s.titles:
        assert used <= room
    k = len(s.full)
    if k < min(max_full, len(items)) and not s.titles and not s.rest:
        pytest.fail("a paper left out of the full part must go somewhere")
    # The next paper would not have fitted where it was put off.
    if s.rest:
        nxt = s.rest[0]
        extra = costs[nxt][1] + (0 if s.titles else section)
        after = rest_line if nxt + 1 < len(items) else 0
        assert used - rest_line + extra + after > room


# --- the ellipsis -------------------------------------------------------------------------


def test_a_cut_abstract_never_reads_dot_ellipsis() -> None:
    """Seen in real emails: "improves over both.…". A cut right after a sentence keeps
    the sentence whole, without the ellipsis."""
    papers = dump_papers(DUMP_000, DUMP_002)
    digest, shown = views(papers)
    seen_sentence_end = 0
    for limit in (120, 200, 300, 400, 500):
        for p in shown:
            e = render.email_paper(p, limit)
            shown_text = "".join(piece for piece, _ in e.excerpt) + (e.ellipsis if e.cut else "")
            assert ".…" not in shown_text and "?…" not in shown_text, (limit, shown_text[-60:])
            if e.cut and not e.ellipsis:
                seen_sentence_end += 1
                assert shown_text.endswith((".", "!", "?", '."', ".)"))
    assert seen_sentence_end > 0
    settings = replace(SETTINGS, max_papers=300, max_bytes=10**7)
    text, html = parts(render.to_bytes(render.message(settings, digest, shown, "r@example.org", MID)))
    assert ".…" not in text and ".…" not in html
    visible = unescape(re.sub(r"<[^>]+>", "", html)).replace("\xa0", " ")
    assert ". continue reading" in " ".join(visible.split())


# --- the HTML without <style> ---------------------------------------------------------------


def golden_html() -> str:
    digest, shown = views(dump_papers(DUMP_000)[:3])
    return render.html_part(SETTINGS, digest, shown, "reader@example.org")


def test_meta_charset_comes_first_in_head() -> None:
    html = golden_html()
    head = html[html.index("<head>") + len("<head>") : html.index("</head>")]
    assert head.lstrip().startswith('<meta charset="utf-8">')
    assert head.index("<meta charset") < head.index("<style")


def test_every_styled_element_is_styled_inline_and_padding_sits_on_cells() -> None:
    """What Gmail's app (for other accounts) and Outlook keep: inline styles; padding on
    <td> only. The <style> block holds only @media extras (dark mode, narrow screens)."""
    html = golden_html()
    body = html[html.index("<body") :]
    for tag, attrs in re.findall(r"<(\w+)([^>]*)>", body):
        if "class=" in attrs:
            assert "style=" in attrs, (tag, attrs)
        style = " ".join(re.findall(r'style="([^"]*)"', attrs))
        for value in re.findall(r"padding(?:-\w+)?:([^;]+)", style):
            if tag not in ("td", "ul", "body"):
                pytest.fail(f"padding on <{tag}>: {attrs}")
            if tag == "body":
                assert value.strip() == "0"
    # Colours without @media: dark text on a light card, set inline.
    assert "background:#ffffff;color:#1f2328" in body
