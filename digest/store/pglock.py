"""PostgreSQL advisory locks: on a shared PostgreSQL state the database is the lock
(docs/DESIGN.md, invariant 9), not a file beside one machine's config.

Session-level locks live as long as the connection that took them; the server drops them
when that connection ends, also when its process is killed, so a crashed instance never
leaves a stale lock behind (the same promise ``flock`` makes for SQLite).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

# Fixed 64-bit keys, the same in every instance: b"pd:run" and b"pd:schm" as integers.
RUN_LOCK = int.from_bytes(b"pd:run", "big")
SCHEMA_LOCK = int.from_bytes(b"pd:schm", "big")
POLL = 0.1  # seconds between tries while waiting for another holder


def is_postgres(url: str) -> bool:
    return sa.engine.make_url(url).get_backend_name() == "postgresql"


def lock_schema(conn: Connection) -> None:
    """Holds the schema lock until ``conn``'s transaction ends: processes creating or
    migrating one database at once take turns, and each later one finds the work done."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK})


@contextmanager
def advisory_lock(url: str, key: int, *, wait: float, holder: str = "") -> Iterator[bool]:
    """Tries the session lock ``key`` on its own connection for up to ``wait`` seconds;
    yields True while held, False when another session kept it past ``wait``. The
    connection carries ``holder`` (the instance name) as its application name, which
    :func:`lock_holder` reports."""
    args = {"application_name": holder[:63]} if holder else {}
    engine = sa.create_engine(url, poolclass=NullPool, connect_args=args)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            deadline = time.monotonic() + wait
            try_lock = sa.text("SELECT pg_try_advisory_lock(:k)")
            while not conn.execute(try_lock, {"k": key}).scalar_one():
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(POLL)
            try:
                yield True
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()


def lock_holder(conn: Connection, key: int = RUN_LOCK) -> str | None:
    """Who holds ``key`` (for /healthz): the holder's instance name and backend pid, e.g.
    ``"node1 (pid 4711)"``; None when the lock is free."""
    row = conn.execute(
        sa.text(
            "SELECT l.pid, a.application_name FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = :k LIMIT 1"
        ),
        {"k": key},
    ).first()
    if row is None:
        return None
    return f"{row[1] or 'unnamed'} (pid {row[0]})"
