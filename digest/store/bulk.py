"""The hand-compiled bulk insert an ingest spends its time in (README, Performance).

Its plain reference is ``conn.execute(sa.insert(table), dicts)``; :class:`BulkInsert`
must store exactly what that stores (tests/test_store_bulk.py holds it to that)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


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


class BulkInsert:
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
        """Inserts the rows whose ``unique`` value is not stored yet; returns how many.
        ``rows`` must not be empty (the driver would run the statement once, unbound)."""
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


_KNOWN_SQL: dict[tuple[str, str, str, int], tuple[str, bool]] = {}


def known_values(conn: Connection, column: sa.Column[Any], values: Sequence[str]) -> set[str]:
    """Which of ``values`` the ``column`` holds. The ``IN (...)`` is compiled once per
    dialect, column and batch size and run by the driver: an expanding parameter
    re-renders the SQL on every call, and this runs once per batch of every dump."""
    cache_key = (conn.dialect.name, column.table.name, column.name, len(values))
    cached = _KNOWN_SQL.get(cache_key)
    if cached is None:
        names = [f"k{i}" for i in range(len(values))]
        query = sa.select(column).where(column.in_([sa.bindparam(n) for n in names]))
        compiled = query.compile(dialect=conn.dialect)
        if compiled.positional and list(compiled.positiontup or ()) != names:
            raise AssertionError(f"unexpected parameter order {compiled.positiontup}")
        cached = _KNOWN_SQL[cache_key] = (compiled.string, compiled.positional)
    sql, positional = cached
    params: tuple[str, ...] | dict[str, str] = (
        tuple(values) if positional else {f"k{i}": value for i, value in enumerate(values)}
    )
    return set(conn.exec_driver_sql(sql, params).scalars())


def json_strings(items: Sequence[str]) -> str:
    """``json.dumps(list(items))`` for strings: each string through the same C encoder
    json.dumps uses, joined the way it joins them, without building an encoder per call
    (3x faster on a paper's links; tests/test_store_bulk.py holds it to json.dumps)."""
    return "[" + ", ".join(map(encode_basestring_ascii, items)) + "]"
