"""Edge: publishes the feeds and the archive into ``feed.output_dir``.

A run renders only what changed: the pages of the digests not yet published, the pages
of their years (``archive/<year>.html``), the index (the recent months and a link per
year) and the feeds (``feed.xml`` RSS 2.0, ``atom.xml`` Atom 1.0, ``feed.json`` JSON
Feed 1.1). What it reads and renders grows with the new digests, not with the history.
``everything=True`` (``digest publish``) re-renders every digest and year page too.
Every file is written atomically, and a digest is marked published only after all its
files are in place.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from digest.config import Config
from digest.crashpoints import crash_point
from digest.errors import PublishError
from digest.model import Digest
from digest.publish import remove_stale_temps, write_atomic
from digest.render import archive, feed
from digest.render.view import DigestView, digest_view, paper_view
from digest.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PublishReport:
    digests: tuple[int, ...]
    files: tuple[Path, ...]


def _write(path: Path, data: bytes) -> Path:
    try:
        write_atomic(path, data)
    except OSError as err:
        raise PublishError(
            f"cannot write {path}: {err.strerror or err}; check that feed.output_dir is writable"
        ) from err
    crash_point("site.file_written")
    return path


def _view(config: Config, digest: Digest) -> DigestView:
    return digest_view(digest, config.digest.base_url, config.tz)


def publish(config: Config, store: Store, output_dir: Path, *, everything: bool = False) -> PublishReport:
    """Writes the unpublished digests' pages (every page with ``everything``, which
    ``digest publish`` uses), their years' pages, the index and the three feeds. Returns
    what was written and which digests were pending; nothing when there is nothing to
    publish.

    Temp files a killed run left behind are removed first (the caller holds the lock)."""
    for leftover in remove_stale_temps(output_dir):
        log.info("removed %s, left by an interrupted run", leftover)
    pending = store.digests(unpublished=True)
    if not pending and not everything:
        return PublishReport((), ())
    latest = store.digests(limit=1)
    if not latest:
        return PublishReport((), ())
    base = config.digest.base_url
    site = _site(config)
    written: list[Path] = []
    if everything:
        chain = store.digests()  # every page, each with the one before it
        pages = [(d, chain[i + 1] if i + 1 < len(chain) else None) for i, d in enumerate(chain)]
    else:
        pages = [(d, store.previous_digest(d.id)) for d in pending]
    for digest, before in pages:
        view = _view(config, digest)
        papers = [paper_view(p, digest.slug, base) for p in store.digest_papers(digest)]
        older = _view(config, before) if before is not None else None
        page = archive.digest_page(site, view, papers, older=older)
        written.append(_write(output_dir / view.path, page))

    years = _years(config, store)
    # A year's page changes with its digests; a year's first digest also gives the year
    # before it a "next year" link.
    pending_years = Counter(_local(config, d.created).year for d in pending)
    for i, year in enumerate(years):  # newest first
        prior = years[i + 1] if i + 1 < len(years) else None
        after = years[i - 1] if i > 0 else None
        new_year_after = after is not None and after.digests == pending_years[after.year]
        if everything or year.year in pending_years or new_year_after:
            start, end = _year_bounds(config, year.year)
            views = [_view(config, d) for d in store.digests_between(start, end)]
            page = archive.year_page(site, year, views, older=prior, newer=after)
            written.append(_write(output_dir / year.path, page))

    recent = [_view(config, d) for d in store.digests_between(_recent_start(config, latest[0].created))]
    digest_count, paper_count = store.digest_totals()
    index = archive.index_page(site, recent, years, digest_count=digest_count, paper_count=paper_count)
    written.append(_write(output_dir / "index.html", index))

    newest = latest[0]
    limit = max(config.feed.max_items, newest.paper_count)
    items = [
        (paper_view(p, d.slug, base), _view(config, d))
        for p, d in store.recent_papers(limit, newest.last_seq)
    ]
    channel = feed.Channel(
        title=config.digest.title,
        description=config.digest.description,
        base_url=base,
        language=config.digest.language,
        ttl=config.feed.ttl,
        updated=newest.created,
    )
    for name, render in (
        (feed.RSS_FILE, feed.rss),
        (feed.ATOM_FILE, feed.atom),
        (feed.JSON_FILE, feed.json_feed),
    ):
        written.append(_write(output_dir / name, render(channel, items)))
    return PublishReport(tuple(d.id for d in pending), tuple(written))


def _local(config: Config, moment: datetime) -> datetime:
    return moment.astimezone(config.tz)


def _year_bounds(config: Config, year: int) -> tuple[datetime, datetime]:
    """The UTC instants a year starts and ends in the configured time zone: the year of
    a digest is the year of its local date, as its page and the index show it."""
    return (
        datetime(year, 1, 1, tzinfo=config.tz).astimezone(UTC),
        datetime(year + 1, 1, 1, tzinfo=config.tz).astimezone(UTC),
    )


def _recent_start(config: Config, newest: datetime) -> datetime:
    """The start of the first of the index's :data:`~digest.render.archive.RECENT_MONTHS`
    months, the last of which holds the newest digest."""
    local = _local(config, newest)
    months = local.year * 12 + local.month - 1 - (archive.RECENT_MONTHS - 1)
    return datetime(months // 12, months % 12 + 1, 1, tzinfo=config.tz).astimezone(UTC)


def _years(config: Config, store: Store) -> list[archive.Year]:
    """Every year with a digest, newest first, with its totals (one query)."""
    span = store.digest_span()
    if span is None:
        return []
    first, last = _local(config, span[0]).year, _local(config, span[1]).year
    bounds = [_year_bounds(config, year)[0] for year in range(first, last + 2)]
    totals = store.digest_totals_per_range(bounds)
    return [
        archive.Year(year=first + i, digests=count, papers=papers)
        for i, (count, papers) in reversed(list(enumerate(totals)))
        if count
    ]


def _site(config: Config) -> archive.Site:
    return archive.Site(
        title=config.digest.title,
        description=config.digest.description,
        language=config.digest.language,
        base_url=config.digest.base_url,
    )
