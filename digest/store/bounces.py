"""Edge: what ``digest bounces`` remembers (issue 19, "Bounces").

Tables (in :data:`digest.store.schema.metadata`, created by migration 10):

- ``bounce_reports``: the sha256 of every delivery report handled (or kept for a human:
  the outcome says which), so a report read again (an mbox, a copy left in a maildir,
  an IMAP message fetched again) is never counted twice; a synchronous refusal at SMTP
  time is recorded under a hash of its outbox row.
- ``bounce_events``: one row per failed recipient of a report: address (normalised),
  ``hard``/``soft``, the DSN status, when. Soft events decide the soft-bounce limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from digest.store.schema import UTCDateTime, deliveries_t, metadata

if TYPE_CHECKING:
    from digest.store import Store

SOFT_WINDOW = timedelta(days=7)

bounce_reports = sa.Table(
    "bounce_reports",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("handled_at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False, default=""),
)

bounce_events = sa.Table(
    "bounce_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("address_key", sa.String(320), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # hard / soft
    sa.Column("status", sa.String(16), nullable=False, default=""),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("report", sa.String(64), nullable=False),
    sqlite_autoincrement=True,
)
sa.Index("bounce_events_address", bounce_events.c.address_key, bounce_events.c.at)


def migrate(conn: Connection) -> None:
    metadata.create_all(conn, tables=[bounce_reports, bounce_events])


def handled(store: Store, sha256: str) -> bool:
    """True when the report with this hash was handled (or kept) before."""
    return outcome_of(store, sha256) is not None


def outcome_of(store: Store, sha256: str) -> str | None:
    """What became of the report with this hash (``bounce_reports.outcome``), None when
    it was never seen."""
    with store.transaction(read=True) as conn:
        value = conn.execute(
            sa.select(bounce_reports.c.outcome).where(bounce_reports.c.sha256 == sha256)
        ).scalar_one_or_none()
    return None if value is None else str(value)


def recipient_of(store: Store, delivery_id: int) -> str | None:
    """The recipient of an outbox row (what a VERP token names), None when there is none."""
    with store.transaction(read=True) as conn:
        value = conn.execute(
            sa.select(deliveries_t.c.recipient).where(deliveries_t.c.id == delivery_id)
        ).scalar_one_or_none()
    return str(value) if value is not None else None


def record(
    store: Store, sha256: str, events: Sequence[tuple[str, str, str]], outcome: str, now: datetime
) -> bool:
    """Stores one handled report and its events ``(address_key, kind, status)`` in one
    transaction: either both are there or neither. False (nothing stored) when another
    reader (``digest bounces`` by hand beside the service) recorded the same report first."""
    with store.transaction() as conn:
        try:
            with conn.begin_nested():
                conn.execute(sa.insert(bounce_reports).values(sha256=sha256, handled_at=now, outcome=outcome))
        except IntegrityError:
            return False
        for key, kind, status in events:
            conn.execute(
                sa.insert(bounce_events).values(
                    address_key=key, kind=kind, status=status, at=now, report=sha256
                )
            )
    return True


def counts_since(store: Store, address_key: str, since: datetime) -> dict[str, int]:
    """Hard and soft events of one address from ``since`` on (a bounce in the run that
    made them active counts)."""
    with store.transaction(read=True) as conn:
        rows = conn.execute(
            sa.select(bounce_events.c.kind, sa.func.count())
            .where(bounce_events.c.address_key == address_key, bounce_events.c.at >= since)
            .group_by(bounce_events.c.kind)
        ).all()
    found = {str(k): int(n) for k, n in rows}
    return {"hard": found.get("hard", 0), "soft": found.get("soft", 0)}
