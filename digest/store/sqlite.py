"""SQLite tuning: the pragmas every connection gets, how a unit of work begins, and the
thread that checkpoints the WAL during a commit group. Nothing here runs on PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)


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


WAL_AUTOCHECKPOINT = 4096  # pages (32 MB), see below


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
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
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
    # Up to 64 MiB of page cache (SQLite's default is 2 MiB): a commit group's dirty
    # index pages stay in memory until it commits instead of spilling to the WAL early.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


READ_ONLY = "paper_digest_read_only"


def sqlite_begin(conn: Connection) -> None:
    # A writer takes the write lock up front with IMMEDIATE: no deadlock when a reader
    # upgrades. A read-only unit (Store.transaction(read=True)) begins deferred: in WAL
    # mode it never waits for a writer, so `status` and /healthz answer during a long ingest.
    read = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


class Checkpointer:
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
