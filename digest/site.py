"""Edge: publishes the feeds and the archive into ``feed.output_dir``.

A run renders only what changed: the pages of the digests not yet published (split into
pages of ``archive.page_size`` papers) and of the digest before them (its "next" link),
the pages of their years (``archive/<year>.html``), the index (the recent months, each
digest with its first titles, and a link per year) and the feeds (``feed.xml`` RSS 2.0,
``atom.xml`` Atom 1.0, ``feed.json`` JSON Feed 1.1: every paper of the digests of
``feed.window``; ``digests.xml``/``digests.atom``/``digests.json``: one item per digest).
What it reads and renders grows with the new digests, not with the history.
``everything=True`` (``digest publish``) re-renders every digest and year page too.
Every file is written atomically, and a digest is marked published only after all its
files are in place.

Each folder keeps its own marker, :data:`MARKER`: the newest digest id it shows. Several
instances sharing one PostgreSQL state each publish their own ``feed.output_dir``
(docs/DESIGN.md invariant 9): a digest another instance made and published is still
"new" to this folder while its id is above the marker, so this folder renders it on its
next publish. A folder without a marker but with an index is taken to show every digest
published (a site from before the marker); one without either is rendered whole.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest import identity, text
from digest.atomic import remove_stale_temps, write_atomic
from digest.config import Config
from digest.crashpoints import crash_point
from digest.errors import PublishError
from digest.model import Digest
from digest.render import archive, digest_feed, feed
from digest.render.view import DigestView, Site, digest_paper_views, digest_view, paper_view
from digest.store import Store

log = logging.getLogger(__name__)

# The digest feeds carry the digests of ``feed.window``, and at least this many.
MIN_DIGEST_ITEMS = 7


@dataclass(frozen=True, slots=True)
class PublishReport:
    digests: tuple[int, ...]
    files: tuple[Path, ...]


def _write(path: Path, data: bytes, *, crash: bool = True) -> Path:
    try:
        write_atomic(path, data)
    except OSError as err:
        raise PublishError(
            f"cannot write {path}: {err.strerror or err}; check that feed.output_dir is writable"
        ) from err
    if crash:
        crash_point("site.file_written")
    return path


Firsts = dict[int, list[tuple[int, str, str]]]


def _view(config: Config, digest: Digest, firsts: Firsts | None = None) -> DigestView:
    """The digest as pages and feeds show it; with ``firsts`` (from
    :meth:`~digest.store.Store.first_titles`) it carries its first titles for lists."""
    size = config.archive.page_size
    listed = [
        (
            text.displayable(title),
            f"{identity.digest_path(digest.slug, identity.page_of(seq, digest.first_seq, size))}"
            f"#{identity.paper_anchor(key)}",
        )
        for seq, key, title in (firsts or {}).get(digest.id, [])
    ]
    return digest_view(digest, config.digest.base_url, config.tz, size, listed)


def _listed(config: Config, store: Store, chosen: list[Digest]) -> list[DigestView]:
    """Views of ``chosen`` with their first titles, for the index and the year pages."""
    firsts = store.first_titles(chosen, archive.FIRST_TITLES)
    return [_view(config, d, firsts) for d in chosen]


MARKER = ".published"  # in the output folder: "<newest digest id shown>\n"


def shown_through(output_dir: Path) -> int | None:
    """The newest digest id the site in ``output_dir`` shows (its :data:`MARKER`); None
    when the folder has no readable marker."""
    try:
        return int((output_dir / MARKER).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def _to_render(store: Store, output_dir: Path, newest: Digest, *, track: bool) -> list[Digest] | None:
    """The digests up to ``newest`` that ``output_dir`` does not show yet, newest first:
    the unpublished ones, and with ``track`` those above the folder's marker. None when
    the folder must be rendered whole (``track``, and it has neither marker nor index,
    or a marker from another state)."""
    todo = {d.id: d for d in store.digests(unpublished=True, up_to=newest.id)}
    if not track:
        return list(todo.values())
    shown = shown_through(output_dir)
    if shown is None and (output_dir / "index.html").is_file():
        shown = newest.id  # a site from before the marker: it shows every published digest
    if shown is None or shown > newest.id:
        return None
    if shown < newest.id:
        todo.update((d.id, d) for d in store.digests(after=shown, up_to=newest.id))
    return sorted(todo.values(), key=lambda d: -d.id)


def publish(
    config: Config, store: Store, output_dir: Path, *, everything: bool = False, track: bool = True
) -> PublishReport:
    """Writes the pages of the digests ``output_dir`` does not show yet (every page with
    ``everything``, which ``digest publish`` uses): the unpublished ones and, with
    ``track``, those above the folder's :data:`MARKER` (made and published by another
    instance); the page of the digest before each (its "next" link), their years' pages,
    the index and the feeds; then the marker. Returns what was written and which digests
    were unpublished (the caller marks them published); nothing when there is nothing to
    publish. Without ``track`` (a dry run's folder) the marker is neither read nor written.

    Temp files a killed run left behind are removed first (the caller holds the lock)."""
    for leftover in remove_stale_temps(output_dir):
        log.info("removed %s, left by an interrupted run", leftover)
    latest = store.digests(limit=1)
    if not latest:
        return PublishReport((), ())
    newest = latest[0]
    todo = _to_render(store, output_dir, newest, track=track)
    if todo is None:
        everything, todo = True, store.digests(unpublished=True, up_to=newest.id)
    unpublished = tuple(d.id for d in todo if d.published is None)
    if not todo and not everything:
        return PublishReport((), ())
    pending = todo
    site = site_of(config)
    written: list[Path] = []
    for digest, before, after in _pages_to_render(store, pending, everything=everything):
        written.extend(_digest_pages(config, store, site, output_dir, digest, before, after))

    years = _years(config, store)
    # A year's page changes with its digests; a year's first digest also gives the year
    # before it a "next year" link.
    pending_years = Counter(_local(config, d.created).year for d in pending)
    for i, year in enumerate(years):  # newest first
        prior = years[i + 1] if i + 1 < len(years) else None
        after_year = years[i - 1] if i > 0 else None
        new_year_after = after_year is not None and after_year.digests == pending_years[after_year.year]
        if everything or year.year in pending_years or new_year_after:
            start, end = _year_bounds(config, year.year)
            views = _listed(config, store, store.digests_between(start, end))
            page = archive.year_page(site, year, views, older=prior, newer=after_year)
            written.append(_write(output_dir / year.path, page))

    recent = _listed(config, store, store.digests_between(_recent_start(config, latest[0].created)))
    digest_count, paper_count = store.digest_totals()
    # The sign-up page exists when the subscriber pages are served (audience.served).
    signup = bool(config.http.listen)
    index = archive.index_page(
        site, recent, years, digest_count=digest_count, paper_count=paper_count, signup=signup
    )
    written.append(_write(output_dir / "index.html", index))
    written.extend(_feeds(config, store, output_dir, newest))
    if track:
        _write(output_dir / MARKER, f"{newest.id}\n".encode("ascii"), crash=False)
    return PublishReport(unpublished, tuple(written))


def _pages_to_render(
    store: Store, pending: list[Digest], *, everything: bool
) -> list[tuple[Digest, Digest | None, Digest | None]]:
    """(digest, the one before, the one after) for each digest page to write: every
    digest with ``everything``, else the pending ones and the digest just before each
    (it gains a "next" link): one extra page per run."""
    if everything:
        chain = store.digests()  # newest first
        return [
            (d, chain[i + 1] if i + 1 < len(chain) else None, chain[i - 1] if i > 0 else None)
            for i, d in enumerate(chain)
        ]
    todo: dict[int, Digest] = {d.id: d for d in pending}
    for d in pending:
        before = store.previous_digest(d.id)
        if before is not None and before.id not in todo:
            todo[before.id] = before
    return [(d, store.previous_digest(d.id), store.next_digest(d.id)) for d in todo.values()]


def _digest_pages(
    config: Config,
    store: Store,
    site: Site,
    output_dir: Path,
    digest: Digest,
    before: Digest | None,
    after: Digest | None,
) -> list[Path]:
    view = _view(config, digest)
    size = config.archive.page_size
    papers = digest_paper_views(digest, store.digest_papers(digest), config.digest.base_url, size)
    pages = archive.digest_pages(
        site,
        view,
        papers,
        older=_view(config, before) if before is not None else None,
        newer=_view(config, after) if after is not None else None,
        page_size=size,
    )
    return [_write(output_dir / path, page) for path, page in pages]


def feed_limit(config: Config, in_window: int) -> int:
    """How many papers the feeds carry: every paper of the window's digests
    (``in_window``) and at least ``feed.max_items``, but never more than
    ``feed.max_items_hard`` (logged when it cuts)."""
    wanted = max(config.feed.max_items, in_window)
    hard = config.feed.max_items_hard
    if wanted > hard:
        log.warning(
            "feeds cut to feed.max_items_hard = %d items: the digests of the last %s hold %d papers;"
            " the %d oldest are only on the archive pages",
            hard,
            _span(config.feed.window),
            in_window,
            wanted - hard,
        )
        return hard
    return wanted


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _feeds(config: Config, store: Store, output_dir: Path, newest: Digest) -> list[Path]:
    """The paper feeds (every paper of the digests of ``feed.window`` back from the newest
    digest's time, within the limits of :func:`feed_limit`) and the digest feeds (the
    window's digests, at least :data:`MIN_DIGEST_ITEMS`)."""
    base = config.digest.base_url
    size = config.archive.page_size
    start = newest.created - timedelta(seconds=config.feed.window)
    window = store.digests_between(start)
    limit = feed_limit(config, sum(d.paper_count for d in window))
    carried = store.recent_papers(limit, newest.last_seq)  # newest first
    # The newest digest first, each digest's papers as its page lists them.
    carried.sort(key=lambda item: (-item[1].first_seq, item[0].seq))
    views: dict[int, DigestView] = {}
    items = []
    for p, d in carried:
        if d.id not in views:
            views[d.id] = _view(config, d)
        items.append((paper_view(p, d.slug, base, identity.page_of(p.seq, d.first_seq, size)), views[d.id]))
    channel = feed.Channel.of(site_of(config), ttl=config.feed.ttl, updated=newest.created)
    written = []
    for name, render in (
        (feed.RSS_FILE, feed.rss),
        (feed.ATOM_FILE, feed.atom),
        (feed.JSON_FILE, feed.json_feed),
    ):
        written.append(_write(output_dir / name, render(channel, items)))

    chosen = window if len(window) >= MIN_DIGEST_ITEMS else store.digests(limit=MIN_DIGEST_ITEMS)
    # The titles of all items together stay within the hard ceiling too.
    per_digest = max(1, config.feed.max_items_hard // max(1, len(chosen)))
    firsts = store.first_titles(chosen, per_digest)
    digest_items = [
        digest_feed.DigestItem(
            _view(config, d),
            tuple(
                (
                    text.displayable(title),
                    identity.archive_url(base, d.slug, key, identity.page_of(seq, d.first_seq, size)),
                )
                for seq, key, title in firsts[d.id]
            ),
        )
        for d in chosen
    ]
    for name, render_digests in (
        (digest_feed.DIGESTS_RSS_FILE, digest_feed.rss),
        (digest_feed.DIGESTS_ATOM_FILE, digest_feed.atom),
        (digest_feed.DIGESTS_JSON_FILE, digest_feed.json_feed),
    ):
        written.append(_write(output_dir / name, render_digests(channel, digest_items)))
    return written


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


def site_of(config: Config) -> Site:
    """What the pages and the site's feeds say about the site: ``[digest]``'s words."""
    d = config.digest
    return Site(d.title, d.description, d.language, d.base_url)
