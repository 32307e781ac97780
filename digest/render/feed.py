"""Pure: the newest papers → RSS 2.0 and Atom 1.0 (built with feedgen) and JSON Feed 1.1.

Every renderer takes the same ``(paper, digest)`` items, in the feed's order (the
newest digest first, each digest's papers in the order its archive page lists them),
and a :class:`Channel`, and returns bytes that depend on nothing else: feedgen stamps ``now``
and its own version and prepends entries unless told otherwise, so the update time,
the generator and ``order="append"`` are always set explicitly here.

Text that only looks like markup (``<``, ``&``, ``{{ x }}``) must come out as written:

- Atom titles and summaries are ``type="text"``; the content is ``type="html"``.
- RSS has no such types. Its spec makes ``title`` plain text (newsboat and most
  readers show it as such), so it is XML-escaped once; ``description`` "may contain
  entity-encoded HTML" and every reader renders it as HTML, so the abstract goes in
  HTML-escaped: a reader shows ``a <b> c`` and never a bold ``c``.
- JSON Feed separates ``content_text`` from ``content_html``; ``title`` is plain text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator

# isort: split
# feedgen.ext.dc uses lxml.etree without importing it: feedgen.feed must come first.
from feedgen.ext.dc import DcEntryExtension, DcExtension

from digest import identity
from digest.render.escaping import escape
from digest.render.feed_tail import NAMESPACE as TAIL
from digest.render.feed_tail import FeedTail, ItemTail
from digest.render.view import DigestView, PaperView, Site

GENERATOR = "paper-digest"
GENERATOR_URI = "https://github.com/paper-digest/paper-digest"
RSS_FILE = "feed.xml"
ATOM_FILE = "atom.xml"
JSON_FILE = "feed.json"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"

Item = tuple[PaperView, DigestView]


@dataclass(frozen=True, slots=True)
class Note:
    """What a reader's own feed adds to an item (:mod:`digest.personal_site`): why it is
    there, and the links that vote on it (None when the built-in pages are not served)."""

    reasons: tuple[str, ...] = ()
    more_url: str | None = None
    less_url: str | None = None


@dataclass(frozen=True, slots=True)
class Channel(Site):
    """What the feed says about itself: the site's words, and how fresh it is."""

    ttl: int  # minutes a reader may cache it
    updated: datetime  # the newest digest's time, never the clock

    @classmethod
    def of(cls, site: Site, *, ttl: int, updated: datetime) -> Channel:
        return cls(site.title, site.description, site.language, site.base_url, ttl, updated)


_h = escape  # html.escape(text, quote=True), faster (digest/render/escaping.py)


def _link(url: str, label: str) -> str:
    return f'<a href="{_h(url)}">{_h(label)}</a>'


def _paper_html(paper: PaperView, digest: DigestView) -> str:
    """:func:`content_html` but the note: the same in every reader's feeds. (Not cached
    process-wide: such a cache helps a warm benchmark more than a cold run; issue 13.)"""
    h = _h
    pieces = []
    for piece, url in paper.segments:
        if url is None:
            pieces.append(h(piece))
        else:
            href = h(url)
            pieces.append(f'<a href="{href}">{href if piece == url else h(piece)}</a>')
    abstract = "".join(pieces)
    parts = [f"<p>{abstract}</p>"] if abstract else []
    if paper.authors:
        parts.append(f"<p>{h(', '.join(paper.authors))}</p>")
    if paper.arxiv_id:
        arxiv, hf = h(f"arXiv {paper.arxiv_id}"), "Hugging Face"
    else:
        arxiv, hf = "Search arXiv", "Search Hugging Face"
    links = [f'<a href="{h(paper.arxiv_url)}">{arxiv}</a>', f'<a href="{h(paper.hf_url)}">{hf}</a>']
    links.extend(_link(url, _short(url)) for url in paper.links)
    links.append(_link(paper.url, f"Digest of {digest.day_label}"))
    if paper.upvotes is not None:
        links.append(f"{paper.upvotes} upvote{'' if paper.upvotes == 1 else 's'}")
    parts.append(f"<p>{' · '.join(links)}</p>")
    return "\n".join(parts)


