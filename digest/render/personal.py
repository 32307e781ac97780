"""Pure: one reader's own page and feeds (issue 15): the recent digests' papers in that
reader's order, each with why it is there and, when the built-in pages are served, the
more/less-like-this links.

The feeds are the site's renderers (:mod:`digest.render.feed`) given a :class:`Note`
per item and the dates of :func:`item_times`; the page is ``personal.html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from digest import identity
from digest.render import feed, templates
from digest.render.archive import FEEDS, Site, edition
from digest.render.feed import Note
from digest.render.view import DigestView, PaperView

PAGE_FILE = "index.html"
FILES = (PAGE_FILE, feed.RSS_FILE, feed.ATOM_FILE, feed.JSON_FILE)


@dataclass(frozen=True, slots=True)
class Entry:
    paper: PaperView
    note: Note


@dataclass(frozen=True, slots=True)
class Group:
    """One digest's papers as the reader gets them, best first. ``shown_of``: how many
    the digest holds (more than ``entries`` when excluded or below the top picks)."""

    digest: DigestView
    entries: tuple[Entry, ...]
    shown_of: int


_SECOND = timedelta(seconds=1)


def item_times(groups: Sequence[Group]) -> list[datetime]:
    """Each entry's date, in feed order (``groups`` newest digest first, entries best
    first): a digest's best paper is dated the digest's time and each next one a second
    earlier, so a reader sorting by date keeps the reader's order; a digest's items are
    moved later when needed to stay after the items of the digest before it."""
    out: list[list[datetime]] = []
    previous: datetime | None = None
    for group in reversed(groups):  # oldest first
        count = len(group.entries)
        first = group.digest.created - max(count - 1, 0) * _SECOND
        if previous is not None and first <= previous:
            first = previous + _SECOND
        out.append([first + (count - 1 - r) * _SECOND for r in range(count)])
        if count:
            previous = first + (count - 1) * _SECOND
    return [moment for times in reversed(out) for moment in times]


def feeds(channel: feed.Channel, groups: Sequence[Group]) -> dict[str, bytes]:
    """``feed.xml``, ``atom.xml`` and ``feed.json`` of the reader's folder, whose URL is
    ``channel.base_url``."""
    items = [(e.paper, g.digest) for g in groups for e in g.entries]
    notes = [e.note for g in groups for e in g.entries]
    times = item_times(groups)
    if times:  # never older than its newest item
        channel = replace(channel, updated=max(channel.updated, *times))
    return {
        feed.RSS_FILE: feed.rss(channel, items, notes=notes, times=times),
        feed.ATOM_FILE: feed.atom(channel, items, notes=notes, times=times),
        feed.JSON_FILE: feed.json_feed(channel, items, notes=notes, times=times),
    }


def page(site: Site, folder: str, groups: Sequence[Group], *, preferences_url: str | None) -> bytes:
    """The reader's page, ``<folder>/index.html`` (``folder`` relative to the site root,
    two levels deep: ``for/<hex>``): links to their feeds and preferences, then each
    digest's papers in their order, headed by the digest's date as the archive labels
    it ("30 Nov 2026 (#2)" for a day's second digest)."""
    depth = folder.strip("/").count("/") + 1
    html = templates.render(
        "personal.html",
        site=site,
        groups=groups,
        editions={g.digest.id: edition(g.digest) for g in groups},
        feeds=[
            {
                "name": f.name,
                "file": f"{folder}/{f.file}",
                "mime": f.mime,
                "url": identity.site_url(site.base_url, f"{folder}/{f.file}"),
            }
            for f in FEEDS
        ],
        root="../" * depth,
        canonical=identity.site_url(site.base_url, folder + "/"),
        preferences_url=preferences_url,
    )
    return html.encode("utf-8")
