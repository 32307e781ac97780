"""digest/store/driver.py held to its plain reference, ``conn.execute(statement, params)``:
every statement an ingest runs through the driver leaves the same rows and returns the
same result, on a real SQLite file and on PostgreSQL; a statement whose parameters need
processing (a datetime) is refused rather than run unprocessed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from digest.store import Store
from digest.store import dumps as dumps_module
from digest.store.driver import run
from digest.store.dumps import DUMP_COUNTS
from digest.store.schema import dumps_t, seen_files_t
from tests.test_store_postgres import pg_url  # noqa: F401  (the fixture)

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
Runner = Callable[[sa.Connection, Any, dict[str, Any]], Any]


def _plain(conn: sa.Connection, statement: Any, params: dict[str, Any]) -> Any:
    return conn.execute(statement, params)


def _script(store: Store, execute: Runner) -> list[Any]:
    """Every statement of dumps.py the driver runs, with outcomes that differ by row."""
    seen: list[Any] = []
    with store.transaction() as conn:
        for i, (sha, name, status) in enumerate(
            [
                ("a" * 64, "one.txt", "failed"),
                ("b" * 64, "two.txt", "ingested"),
                ("c" * 64, "three.txt", "failed"),
            ]
        ):
            conn.execute(
                sa.insert(dumps_t).values(id=i + 1, sha256=sha, name=name, size=i, seen_at=NOW, status=status)
            )
        query = dumps_module._DUMP_STATUS
        seen += [
            execute(conn, query, {"sha256": s}).scalar_one_or_none() for s in ("a" * 64, "b" * 64, "d" * 64)
        ]
        # Drops the failure by bytes (a) and by name (three.txt), never an ingested dump.
        for sha, name in (("a" * 64, "other.txt"), ("e" * 64, "three.txt"), ("b" * 64, "two.txt")):
            seen.append(execute(conn, dumps_module._DROP_FAILURES, {"sha256": sha, "name": name}).rowcount)
        seen.append(
            execute(
                conn, DUMP_COUNTS, {"dump_id": 2, "found": 7, "new": 5, "found_layout": "compact"}
            ).rowcount
        )
        for name, size in (("two.txt", 1), ("two.txt", 2), ("x'; --.txt", 3)):
            execute(conn, dumps_module._FORGET_FILE, {"name": name})
            execute(
                conn,
                dumps_module._REMEMBER_FILE,
                {"name": name, "size": size, "mtime_ns": 10**18 + size, "sha256": "f" * 64},
            )
    with store.transaction(read=True) as conn:
        seen += [tuple(r) for r in conn.execute(sa.select(dumps_t).order_by(dumps_t.c.id))]
        seen += [tuple(r) for r in conn.execute(sa.select(seen_files_t).order_by(seen_files_t.c.name))]
    return seen


def _same(open_store: Callable[[str], Store]) -> None:
    plain, driver = open_store("plain"), open_store("driver")
    try:
        expected = _script(plain, _plain)
        assert expected[:3] == ["failed", "ingested", None]
        assert expected[3:7] == [1, 1, 0, 1]
        assert _script(driver, run) == expected
    finally:
        plain.close()
        driver.close()


def test_driver_statements_do_what_sqlalchemy_does_on_sqlite(tmp_path: Path) -> None:
    _same(lambda name: Store.open(f"sqlite:///{tmp_path / name}.db"))


def test_driver_statements_do_what_sqlalchemy_does_on_postgres(pg_url: str) -> None:  # noqa: F811
    # Two stores in one database would share the tables: the second gets its own.
    urls = {"plain": pg_url}

    def open_store(name: str) -> Store:
        if name not in urls:
            base, db = pg_url.rsplit("/", 1)
            admin = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{db}_2"')
            admin.dispose()
            urls[name] = f"{base}/{db}_2"
        return Store.open(urls[name])

    try:
        _same(open_store)
    finally:
        if "driver" in urls:
            base, db = urls["driver"].rsplit("/", 1)
            admin = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            admin.dispose()


def test_a_statement_needing_bind_processing_is_refused(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    try:
        with pytest.raises(TypeError, match="seen_at"), store.transaction() as conn:
            run(
                conn,
                sa.insert(dumps_t),
                {"sha256": "a", "name": "n", "size": 1, "seen_at": NOW, "status": "failed"},
            )
    finally:
        store.close()
