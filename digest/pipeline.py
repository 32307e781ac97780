"""The only orchestrator: ``run_once`` is what ``digest run`` and every service job call.

    [fetch sources.urls] → ingest new dumps → build the digest → publish feeds and archive
    → deliver the outbox

It holds the run lock for the whole run (docs/DESIGN.md invariant 7; on a PostgreSQL
state delivery follows after it, shared by the instances, invariant 9) and takes ``now``
from its caller, so a run is reproducible.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import httpx

from digest import audience
from digest.backfill import Backfill
from digest.config import Config
from digest.crashpoints import crash_point
from digest.errors import LockError
from digest.fetch import FetchReport, client_for, fetch_all
from digest.identity import message_ids
from digest.ingest import IngestReport, ingest_inbox
from digest.lock import site_lock, state_lock
from digest.model import Digest
from digest.outbox import DeliveryReport, deliver_pending
from digest.personal_site import publish_personal
from digest.site import PublishReport, publish
from digest.store import Store
from digest.store.pglock import is_postgres
from digest.text import counted
from digest.transports import FileTransport, Transport

log = logging.getLogger(__name__)

SITE_WAIT = 60.0  # seconds a run waits for a poll of this instance bringing its site up to date


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What one run does. The defaults are ``digest run``'s."""

    build_digest: bool = True  # False: a service poll that only ingests
    send: bool = True  # False (--no-send): the digest is recorded, nobody is mailed
    retry_failed: bool = False  # parse dumps that failed before once more
    settle_seconds: float | None = None  # the service's poll skips files still being written
    dry_run_dir: Path | None = None  # write everything here and change no state
    lock_wait: float = 0.0
    respect_backoff: bool = False  # the service: skip deliveries still in their retry backoff
    backfill: bool = False  # one digest per dump, dated by its listing; nothing is mailed


@dataclass(frozen=True, slots=True)
class RunReport:
    ingest: IngestReport
    digest: Digest | None
    published: PublishReport
    delivery: DeliveryReport
    seconds: float = 0.0
    dry_run: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    fetch: FetchReport | None = None  # None when sources.urls is empty or in a dry run

    @property
    def ok(self) -> bool:
        """False when a delivery this run attempted did not end sent."""
        return self.delivery.pending == 0 and self.delivery.failed == 0

    def summary(self) -> str:
        """One line: what the run did. ``digest run`` prints it; a service job logs and
        records it after its name (``schedule.job_summary``)."""
        i, d = self.ingest, self.delivery
        digest = (
            f"digest {self.digest.slug} ({counted(self.digest.paper_count, 'paper')})"
            if self.digest
            else "no digest"
        )
        prefix = ("dry run: " if self.dry_run else "") + (f"{self.fetch.summary()}; " if self.fetch else "")
        still = f" ({i.unsettled} still being written)" if i.unsettled else ""
        return (
            f"{prefix}{counted(i.seen, 'file')} seen{still}, {i.ingested} ingested, {i.failed} failed, "
            f"{counted(i.papers_new, 'new paper')}; {digest}; "
            f"{counted(len(self.published.files), 'file')} published; "
            f"{d.sent} sent, {d.pending} pending, {d.failed} failed; {self.seconds:.2f}s"
        )


def run_once(
    config: Config,
    store: Store,
    transport: Transport,
    now: datetime,
    options: RunOptions = RunOptions(),
    client: httpx.Client | None = None,
) -> RunReport:
    """One complete run under the lock. With ``options.dry_run_dir`` every change to the
    state is rolled back and outputs (site and ``.eml`` files) go to that folder.

    When ``sources.urls`` is set, they are fetched into the inbox first (with ``client``,
    or a client made from the config); a failing URL is recorded and the run goes on.
    A dry run fetches nothing: it would change the inbox and the state."""
    started = time.monotonic()
    fetched: FetchReport | None = None
    notes: tuple[str, ...] = ()
    # On a PostgreSQL state the outbox is sent after the lock is released, so instances
    # sharing it send at once; their row claims keep each message single (invariant 9).
    shared = is_postgres(config.state.url) and options.dry_run_dir is None
    with state_lock(config.lock_path, config.state.url, wait=options.lock_wait, holder=config.instance.name):
        if config.sources.urls and options.dry_run_dir is None:
            with client_for(config, client) as http:
                fetched = fetch_all(config, store, http, now)
        elif config.sources.urls:
            notes = ("sources.urls not fetched in a dry run",)
        if options.dry_run_dir is not None:
            out = options.dry_run_dir
            with store.dry_run() as scratch:
                report = _run(config, scratch, FileTransport(out / "outbox"), now, options, out / "site")
        else:
            report = _run(config, store, transport, now, options, config.feed.output_dir, deliver=not shared)
    if shared and options.send and not options.backfill:
        delivered = deliver_pending(config, store, transport, now, respect_backoff=options.respect_backoff)
        report = replace(report, delivery=delivered)
    final = RunReport(
        ingest=report.ingest,
        digest=report.digest,
        published=report.published,
        delivery=report.delivery,
        seconds=time.monotonic() - started,
        dry_run=options.dry_run_dir is not None,
        notes=report.notes + notes,
        fetch=fetched,
    )
    # Not logged here: `digest run` prints the summary and the service logs its job line,
    # so each says it once.
    log.debug("%s", final.summary())
    return final


