"""digest/render/feed_tail.py against the plain feedgen calls it replaces.

RSS items and Atom entries get their category and date from an entry extension instead
of ``fe.category(...)`` and ``fe.published(...)`` (feedgen's date formatting sets the
process's locale three times per date). Here feeds built both ways must be byte-identical,
and :func:`rfc2822` must be feedgen's ``formatRFC2822`` for any aware datetime.
"""

from __future__ import annotations

import locale
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import feedgen.feed  # noqa: F401  (feedgen.util needs lxml.etree imported first)
import pytest
from feedgen.ext.dc import DcEntryExtension, DcExtension
from feedgen.util import formatRFC2822
from hypothesis import example, given, settings
from hypothesis import strategies as st

from digest.model import Digest, Paper, StoredPaper
from digest.render import feed
from digest.render.feed import ATOM_FILE, RSS_FILE, Channel, Item, _generator, _h, content_html, item_times
from digest.render.feed_tail import ItemTail, rfc2822
from digest.render.view import digest_view, paper_view

BASE = "https://digest.example.org/"
T0 = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)

offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
)


@settings(max_examples=300)
@given(st.datetimes(timezones=st.builds(timezone, offsets)))
@example(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
@example(datetime(5, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5, minutes=-30))))
@example(datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Berlin")))
@example(datetime(2026, 11, 22))  # naive: no offset, as feedgen prints it
def test_rfc2822_is_feedgens_format(moment: datetime) -> None:
    assert rfc2822(moment) == formatRFC2822(moment)


def test_rfc2822_leaves_the_locale_alone_and_a_naive_time_is_refused() -> None:
    before = locale.setlocale(locale.LC_ALL)
    rfc2822(T0)
    assert locale.setlocale(locale.LC_ALL) == before
    with pytest.raises(ValueError, match="timezone"):  # as feedgen's published() refuses it
        ItemTail().set("2026-11-22", "2026-11-22", datetime(2026, 11, 22))


def _items() -> list[Item]:
    """Two digests (one of them in another day and time zone), papers with and without
    authors, arXiv ids, upvotes and links; text that looks like markup."""
    out: list[Item] = []
    for d, (slug, created, tz) in enumerate(
        [("2026-11-22", T0, "UTC"), ("2026-11-21-2", T0 - timedelta(hours=20), "America/New_York")]
    ):
        digest = Digest(
            id=d + 1, slug=slug, created=created, first_seq=10 * d + 1, last_seq=10 * d + 4, paper_count=4
        )
        view = digest_view(digest, BASE, ZoneInfo(tz))
        for i in range(4):
            paper = Paper(
                key=f"paper {d} {i}",
                title=f"Paper <{d}.{i}> & {{{{ x }}}}",
                abstract=f"We study {i} things. Code: https://github.com/a/b{i}." if i % 2 else "",
                links=(f"https://github.com/a/b{i}",) if i % 2 else (),
                arxiv_id=f"2611.0{d}{i}00" if i == 1 else None,
                authors=("Ada Lovelace", "Émile <Borel>")[: i % 3],
                upvotes=i if i > 1 else None,
            )
            stored = StoredPaper(seq=10 * d + i + 1, paper=paper, first_seen=created, dump_name="x.txt")
            out.append((paper_view(stored, slug, BASE), view))
    return out


def _reference_rss(channel: Channel, items: Sequence[Item]) -> bytes:
    """feed.rss as it was before feed_tail: feedgen's own category and pubDate."""
    fg = _generator(channel, RSS_FILE)
    fg.register_extension("dc", DcExtension, None, atom=False, rss=True)
    fg.title(channel.title)
    fg.description(_h(channel.description or channel.title))
    fg.pubDate(channel.updated)
    for (paper, digest), moment in zip(items, item_times(items), strict=True):
        fe = fg.add_entry(order="append")
        fe.guid(paper.guid, permalink=False)
        fe.title(paper.title)
        fe.link(href=paper.url)
        fe.pubDate(moment)
        fe.content(content_html(paper, digest), type="CDATA")
        fe.description(_h(paper.abstract or paper.title))
        fe.category(term=digest.iso_date, label=digest.iso_date)
        if paper.authors:
            fe.register_extension("dc", DcEntryExtension, atom=False, rss=True)
            fe.dc.dc_creator(list(paper.authors))
    data: bytes = fg.rss_str(pretty=True)
    return data


def _reference_atom(channel: Channel, items: Sequence[Item]) -> bytes:
    """feed.atom as it was before feed_tail: feedgen's own category and published."""
    fg = _generator(channel, ATOM_FILE)
    fg.title(channel.title)
    if channel.description:
        fg.subtitle(channel.description)
    fg.author({"name": channel.title, "uri": channel.base_url})
    for (paper, digest), moment in zip(items, item_times(items), strict=True):
        fe = fg.add_entry(order="append")
        fe.id(paper.guid)
        fe.title(paper.title)
        fe.link(href=paper.url, rel="alternate")
        fe.published(moment)
        fe.updated(moment)
        fe.content(content_html(paper, digest), type="html")
        fe.summary(paper.abstract or paper.title, type="text")
        fe.category(term=digest.iso_date, label=f"Digest of {digest.day_label}")
        for name in paper.authors:
            fe.author({"name": name})
    data: bytes = fg.atom_str(pretty=True)
    return data


@pytest.mark.parametrize("description", ["A digest", ""])
def test_feeds_are_byte_identical_to_feedgens_own_setters(description: str) -> None:
    channel = Channel(
        title="Digest & <Co>", description=description, base_url=BASE, language="en", ttl=60, updated=T0
    )
    items = _items()
    rss = feed.rss(channel, items)
    assert rss == _reference_rss(channel, items)
    assert rss.count(b"<pubDate>") == len(items) + 1 and rss.count(b"<dc:creator>") == 6
    atom = feed.atom(channel, items)
    assert atom == _reference_atom(channel, items)
    assert atom.count(b"<published>") == len(items) and atom.count(b"<category ") == len(items)
    for empty in ([], items[:1]):
        assert feed.rss(channel, empty) == _reference_rss(channel, empty)
        assert feed.atom(channel, empty) == _reference_atom(channel, empty)
