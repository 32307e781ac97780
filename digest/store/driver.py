"""Statements an ingest runs once per dump, compiled once per dialect and run by the
driver (a speed fix, README, Performance).

``conn.execute(statement, params)`` builds the statement's cache key, looks up its
compiled form and type-processes every parameter on each call: several times the cost
of running a one-row statement on SQLite, paid five times for every dump. :func:`run`
compiles a statement once for the connection's dialect (so the parameter style stays
right on SQLite and PostgreSQL alike) and hands the driver its parameters as they are,
with the statement's own literal values filled in. Only statements whose parameters
need no bind processing are accepted (text and integers need none); one that does
raises TypeError when first run.

The plain reference is ``conn.execute(statement, params)``: tests/test_store_driver.py
holds both to the same effect and the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult


@dataclass(frozen=True, slots=True)
class _Compiled:
    statement: sa.Executable  # held so that its id() is not reused while cached
    sql: str
    order: tuple[str, ...] | None  # positional styles: the parameters' order
    literals: dict[str, Any]  # values the statement itself carries (``status == 'failed'``)


_COMPILED: dict[tuple[str, int], _Compiled] = {}


def _compile(conn: Connection, statement: sa.Executable) -> _Compiled:
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    for name, bind in compiled.binds.items():
        if bind.expanding or bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
            raise TypeError(f"parameter {name} of {statement} needs processing; use conn.execute")
    literals = {name: value for name, value in compiled.params.items() if value is not None}
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    return _Compiled(statement, compiled.string, order, literals)


def run(conn: Connection, statement: sa.Executable, params: Mapping[str, Any]) -> CursorResult[Any]:
    """``conn.execute(statement, params)`` through the driver; ``statement`` must be built
    once (a module constant), since it is cached by identity."""
    key = (conn.dialect.name, id(statement))
    compiled = _COMPILED.get(key)
    if compiled is None or compiled.statement is not statement:
        compiled = _COMPILED[key] = _compile(conn, statement)
    literals = compiled.literals
    if compiled.order is None:
        return conn.exec_driver_sql(compiled.sql, {**literals, **params})
    values = tuple(params[n] if n in params else literals[n] for n in compiled.order)
    return conn.exec_driver_sql(compiled.sql, values)
