"""The schema: every table, its indexes, and the migrations that create them.

Tables (docs/DESIGN.md, "State"): ``dumps`` by content hash, ``seen_files`` (a stat cache
so a run reads only new files), ``papers`` with a monotonic ``seq``, ``digests`` and
``deliveries`` (the outbox), ``suppressions``, ``fetch_state`` and ``job_runs``; ``meta``
is in :mod:`digest.store.meta`. The
Python names end in ``_t`` so they cannot be mistaken for :class:`~digest.store.Store`
methods; the SQL names are the ones above. The schema is created and migrated by
:data:`MIGRATIONS`, keyed by version; a database newer than the code is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.errors import StoreError
from digest.store import meta
from digest.store.keys import rekey_migration


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

schema_version_t = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

dumps_t = sa.Table(
    "dumps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("layout", sa.String(16)),
    sa.Column("papers_found", sa.Integer, nullable=False, default=0),
    sa.Column("papers_new", sa.Integer, nullable=False, default=0),
)

seen_files_t = sa.Table(
    "seen_files",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
)

papers_t = sa.Table(
    "papers",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.Text, nullable=False, unique=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("abstract", sa.Text, nullable=False),
    sa.Column("links", sa.Text, nullable=False, default="[]"),
    sa.Column("listing_date", sa.Text),
    sa.Column("arxiv_id", sa.Text),
    sa.Column("authors", sa.Text, nullable=False, default="[]"),
    sa.Column("upvotes", sa.Integer),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("dump_id", sa.Integer, sa.ForeignKey("dumps.id"), nullable=False),
    # The key the paper's GUID and anchor were published under, when the key rule
    # changed after it (digest/store/keys.py); NULL: they derive from ``key``.
    sa.Column("guid_key", sa.Text),
    sqlite_autoincrement=True,  # seq is never reused, even after a rollback
)

digests_t = sa.Table(
    "digests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("slug", sa.String(32), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("first_seq", sa.Integer, nullable=False),
    sa.Column("last_seq", sa.Integer, nullable=False),
    sa.Column("paper_count", sa.Integer, nullable=False),
    sa.Column("published_at", UTCDateTime),
    # Made by ``digest run --backfill`` (history, never mailed): no weekly email holds its
    # papers either (digest/store/weekly.py).
    sa.Column("backfilled", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sqlite_autoincrement=True,
)

deliveries_t = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("digest_id", sa.Integer, sa.ForeignKey("digests.id"), nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_attempt_at", UTCDateTime),
    sa.Column("sent_at", UTCDateTime),
    # Which instance is sending the row, and until when its claim holds (invariant 9).
    sa.Column("claimed_by", sa.Text),
    sa.Column("claimed_until", UTCDateTime),
    sa.UniqueConstraint("digest_id", "recipient"),
)
sa.Index("deliveries_status", deliveries_t.c.status)

# Addresses that asked not to be mailed (``digest unsubscribe``); stored lower-cased.
suppressions_t = sa.Table(
    "suppressions",
    metadata,
    sa.Column("address", sa.String(320), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default="unsubscribed"),
)

fetch_state_t = sa.Table(
    "fetch_state",
    metadata,
    sa.Column("url", sa.Text, primary_key=True),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("last_fetch_at", UTCDateTime),
    sa.Column("last_ok_at", UTCDateTime),
    sa.Column("last_sha256", sa.String(64)),
    sa.Column("last_file", sa.Text),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
)

# The service's job history: what ``digest serve`` did, kept across restarts so a missed
# digest runs once (not twice) and /healthz can tell the last poll and digest.
job_runs_t = sa.Table(
    "job_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("ok", sa.Boolean),
    sa.Column("summary", sa.Text, nullable=False, default=""),
    sqlite_autoincrement=True,
)
sa.Index("job_runs_job", job_runs_t.c.job, job_runs_t.c.id)

# What a run reads must not grow with the history (bench/, growth): the archive index
# reads recent digests and per-year totals by date, a run finds the last digested seq
# and the unpublished digests, and a dump's failures are dropped by name.
_HISTORY_INDEXES = (
    sa.Index("digests_created", digests_t.c.created_at, digests_t.c.paper_count),
    sa.Index("digests_last_seq", digests_t.c.last_seq),
    sa.Index("digests_published", digests_t.c.published_at),
    sa.Index("dumps_name", dumps_t.c.name),
)


# A digest claims its range of papers by its first seq: two processes that raced past the
# run lock cannot both make a digest of one paper (docs/DESIGN.md, invariant 9).
_CLAIM_INDEXES = (sa.Index("digests_first_seq", digests_t.c.first_seq, unique=True),)


def _create_indexes(*indexes: sa.Index) -> Callable[[Connection], None]:
    def migrate(conn: Connection) -> None:
        for index in indexes:
            index.create(conn, checkfirst=True)

    return migrate


def _claim_columns(conn: Connection) -> None:
    # Added by ALTER (not by migration 1's create_all, which now makes them already).
    have = {c["name"] for c in sa.inspect(conn).get_columns("deliveries")}
    stamp = "TIMESTAMP" if conn.dialect.name == "postgresql" else "DATETIME"
    for name, sql_type in (("claimed_by", "TEXT"), ("claimed_until", stamp)):
        if name not in have:
            conn.execute(sa.text(f"ALTER TABLE deliveries ADD COLUMN {name} {sql_type}"))


def _backfilled_column(conn: Connection) -> None:
    # Added by ALTER (migration 1's create_all makes it already on a new state). Digests
    # backfilled before it cannot be told apart: they stay unmarked.
    if "backfilled" not in {c["name"] for c in sa.inspect(conn).get_columns("digests")}:
        false = "FALSE" if conn.dialect.name == "postgresql" else "0"
        conn.execute(sa.text(f"ALTER TABLE digests ADD COLUMN backfilled BOOLEAN NOT NULL DEFAULT {false}"))


def _create(*tables: sa.Table) -> Callable[[Connection], None]:
    def migrate(conn: Connection) -> None:
        metadata.create_all(conn, tables=list(tables))

    return migrate


# Append only: migration N brings a database from version N-1 to N.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _create(schema_version_t, dumps_t, seen_files_t, papers_t, digests_t, deliveries_t),
    _create(suppressions_t),
    _create(fetch_state_t),  # remote sources (sources.urls)
    _create(job_runs_t),
    _create_indexes(*_HISTORY_INDEXES),
    rekey_migration(papers_t),  # paper keys drop format characters (Cf)
    meta.migrate,  # the install id in Message-IDs (digest/store/meta.py)
    lambda conn: _subscribers_migration(conn),  # subscribers replace suppressions (subscribers.py)
    lambda conn: _incidents_migration(conn),  # dump-health alerts (incidents.py, digest/alerts.py)
    lambda conn: _bounces_migration(conn),  # handled bounce reports and events (bounces.py)
    _create_indexes(*_CLAIM_INDEXES),  # several instances on one state
    _claim_columns,  # outbox claims with a lease: several instances send at once
    lambda conn: _vote_history_migration(conn),  # votes become an append-only history (votes.py)
    _backfilled_column,  # backfilled digests are left out of weekly emails (weekly.py)
]
SCHEMA_VERSION = len(MIGRATIONS)


def _subscribers_migration(conn: Connection) -> None:
    # Imported when run: digest/store/subscribers.py builds on this module's tables.
    from digest.store.subscribers import migrate as migrate_subscribers

    migrate_subscribers(conn)


def _incidents_migration(conn: Connection) -> None:
    from digest.store.incidents import migrate as migrate_incidents

    migrate_incidents(conn)


def _bounces_migration(conn: Connection) -> None:
    from digest.store.bounces import migrate as migrate_bounces

    migrate_bounces(conn)


def _vote_history_migration(conn: Connection) -> None:
    from digest.store.votes import migrate as migrate_votes

    migrate_votes(conn)


def migrate(engine: Engine, version: int = SCHEMA_VERSION) -> int:
    """Brings the schema to :data:`SCHEMA_VERSION` (to ``version``: a test making a
    database as an older paper-digest did); refuses a newer database."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several instances may open one fresh database at once (invariant 9).
            from digest.store.pglock import lock_schema

            lock_schema(conn)
        if not sa.inspect(conn).has_table("schema_version"):
            current = 0
        else:
            current = conn.execute(sa.select(sa.func.max(schema_version_t.c.version))).scalar() or 0
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"the state database has schema version {current}, newer than this "
                f"paper-digest knows ({SCHEMA_VERSION}); upgrade paper-digest"
            )
        for step in range(current + 1, version + 1):
            MIGRATIONS[step - 1](conn)
            conn.execute(sa.delete(schema_version_t))
            conn.execute(sa.insert(schema_version_t).values(version=step))
    return max(current, version)
