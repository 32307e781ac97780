"""Plain values passed between the modules: frozen dataclasses, tuples, aware UTC datetimes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# The values a status column or field may take (the database stores them as text).
Layout = Literal["spaced", "compact", "json"]  # how a dump was laid out
DumpStatus = Literal["ingested", "failed"]  # dumps.status
DeliveryStatus = Literal["pending", "sent", "failed", "cancelled"]  # deliveries.status
JobName = Literal["poll", "digest"]  # job_runs.job: the service's two jobs


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper as a dump lists it. ``key`` is :func:`digest.identity.paper_key` of the title."""

    key: str
    title: str
    abstract: str
    links: tuple[str, ...] = ()
    listing_date: str | None = None  # as printed on the page ("Aug 8"); the page gives no year
    arxiv_id: str | None = None
    authors: tuple[str, ...] = ()
    upvotes: int | None = None
    line: int = 0  # 1-based line of the title in its dump, for messages


@dataclass(frozen=True, slots=True)
class ParsedDump:
    """What :func:`digest.parse.parse_dump` found in one file."""

    layout: Layout
    papers: tuple[Paper, ...]
    listing_date: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredPaper:
    """A paper as the state knows it: ``seq`` orders papers by when they were first seen."""

    seq: int
    paper: Paper
    first_seen: datetime
    dump_name: str
    guid_key: str | None = None  # the key published before the key rule changed

    @property
    def key(self) -> str:
        return self.paper.key

    @property
    def ident(self) -> str:
        """The key the paper's GUID and archive anchor derive from: stable forever, even
        when the key rule changed after it was published (``guid_key``)."""
        return self.guid_key or self.paper.key

    @property
    def title(self) -> str:
        return self.paper.title


@dataclass(frozen=True, slots=True)
class Digest:
    """Papers with ``first_seq <= seq <= last_seq``, created at ``created`` (UTC)."""

    id: int
    slug: str  # "2026-11-22", or "2026-11-22-2" for the second digest of that day
    created: datetime
    first_seq: int
    last_seq: int
    paper_count: int
    published: datetime | None = None
    backfilled: bool = False  # made by ``digest run --backfill``: history, never mailed


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the outbox: a digest for one recipient."""

    id: int
    digest_id: int
    recipient: str
    status: DeliveryStatus
    attempts: int
    message_id: str
    last_error: str | None = None
    created: datetime | None = None
    last_attempt: datetime | None = None
    sent: datetime | None = None


@dataclass(frozen=True, slots=True)
class DumpRecord:
    """One dump the state has seen, by content hash."""

    sha256: str
    name: str
    seen: datetime
    status: DumpStatus
    error: str | None
    papers_found: int
    papers_new: int


@dataclass(frozen=True, slots=True)
class FetchState:
    """What the state remembers about one source URL between fetches.

    ``etag`` / ``last_modified`` make the next request conditional; ``last_sha256`` is
    the last body written (an identical body is not written again). ``failures`` counts
    consecutive failed fetches; ``last_error`` is None after a success.
    """

    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_status: int | None = None  # the HTTP status of the last answer, None if there was none
    last_error: str | None = None
    last_fetch_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_sha256: str | None = None
    last_file: str | None = None  # the inbox file the last changed body was written to
    failures: int = 0

    @property
    def failing(self) -> bool:
        return self.last_error is not None


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a service job (``poll`` or ``digest``); ``ok`` is None while running."""

    id: int
    job: JobName
    started: datetime
    finished: datetime | None
    ok: bool | None
    summary: str
