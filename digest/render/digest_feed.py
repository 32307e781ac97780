"""Pure: one item per digest, listing its titles and links, as RSS 2.0 (``digests.xml``),
Atom 1.0 (``digests.atom``) and JSON Feed 1.1 (``digests.json``): for readers who want
one item a day rather than one per paper (rss2email mails each item on its own).

Items come newest first; each carries its digest's titles in the order first seen, each
linking to the paper's entry on the archive, then "and N more" with the digest's link
when the list was cut (the feeds' hard ceiling bounds the titles of all items).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from feedgen.feed import FeedGenerator

from digest import identity
from digest.render.feed import GENERATOR, GENERATOR_URI, JSON_FEED_VERSION, Channel
from digest.render.view import DigestView

DIGESTS_RSS_FILE = "digests.xml"
DIGESTS_ATOM_FILE = "digests.atom"
DIGESTS_JSON_FILE = "digests.json"


@dataclass(frozen=True, slots=True)
class DigestItem:
    """A digest with the titles (and absolute URLs) its item lists; ``count`` may be more."""

    digest: DigestView
    titles: tuple[tuple[str, str], ...]

    @property
    def more(self) -> int:
        return max(0, self.digest.count - len(self.titles))

    @property
    def guid(self) -> str:
        return f"urn:paper-digest:digest:{self.digest.slug}"

    @property
    def title(self) -> str:
        d = self.digest
        suffix = self.digest.slug.removeprefix(d.iso_date).lstrip("-")
        edition = f" (#{suffix})" if suffix.isdigit() else ""
        return f"Digest of {d.day_label}{edition}: {d.count} paper{'' if d.count == 1 else 's'}"

    def html(self) -> str:
        h = escape
        rows = "".join(f'<li><a href="{h(url)}">{h(title)}</a></li>' for title, url in self.titles)
        parts = [f"<ol>{rows}</ol>"] if rows else []
        if self.more:
            parts.append(f'<p><a href="{h(self.digest.url)}">{self.more} more on the archive page</a></p>')
        else:
            parts.append(f'<p><a href="{h(self.digest.url)}">The digest on the archive</a></p>')
        return "\n".join(parts)

    def text(self) -> str:
        lines = [f"- {title}\n  {url}" for title, url in self.titles]
        if self.more:
            lines.append(f"{self.more} more on the archive page: {self.digest.url}")
        return "\n".join(lines)


def _generator(channel: Channel, file_name: str) -> FeedGenerator:
    fg = FeedGenerator()
    # feedgen's RSS <link> is the *last* link added: self goes first.
    fg.link(href=identity.site_url(channel.base_url, file_name), rel="self")
    fg.link(href=channel.base_url, rel="alternate")
    fg.language(channel.language)
    fg.generator(GENERATOR, uri=GENERATOR_URI)
    fg.id(identity.site_url(channel.base_url, file_name))
    fg.title(f"{channel.title}: one item per digest")
    return fg


def rss(channel: Channel, items: Sequence[DigestItem]) -> bytes:
    """RSS 2.0, newest digest first; ``description`` is the titles' HTML (escaped)."""
    fg = _generator(channel, DIGESTS_RSS_FILE)
    fg.description(escape(channel.description or channel.title, quote=True))
    fg.lastBuildDate(channel.updated)
    fg.pubDate(channel.updated)
    fg.ttl(channel.ttl)
    for item in items:
        fe = fg.add_entry(order="append")
        fe.guid(item.guid, permalink=False)
        fe.title(item.title)
        fe.link(href=item.digest.url)
        fe.pubDate(item.digest.created)
        fe.description(item.html())
    data: bytes = fg.rss_str(pretty=True)
    return data


def atom(channel: Channel, items: Sequence[DigestItem]) -> bytes:
    """Atom 1.0, newest digest first; ``content`` is the titles' HTML."""
    fg = _generator(channel, DIGESTS_ATOM_FILE)
    fg.updated(channel.updated)
    if channel.description:
        fg.subtitle(channel.description)
    fg.author({"name": channel.title, "uri": channel.base_url})
    for item in items:
        fe = fg.add_entry(order="append")
        fe.id(item.guid)
        fe.title(item.title)
        fe.link(href=item.digest.url, rel="alternate")
        fe.published(item.digest.created)
        fe.updated(item.digest.created)
        fe.content(item.html(), type="html")
    data: bytes = fg.atom_str(pretty=True)
    return data


def json_feed(channel: Channel, items: Sequence[DigestItem]) -> bytes:
    """JSON Feed 1.1, newest digest first, keys in a fixed order."""
    entries = [
        {
            "id": item.guid,
            "url": item.digest.url,
            "title": item.title,
            "content_html": item.html(),
            "content_text": item.text(),
            "date_published": item.digest.created.isoformat(),
            "_paper_digest": {
                "digest": item.digest.slug,
                "papers": item.digest.count,
                "listed": [{"title": t, "url": u} for t, u in item.titles],
            },
        }
        for item in items
    ]
    doc = {
        "version": JSON_FEED_VERSION,
        "title": f"{channel.title}: one item per digest",
        "home_page_url": channel.base_url,
        "feed_url": identity.site_url(channel.base_url, DIGESTS_JSON_FILE),
        "description": channel.description,
        "language": channel.language,
        "items": entries,
    }
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
