"""Edge: publishes the feeds and the archive into ``feed.output_dir``.

A run renders only what changed: the pages of the digests not yet published, the
index and the feeds. Every file is written atomically, and a digest is marked
published only after all its files are in place.
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
            f"cannot write {path}: {err.strerror}; check that feed.output_dir is writable"
        ) from err
    crash_point("site.file_written")
    return path


def _view(config: Config, digest: Digest) -> DigestView:
    return digest_view(digest, config.digest.base_url, config.tz)


def publish(config: Config, store: Store, output_dir: Path, *, everything: bool = False) -> PublishReport:
    """Writes the unpublished digests' pages (all pages with ``everything``), the index and
    the feeds. Returns what was written; nothing when there is nothing to publish.

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
    written: list[Path] = []
    for digest in all_digests if everything else pending:
        view = _view(config, digest)
        papers = [paper_view(p, digest.slug, base) for p in store.digest_papers(digest)]
        page = archive.digest_page(config.digest.title, config.digest.language, view, papers)
        written.append(_write(output_dir / view.path, page))
    views = [_view(config, d) for d in all_digests]
    index = archive.index_page(config.digest.title, config.digest.description, config.digest.language, views)
    written.append(_write(output_dir / "index.html", index))

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
    written.append(_write(output_dir / "feed.xml", feed.rss(channel, items)))
    return PublishReport(tuple(d.id for d in pending), tuple(written))
