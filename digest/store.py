"""The state: one database (a SQLite file by default) behind SQLAlchemy Core.

Tables (DESIGN.md): ``dumps`` by content hash, ``seen_files`` (a stat cache so a run
reads only new files), ``papers`` with a monotonic ``seq``, ``digests`` and
``deliveries`` (the outbox). The schema is created and migrated by :data:`MIGRATIONS`,
keyed by version; a database newer than the code is refused.

Every write is one transaction. Callers hold the run lock (:mod:`digest.lock`), so
the check-then-insert in :meth:`Store.ingest` does not race.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from digest import store_incidents, store_meta
from digest.config import sqlite_path
from digest.crashpoints import crash_point
from digest.errors import StoreError
from digest.identity import message_id
from digest.model import Delivery, Digest, DumpRecord, FetchState, JobRun, Paper, StoredPaper
from digest.store_keys import rekey_migration

log = logging.getLogger(__name__)

BATCH = 500  # papers per INSERT batch; also bounds memory while streaming a huge dump


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

schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

dumps = sa.Table(
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

seen_files = sa.Table(
    "seen_files",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
)

papers = sa.Table(
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
    # changed after it (digest/store_keys.py); NULL: they derive from ``key``.
    sa.Column("guid_key", sa.Text),
    sqlite_autoincrement=True,  # seq is never reused, even after a rollback
)

digests = sa.Table(
    "digests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("slug", sa.String(32), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("first_seq", sa.Integer, nullable=False),
    sa.Column("last_seq", sa.Integer, nullable=False),
    sa.Column("paper_count", sa.Integer, nullable=False),
    sa.Column("published_at", UTCDateTime),
    sqlite_autoincrement=True,
)

deliveries = sa.Table(
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
    sa.UniqueConstraint("digest_id", "recipient"),
)
sa.Index("deliveries_status", deliveries.c.status)

# Addresses that asked not to be mailed (``digest unsubscribe``); stored lower-cased.
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("address", sa.String(320), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default="unsubscribed"),
)

fetch_state = sa.Table(
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
job_runs = sa.Table(
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
sa.Index("job_runs_job", job_runs.c.job, job_runs.c.id)

# What a run reads must not grow with the history (bench/, growth): the archive index
# reads recent digests and per-year totals by date, a run finds the last digested seq
# and the unpublished digests, and a dump's failures are dropped by name.
_HISTORY_INDEXES = (
    sa.Index("digests_created", digests.c.created_at, digests.c.paper_count),
    sa.Index("digests_last_seq", digests.c.last_seq),
    sa.Index("digests_published", digests.c.published_at),
    sa.Index("dumps_name", dumps.c.name),
)


def _create_indexes(*indexes: sa.Index) -> Callable[[Connection], None]:
    def migrate(conn: Connection) -> None:
        for index in indexes:
            index.create(conn, checkfirst=True)

    return migrate


def _create(*tables: sa.Table) -> Callable[[Connection], None]:
    def migrate(conn: Connection) -> None:
        metadata.create_all(conn, tables=list(tables))

    return migrate


# Append only: migration N brings a database from version N-1 to N.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _create(schema_version, dumps, seen_files, papers, digests, deliveries),
    _create(suppressions),
    _create(fetch_state),  # remote sources (sources.urls)
    _create(job_runs),
    _create_indexes(*_HISTORY_INDEXES),
    rekey_migration(papers),  # paper keys drop format characters (Cf)
    store_meta.migrate,  # the install id in Message-IDs
    store_incidents.migrate,  # dump-health alerts (digest/alerts.py)
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class IngestResult:
    found: int
    new: int
    layout: str
    enriched: int = 0  # known papers given an arXiv id, authors or upvotes they lacked


def _set_wal(cursor: Any, patience: float = 30.0) -> None:
    """Switches the file to WAL. When several first runs open a new file at once the switch
    can fail with "database is locked" without SQLite's busy handler ever waiting, so
    wait here, as long as ``busy_timeout`` would."""
    deadline = time.monotonic() + patience
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


_WAL_AUTOCHECKPOINT = 4096  # pages (32 MB), see below


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is legacy; let SQLAlchemy's "begin" event decide.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    # A new file only (an existing database keeps its page size): rows are abstracts of
    # 0.5-2 KB, and every new paper inserts a random key into the papers.key index. With
    # 8 KB pages a bulk ingest runs about 1.1x faster than with 4 KB; larger pages gain
    # little more and make a small run on a large state write more: each new key dirties
    # a whole index page (bench/, ingest and growth).
    cursor.execute("PRAGMA page_size=8192")
    _set_wal(cursor)  # readers never block the writer
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
    # Every commit rewrites pages of the papers.key index; checkpointing the WAL every
    # 4,096 pages (32 MB on a new file; SQLite's default is 1,000) writes each page back
    # to the database (and fsyncs) far less often. Inside a commit group the checkpoints
    # run on a thread instead (CommitGroup).
    cursor.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT}")
    # Up to 64 MiB of page cache (SQLite's default is 2 MiB): a commit group's dirty
    # index pages stay in memory until it commits instead of spilling to the WAL early.
    cursor.execute("PRAGMA cache_size=-65536")
    # A dump's savepoint inside a commit group journals the pages it changes that earlier
    # dumps of the group had changed (the index pages, mostly): in memory, not a temp file.
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


_READ_ONLY = "paper_digest_read_only"


def _sqlite_begin(conn: Connection) -> None:
    # A writer takes the write lock up front with IMMEDIATE: no deadlock when a reader
    # upgrades. A read-only unit (Store.transaction(read=True)) begins deferred: in WAL
    # mode it never waits for a writer, so `status` and /healthz answer during a long ingest.
    read = conn.get_execution_options().get(_READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def _reason(err: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's multi-line background note."""
    orig = getattr(err, "orig", None)
    return str(orig or err).splitlines()[0]


