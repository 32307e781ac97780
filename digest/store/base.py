"""What every group of tables builds on: the engine, units of work (:meth:`StoreBase.transaction`),
dry runs and commit groups, opening and closing.

Every write is one transaction. Callers hold the run lock (:mod:`digest.lock`), so a
check-then-insert (e.g. in ``Store.ingest``) does not race.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from digest.errors import StoreError
from digest.store.group import CommitGroup, reason
from digest.store.schema import migrate
from digest.store.sqlite import READ_ONLY, WAL_AUTOCHECKPOINT, Checkpointer, sqlite_begin, sqlite_pragmas


def create_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and real transactions."""
    try:
        engine = sa.create_engine(url)
    except (SQLAlchemyError, ImportError) as err:
        raise StoreError(f"cannot use state.url {url!r}: {err}") from err
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", sqlite_pragmas)
        sa.event.listen(engine, "begin", sqlite_begin)
    return engine


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for another database or an in-memory one."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class StoreBase:
    """The engine and units of work; the groups of tables (mixins) add the queries."""

    def __init__(self, engine: Engine, connection: Connection | None = None) -> None:
        self.engine = engine
        self._conn = connection  # set in dry-run mode: everything happens inside one rollback

    @classmethod
    def open(cls, url: str) -> Self:
        """Connects to ``url`` (a SQLite file's directory is created) and migrates the
        schema. Close it with :meth:`close`, or use it as a context manager."""
        db = sqlite_file(url)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        try:
            migrate(engine)
        except SQLAlchemyError as err:
            engine.dispose()
            raise StoreError(f"cannot open the state at {url!r}: {reason(err)}") from err
        return cls(engine)

    def close(self) -> None:
        if self._conn is None:
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def dry_run(self) -> Iterator[Self]:
        """A Store whose every change is rolled back when the block ends."""
        with self.engine.connect() as conn:
            outer = conn.begin()
            try:
                yield type(self)(self.engine, conn)
            finally:
                outer.rollback()

    @contextmanager
    def commit_group(self, every: float) -> Iterator[CommitGroup[Self]]:
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
        checkpointer = Checkpointer(self.engine) if self.engine.dialect.name == "sqlite" else None
        try:
            with self.engine.connect() as conn:
                if checkpointer is not None:
                    # The group's commits leave checkpointing to the checkpointer's thread.
                    conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                    conn.commit()
                group = CommitGroup(type(self)(self.engine, conn), conn, every, checkpointer)
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
                        conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
                        conn.commit()
        except SQLAlchemyError as err:
            raise StoreError(f"state database error: {reason(err)}") from err

    @contextmanager
    def one_statement(self) -> Iterator[Connection]:
        """A unit of work of one write statement. On PostgreSQL it runs in autocommit:
        one round trip to the server instead of three (``BEGIN``, the statement,
        ``COMMIT``), and a single statement is atomic either way. Inside a commit group or
        dry run, and on SQLite (whose writers begin with ``BEGIN IMMEDIATE``), it is a
        :meth:`transaction`. The outbox's per-message writes use it (bench/cluster.py)."""
        if self._conn is not None or self.engine.dialect.name != "postgresql":
            with self.transaction() as conn:
                yield conn
            return
        try:
            with self.engine.connect() as conn:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as err:
            raise StoreError(f"state database error: {reason(err)}") from err

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
                        conn.execution_options(**{READ_ONLY: True})
                    with conn.begin():
                        yield conn
        except SQLAlchemyError as err:
            raise StoreError(f"state database error: {reason(err)}") from err
