"""Pure: the static archive site, an index of digests and one page per digest.

Pages are self-contained (inline CSS, no scripts, fonts or images), readable with CSS
off, and link to each other and to the feeds with relative URLs, so the site works from
any host or straight from disk. A page depends only on its digest and the one before it,
so a normal run can render just the new page and the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from digest import identity
from digest.render import templates
from digest.render.feed import ATOM_FILE, JSON_FILE, RSS_FILE
from digest.render.view import DigestView, PaperView

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True, slots=True)
class Site:
    """What every page says about the site."""

    title: str
    description: str
    language: str
    base_url: str


@dataclass(frozen=True, slots=True)
class Feed:
    name: str
    file: str
    mime: str


FEEDS = (
    Feed("RSS", RSS_FILE, "application/rss+xml"),
    Feed("Atom", ATOM_FILE, "application/atom+xml"),
    Feed("JSON Feed", JSON_FILE, "application/feed+json"),
)


@dataclass(frozen=True, slots=True)
class Month:
    """Digests of one calendar month, for the index's headings."""

    label: str  # "November 2026"
    digests: tuple[DigestView, ...]


def edition(digest: DigestView) -> int:
    """1 for a day's first digest, 2 for ``2026-11-22-2`` and so on."""
    suffix = digest.slug.removeprefix(digest.iso_date).lstrip("-")
    return int(suffix) if suffix.isdigit() else 1


def by_month(digests: Sequence[DigestView]) -> tuple[Month, ...]:
    """Groups digests (newest first) by the month of their date, keeping the order."""
    months: list[Month] = []
    for d in digests:
        day = date.fromisoformat(d.iso_date)
        label = f"{_MONTHS[day.month - 1]} {day.year}"
        if months and months[-1].label == label:
            months[-1] = Month(label, (*months[-1].digests, d))
        else:
            months.append(Month(label, (d,)))
    return tuple(months)


def _feeds(site: Site) -> list[dict[str, str]]:
    return [
        {"name": f.name, "file": f.file, "mime": f.mime, "url": identity.site_url(site.base_url, f.file)}
        for f in FEEDS
    ]


def digest_page(
    site: Site, digest: DigestView, papers: Sequence[PaperView], *, older: DigestView | None = None
) -> bytes:
    """One digest's page: every paper, in the order first seen, under an anchor that the
    feeds and the email link to; ``older`` is the previous digest, linked at the bottom."""
    html = templates.render(
        "archive.html",
        site=site,
        digest=digest,
        edition=edition(digest),
        papers=papers,
        older=older,
        older_edition=edition(older) if older else 1,
        feeds=_feeds(site),
        canonical=digest.url,
        root="../",
    )
    return html.encode("utf-8")


def index_page(site: Site, digests: Sequence[DigestView]) -> bytes:
    """The archive's front page: digests newest first, grouped by month, with their
    paper counts, and the feeds (linked and announced for autodiscovery)."""
    html = templates.render(
        "index.html",
        site=site,
        months=by_month(digests),
        editions={d.id: edition(d) for d in digests},
        digest_count=len(digests),
        paper_count=sum(d.count for d in digests),
        feeds=_feeds(site),
        canonical=site.base_url,
        root="",
    )
    return html.encode("utf-8")
