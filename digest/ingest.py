"""Edge: ingests the new dumps of the inbox into the state, each dump all or nothing.

A bad dump is recorded as failed with its reason (``file:line``) and never stops the
others. Files already read (same name, size and mtime) are not opened again; a
renamed copy is recognised by its content hash and not ingested twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime

from digest.config import Config
from digest.crashpoints import crash_point
from digest.errors import DigestError, DumpChangedError, DumpError
from digest.parse import DumpParser
from digest.sources import Candidate, open_dump, scan, scan_changed, settled
from digest.store import Store
from digest.text import counted

log = logging.getLogger(__name__)

# Dumps are committed together about this often (seconds): each dump stays all or
# nothing (a savepoint), but a commit writes every index page its dumps touched, so one
# commit per dump made an ingest of many small dumps 1.4x slower (bench/, ingest). A
# crash loses at most this much work, which the next run redoes.
COMMIT_EVERY = 1.0


@dataclass(slots=True)
class IngestReport:
    seen: int = 0  # files in the inbox matching the pattern
    ingested: int = 0
    failed: int = 0
    unsettled: int = 0  # still being written: left for a later poll
    papers_found: int = 0
    papers_new: int = 0
    papers_enriched: int = 0  # known papers given the arXiv id / authors a JSON dump carried
    errors: list[str] = field(default_factory=list)


def _placeholder_hash(c: Candidate) -> str:
    # A file we cannot hash still needs a stable identity for its failure record.
    return hashlib.sha256(f"unreadable\0{c.name}\0{c.size}\0{c.mtime_ns}".encode()).hexdigest()


def ingest_inbox(
    config: Config,
    store: Store,
    now: datetime,
    *,
    retry_failed: bool = False,
    settle_seconds: float | None = None,
    after_dump: AfterDump | None = None,
) -> IngestReport:
    """Ingests every new dump in the inbox, in name order.

    ``settle_seconds`` (the service's poll) skips files modified more recently than that.
    ``retry_failed`` parses dumps that failed before once more. ``after_dump`` is called
    after each dump that was ingested, with the store of the dump's commit group, the
    file and the listing date the dump printed (``digest run --backfill`` makes its
    digest there: a crash loses the dump and its digest together, never one of them).
    """
    report = IngestReport()
    if retry_failed:
        # Every file, so that unchanged ones whose dump failed are parsed once more.
        candidates = scan(config.sources.inbox, config.sources.pattern)
        report.seen = len(candidates)
        known = store.seen_files()
        todo = []
        for c in candidates:
            cached = known.get(c.name)
            if (
                cached is None
                or cached[:2] != (c.size, c.mtime_ns)
                or store.dump_status(cached[2]) == "failed"
            ):
                todo.append(c)
    else:
        # The stat cache skips every file read before, at the cost of one stat each.
        report.seen, todo = scan_changed(config.sources.inbox, config.sources.pattern, store.stat_cache())
    now_ns = int(now.timestamp() * 1e9)
    ready = []
    for c in todo:
        if settle_seconds is not None and not settled(c, now_ns, settle_seconds):
            report.unsettled += 1
        else:
            ready.append(c)
    if not ready:
        return report  # an idle poll: no transaction at all
    with (
        store.commit_group(COMMIT_EVERY) as group,
        closing(_read_ahead(ready, config.sources.max_bytes)) as reads,
    ):
        for c, reading in reads:
            listed = _ingest_one(config, group.store, c, reading, now, retry_failed, report)
            if after_dump is not None and listed is not None:
                after_dump(group.store, c, listed[0])
            crash_point("ingest.dump_done")
            if group.due() and group.commit():
                crash_point("ingest.committed")
        if group.commit(checkpoint=False):
            crash_point("ingest.committed")
    return report


Reading = Future[tuple[str, Iterator[bytes]]]
AfterDump = Callable[[Store, Candidate, str | None], None]


def _read_ahead(candidates: list[Candidate], max_bytes: int) -> Generator[tuple[Candidate, Reading | None]]:
    """Each candidate with its :func:`open_dump` running on a thread (None for a refused
    file). The next dump is read and hashed while this one is parsed and stored: reading
    and hashing release the GIL, so on two cores they cost no time. At most two dumps
    are held in memory."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dump-read") as pool:

        def start(c: Candidate) -> Reading | None:
            return None if c.refused else pool.submit(open_dump, c.path, max_bytes)

        ahead = start(candidates[0]) if candidates else None
        for i, c in enumerate(candidates):
            current = ahead
            if i + 1 < len(candidates):
                ahead = start(candidates[i + 1])
            yield c, current


def _ingest_one(
    config: Config,
    store: Store,
    c: Candidate,
    reading: Reading | None,
    now: datetime,
    retry_failed: bool,
    report: IngestReport,
) -> tuple[str | None] | None:
    """Ingests one dump; returns (the listing date it printed,) when it was ingested."""
    if c.refused or reading is None:
        _fail(store, c, _placeholder_hash(c), f"{c.name}: {c.refused}", now, report)
        return None
    try:
        sha, chunks = reading.result()
    except DumpError as err:
        _fail(store, c, _placeholder_hash(c), str(err), now, report)
        return None
    status = store.dump_status(sha)
    if status == "ingested" or (status == "failed" and not retry_failed):
        # A renamed copy, or a failure kept until --retry-failed: remember, do not re-read.
        store.remember_file(c.name, c.size, c.mtime_ns, sha)
        return None
    parser = DumpParser(c.name)
    try:
        result = store.ingest(
            name=c.name,
            sha256=sha,
            size=c.size,
            mtime_ns=c.mtime_ns,
            papers_in=parser.papers(chunks),
            layout=lambda: parser.layout,
            now=now,
        )
    except DumpChangedError as err:
        # Still being written (or replaced): the transaction rolled back; leave it for later.
        log.warning("%s", err)
        report.unsettled += 1
        return None
    except DumpError as err:
        _fail(store, c, sha, str(err), now, report)
        return None
    except DigestError:
        raise  # the state itself is broken: stop the run
    except Exception as err:  # a bug must not stop the other dumps; keep the evidence
        log.exception("unexpected error while ingesting %s", c.name)
        _fail(store, c, sha, f"{c.name}: internal error ({type(err).__name__}: {err})", now, report)
        return None
    if result.raced:
        log.info("%s: already ingested by another instance", c.name)
        return None
    for warning in parser.warnings:
        log.warning("%s", warning)
    report.ingested += 1
    report.papers_found += result.found
    report.papers_new += result.new
    report.papers_enriched += result.enriched
    log.info("%s: %s, %d new (%s layout)", c.name, counted(result.found, "paper"), result.new, result.layout)
    if result.enriched:
        known = counted(result.enriched, "known paper")
        log.info("%s: %s gained an arXiv id, authors or upvotes", c.name, known)
    return (parser.listing_date,)


def _fail(store: Store, c: Candidate, sha: str, error: str, now: datetime, report: IngestReport) -> None:
    log.error("dump failed: %s", error)
    store.record_failure(name=c.name, sha256=sha, size=c.size, mtime_ns=c.mtime_ns, error=error, now=now)
    report.failed += 1
    report.errors.append(error)