def _run(
    config: Config,
    store: Store,
    transport: Transport,
    now: datetime,
    options: RunOptions,
    site_dir: Path,
    *,
    deliver: bool = True,
) -> RunReport:
    backfill = Backfill(config) if options.backfill else None
    ingested = ingest_inbox(
        config,
        store,
        now,
        retry_failed=options.retry_failed,
        settle_seconds=options.settle_seconds,
        after_dump=backfill,
    )
    audience.sync(config, store, now)
    digest = None
    if backfill is not None:
        digest = backfill.made[-1] if backfill.made else None
    elif options.build_digest:
        recipients = audience.daily_recipients(config, store) if options.send else ()
        digest = store.create_digest(
            now=now,
            day=now.astimezone(config.tz).date(),
            recipients=recipients,
            message_id=message_ids(config.email.domain, store.install_id()),
        )
        if digest:
            log.info("digest %s created with %s", digest.slug, counted(digest.paper_count, "paper"))
            crash_point("pipeline.digest_created")
        if options.send:
            weekly = audience.create_weekly(config, store, now)
            if weekly:
                log.info("%d weekly emails due", weekly)
    with site_lock(config.lock_path, config.state.url, wait=SITE_WAIT):
        published = publish(config, store, site_dir, track=options.dry_run_dir is None)
    if published.digests:
        crash_point("pipeline.published")
        store.mark_published(published.digests, now)
        crash_point("pipeline.marked_published")
    # Every run: a vote or a preference changes a reader's folder without a new digest.
    personal = publish_personal(config, store, site_dir)
    if personal:
        published = replace(published, files=published.files + tuple(personal))
    delivered = (
        deliver_pending(config, store, transport, now, respect_backoff=options.respect_backoff)
        if deliver and options.send and backfill is None
        else DeliveryReport()
    )
    notes = (backfill.note(),) if backfill is not None else ()
    return RunReport(ingest=ingested, digest=digest, published=published, delivery=delivered, notes=notes)


def republish(
    config: Config, store: Store, now: datetime, *, output_dir: Path | None = None, lock_wait: float = 0.0
) -> PublishReport:
    """``digest publish``: re-renders every digest page, the index and the feeds under the
    run lock. Into ``feed.output_dir`` it also marks pending digests published; into
    another ``output_dir`` (a preview) it changes no state."""
    with (
        state_lock(config.lock_path, config.state.url, wait=lock_wait, holder=config.instance.name),
        site_lock(config.lock_path, config.state.url, wait=SITE_WAIT),
    ):
        target = output_dir if output_dir is not None else config.feed.output_dir
        report = publish(config, store, target, everything=True)
        if output_dir is None and report.digests:
            store.mark_published(report.digests, now)
        personal = publish_personal(config, store, target, everything=True)
        report = replace(report, files=report.files + tuple(personal))
    log.info("published %d files into %s", len(report.files), target)
    return report


def catch_up_site(config: Config, store: Store) -> PublishReport | None:
    """Brings this instance's ``feed.output_dir`` up to date with the digests other
    instances made and published (docs/DESIGN.md invariant 9), without the run lock: what
    a service poll does when another instance holds it. Writes only this folder and
    changes no state (digests are marked published by the run that made them). None on
    SQLite (one instance, whose runs publish) or while this instance is publishing."""
    if not is_postgres(config.state.url):
        return None
    try:
        with site_lock(config.lock_path, config.state.url):
            report = publish(config, store, config.feed.output_dir)
    except LockError:
        return None
    if report.files:
        log.info("site brought up to date: %d files published", len(report.files))
    return report