def content_html(paper: PaperView, digest: DigestView, note: Note | None = None) -> str:
    """The item's HTML body: the abstract with its code links clickable, then who wrote
    it (when known) and where to read it; in a reader's own feed (``note``) why it is
    there and the more/less-like-this links. Every piece of text is escaped."""
    parts = [_paper_html(paper, digest)]
    if note is not None:
        if note.reasons:
            parts.append(f"<p>Why: {_h('; '.join(note.reasons))}</p>")
        if note.more_url and note.less_url:
            parts.append(
                f"<p>{_link(note.more_url, 'More like this')} · {_link(note.less_url, 'Less like this')}</p>"
            )
    return "\n".join(parts)


_SECOND = timedelta(seconds=1)


def item_times(items: Sequence[Item]) -> list[datetime]:
    """Each item's date, in the order of ``items``: when the paper was first seen plus its
    position in its digest in seconds (its seq minus the digest's first), so readers that
    sort by date keep a digest's listing order. Taken over the items in seq order, each
    is also at least a second after the one before: two digests made within a few
    minutes (first seen close together) never share or swap times. A backfilled digest
    is dated before its papers were seen (by its listing date): its date counts instead."""
    times: dict[int, datetime] = {}
    previous: datetime | None = None
    for paper, digest in sorted(items, key=lambda item: item[0].seq):
        seen = min(paper.first_seen, digest.created)
        moment = seen + timedelta(seconds=max(0, paper.seq - digest.first_seq))
        if previous is not None and moment <= previous:
            moment = previous + _SECOND
        times[paper.seq] = previous = moment
    return [times[paper.seq] for paper, _ in items]


def _entries(
    items: Sequence[Item], notes: Sequence[Note | None] | None, times: Sequence[datetime] | None
) -> list[tuple[Item, datetime, Note | None]]:
    """Each item with its date (``times``, else :func:`item_times`) and its note (none on
    the site's feeds)."""
    dates = list(times) if times is not None else item_times(items)
    extra = list(notes) if notes is not None else [None] * len(items)
    return list(zip(items, dates, extra, strict=True))


def _short(url: str) -> str:
    """``https://github.com/a/b`` → ``github.com/a/b``: what a reader needs to recognise."""
    return url.split("://", 1)[-1].rstrip("/")


def _generator(channel: Channel, file_name: str) -> FeedGenerator:
    fg = FeedGenerator()
    # feedgen's RSS <link> is the *last* link added (its comment says first): self goes first.
    fg.link(href=identity.site_url(channel.base_url, file_name), rel="self")
    fg.link(href=channel.base_url, rel="alternate")
    fg.language(channel.language)
    fg.lastBuildDate(channel.updated)
    fg.updated(channel.updated)
    fg.ttl(channel.ttl)
    fg.generator(GENERATOR, uri=GENERATOR_URI)
    fg.id(channel.base_url)
    return fg


def _add_entry(
    fg: FeedGenerator, paper: PaperView, digest: DigestView, note: Note | None, content_type: str
) -> tuple[FeedEntry, ItemTail]:
    """The next item, with what RSS and Atom give alike: the paper's GUID (its Atom id; never
    a permalink), its title and its HTML content (carried as ``content_type``); and its tail."""
    fe = fg.add_entry(order="append")
    fe.id(paper.guid)
    fe.title(paper.title)
    fe.content(content_html(paper, digest, note), type=content_type)
    tail: ItemTail = getattr(fe, TAIL)
    return fe, tail


