"""Dump-health incidents (table ``incidents``) and what the alert decider observes.

An incident is open while ``resolved`` is NULL; ``notified`` and ``resolved_notified``
record when its two alert emails were accepted, so each is sent once (a failed send is
retried on the next poll, never repeated after it went out).

Functions over a :class:`~sqlalchemy.engine.Connection`, so the store package can
compose them into :class:`~digest.store.Store` (migration 9, digest/store/schema.py).
Times are stored as naive UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.alerts import Incident, Observed

incidents = sa.Table(
    "incidents",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("opened", sa.DateTime, nullable=False),
    sa.Column("resolved", sa.DateTime),
    sa.Column("notified", sa.DateTime),  # the "alert" email was accepted
    sa.Column("resolved_notified", sa.DateTime),  # the "resolved" email was accepted
    sa.Index("incidents_open", "resolved", "kind", "key"),
    sqlite_autoincrement=True,
)


@dataclass(frozen=True, slots=True)
class StoredIncident:
    id: int
    kind: str
    key: str
    reason: str
    opened: datetime
    resolved: datetime | None
    notified: datetime | None
    resolved_notified: datetime | None


def migrate(conn: Connection) -> None:
    """The migration that adds ``incidents``."""
    incidents.create(conn, checkfirst=True)


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


def _aware(at: datetime | str | None) -> datetime | None:
    if at is None:
        return None
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _row(r: sa.Row[tuple[object, ...]]) -> StoredIncident:
    m = r._mapping
    opened = _aware(m["opened"])
    assert opened is not None
    return StoredIncident(
        id=int(m["id"]),
        kind=str(m["kind"]),
        key=str(m["key"]),
        reason=str(m["reason"]),
        opened=opened,
        resolved=_aware(m["resolved"]),
        notified=_aware(m["notified"]),
        resolved_notified=_aware(m["resolved_notified"]),
    )


def open_incidents(conn: Connection) -> list[StoredIncident]:
    query = sa.select(incidents).where(incidents.c.resolved.is_(None)).order_by(incidents.c.id)
    return [_row(r) for r in conn.execute(query)]


def unsent(conn: Connection) -> list[StoredIncident]:
    """Incidents with an alert email still to send: opened and not mailed, or resolved
    and the resolution not mailed (oldest first)."""
    c = incidents.c
    query = (
        sa.select(incidents)
        .where(c.notified.is_(None) | (c.resolved.is_not(None) & c.resolved_notified.is_(None)))
        .order_by(c.id)
    )
    return [_row(r) for r in conn.execute(query)]


def all_incidents(conn: Connection) -> list[StoredIncident]:
    return [_row(r) for r in conn.execute(sa.select(incidents).order_by(incidents.c.id))]


def apply(
    conn: Connection, to_open: tuple[Incident, ...], to_close: tuple[tuple[str, str], ...], now: datetime
) -> None:
    """Opens and resolves incidents as the decider said."""
    for inc in to_open:
        conn.execute(
            sa.insert(incidents).values(kind=inc.kind, key=inc.key, reason=inc.reason, opened=_naive(now))
        )
    for kind, key in to_close:
        conn.execute(
            sa.update(incidents)
            .where(incidents.c.kind == kind, incidents.c.key == key, incidents.c.resolved.is_(None))
            .values(resolved=_naive(now))
        )


def mark_notified(conn: Connection, incident_id: int, now: datetime, *, resolved: bool) -> None:
    column = "resolved_notified" if resolved else "notified"
    conn.execute(sa.update(incidents).where(incidents.c.id == incident_id).values({column: _naive(now)}))


def observe(conn: Connection, now: datetime) -> Observed:
    """What the decider needs from the state, read with ``conn`` (one transaction)."""
    from digest.store.schema import digests_t as digests
    from digest.store.schema import dumps_t as dumps
    from digest.store.schema import fetch_state_t as fetch_state

    last_seen = _aware(conn.execute(sa.select(sa.func.max(dumps.c.seen_at))).scalar_one_or_none())
    fetches = conn.execute(
        sa.select(fetch_state.c.url, fetch_state.c.failures, fetch_state.c.last_error).where(
            fetch_state.c.failures > 0
        )
    ).all()
    refused = conn.execute(
        sa.select(dumps.c.name, dumps.c.sha256, dumps.c.error)
        .where(dumps.c.status == "failed")
        .order_by(dumps.c.id)
    ).all()
    sizes = conn.execute(
        sa.select(digests.c.slug, digests.c.paper_count).order_by(digests.c.id.desc()).limit(21)
    ).all()
    return Observed(
        now=now,
        last_dump_seen=last_seen,
        fetch_failures=tuple((r.url, int(r.failures), r.last_error or "") for r in fetches),
        refused=tuple((r.name, r.sha256, r.error or "") for r in refused),
        digest_sizes=tuple((r.slug, int(r.paper_count)) for r in sizes),
        open=tuple((i.kind, i.key) for i in open_incidents(conn)),
    )
