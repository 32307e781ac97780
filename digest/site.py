"""Edge: publishes the feeds and the archive into ``feed.output_dir``.

A run renders only what changed: the pages of the digests not yet published, the
index and the feeds (``feed.xml`` RSS 2.0, ``atom.xml`` Atom 1.0, ``feed.json`` JSON
Feed 1.1); ``everything=True`` re-renders every digest page too. Every file is written
atomically, and a digest is marked published only after all its files are in place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
    ``digest publish`` uses), the index and the three feeds. Returns what was written and
    which digests were pending; nothing when there is nothing to publish.

    Temp files a killed run left behind are removed first (the caller holds the lock)."""
    for leftover in remove_stale_temps(output_dir):
        log.info("removed %s, left by an interrupted run", leftover)
    pending = store.digests(unpublished=True)
    if not pending and not everything:
        return PublishReport((), ())
    all_digests = store.digests()
    if not all_digests:
        return PublishReport((), ())
    base = config.digest.base_url
    site = _site(config)
    views = [_view(config, d) for d in all_digests]
    written: list[Path] = []
    position_of = {d.id: i for i, d in enumerate(all_digests)}
    for digest in all_digests if everything else pending:
        position = position_of[digest.id]
        view = views[position]
        older = views[position + 1] if position + 1 < len(views) else None
        papers = [paper_view(p, digest.slug, base) for p in store.digest_papers(digest)]
        page = archive.digest_page(site, view, papers, older=older)
        written.append(_write(output_dir / view.path, page))
    written.append(_write(output_dir / "index.html", archive.index_page(site, views)))

    newest = all_digests[0]
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


def _site(config: Config) -> archive.Site:
    return archive.Site(
        title=config.digest.title,
        description=config.digest.description,
        language=config.digest.language,
        base_url=config.digest.base_url,
    )
