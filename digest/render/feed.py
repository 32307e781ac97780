"""Pure: the newest papers → RSS 2.0 bytes, built with feedgen.

feedgen stamps ``now`` and its own version unless told otherwise; everything here
is set explicitly so the same state gives byte-identical feeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from feedgen.feed import FeedGenerator

from digest import identity
from digest.render.view import DigestView, PaperView

GENERATOR = "paper-digest"
GENERATOR_URI = "https://github.com/paper-digest/paper-digest"


@dataclass(frozen=True, slots=True)
class Channel:
    """What the feed says about itself."""

    title: str
    description: str
    base_url: str
    language: str
    ttl: int
    updated: datetime  # the newest digest's time, never the clock


def _generator(channel: Channel, file_name: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.title(channel.title)
    fg.description(channel.description)
    fg.link(href=channel.base_url, rel="alternate")
    fg.link(href=identity.site_url(channel.base_url, file_name), rel="self")
    fg.language(channel.language)
    fg.lastBuildDate(channel.updated)
    fg.updated(channel.updated)
    fg.ttl(channel.ttl)
    fg.generator(GENERATOR, uri=GENERATOR_URI)
    fg.id(channel.base_url)
    return fg


def rss(channel: Channel, items: Sequence[tuple[PaperView, DigestView]]) -> bytes:
    """RSS 2.0 with one item per paper, in the order given (newest first)."""
    fg = _generator(channel, "feed.xml")
    for paper, digest in items:
        fe = fg.add_entry(order="append")
        fe.guid(paper.guid, permalink=False)
        fe.title(paper.title)
        fe.link(href=paper.url)
        fe.pubDate(paper.first_seen)
        fe.description(paper.abstract or paper.title)
        fe.category(term=digest.iso_date, label=f"Digest of {digest.day_label}")
    data: bytes = fg.rss_str(pretty=True)
    return data
