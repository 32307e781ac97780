"""digest/render/feed_tail.py against the plain feedgen calls it replaces.

RSS items and Atom entries get their category and date from an entry extension instead
of ``fe.category(...)`` and ``fe.published(...)`` (feedgen's date formatting sets the
process's locale three times per date). Here feeds built both ways must be byte-identical
(the plain way: feed.rss and feed.atom with each entry's extension swapped for those
calls), and :func:`rfc2822` must be feedgen's ``formatRFC2822`` for any aware datetime.
"""

from __future__ import annotations

import locale
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import feedgen.feed  # first: feedgen.util needs the lxml.etree it imports
import pytest
from feedgen.entry import FeedEntry
from feedgen.util import formatRFC2822
from hypothesis import example, given, settings
from hypothesis import strategies as st

from digest.model import Digest, Paper, StoredPaper
from digest.render import feed
from digest.render.feed import Channel, Item
from digest.render.feed_tail import NAMESPACE as TAIL
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


class _PlainTail:
    """In place of an entry's :class:`ItemTail`: feedgen's own setters on the entry."""

    def __init__(self, entry: FeedEntry) -> None:
        self.entry = entry

    def set(self, term: str, label: str, published: datetime) -> None:
        self.entry.category(term=term, label=label)
        self.entry.published(published)  # an RSS item's pubDate is its published

    def set_atom_link(self, href: str, summary: str) -> None:
        self.entry.link(href=href, rel="alternate")
        self.entry.summary(summary, type="text")


class _PlainEntry(FeedEntry):  # type: ignore[misc]  # feedgen is untyped
    """A feedgen entry whose tail extension is a :class:`_PlainTail`."""

    def register_extension(self, namespace: str, *args: Any, **kwargs: Any) -> None:
        if namespace == TAIL:
            setattr(self, TAIL, _PlainTail(self))
        else:
            super().register_extension(namespace, *args, **kwargs)


def _plain(
    build: Callable[[Channel, Sequence[Item]], bytes], channel: Channel, items: Sequence[Item]
) -> bytes:
    """``build(channel, items)`` as it was before feed_tail: feedgen's own setters for every
    entry's category and date (and an Atom entry's link and summary). ``add_entry`` makes
    each entry from the name ``FeedEntry`` in ``feedgen.feed``."""
    with mock.patch.object(feedgen.feed, "FeedEntry", _PlainEntry):
        return build(channel, items)


@pytest.mark.parametrize("description", ["A digest", ""])
def test_feeds_are_byte_identical_to_feedgens_own_setters(description: str) -> None:
    channel = Channel(
        title="Digest & <Co>", description=description, base_url=BASE, language="en", ttl=60, updated=T0
    )
    items = _items()
    rss = feed.rss(channel, items)
    assert rss == _plain(feed.rss, channel, items)
    assert rss.count(b"<pubDate>") == len(items) + 1 and rss.count(b"<dc:creator>") == 6
    atom = feed.atom(channel, items)
    assert atom == _plain(feed.atom, channel, items)
    assert atom.count(b"<published>") == len(items) and atom.count(b"<category ") == len(items)
    for empty in ([], items[:1]):
        assert feed.rss(channel, empty) == _plain(feed.rss, channel, empty)
        assert feed.atom(channel, empty) == _plain(feed.atom, channel, empty)
