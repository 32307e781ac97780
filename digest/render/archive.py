"""Pure: the static archive site: an index of the recent digests, one page per year
listing that year's digests, and one page per digest.

Pages are self-contained (inline CSS, no scripts, fonts or images), readable with CSS
off, and link to each other and to the feeds with relative URLs, so the site works from
any host or straight from disk. A digest's page depends only on its digest and the one
before it, a year's page on that year's digests and the years before and after it, and
the index on the recent months and the per-year totals: a normal run renders the new
page, its year's page and the index, however long the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from digest import identity
from digest.render import templates
from digest.render.digest_feed import DIGESTS_ATOM_FILE, DIGESTS_JSON_FILE, DIGESTS_RSS_FILE
from digest.render.feed import ATOM_FILE, JSON_FILE, RSS_FILE
from digest.render.view import DigestView, PaperView
from digest.render.view import Site as Site  # the pages' first argument, shared with the feeds

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
class Feed:
    name: str
    file: str
    mime: str


FEEDS = (
    Feed("RSS", RSS_FILE, "application/rss+xml"),
    Feed("Atom", ATOM_FILE, "application/atom+xml"),
    Feed("JSON Feed", JSON_FILE, "application/feed+json"),
)
# One item per digest, for readers who want one item a day: announced on the index.
DIGEST_FEEDS = (
    Feed("RSS, one item per digest", DIGESTS_RSS_FILE, "application/rss+xml"),
    Feed("Atom, one item per digest", DIGESTS_ATOM_FILE, "application/atom+xml"),
    Feed("JSON Feed, one item per digest", DIGESTS_JSON_FILE, "application/feed+json"),
)
# Index and year pages show this many titles of each digest.
FIRST_TITLES = 3


@dataclass(frozen=True, slots=True)
class Month:
    """Digests of one calendar month, for the index's headings."""

    label: str  # "November 2026"
    digests: tuple[DigestView, ...]


# The index lists the digests of this many calendar months, up to the newest digest's;
# older ones are on the year pages.
RECENT_MONTHS = 12


@dataclass(frozen=True, slots=True)
class Year:
    """One year of the archive, for the links to the year pages."""

    year: int
    digests: int
    papers: int

    @property
    def path(self) -> str:
        return year_path(self.year)


def year_path(year: int) -> str:
    """Path of a year's page, relative to the site root."""
    return f"archive/{year}.html"


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


def _feeds(site: Site, feeds: Sequence[Feed] = FEEDS) -> list[dict[str, str]]:
    return [
        {"name": f.name, "file": f.file, "mime": f.mime, "url": identity.site_url(site.base_url, f.file)}
        for f in feeds
    ]


def digest_pages(
    site: Site,
    digest: DigestView,
    papers: Sequence[PaperView],
    *,
    older: DigestView | None = None,
    newer: DigestView | None = None,
    page_size: int,
) -> list[tuple[str, bytes]]:
    """A digest's pages as (path, html): every paper, in the order first seen, under an
    anchor that the feeds and the email link to, ``page_size`` seqs a page
    (:func:`digest.identity.page_of`; a page never holds more papers). Each page links to
    the digest's other pages, to ``older`` (``rel="prev"``) and ``newer`` (``rel="next"``)."""
    buckets: dict[int, list[PaperView]] = {}
    for p in papers:
        buckets.setdefault(identity.page_of(p.seq, digest.first_seq, page_size), []).append(p)
    numbers = sorted(buckets) or [1]
    nav = [(n, identity.digest_path(digest.slug, n)) for n in numbers]
    out = []
    start = 1
    for n in numbers:
        path = identity.digest_path(digest.slug, n)
        html = templates.render(
            "archive.html",
            site=site,
            digest=digest,
            edition=edition(digest),
            papers=buckets.get(n, []),
            page=n,
            start=start,
            page_nav=nav if len(numbers) > 1 else [],
            older=older,
            older_edition=edition(older) if older else 1,
            newer=newer,
            newer_edition=edition(newer) if newer else 1,
            feeds=_feeds(site),
            canonical=identity.site_url(site.base_url, path),
            root="../",
        )
        out.append((path, html.encode("utf-8")))
        start += len(buckets.get(n, []))
    return out


def index_page(
    site: Site,
    recent: Sequence[DigestView],
    years: Sequence[Year],
    *,
    digest_count: int,
    paper_count: int,
    signup: bool = False,
) -> bytes:
    """The archive's front page: the ``recent`` digests (newest first, grouped by month)
    with their paper counts, a link to each year's page, the totals of the whole archive
    and the feeds (linked and announced for autodiscovery), and with ``signup`` (the
    subscriber pages are served) a link to the sign-up page, ``subscribe``."""
    html = templates.render(
        "index.html",
        site=site,
        months=by_month(recent),
        editions={d.id: edition(d) for d in recent},
        years=years,
        digest_count=digest_count,
        paper_count=paper_count,
        feeds=_feeds(site),
        digest_feeds=_feeds(site, DIGEST_FEEDS),
        signup=signup,
        canonical=site.base_url,
        root="",
    )
    return html.encode("utf-8")


def year_page(
    site: Site, year: Year, digests: Sequence[DigestView], *, older: Year | None, newer: Year | None
) -> bytes:
    """One year's page: its digests (newest first, grouped by month) and links to the
    years before and after it that have digests."""
    html = templates.render(
        "year.html",
        site=site,
        year=year,
        months=by_month(digests),
        editions={d.id: edition(d) for d in digests},
        older=older,
        newer=newer,
        feeds=_feeds(site),
        canonical=identity.site_url(site.base_url, year.path),
        root="../",
    )
    return html.encode("utf-8")
