"""Dumps and seen files: which dump files were read, by content hash and by name, and
what became of each (ingested or failed, with the reason)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.model import DumpRecord, DumpStatus
from digest.store.base import StoreBase
from digest.store.driver import run
from digest.store.rows import row_mapper
from digest.store.schema import dumps_t, seen_files_t

# Statements run once per dump (or per batch), built once and run by the driver
# (digest/store/driver.py): building an expression and its cache key costs more than
# running it on a small table.
_DUMP_STATUS = sa.select(dumps_t.c.status).where(dumps_t.c.sha256 == sa.bindparam("sha256"))
_FORGET_FILE = sa.delete(seen_files_t).where(seen_files_t.c.name == sa.bindparam("name"))
_REMEMBER_FILE = sa.insert(seen_files_t)
_DROP_FAILURES = sa.delete(dumps_t).where(
    dumps_t.c.status == "failed",
    sa.or_(dumps_t.c.sha256 == sa.bindparam("sha256"), dumps_t.c.name == sa.bindparam("name")),
)
dump_record = row_mapper(DumpRecord, seen="seen_at")
_INSERT_DUMP: dict[str, sa.Insert] = {}  # by dialect name, built on first use


def insert_dump(conn: Connection, values: dict[str, object]) -> int | None:
    """Inserts a ``dumps`` row and returns its id; None when a row for these bytes (its
    ``sha256``) is already there. Runs take turns under the run lock, so that happens
    only to two processes racing past it (instances ingesting the same dump, docs/DESIGN.md
    invariant 9): on PostgreSQL the later insert waits for the earlier transaction and,
    once that commits, inserts nothing; its dump is a no-op."""
    name = conn.dialect.name
    if name not in _INSERT_DUMP:
        insert: sa.Insert
        if name == "postgresql":
            from sqlalchemy.dialects import postgresql

            insert = postgresql.insert(dumps_t).on_conflict_do_nothing(index_elements=[dumps_t.c.sha256])
        elif name == "sqlite":
            from sqlalchemy.dialects import sqlite

            insert = sqlite.insert(dumps_t).on_conflict_do_nothing(index_elements=[dumps_t.c.sha256])
        else:
            insert = sa.insert(dumps_t)
        _INSERT_DUMP[name] = insert.returning(dumps_t.c.id)
    found: int | None = conn.execute(_INSERT_DUMP[name], values).scalar_one_or_none()
    return found


DUMP_COUNTS = (
    sa.update(dumps_t)
    .where(dumps_t.c.id == sa.bindparam("dump_id"))
    .values(
        papers_found=sa.bindparam("found"),
        papers_new=sa.bindparam("new"),
        layout=sa.bindparam("found_layout"),
    )
)


def remember(conn: Connection, name: str, size: int, mtime_ns: int, sha256: str) -> None:
    """Records ``name`` as read with this size, mtime and content hash."""
    run(conn, _FORGET_FILE, {"name": name})
    run(conn, _REMEMBER_FILE, {"name": name, "size": size, "mtime_ns": mtime_ns, "sha256": sha256})


def drop_failures(conn: Connection, name: str, sha256: str) -> None:
    """Drops the failures recorded for these bytes or this file name."""
    # A failure is superseded by the next outcome for the same bytes (a retry) or the
    # same file name (a truncated file now complete, an unreadable one now readable):
    # status lists only failures that still stand.
    run(conn, _DROP_FAILURES, {"sha256": sha256, "name": name})


class DumpsMixin(StoreBase):
    """The ``dumps`` and ``seen_files`` tables."""

    def seen_files(self) -> dict[str, tuple[int, int, str]]:
        """name → (size, mtime_ns, sha256) of every file read before."""
        with self.transaction(read=True) as conn:
            rows = conn.execute(sa.select(seen_files_t)).all()
        return {r.name: (r.size, r.mtime_ns, r.sha256) for r in rows}

    def stat_cache(self) -> dict[str, tuple[int, int]]:
        """name → (size, mtime_ns) of every file read before: what a run compares the
        inbox against (:func:`digest.sources.scan_changed`)."""
        query = sa.select(seen_files_t.c.name, seen_files_t.c.size, seen_files_t.c.mtime_ns)
        with self.transaction(read=True) as conn:
            return {name: (size, mtime_ns) for name, size, mtime_ns in conn.execute(query)}

    def remember_file(self, name: str, size: int, mtime_ns: int, sha256: str) -> None:
        with self.transaction() as conn:
            remember(conn, name, size, mtime_ns, sha256)

    def dump_status(self, sha256: str) -> DumpStatus | None:
        """The dump's status, None for a dump never seen."""
        with self.transaction(read=True) as conn:
            status: DumpStatus | None = run(conn, _DUMP_STATUS, {"sha256": sha256}).scalar_one_or_none()
        return status

    def record_failure(
        self, *, name: str, sha256: str, size: int, mtime_ns: int, error: str, now: datetime
    ) -> None:
        """Records a dump that could not be ingested, with the reason (file:line)."""
        with self.transaction() as conn:
            drop_failures(conn, name, sha256)
            values = {"sha256": sha256, "name": name, "size": size, "seen_at": now, "status": "failed"}
            insert_dump(conn, {**values, "error": error})  # None: another instance recorded it
            remember(conn, name, size, mtime_ns, sha256)

    def dump_records(self, status: DumpStatus | None = None) -> list[DumpRecord]:
        query = sa.select(dumps_t).order_by(dumps_t.c.id)
        if status:
            query = query.where(dumps_t.c.status == status)
        with self.transaction(read=True) as conn:
            rows = conn.execute(query).all()
        return [dump_record(r) for r in rows]
