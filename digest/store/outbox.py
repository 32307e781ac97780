"""The outbox: one ``deliveries`` row per digest and recipient (invariant 4 in
docs/DESIGN.md), and the ``suppressions`` list that cancels them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from digest.model import Delivery, DeliveryStatus
from digest.store import meta
from digest.store.base import StoreBase
from digest.store.rows import row_mapper
from digest.store.schema import deliveries_t

delivery_row = row_mapper(Delivery, created="created_at", last_attempt="last_attempt_at", sent="sent_at")


class OutboxMixin(StoreBase):
    """The ``deliveries`` and ``suppressions`` tables, and the install id their
    Message-IDs carry."""

    def install_id(self) -> str:
        """The random id made with the state (:mod:`digest.store.meta`); pass it to
        :func:`digest.identity.message_ids`."""
        with self.transaction(read=True) as conn:
            return meta.install_id(conn)

    def deliveries(
        self, status: DeliveryStatus | None = None, *, recipient: str | None = None
    ) -> list[Delivery]:
        """Outbox rows, oldest digest first; only those of ``status``, and of ``recipient``
        (compared case-insensitively), when given."""
        query = sa.select(deliveries_t).order_by(deliveries_t.c.digest_id, deliveries_t.c.id)
        if status:
            query = query.where(deliveries_t.c.status == status)
        if recipient is not None:
            query = query.where(sa.func.lower(deliveries_t.c.recipient) == recipient.strip().lower())
        with self.transaction(read=True) as conn:
            return [delivery_row(r) for r in conn.execute(query)]

    def claim_deliveries(
        self, me: str, now: datetime, lease: timedelta, limit: int, *, after: int = 0
    ) -> list[Delivery]:
        """Claims up to ``limit`` pending rows with ids above ``after`` for instance ``me``
        until ``now + lease``, oldest first, and returns them: rows nobody claims, or whose
        claim ran out (its instance died or hung). One statement; on PostgreSQL the inner
        ``FOR UPDATE SKIP LOCKED`` lets instances claim at once without waiting on each
        other or taking the same row (SQLite ignores it: its writers are serialised).

        On SQLite every claim is free: delivery runs under the file lock there, so a row
        still claimed belongs to a run that died (a crash, docs/DESIGN.md invariant 4)."""
        c = deliveries_t.c
        free = sa.or_(c.claimed_until.is_(None), c.claimed_until < now)
        if self.engine.dialect.name == "sqlite":
            free = sa.true()
        chosen = (
            sa.select(c.id)
            .where(c.status == "pending", c.id > after, free)
            .order_by(c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            sa.update(deliveries_t)
            .where(c.id.in_(chosen.scalar_subquery()))
            .values(claimed_by=me, claimed_until=now + lease)
            .returning(*deliveries_t.c)
        )
        with self.one_statement() as conn:
            rows = [delivery_row(r) for r in conn.execute(claim)]
        return sorted(rows, key=lambda d: d.id)

    def release_deliveries(self, delivery_ids: Iterable[int], me: str) -> None:
        """Drops ``me``'s claim on rows it will not try now (still in their backoff)."""
        self._update_claims(delivery_ids, me, claimed_by=None, claimed_until=None)

    def renew_claims(self, delivery_ids: Iterable[int], me: str, until: datetime) -> None:
        """Extends ``me``'s claim on rows it is still sending (a slow batch)."""
        self._update_claims(delivery_ids, me, claimed_until=until)

    def _update_claims(self, delivery_ids: Iterable[int], me: str, **values: Any) -> None:
        """Sets ``values`` on those of the rows that ``me`` still claims."""
        ids = list(delivery_ids)
        if ids:
            with self.one_statement() as conn:
                conn.execute(
                    sa.update(deliveries_t)
                    .where(deliveries_t.c.id.in_(ids), deliveries_t.c.claimed_by == me)
                    .values(**values)
                )

    def mark_sent(self, delivery_id: int, now: datetime) -> None:
        """Called only after the server accepted the message (docs/DESIGN.md invariant 4)."""
        with self.one_statement() as conn:
            conn.execute(
                sa.update(deliveries_t)
                .where(deliveries_t.c.id == delivery_id)
                .values(
                    status="sent",
                    sent_at=now,
                    last_attempt_at=now,
                    attempts=deliveries_t.c.attempts + 1,
                    last_error=None,
                    claimed_by=None,
                    claimed_until=None,
                )
            )

    def mark_attempt_failed(self, delivery_id: int, error: str, now: datetime, *, permanent: bool) -> None:
        """A temporary failure stays pending for the next run; a permanent one is failed."""
        with self.one_statement() as conn:
            conn.execute(
                sa.update(deliveries_t)
                .where(deliveries_t.c.id == delivery_id)
                .values(
                    status="failed" if permanent else "pending",
                    last_attempt_at=now,
                    attempts=deliveries_t.c.attempts + 1,
                    last_error=error,
                    claimed_by=None,
                    claimed_until=None,
                )
            )

    def cancel_deliveries(self, delivery_ids: Iterable[int], reason: str, now: datetime) -> int:
        """Pending rows become ``cancelled`` with ``reason``; returns how many changed."""
        ids = list(delivery_ids)
        if not ids:
            return 0
        with self.transaction() as conn:
            result = conn.execute(
                sa.update(deliveries_t)
                .where(deliveries_t.c.id.in_(ids), deliveries_t.c.status == "pending")
                .values(status="cancelled", last_error=reason, last_attempt_at=now)
            )
        return int(result.rowcount)

    # --- suppression list: the unsubscribed subscribers (digest/store/subscribers.py) ---

    def suppress(self, address: str, now: datetime, reason: str = "unsubscribed") -> int:
        """Makes ``address`` an ``unsubscribed`` subscriber (a new row with source
        ``suppression`` when it was none; idempotent) and cancels its pending deliveries
        in the same transaction; returns how many were cancelled."""
        from digest.store.subscribers import Subscribers

        subs = Subscribers(self)  # type: ignore[arg-type]
        sub = subs.get(address)
        if sub is None:
            sub = subs.add(address, now, status="pending", source="suppression")
        return subs.set_status(sub.id, "unsubscribed", now, reason).cancelled

    def unsuppress(self, address: str, now: datetime | None = None) -> bool:
        """Undoes :meth:`suppress`: a bare suppression is deleted, any other unsubscribed
        subscriber is active again. False when ``address`` had not unsubscribed."""
        from digest.store.subscribers import Subscribers

        subs = Subscribers(self)  # type: ignore[arg-type]
        sub = subs.get(address)
        if sub is None or sub.status != "unsubscribed":
            return False
        if sub.source == "suppression":
            return subs.remove(address, now or sub.created)
        subs.set_status(sub.id, "active", now or sub.created)
        return True

    def suppressed(self) -> frozenset[str]:
        """Every address that unsubscribed or bounced, normalised."""
        from digest.store.subscribers import Subscribers

        subs = Subscribers(self)  # type: ignore[arg-type]
        return frozenset(s.key for s in subs.all() if s.status in ("unsubscribed", "bounced"))