def rss(
    channel: Channel,
    items: Sequence[Item],
    *,
    notes: Sequence[Note | None] | None = None,
    times: Sequence[datetime] | None = None,
) -> bytes:
    """RSS 2.0, one item per paper in the order given. ``description`` is
    the abstract as (escaped) text, ``content:encoded`` the HTML, ``dc:creator`` the authors."""
    fg = _generator(channel, RSS_FILE)
    # Every item's category and pubDate (digest/render/feed_tail.py); registered first,
    # so they come before dc:creator, where feedgen's own setters would put them.
    fg.register_extension(TAIL, FeedTail, ItemTail, atom=False, rss=True)
    # The dc namespace is declared on every feed, but the entry extension goes only on
    # items with authors: feedgen would otherwise run it, finding nothing, on every item.
    fg.register_extension("dc", DcExtension, None, atom=False, rss=True)
    fg.title(channel.title)
    fg.description(_h(channel.description or channel.title))
    fg.pubDate(channel.updated)
    for (paper, digest), moment, note in _entries(items, notes, times):
        fe, tail = _add_entry(fg, paper, digest, note, "CDATA")
        fe.link(href=paper.url)
        fe.description(_h(paper.abstract or paper.title))
        tail.set(digest.iso_date, digest.iso_date, moment)
        if paper.authors:
            fe.register_extension("dc", DcEntryExtension, atom=False, rss=True)
            fe.dc.dc_creator(list(paper.authors))
    data: bytes = fg.rss_str(pretty=True)
    return data


def atom(
    channel: Channel,
    items: Sequence[Item],
    *,
    notes: Sequence[Note | None] | None = None,
    times: Sequence[datetime] | None = None,
) -> bytes:
    """Atom 1.0: ``summary`` is the abstract as text, ``content`` the HTML, one ``author``
    per known author; the feed's own author is the site, as Atom requires."""
    fg = _generator(channel, ATOM_FILE)
    # Every entry's link, summary, category and published time, after its content
    # (digest/render/feed_tail.py).
    fg.register_extension(TAIL, FeedTail, ItemTail, atom=True, rss=False)
    fg.title(channel.title)
    if channel.description:
        fg.subtitle(channel.description)
    fg.author({"name": channel.title, "uri": channel.base_url})
    for (paper, digest), moment, note in _entries(items, notes, times):
        fe, tail = _add_entry(fg, paper, digest, note, "html")
        fe.updated(moment)
        # One link only: feedgen 1.0 drops the rel/type of entry links (a shadowed variable),
        # so a second one would read as a duplicate "alternate". arXiv is in the content.
        tail.set_atom_link(paper.url, paper.abstract or paper.title)
        tail.set(digest.iso_date, f"Digest of {digest.day_label}", moment)
        for name in paper.authors:
            fe.author({"name": name})
    data: bytes = fg.atom_str(pretty=True)
    return data


def json_feed(
    channel: Channel,
    items: Sequence[Item],
    *,
    notes: Sequence[Note | None] | None = None,
    times: Sequence[datetime] | None = None,
) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1), UTF-8, keys in a fixed order."""
    entries = []
    for (paper, digest), moment, note in _entries(items, notes, times):
        entry: dict[str, object] = {
            "id": paper.guid,
            "url": paper.url,
            "title": paper.title,
            "content_html": content_html(paper, digest, note),
            "content_text": paper.abstract or paper.title,
            "date_published": moment.isoformat(),
            "tags": [digest.iso_date],
        }
        if paper.arxiv_id:
            entry["external_url"] = paper.arxiv_url
        if paper.authors:
            entry["authors"] = [{"name": name} for name in paper.authors]
        ours: dict[str, object] = {
            "digest": digest.slug,
            "arxiv_url": paper.arxiv_url,
            "huggingface_url": paper.hf_url,
            "code_urls": list(paper.links),
            "upvotes": paper.upvotes,
        }
        if note is not None:
            ours.update(
                reasons=list(note.reasons), more_like_this=note.more_url, less_like_this=note.less_url
            )
        entry["_paper_digest"] = ours
        entries.append(entry)
    doc = {
        "version": JSON_FEED_VERSION,
        "title": channel.title,
        "home_page_url": channel.base_url,
        "feed_url": identity.site_url(channel.base_url, JSON_FILE),
        "description": channel.description,
        "language": channel.language,
        "items": entries,
    }
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
