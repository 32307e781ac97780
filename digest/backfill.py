"""Edge: ``digest run --backfill``: a first run over history makes one digest per dump.

Dumps are ingested in name order as a normal run does, and right after each dump that
brought new papers, a digest of exactly those papers is made in the same commit group
(so a crash loses a dump and its digest together). It is dated by the dump's listing
date when the dump printed one (:mod:`digest.dating`), else by the file's modification
time, and it is never mailed: no delivery rows are made, and it is marked backfilled so
that no weekly email holds its papers either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from digest import dating, identity
from digest.config import Config
from digest.model import Digest
from digest.sources import Candidate
from digest.store import Store
from digest.text import counted

log = logging.getLogger(__name__)


@dataclass
class Backfill:
    """The ``after_dump`` hook of :func:`digest.ingest.ingest_inbox` for a backfill."""

    config: Config
    made: list[Digest] = field(default_factory=list)
    by_listing: int = 0  # digests dated by the dump's listing date (the rest: by mtime)

    def __call__(self, store: Store, dump: Candidate, listing: str | None) -> None:
        saved = datetime.fromtimestamp(dump.mtime_ns / 1e9, UTC)
        moment, from_listing = dating.dump_moment(listing, saved, self.config.tz)
        digest = store.create_digest(
            now=moment,
            day=moment.astimezone(self.config.tz).date(),
            recipients=(),  # a backfill is never mailed
            message_id=identity.message_ids(self.config.email.domain, store.install_id()),
            backfilled=True,  # nor is it in a weekly email
        )
        if digest is None:
            return  # nothing new in this dump
        self.made.append(digest)
        self.by_listing += from_listing
        log.info(
            "%s: digest %s with %s, dated by its %s",
            dump.name,
            digest.slug,
            counted(digest.paper_count, "paper"),
            f"listing date {listing!r}" if from_listing else "modification time",
        )

    def note(self) -> str:
        by_mtime = len(self.made) - self.by_listing
        return (
            f"backfill: {counted(len(self.made), 'digest')}, one per dump with new papers "
            f"({self.by_listing} dated by the listing, {by_mtime} by the file's time); none mailed"
        )
