"""Edge: weekly emails in the outbox (issue 14). A weekly row is an ordinary delivery
carried by the latest digest not backfilled, plus a ``delivery_ranges`` row naming the
seq range of the papers it holds; what a subscriber was sent is read back from the
outbox, so restarts neither skip nor repeat papers. A weekly email holds only papers of
digests that were (or would have been) mailed: a backfilled digest's papers (``digest
run --backfill``, never mailed) neither start a range nor carry it, and are left out of
one that spans them (:func:`digest.audience.weekly_papers`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.identity import message_id
from digest.store import meta as store_meta
from digest.store.schema import deliveries_t, digests_t
from digest.store.subscribers import delivery_ranges
from digest.subscribers import Subscriber

if TYPE_CHECKING:
    from digest.store import Store


def create_weekly(
    store: Store, recipients: Sequence[Subscriber], now: datetime, tz: ZoneInfo, domain: str
) -> int:
    """For each weekly subscriber in ``recipients`` whose weekday it is (in ``tz``) and
    who got no email yet today: one pending delivery holding every digested paper
    after the last one they were sent (or after ``since_seq``), carried by the latest
    digest that is not backfilled; backfilled digests before the first mailed one are
    skipped. Idempotent for a day: a second run, or a restart, adds nothing.
    Returns how many were created."""
    local = now.astimezone(tz)
    today = [s for s in recipients if s.preferences.weekday == local.weekday()]
    if not today:
        return 0
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    created = 0
    with store.transaction() as conn:
        latest = _carrier(conn)
        if latest is None:
            return 0  # no digest, or only backfilled ones: nothing that would have been mailed
        for sub in today:
            covered, last_created = _covered(conn, sub)
            if latest.last_seq <= covered:
                continue
            if last_created is not None and last_created >= day_start:
                continue  # one email a day at most: the rest waits for next week
            created += _add_row(conn, sub, latest, covered, now, domain) is not None
    return created


def create_row_now(store: Store, sub: Subscriber, now: datetime, domain: str) -> int | None:
    """The row :func:`create_weekly` would give ``sub`` were it their weekday and had they
    no email today: what ``digest preview --to`` renders, inside a dry run. Its delivery
    id; None when no paper was digested for them since their last email."""
    with store.transaction() as conn:
        latest = _carrier(conn)
        if latest is None:
            return None
        covered, _ = _covered(conn, sub)
        if latest.last_seq <= covered:
            return None
        return _add_row(conn, sub, latest, covered, now, domain)


def _carrier(conn: Connection) -> sa.Row[Any] | None:
    """The digest a weekly row made now is carried by: the latest not backfilled."""
    query = sa.select(digests_t).where(digests_t.c.backfilled.is_(False)).order_by(digests_t.c.id.desc())
    return conn.execute(query.limit(1)).one_or_none()


def _add_row(
    conn: Connection, sub: Subscriber, latest: sa.Row[Any], covered: int, now: datetime, domain: str
) -> int | None:
    """A pending row for ``sub`` carried by ``latest``, holding the papers after
    ``covered`` up to it; None when ``sub`` has a row of that digest already."""
    taken = conn.execute(
        sa.select(deliveries_t.c.id).where(
            deliveries_t.c.digest_id == latest.id, deliveries_t.c.recipient == sub.address
        )
    ).scalar_one_or_none()
    if taken is not None:
        return None
    delivery_id = int(
        conn.execute(
            sa.insert(deliveries_t).values(
                digest_id=latest.id,
                recipient=sub.address,
                status="pending",
                attempts=0,
                message_id=message_id(latest.id, sub.address, domain, store_meta.install_id(conn)),
                created_at=now,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    )
    conn.execute(
        sa.insert(delivery_ranges).values(
            delivery_id=delivery_id, first_seq=_first_mailed(conn, covered), last_seq=latest.last_seq
        )
    )
    return delivery_id


def ranges(store: Store, delivery_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """delivery id → (first seq, last seq) for the rows that carry a range."""
    ids = list(delivery_ids)
    if not ids:
        return {}
    with store.transaction(read=True) as conn:
        rows = conn.execute(sa.select(delivery_ranges).where(delivery_ranges.c.delivery_id.in_(ids))).all()
    return {r.delivery_id: (r.first_seq, r.last_seq) for r in rows}


def _first_mailed(conn: Connection, covered: int) -> int:
    """The first seq after ``covered`` in a digest that is not backfilled (one exists:
    the carrying digest)."""
    first = conn.execute(
        sa.select(sa.func.min(digests_t.c.first_seq)).where(
            digests_t.c.backfilled.is_(False), digests_t.c.last_seq > covered
        )
    ).scalar_one()
    return max(covered + 1, int(first))


def _covered(conn: Connection, sub: Subscriber) -> tuple[int, datetime | None]:
    """(the last seq ``sub`` was mailed or skipped past, when their newest row was made).
    Every outbox row counts, whatever its status: a cancelled or failed one was a
    decision about those papers, not a reason to send them again."""
    seq_end = sa.func.coalesce(delivery_ranges.c.last_seq, digests_t.c.last_seq)
    row = conn.execute(
        sa.select(sa.func.max(seq_end), sa.func.max(deliveries_t.c.created_at))
        .select_from(deliveries_t)
        .join(digests_t, digests_t.c.id == deliveries_t.c.digest_id)
        .outerjoin(delivery_ranges, delivery_ranges.c.delivery_id == deliveries_t.c.id)
        .where(sa.func.lower(deliveries_t.c.recipient) == sub.key)
    ).one()
    last_seq, last_created = row
    created = None
    if last_created is not None:
        created = _aware(last_created)
    return max(sub.since_seq, int(last_seq or 0)), created


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands an aggregate of a DATETIME back as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