def create_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and real transactions."""
    try:
        engine = sa.create_engine(url)
    except (SQLAlchemyError, ImportError) as err:
        raise StoreError(f"cannot use state.url {url!r}: {err}") from err
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def migrate(engine: Engine) -> int:
    """Brings the schema to :data:`SCHEMA_VERSION`; refuses a newer database."""
    with engine.begin() as conn:
        if not sa.inspect(conn).has_table("schema_version"):
            current = 0
        else:
            current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"the state database has schema version {current}, newer than this "
                f"paper-digest knows ({SCHEMA_VERSION}); upgrade paper-digest"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version - 1](conn)
            conn.execute(sa.delete(schema_version))
            conn.execute(sa.insert(schema_version).values(version=version))
    return SCHEMA_VERSION


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands an aggregate of a DATETIME back as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _batched(items: Iterable[Paper], size: int) -> Iterator[list[Paper]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _paper(row: Any) -> StoredPaper:
    return StoredPaper(
        seq=row.seq,
        paper=Paper(
            key=row.key,
            title=row.title,
            abstract=row.abstract,
            links=tuple(json.loads(row.links)),
            listing_date=row.listing_date,
            arxiv_id=row.arxiv_id,
            authors=tuple(json.loads(row.authors)),
            upvotes=row.upvotes,
        ),
        first_seen=row.first_seen,
        dump_name=row.dump_name,
        guid_key=row.guid_key,
    )


def _digest(row: Any) -> Digest:
    return Digest(
        id=row.id,
        slug=row.slug,
        created=row.created_at,
        first_seq=row.first_seq,
        last_seq=row.last_seq,
        paper_count=row.paper_count,
        published=row.published_at,
    )


def _fetch_state(row: Any) -> FetchState:
    return FetchState(
        url=row.url,
        etag=row.etag,
        last_modified=row.last_modified,
        last_status=row.last_status,
        last_error=row.last_error,
        last_fetch_at=row.last_fetch_at,
        last_ok_at=row.last_ok_at,
        last_sha256=row.last_sha256,
        last_file=row.last_file,
        failures=row.failures,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        digest_id=row.digest_id,
        recipient=row.recipient,
        status=row.status,
        attempts=row.attempts,
        message_id=row.message_id,
        last_error=row.last_error,
        created=row.created_at,
        last_attempt=row.last_attempt_at,
        sent=row.sent_at,
    )


_PAPER_COLUMNS = [*papers.c, dumps.c.name.label("dump_name")]


def _rich(p: Paper) -> bool:
    """Whether ``p`` carries what a known paper may lack (see :func:`_enrich`)."""
    return bool(p.arxiv_id or p.authors or p.upvotes is not None)


def _paper_row(p: Paper) -> tuple[Any, ...]:
    """``p`` as a row of :data:`_PAPER_INSERT`."""
    return (
        p.key,
        p.title,
        p.abstract,
        json.dumps(p.links) if p.links else "[]",  # a tuple dumps as a JSON list
        p.listing_date,
        p.arxiv_id,
        json.dumps(p.authors) if p.authors else "[]",
        p.upvotes,
    )


def _enrich(conn: Connection, sightings: Sequence[Paper]) -> int:
    """Fills in the arXiv id, authors and upvotes a known paper lacks (a paper first seen
    in a text dump, later in a JSON one). Never overwrites a value, and never touches
    seq, key, title, abstract or first_seen: only missing data is added."""
    rich = {p.key: p for p in sightings if _rich(p)}
    if not rich:
        return 0
    rows = conn.execute(
        sa.select(papers.c.key, papers.c.arxiv_id, papers.c.authors, papers.c.upvotes).where(
            papers.c.key.in_(list(rich))
        )
    ).all()
    changed = 0
    for row in rows:
        p = rich[row.key]
        values: dict[str, Any] = {}
        if row.arxiv_id is None and p.arxiv_id:
            values["arxiv_id"] = p.arxiv_id
        if row.authors == "[]" and p.authors:
            values["authors"] = json.dumps(list(p.authors))
        if row.upvotes is None and p.upvotes is not None:
            values["upvotes"] = p.upvotes
        if values:
            conn.execute(sa.update(papers).where(papers.c.key == row.key).values(**values))
            changed += 1
    return changed


# Statements run once per dump (or per batch), built once: building an expression and
# its cache key costs more than running it on a small table.
_DUMP_STATUS = sa.select(dumps.c.status).where(dumps.c.sha256 == sa.bindparam("sha256"))
_FORGET_FILE = sa.delete(seen_files).where(seen_files.c.name == sa.bindparam("name"))
_REMEMBER_FILE = sa.insert(seen_files)
_DROP_FAILURES = sa.delete(dumps).where(
    dumps.c.status == "failed",
    sa.or_(dumps.c.sha256 == sa.bindparam("sha256"), dumps.c.name == sa.bindparam("name")),
)
_INSERT_DUMP = sa.insert(dumps)
_DUMP_COUNTS = (
    sa.update(dumps)
    .where(dumps.c.id == sa.bindparam("dump_id"))
    .values(
        papers_found=sa.bindparam("found"),
        papers_new=sa.bindparam("new"),
        layout=sa.bindparam("found_layout"),
    )
)
_PAPER_INSERT = ("key", "title", "abstract", "links", "listing_date", "arxiv_id", "authors", "upvotes")


@dataclass(frozen=True, slots=True)
class _CompiledInsert:
    sql: str  # INSERT INTO table (keys) VALUES (...)
    skip_sql: str | None  # the same, skipping rows whose unique key exists; None if unsupported
    positional: bool


_INSERT_SQL: dict[tuple[str, str, tuple[str, ...], str | None], _CompiledInsert] = {}


def _compile_insert(
    dialect: sa.Dialect, table: sa.Table, keys: tuple[str, ...], unique: str | None
) -> _CompiledInsert:
    compiled = sa.insert(table).compile(dialect=dialect, column_keys=list(keys))
    # Positional styles (SQLite's qmark) take tuples in the statement's order, which must
    # be the order asked for; named styles (psycopg's pyformat) take dicts.
    if compiled.positional and tuple(compiled.positiontup or ()) != keys:
        raise AssertionError(f"unexpected parameter order {compiled.positiontup} for {keys}")
    skip_sql = None
    if unique is not None and dialect.name in ("sqlite", "postgresql"):
        # Imported here: the PostgreSQL dialect package costs start-up time on SQLite.
        skipping: sa.Insert
        if dialect.name == "sqlite":
            from sqlalchemy.dialects import sqlite

            skipping = sqlite.insert(table).on_conflict_do_nothing(index_elements=[table.c[unique]])
        else:
            from sqlalchemy.dialects import postgresql

            skipping = postgresql.insert(table).on_conflict_do_nothing(index_elements=[table.c[unique]])
        skip_sql = skipping.compile(dialect=dialect, column_keys=list(keys)).string
    return _CompiledInsert(compiled.string, skip_sql, compiled.positional)


class _BulkInsert:
    """``INSERT INTO table`` of many rows through the driver's own ``executemany``.

    ``conn.execute(sa.insert(table), dicts)`` builds and type-processes a parameter
    dict per row inside SQLAlchemy, most of an ingest's time. Here the statement is
    compiled once for the connection's dialect (so its parameter style stays right on
    SQLite and PostgreSQL alike), the ``constants`` (the same in every row, e.g. a
    timestamp) are type-processed once, and each row is a plain tuple of ``columns``.
    The columns must need no bind processing (text and integers do not).

    With ``unique`` (a column with a unique index), :meth:`new_only` inserts only the
    rows whose value there is not stored yet, in the same single statement."""

    def __init__(
        self,
        conn: Connection,
        table: sa.Table,
        columns: Sequence[str],
        *,
        unique: str | None = None,
        **constants: Any,
    ) -> None:
        dialect = conn.dialect
        fixed = {}
        for name, value in constants.items():
            process = _bind_processor(dialect, table, name)
            fixed[name] = process(value) if process is not None else value
        keys = (*columns, *fixed)
        cache_key = (dialect.name, table.name, keys, unique)
        compiled = _INSERT_SQL.get(cache_key)
        if compiled is None:
            for name in columns:
                if _bind_processor(dialect, table, name) is not None:
                    raise TypeError(f"{table.name}.{name} needs bind processing; pass it as a constant")
            compiled = _INSERT_SQL[cache_key] = _compile_insert(dialect, table, keys, unique)
        self._conn = conn
        self._compiled = compiled
        self._columns = tuple(columns)
        self._fixed = fixed
        self._tail = tuple(fixed.values())

    @property
    def skips_existing(self) -> bool:
        """Whether :meth:`new_only` works on this database."""
        return self._compiled.skip_sql is not None

    def __call__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._run(self._compiled.sql, rows)

    def new_only(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Inserts the rows whose ``unique`` value is not stored yet; returns how many."""
        if self._compiled.skip_sql is None:
            raise NotImplementedError(f"{self._conn.dialect.name} cannot skip existing rows")
        # Both drivers sum an executemany's rows into rowcount; skipped rows count 0.
        return self._run(self._compiled.skip_sql, rows)

    def _run(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
        params: list[Any]
        if self._compiled.positional:
            tail = self._tail
            params = [row + tail for row in rows]
        else:
            columns, fixed = self._columns, self._fixed
            params = [{**dict(zip(columns, row, strict=True)), **fixed} for row in rows]
        return self._conn.exec_driver_sql(sql, params).rowcount


def _bind_processor(dialect: sa.Dialect, table: sa.Table, name: str) -> Callable[[Any], Any] | None:
    # The dialect's own type: a TypeDecorator's bind_processor() alone would stop at the
    # generic impl and hand the driver a datetime, not SQLite's text form.
    return table.c[name].type.dialect_impl(dialect).bind_processor(dialect)


_KNOWN_SQL: dict[tuple[str, int], tuple[str, bool]] = {}


def _known_keys(conn: Connection, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` the papers table holds. The ``IN (...)`` is compiled once per
    dialect and batch size and run by the driver: an expanding parameter re-renders the
    SQL on every call, and this runs once per batch of every dump."""
    cached = _KNOWN_SQL.get((conn.dialect.name, len(keys)))
    if cached is None:
        names = [f"k{i}" for i in range(len(keys))]
        query = sa.select(papers.c.key).where(papers.c.key.in_([sa.bindparam(n) for n in names]))
        compiled = query.compile(dialect=conn.dialect)
        if compiled.positional and list(compiled.positiontup or ()) != names:
            raise AssertionError(f"unexpected parameter order {compiled.positiontup}")
        cached = _KNOWN_SQL[conn.dialect.name, len(keys)] = (compiled.string, compiled.positional)
    sql, positional = cached
    params: tuple[str, ...] | dict[str, str] = (
        tuple(keys) if positional else {f"k{i}": key for i, key in enumerate(keys)}
    )
    return set(conn.exec_driver_sql(sql, params).scalars())


class _Checkpointer:
    """Copies a SQLite WAL back into the database file on a thread of its own.

    A checkpoint fsyncs the WAL and then the database: on a long ingest those waits
    were a quarter of its time. SQLite lets a PASSIVE checkpoint run beside the writer
    (it copies only committed frames and takes no lock the writer needs), so here it
    runs while the writer parses and inserts the next dumps. A checkpoint is safe to
    interrupt at any point; one that fails is left to the next one or to closing."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Starts a checkpoint unless one is still running."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            # The driver's own connection: SQLAlchemy would begin a transaction around
            # the pragma, and a checkpoint must run outside one.
            raw = self._engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cursor.fetchall()
                cursor.close()
            finally:
                raw.close()
        except Exception as err:  # the database stays correct without it
            log.debug("background checkpoint failed: %s", err)


class CommitGroup:
    """What :meth:`Store.commit_group` yields: ``store`` for the units of work, and
    :meth:`due` / :meth:`commit` for the caller to commit between units."""

    def __init__(
        self, store: Store, conn: Connection | None, every: float, checkpointer: _Checkpointer | None = None
    ) -> None:
        self.store = store
        self._conn = conn
        self._every = every
        self._since = time.monotonic()
        self._checkpointer = checkpointer

    def due(self) -> bool:
        """Whether ``every`` seconds have passed since the group last committed."""
        return self._conn is not None and time.monotonic() - self._since >= self._every

    def commit(self, *, checkpoint: bool = True) -> bool:
        """Commits the units done so far; False when there was nothing to commit.

        Then a checkpoint starts on its thread, unless ``checkpoint`` is False, as for a
        group's last commit: what is left in the WAL goes back at SQLite's next automatic
        checkpoint or on closing, so a short run pays for one checkpoint, not two."""
        self._since = time.monotonic()
        if self._conn is None or not self._conn.in_transaction():
            return False
        try:
            self._conn.commit()
        except SQLAlchemyError as err:
            raise StoreError(f"state database error: {_reason(err)}") from err
        if checkpoint and self._checkpointer is not None:
            self._checkpointer.start()
        return True


class Store:
    """All reads and writes of the state. Create with :meth:`open`."""

    def __init__(self, engine: Engine, connection: Connection | None = None) -> None:
        self.engine = engine
        self._conn = connection  # set in dry-run mode: everything happens inside one rollback

    @classmethod
    def open(cls, url: str) -> Store:
        """Connects to ``url`` and migrates the schema."""
        db = sqlite_path(url)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        try:
            migrate(engine)
        except SQLAlchemyError as err:
            engine.dispose()
            raise StoreError(f"cannot open the state at {url!r}: {_reason(err)}") from err
        return cls(engine)

    def close(self) -> None:
        if self._conn is None:
            self.engine.dispose()

    @contextmanager
    def dry_run(self) -> Iterator[Store]:
        """A Store whose every change is rolled back when the block ends."""
        with self.engine.connect() as conn:
            outer = conn.begin()
            try:
                yield Store(self.engine, conn)
            finally:
                outer.rollback()

    @contextmanager
    def commit_group(self, every: float) -> Iterator[CommitGroup]:
        """Many units of work, committed together about every ``every`` seconds.

        Inside the block, ``group.store`` runs each :meth:`transaction` as a savepoint:
        a unit is still all or nothing (a failing one rolls back alone), but the commit,
        which writes every page the units touched, is paid once per group instead of
        once per unit. A crash (or an error leaving the block) loses the units since the
        last commit as a whole, never part of one. Inside a dry run nothing is committed.
        """
        if self._conn is not None:
            yield CommitGroup(self, None, every)
            return
        checkpointer = _Checkpointer(self.engine) if self.engine.dialect.name == "sqlite" else None
        try:
            with self.engine.connect() as conn:
                if checkpointer is not None:
                    # The group's commits leave checkpointing to the checkpointer's thread.
                    conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                    conn.commit()
                group = CommitGroup(Store(self.engine, conn), conn, every, checkpointer)
                try:
                    try:
                        yield group
                    except BaseException:
                        conn.rollback()
                        raise
                    group.commit(checkpoint=False)
                finally:
                    if checkpointer is not None:
                        checkpointer.join()
                        conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT}")
                        conn.commit()
        except SQLAlchemyError as err:
            raise StoreError(f"state database error: {_reason(err)}") from err

    @contextmanager
    def transaction(self, *, read: bool = False) -> Iterator[Connection]:
        """One atomic unit of work: committed on success, rolled back on any error.

        ``read=True`` promises the block only reads: on SQLite it then does not take the
        write lock, so it neither waits for nor blocks a run that is writing.
        """
        try:
            if self._conn is not None and read:
                yield self._conn  # inside a group or dry run: a read needs no savepoint of its own
            elif self._conn is not None:
                with self._conn.begin_nested():
                    yield self._conn
            else:
                with self.engine.connect() as conn:
                    if read:
                        conn.execution_options(**{_READ_ONLY: True})
                    with conn.begin():
                        yield conn
        except SQLAlchemyError as err:
            raise StoreError(f"state database error: {_reason(err)}") from err

    def install_id(self) -> str:
        """The random id made with the state; Message-IDs carry it (digest/store_meta.py)."""
        with self.transaction(read=True) as conn:
            return store_meta.install_id(conn)

    # --- dumps -----------------------------------------------------------------------------

    def seen_files(self) -> dict[str, tuple[int, int, str]]:
        """name → (size, mtime_ns, sha256) of every file read before."""
        with self.transaction(read=True) as conn:
            rows = conn.execute(sa.select(seen_files)).all()
        return {r.name: (r.size, r.mtime_ns, r.sha256) for r in rows}

    def stat_cache(self) -> dict[str, tuple[int, int]]:
        """name → (size, mtime_ns) of every file read before: what a run compares the
        inbox against (:func:`digest.sources.scan_changed`)."""
        with self.transaction(read=True) as conn:
            # One row per file the inbox ever held, on every run: fetched by the driver
            # itself, as SQLAlchemy's rows cost three times as much (bench/, growth).
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute("SELECT name, size, mtime_ns FROM seen_files")
                return {name: (size, mtime_ns) for name, size, mtime_ns in cursor}
            finally:
                cursor.close()

    def remember_file(self, name: str, size: int, mtime_ns: int, sha256: str) -> None:
        with self.transaction() as conn:
            self._remember(conn, name, size, mtime_ns, sha256)

    @staticmethod
    def _remember(conn: Connection, name: str, size: int, mtime_ns: int, sha256: str) -> None:
        conn.execute(_FORGET_FILE, {"name": name})
        conn.execute(_REMEMBER_FILE, {"name": name, "size": size, "mtime_ns": mtime_ns, "sha256": sha256})

    def dump_status(self, sha256: str) -> str | None:
        """ "ingested", "failed" or None for a dump never seen."""
        with self.transaction(read=True) as conn:
            return conn.execute(_DUMP_STATUS, {"sha256": sha256}).scalar_one_or_none()

    def ingest(
        self,
        *,
        name: str,
        sha256: str,
        size: int,
        mtime_ns: int,
        papers_in: Iterable[Paper],
        layout: Callable[[], str],
        now: datetime,
    ) -> IngestResult:
        """Stores one dump and its new papers in one transaction: all of them or none.

        ``papers_in`` may be a generator (a streamed parse): it is consumed in batches
        inside the transaction, so a parse error midway rolls the whole dump back.
        """
        found = new = enriched = 0
        with self.transaction() as conn:
            # A retried failure replaces its record; an ingested dump is never replaced.
            self._drop_failures(conn, name, sha256)
            dump_id = conn.execute(
                _INSERT_DUMP,
                {"sha256": sha256, "name": name, "size": size, "seen_at": now, "status": "ingested"},
            ).inserted_primary_key[0]  # type: ignore[index]
            insert = _BulkInsert(conn, papers, _PAPER_INSERT, unique="key", first_seen=now, dump_id=dump_id)
            for batch in _batched(papers_in, BATCH):
                found += len(batch)
                # _rich() inlined: a call per paper costs more than the test.
                if insert.skips_existing and not any(
                    p.arxiv_id or p.authors or p.upvotes is not None for p in batch
                ):
                    # Most dumps: nothing to add to known papers, so the unique index
                    # itself tells new from known, in the one statement that inserts.
                    new += insert.new_only([_paper_row(p) for p in batch])
                else:
                    known = _known_keys(conn, [p.key for p in batch])
                    if known:
                        enriched += _enrich(conn, [p for p in batch if p.key in known])
                    rows = [_paper_row(p) for p in batch if p.key not in known]
                    if rows:
                        insert(rows)
                        new += len(rows)
                crash_point("ingest.batch")
            found_layout = layout()
            conn.execute(
                _DUMP_COUNTS, {"dump_id": dump_id, "found": found, "new": new, "found_layout": found_layout}
            )
            self._remember(conn, name, size, mtime_ns, sha256)
        return IngestResult(found=found, new=new, layout=found_layout, enriched=enriched)

    def record_failure(
        self, *, name: str, sha256: str, size: int, mtime_ns: int, error: str, now: datetime
    ) -> None:
        """Records a dump that could not be ingested, with the reason (file:line)."""
        with self.transaction() as conn:
            self._drop_failures(conn, name, sha256)
            conn.execute(
                sa.insert(dumps).values(
                    sha256=sha256, name=name, size=size, seen_at=now, status="failed", error=error
                )
            )
            self._remember(conn, name, size, mtime_ns, sha256)

    @staticmethod
    def _drop_failures(conn: Connection, name: str, sha256: str) -> None:
        # A failure is superseded by the next outcome for the same bytes (a retry) or the
        # same file name (a truncated file now complete, an unreadable one now readable):
        # status lists only failures that still stand.
        conn.execute(_DROP_FAILURES, {"sha256": sha256, "name": name})

    def dump_records(self, status: str | None = None) -> list[DumpRecord]:
        query = sa.select(dumps).order_by(dumps.c.id)
        if status:
            query = query.where(dumps.c.status == status)
        with self.transaction(read=True) as conn:
            rows = conn.execute(query).all()
        return [
            DumpRecord(
                sha256=r.sha256,
                name=r.name,
                seen=r.seen_at,
                status=r.status,
                error=r.error,
                papers_found=r.papers_found,
                papers_new=r.papers_new,
            )
            for r in rows
        ]

    # --- digests ---------------------------------------------------------------------------

    def create_digest(
        self, *, now: datetime, day: date, recipients: Sequence[str], domain: str
    ) -> Digest | None:
        """Gathers every paper first seen since the last digest into a new digest, with a
        pending delivery per recipient, in one transaction. None when nothing is new.
        """
        with self.transaction() as conn:
            last = conn.execute(sa.select(sa.func.max(papers.c.seq))).scalar() or 0
            done = conn.execute(sa.select(sa.func.max(digests.c.last_seq))).scalar() or 0
            if last <= done:
                return None
            count = conn.execute(
                sa.select(sa.func.count()).select_from(papers).where(papers.c.seq > done)
            ).scalar_one()
            base = day.isoformat()
            taken = set(
                conn.execute(sa.select(digests.c.slug).where(digests.c.slug.like(f"{base}%"))).scalars()
            )
            slug, n = base, 1
            while slug in taken:
                n += 1
                slug = f"{base}-{n}"
            digest_id = conn.execute(
                sa.insert(digests).values(
                    slug=slug, created_at=now, first_seq=done + 1, last_seq=last, paper_count=count
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            blocked = set(conn.execute(sa.select(suppressions.c.address)).scalars())
            recipients = [r for r in recipients if r.strip().lower() not in blocked]
            if recipients:
                install = store_meta.install_id(conn)
                conn.execute(
                    sa.insert(deliveries),
                    [
                        {
                            "digest_id": digest_id,
                            "recipient": r,
                            "status": "pending",
                            "attempts": 0,
                            "message_id": message_id(digest_id, r, domain, install),
                            "created_at": now,
                        }
                        for r in recipients
                    ],
                )
            row = conn.execute(sa.select(digests).where(digests.c.id == digest_id)).one()
        return _digest(row)

    def digests(self, *, unpublished: bool = False, limit: int | None = None) -> list[Digest]:
        """Digests, newest first."""
        query = sa.select(digests).order_by(digests.c.id.desc()).limit(limit)
        if unpublished:
            query = query.where(digests.c.published_at.is_(None))
        with self.transaction(read=True) as conn:
            return [_digest(r) for r in conn.execute(query)]

    def digests_between(self, start: datetime | None = None, end: datetime | None = None) -> list[Digest]:
        """Digests created at or after ``start`` and before ``end`` (either open when
        None), newest first. Served by an index on the creation time."""
        query = sa.select(digests).order_by(digests.c.id.desc())
        if start is not None:
            query = query.where(digests.c.created_at >= start)
        if end is not None:
            query = query.where(digests.c.created_at < end)
        with self.transaction(read=True) as conn:
            return [_digest(r) for r in conn.execute(query)]

    def digest_totals(self, start: datetime | None = None, end: datetime | None = None) -> tuple[int, int]:
        """(digests, papers in them) created at or after ``start`` and before ``end``."""
        query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(digests.c.paper_count), 0))
        if start is not None:
            query = query.where(digests.c.created_at >= start)
        if end is not None:
            query = query.where(digests.c.created_at < end)
        with self.transaction(read=True) as conn:
            count, papers_in = conn.execute(query).one()
        return int(count), int(papers_in)

    def digest_totals_per_range(self, bounds: Sequence[datetime]) -> list[tuple[int, int]]:
        """(digests, papers in them) created in each range ``[bounds[i], bounds[i + 1])``,
        in one query (a year per range, for the archive's index)."""
        if len(bounds) < 2:
            return []
        created = digests.c.created_at
        bucket = sa.case(*[(created < end, i) for i, end in enumerate(bounds[1:])], else_=-1).label("bucket")
        query = (
            sa.select(bucket, sa.func.count(), sa.func.coalesce(sa.func.sum(digests.c.paper_count), 0))
            .where(created >= bounds[0], created < bounds[-1])
            .group_by(bucket)
        )
        totals = [(0, 0)] * (len(bounds) - 1)
        with self.transaction(read=True) as conn:
            for i, count, papers_in in conn.execute(query):
                totals[i] = (int(count), int(papers_in))
        return totals

    def digest_span(self) -> tuple[datetime, datetime] | None:
        """When the first and the last digest were created; None before the first."""
        with self.transaction(read=True) as conn:
            first = conn.execute(sa.select(sa.func.min(digests.c.created_at))).scalar()
            last = conn.execute(sa.select(sa.func.max(digests.c.created_at))).scalar()
        if first is None or last is None:
            return None
        # An aggregate's result skips the column's type on SQLite: make sure of both.
        return _utc(first), _utc(last)

    def previous_digest(self, digest_id: int) -> Digest | None:
        """The digest created just before ``digest_id`` (the page's "previous" link)."""
        query = sa.select(digests).where(digests.c.id < digest_id).order_by(digests.c.id.desc()).limit(1)
        with self.transaction(read=True) as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else _digest(row)

    def digest(self, digest_id: int) -> Digest:
        with self.transaction(read=True) as conn:
            row = conn.execute(sa.select(digests).where(digests.c.id == digest_id)).one_or_none()
        if row is None:
            raise StoreError(f"no digest with id {digest_id}")
        return _digest(row)

    def mark_published(self, digest_ids: Iterable[int], now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                sa.update(digests)
                .where(digests.c.id.in_(list(digest_ids)), digests.c.published_at.is_(None))
                .values(published_at=now)
            )

    def digest_papers(self, digest: Digest) -> tuple[StoredPaper, ...]:
        """The digest's papers in the order they were first seen."""
        query = (
            sa.select(*_PAPER_COLUMNS)
            .join(dumps, dumps.c.id == papers.c.dump_id)
            .where(papers.c.seq.between(digest.first_seq, digest.last_seq))
            .order_by(papers.c.seq)
        )
        with self.transaction(read=True) as conn:
            return tuple(_paper(r) for r in conn.execute(query))

    def recent_papers(self, limit: int, up_to_seq: int) -> list[tuple[StoredPaper, Digest]]:
        """The ``limit`` newest digested papers (seq ≤ ``up_to_seq``), newest first,
        each with the digest that carried it."""
        # Two queries, not a join on the seq range: no index serves ``seq BETWEEN
        # first_seq AND last_seq``, so the join scanned every digest for every paper
        # and a feed run slowed down as the history grew (bench/, growth).
        query = (
            sa.select(*_PAPER_COLUMNS)
            .join(dumps, dumps.c.id == papers.c.dump_id)
            .where(papers.c.seq <= up_to_seq)
            .order_by(papers.c.seq.desc())
            .limit(limit)
        )
        with self.transaction(read=True) as conn:
            stored = [_paper(r) for r in conn.execute(query)]
            if not stored:
                return []
            carriers = [
                _digest(r)
                for r in conn.execute(
                    sa.select(digests)
                    .where(digests.c.last_seq >= stored[-1].seq, digests.c.first_seq <= stored[0].seq)
                    .order_by(digests.c.first_seq)
                )
            ]
        firsts = [d.first_seq for d in carriers]
        out: list[tuple[StoredPaper, Digest]] = []
        for paper in stored:
            i = bisect_right(firsts, paper.seq) - 1
            if i >= 0 and carriers[i].last_seq >= paper.seq:
                out.append((paper, carriers[i]))
        return out

    # --- outbox ----------------------------------------------------------------------------

    def deliveries(self, status: str | None = None) -> list[Delivery]:
        query = sa.select(deliveries).order_by(deliveries.c.digest_id, deliveries.c.id)
        if status:
            query = query.where(deliveries.c.status == status)
        with self.transaction(read=True) as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def mark_sent(self, delivery_id: int, now: datetime) -> None:
        """Called only after the server accepted the message (invariant 4)."""
        with self.transaction() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    status="sent",
                    sent_at=now,
                    last_attempt_at=now,
                    attempts=deliveries.c.attempts + 1,
                    last_error=None,
                )
            )

    def mark_attempt_failed(self, delivery_id: int, error: str, now: datetime, *, permanent: bool) -> None:
        """A temporary failure stays pending for the next run; a permanent one is failed."""
        with self.transaction() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    status="failed" if permanent else "pending",
                    last_attempt_at=now,
                    attempts=deliveries.c.attempts + 1,
                    last_error=error,
                )
            )

    def cancel_deliveries(self, delivery_ids: Iterable[int], reason: str, now: datetime) -> int:
        """Pending rows become ``cancelled`` with ``reason``; returns how many changed."""
        ids = list(delivery_ids)
        if not ids:
            return 0
        with self.transaction() as conn:
            result = conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id.in_(ids), deliveries.c.status == "pending")
                .values(status="cancelled", last_error=reason, last_attempt_at=now)
            )
        return int(result.rowcount)

    # --- suppression list ------------------------------------------------------------------

    def suppress(self, address: str, now: datetime, reason: str = "unsubscribed") -> int:
        """Adds ``address`` to the suppression list (idempotent) and cancels its pending
        deliveries in the same transaction; returns how many were cancelled."""
        addr = address.strip().lower()
        with self.transaction() as conn:
            known = conn.execute(
                sa.select(suppressions.c.address).where(suppressions.c.address == addr)
            ).scalar_one_or_none()
            if known is None:
                conn.execute(sa.insert(suppressions).values(address=addr, created_at=now, reason=reason))
            result = conn.execute(
                sa.update(deliveries)
                .where(sa.func.lower(deliveries.c.recipient) == addr, deliveries.c.status == "pending")
                .values(status="cancelled", last_error=reason, last_attempt_at=now)
            )
        return int(result.rowcount)

    def unsuppress(self, address: str) -> bool:
        """Removes ``address`` from the suppression list; False when it was not on it."""
        with self.transaction() as conn:
            result = conn.execute(
                sa.delete(suppressions).where(suppressions.c.address == address.strip().lower())
            )
        return bool(result.rowcount)

    def suppressed(self) -> frozenset[str]:
        """Every suppressed address, lower-cased."""
        with self.transaction(read=True) as conn:
            return frozenset(conn.execute(sa.select(suppressions.c.address)).scalars())

    # --- remote sources --------------------------------------------------------------------

    def fetch_state(self, url: str) -> FetchState | None:
        """What the last fetch of ``url`` left behind; None if it was never fetched."""
        with self.transaction(read=True) as conn:
            row = conn.execute(sa.select(fetch_state).where(fetch_state.c.url == url)).one_or_none()
        return None if row is None else _fetch_state(row)

    def fetch_states(self, urls: Sequence[str] | None = None) -> list[FetchState]:
        """Every URL fetched so far (only ``urls``, when given), by URL."""
        query = sa.select(fetch_state).order_by(fetch_state.c.url)
        if urls is not None:
            query = query.where(fetch_state.c.url.in_(list(urls)))
        with self.transaction(read=True) as conn:
            return [_fetch_state(r) for r in conn.execute(query)]

    def fetch_failures(self, urls: Sequence[str] | None = None) -> list[FetchState]:
        """The URLs whose last fetch failed (only ``urls``, when given: pass
        ``config.sources.urls`` so a URL removed from the config is not reported).
        For ``digest status`` and health checks."""
        return [s for s in self.fetch_states(urls) if s.failing]

    def record_fetch(self, state: FetchState) -> None:
        """Replaces what the state remembers about ``state.url``."""
        values = {
            "etag": state.etag,
            "last_modified": state.last_modified,
            "last_status": state.last_status,
            "last_error": state.last_error,
            "last_fetch_at": state.last_fetch_at,
            "last_ok_at": state.last_ok_at,
            "last_sha256": state.last_sha256,
            "last_file": state.last_file,
            "failures": state.failures,
        }
        with self.transaction() as conn:
            done = conn.execute(sa.update(fetch_state).where(fetch_state.c.url == state.url).values(**values))
            if not done.rowcount:
                conn.execute(sa.insert(fetch_state).values(url=state.url, **values))

    # --- service jobs ----------------------------------------------------------------------

    def start_job_run(self, job: str, now: datetime) -> int:
        """Records that a service job started; returns the run's id."""
        with self.transaction() as conn:
            run_id = conn.execute(
                sa.insert(job_runs).values(job=job, started_at=now, summary="")
            ).inserted_primary_key[0]  # type: ignore[index]
        return int(run_id)

    def finish_job_run(self, run_id: int, now: datetime, *, ok: bool, summary: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                sa.update(job_runs)
                .where(job_runs.c.id == run_id)
                .values(finished_at=now, ok=ok, summary=summary)
            )

    def last_job_run(
        self, job: str | None = None, *, finished: bool = False, ok: bool | None = None
    ) -> JobRun | None:
        """The newest run of ``job`` (of any job when None); only finished ones with
        ``finished``; only those that ended with ``ok`` when it is given."""
        query = sa.select(job_runs).order_by(job_runs.c.id.desc()).limit(1)
        if job is not None:
            query = query.where(job_runs.c.job == job)
        if finished:
            query = query.where(job_runs.c.finished_at.is_not(None))
        if ok is not None:
            query = query.where(job_runs.c.ok == ok)
        with self.transaction(read=True) as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            return None
        return JobRun(
            id=row.id,
            job=row.job,
            started=row.started_at,
            finished=row.finished_at,
            ok=row.ok,
            summary=row.summary,
        )

    # --- status ----------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """The numbers ``digest status --json`` prints."""
        with self.transaction(read=True) as conn:
            dump_counts: dict[str, int] = dict(
                conn.execute(sa.select(dumps.c.status, sa.func.count()).group_by(dumps.c.status)).all()
            )
            delivery_counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(deliveries.c.status, sa.func.count()).group_by(deliveries.c.status)
                ).all()
            )
            n_papers = conn.execute(sa.select(sa.func.count()).select_from(papers)).scalar_one()
            n_digests = conn.execute(sa.select(sa.func.count()).select_from(digests)).scalar_one()
            undigested = conn.execute(
                sa.select(sa.func.count())
                .select_from(papers)
                .where(
                    papers.c.seq
                    > sa.select(sa.func.coalesce(sa.func.max(digests.c.last_seq), 0)).scalar_subquery()
                )
            ).scalar_one()
        return {
            "dumps": {
                "ingested": dump_counts.get("ingested", 0),
                "failed": dump_counts.get("failed", 0),
            },
            "papers": n_papers,
            "papers_waiting": undigested,
            "digests": n_digests,
            "deliveries": {s: delivery_counts.get(s, 0) for s in ("pending", "sent", "failed", "cancelled")},
        }
