"""Edge: the subscribers, their votes, the token key and weekly delivery ranges.

Tables (in :data:`digest.store.schema.metadata`, created by migration 8):

- ``subscribers``: the address as given and ``address_key`` (:func:`normalise`, unique),
  status, source, times, the secret token, ``since_seq`` and the preferences.
- ``vote_events`` (:mod:`digest.store.votes`, migration 13): every like, dislike and
  withdrawal, so the votes in force at any moment can be read back. Migration 8 made
  ``votes`` (one row per subscriber × paper); migration 13 turned its rows into events.
- ``delivery_ranges``: for an outbox row that carries more than its digest (a weekly
  email), the seq range of the papers it holds. A row without one holds its digest.
- ``meta`` (:mod:`digest.store.meta`) row ``token_key``: the key links are signed with
  when ``DIGEST_SECRET_KEY`` is unset, made with the tables.

:class:`Subscribers` wraps a :class:`~digest.store.Store`; every method is one
transaction. The old suppression list is migrated into ``unsubscribed`` rows.
"""

from __future__ import annotations

import json
import secrets as _secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from digest.errors import StoreError
from digest.store import meta as store_meta
from digest.store import votes as store_votes
from digest.store.schema import UTCDateTime, deliveries_t, digests_t, metadata, papers_t, suppressions_t
from digest.subscribers import STATUSES, Preferences, Source, Status, Subscriber, Vote, normalise

if TYPE_CHECKING:
    from digest.store import Store

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("address_key", sa.String(320), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime),
    sa.Column("unsubscribed_at", UTCDateTime),
    sa.Column("reason", sa.Text),  # why the status is what it is, when it is not active
    sa.Column("since_seq", sa.Integer, nullable=False, default=0),
    sa.Column("cadence", sa.String(16), nullable=False, default="daily"),
    sa.Column("max_papers", sa.Integer, nullable=False, default=10),
    sa.Column("only_top", sa.Boolean, nullable=False, default=False),
    sa.Column("interests", sa.Text, nullable=False, default=""),
    sa.Column("keywords", sa.Text, nullable=False, default="[]"),
    sa.Column("exclude", sa.Text, nullable=False, default="[]"),
    sqlite_autoincrement=True,
)
sa.Index("subscribers_status", subscribers.c.status)

# What migration 8 made, kept apart from ``metadata``: migration 13 moves its rows into
# ``vote_events`` and drops it (a database is always migrated through 8 to 13).
_votes_v8 = sa.Table(
    "votes",
    sa.MetaData(),
    sa.Column(
        "subscriber_id", sa.Integer, sa.ForeignKey(subscribers.c.id, ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("paper_key", sa.Text, primary_key=True),
    sa.Column("value", sa.SmallInteger, nullable=False),
    sa.Column("voted_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("value IN (-1, 1)", name="votes_value"),
)

delivery_ranges = sa.Table(
    "delivery_ranges",
    metadata,
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), primary_key=True),
    sa.Column("first_seq", sa.Integer, nullable=False),
    sa.Column("last_seq", sa.Integer, nullable=False),
)

TOKEN_KEY = "token_key"


def new_token() -> str:
    """A subscriber's secret: 256 random bits, URL-safe."""
    return _secrets.token_urlsafe(32)


def migrate(conn: Connection) -> None:
    """Schema 6: the subscriber tables; every suppressed address becomes an
    ``unsubscribed`` subscriber (source ``suppression``), with its time, in the same
    transaction. The suppressions table is left as it was (nothing reads it any more)."""
    metadata.create_all(conn, tables=[subscribers, delivery_ranges])
    _votes_v8.create(conn, checkfirst=True)
    # The token key is made here, once: a dry run (rolled back) must sign with the key
    # the real run will use, or a preview would not be the email that is sent.
    if store_meta.get(conn, TOKEN_KEY) is None:
        conn.execute(sa.insert(store_meta.meta_t).values(name=TOKEN_KEY, value=_secrets.token_urlsafe(48)))
    for row in conn.execute(sa.select(suppressions_t).order_by(suppressions_t.c.address)).all():
        key = normalise(row.address)
        exists = conn.execute(
            sa.select(subscribers.c.id).where(subscribers.c.address_key == key)
        ).scalar_one_or_none()
        if exists is None:
            conn.execute(
                sa.insert(subscribers).values(
                    _row_values(
                        row.address,
                        "unsubscribed",
                        "suppression",
                        row.created_at,
                        Preferences(),
                        unsubscribed_at=row.created_at,
                        reason=row.reason,
                    )
                )
            )


def _row_values(
    address: str,
    status: Status,
    source: Source,
    now: datetime,
    prefs: Preferences,
    *,
    since_seq: int = 0,
    unsubscribed_at: datetime | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "address": address.strip(),
        "address_key": normalise(address),
        "status": status,
        "source": source,
        "token": new_token(),
        "created_at": now,
        "confirmed_at": now if status == "active" else None,
        "unsubscribed_at": unsubscribed_at,
        "reason": reason,
        "since_seq": since_seq,
        **_pref_values(prefs),
    }


def _pref_values(prefs: Preferences) -> dict[str, Any]:
    return {
        "cadence": prefs.cadence,
        "max_papers": prefs.max_papers,
        "only_top": prefs.only_top,
        "interests": prefs.interests,
        "keywords": json.dumps(list(prefs.keywords), ensure_ascii=False),
        "exclude": json.dumps(list(prefs.exclude), ensure_ascii=False),
    }


def _subscriber(row: Any) -> Subscriber:
    status: Status = row.status if row.status in STATUSES else "bounced"
    return Subscriber(
        id=row.id,
        address=row.address,
        status=status,
        token=row.token,
        source=row.source,
        created=row.created_at,
        confirmed=row.confirmed_at,
        unsubscribed=row.unsubscribed_at,
        reason=row.reason,
        since_seq=row.since_seq,
        preferences=Preferences(
            cadence=row.cadence,
            max_papers=row.max_papers,
            only_top=bool(row.only_top),
            interests=row.interests,
            keywords=tuple(json.loads(row.keywords)),
            exclude=tuple(json.loads(row.exclude)),
        ),
    )


def _digested(conn: Connection) -> int:
    """The last seq any digest holds: a subscriber made active now starts after it."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(digests_t.c.last_seq), 0))).scalar_one())


@dataclass(frozen=True, slots=True)
class Change:
    """What :meth:`Subscribers.set_status` did."""

    subscriber: Subscriber
    changed: bool
    cancelled: int = 0  # pending deliveries cancelled


class Subscribers:
    """Reads and writes of the subscriber tables through ``store``'s transactions."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- reading ---------------------------------------------------------------------------

    def get(self, address: str) -> Subscriber | None:
        with self.store.transaction(read=True) as conn:
            row = conn.execute(
                sa.select(subscribers).where(subscribers.c.address_key == normalise(address))
            ).one_or_none()
        return None if row is None else _subscriber(row)

    def by_id(self, subscriber_id: int) -> Subscriber | None:
        with self.store.transaction(read=True) as conn:
            row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).one_or_none()
        return None if row is None else _subscriber(row)

    def all(self, status: Status | None = None) -> list[Subscriber]:
        """Every subscriber (with ``status`` only, when given), by address."""
        query = sa.select(subscribers).order_by(subscribers.c.address_key)
        if status is not None:
            query = query.where(subscribers.c.status == status)
        with self.store.transaction(read=True) as conn:
            return [_subscriber(r) for r in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        """Subscribers by status, every status named (for status and /healthz)."""
        with self.store.transaction(read=True) as conn:
            found: dict[str, int] = dict(
                conn.execute(
                    sa.select(subscribers.c.status, sa.func.count()).group_by(subscribers.c.status)
                ).all()
            )
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def recipients(self, config_to: Iterable[str]) -> list[Subscriber]:
        """Who receives mail now: active subscribers, except those the config alone put
        there whose address has since left ``email.to``."""
        wanted = {normalise(a) for a in config_to}
        return [s for s in self.all("active") if s.source != "config" or s.key in wanted]

    # --- writing ---------------------------------------------------------------------------

    def add(
        self,
        address: str,
        now: datetime,
        *,
        status: Status = "active",
        source: Source = "cli",
        prefs: Preferences | None = None,
    ) -> Subscriber:
        """A new subscriber; StoreError when the address is already one."""
        with self.store.transaction() as conn:
            since = _digested(conn) if status == "active" else 0
            values = _row_values(address, status, source, now, prefs or Preferences(), since_seq=since)
            try:
                with conn.begin_nested():
                    new_id = conn.execute(sa.insert(subscribers).values(values)).inserted_primary_key[0]  # type: ignore[index]
            except IntegrityError:
                raise StoreError(f"{address.strip()} is already a subscriber") from None
            row = conn.execute(sa.select(subscribers).where(subscribers.c.id == new_id)).one()
        return _subscriber(row)

    def set_preferences(self, subscriber_id: int, prefs: Preferences) -> Subscriber:
        with self.store.transaction() as conn:
            conn.execute(
                sa.update(subscribers).where(subscribers.c.id == subscriber_id).values(_pref_values(prefs))
            )
            row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).one()
        return _subscriber(row)

    def set_status(
        self, subscriber_id: int, status: Status, now: datetime, reason: str | None = None
    ) -> Change:
        """Moves a subscriber to ``status``. Becoming active stamps ``confirmed`` and starts
        their mail after the papers already digested; leaving active (unsubscribed,
        bounced) stamps ``unsubscribed`` and cancels their pending deliveries, in the same
        transaction. Setting the status it already has changes nothing."""
        with self.store.transaction() as conn:
            row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).one_or_none()
            if row is None:
                raise StoreError(f"no subscriber with id {subscriber_id}")
            if row.status == status:
                return Change(_subscriber(row), changed=False)
            values: dict[str, Any] = {"status": status, "reason": reason}
            cancelled = 0
            if status == "active":
                values.update(confirmed_at=now, unsubscribed_at=None, since_seq=_digested(conn))
            elif status in ("unsubscribed", "bounced"):
                values["unsubscribed_at"] = now
                values["reason"] = reason or status
                cancelled = _cancel_pending(conn, row.address_key, status, now)
            conn.execute(sa.update(subscribers).where(subscribers.c.id == subscriber_id).values(values))
            row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id)).one()
        return Change(_subscriber(row), changed=True, cancelled=cancelled)

    def remove(self, address: str, now: datetime) -> bool:
        """Deletes a subscriber and their votes; False when there was none. Their outbox
        rows stay (history); pending ones are cancelled."""
        key = normalise(address)
        with self.store.transaction() as conn:
            sub_id = conn.execute(
                sa.select(subscribers.c.id).where(subscribers.c.address_key == key)
            ).scalar_one_or_none()
            if sub_id is None:
                return False
            _cancel_pending(conn, key, "cancelled: the subscriber was removed", now)
            store_votes.forget(conn, sub_id)
            conn.execute(sa.delete(subscribers).where(subscribers.c.id == sub_id))
        return True

    def new_token(self, subscriber_id: int) -> None:
        """Revokes every link issued so far by giving the subscriber a new secret."""
        with self.store.transaction() as conn:
            conn.execute(
                sa.update(subscribers).where(subscribers.c.id == subscriber_id).values(token=new_token())
            )

    def sync_config(self, addresses: Sequence[str], now: datetime) -> int:
        """Makes every address of ``email.to`` an active subscriber (source ``config``):
        new ones are added, pending ones activated; one who unsubscribed or bounced
        stays so (their choice wins over the file). Returns how many changed."""
        changed = 0
        with self.store.transaction() as conn:
            known = {
                r.address_key: r
                for r in conn.execute(
                    sa.select(subscribers.c.id, subscribers.c.address_key, subscribers.c.status).where(
                        subscribers.c.address_key.in_([normalise(a) for a in addresses])
                    )
                )
            }
            since = None
            added: set[str] = set()
            for address in addresses:
                key = normalise(address)
                row = known.get(key)
                if key in added or (row is not None and row.status != "pending"):
                    continue
                if since is None:
                    since = _digested(conn)
                if row is None:
                    conn.execute(
                        sa.insert(subscribers).values(
                            _row_values(address, "active", "config", now, Preferences(), since_seq=since)
                        )
                    )
                    added.add(key)
                    changed += 1
                else:
                    conn.execute(
                        sa.update(subscribers)
                        .where(subscribers.c.id == row.id)
                        .values(status="active", confirmed_at=now, since_seq=since)
                    )
                    changed += 1
        return changed

    def upsert(self, address: str, status: Status, prefs: Preferences, now: datetime, source: Source) -> bool:
        """For ``import``: adds the subscriber, or sets the status and preferences of the
        one there. True when it was new."""
        existing = self.get(address)
        if existing is None:
            self.add(address, now, status=status, source=source, prefs=prefs)
            return True
        self.set_preferences(existing.id, prefs)
        self.set_status(existing.id, status, now)
        return False

    # --- votes -----------------------------------------------------------------------------

    def vote(self, subscriber_id: int, paper_key: str, value: int, now: datetime) -> None:
        """Records a like (+1) or dislike (-1) cast at ``now``, replacing an earlier vote on
        the paper from then on (the earlier one stays in force before it)."""
        if value not in (1, -1):
            raise ValueError(f"a vote is +1 or -1, not {value}")
        with self.store.transaction() as conn:
            store_votes.record(conn, subscriber_id, paper_key, value, now)

    def unvote(self, subscriber_id: int, paper_key: str, now: datetime) -> bool:
        """Withdraws the subscriber's vote on the paper from ``now`` on (it stays in force
        before it: an email made earlier ranks the same when rebuilt). False when there
        was no vote to withdraw, and nothing is recorded."""
        with self.store.transaction() as conn:
            if not store_votes.read(conn, store_votes.in_force(None, subscriber_id, paper_key)):
                return False
            store_votes.record(conn, subscriber_id, paper_key, store_votes.WITHDRAWN, now)
        return True

    def all_votes(self) -> dict[int, list[Vote]]:
        """Every subscriber's current votes (subscriber id → votes, newest first), in one
        query."""
        with self.store.transaction(read=True) as conn:
            cast = store_votes.read(conn, store_votes.newest_first(store_votes.in_force()))
        return store_votes.by_subscriber(cast)

    def votes(self, subscriber_id: int, until: datetime | None = None) -> list[Vote]:
        """The subscriber's votes, newest first (ties by paper key): the current ones, or
        those in force at ``until`` (what their email for a digest of then ranked by)."""
        query = store_votes.newest_first(store_votes.in_force(until, subscriber_id))
        with self.store.transaction(read=True) as conn:
            return store_votes.read(conn, query)

    def titles(self, paper_keys: Sequence[str]) -> dict[str, str]:
        """paper key → title, for the keys the state holds."""
        with self.store.transaction(read=True) as conn:
            rows = conn.execute(
                sa.select(papers_t.c.key, papers_t.c.title).where(papers_t.c.key.in_(list(paper_keys)))
            )
            return {r.key: r.title for r in rows}

    # --- the token key ---------------------------------------------------------------------

    def secret_key(self) -> str:
        """The key tokens are signed with when ``DIGEST_SECRET_KEY`` is unset: made once
        by the migration, kept in the state's ``meta`` table."""
        with self.store.transaction(read=True) as conn:
            value = store_meta.get(conn, TOKEN_KEY)
        if value is None:  # pragma: no cover - migration 8 makes it
            raise StoreError("the state has no token key; open it with this paper-digest to migrate it")
        return value


def _cancel_pending(conn: Connection, address_key: str, reason: str, now: datetime) -> int:
    result = conn.execute(
        sa.update(deliveries_t)
        .where(sa.func.lower(deliveries_t.c.recipient) == address_key, deliveries_t.c.status == "pending")
        .values(status="cancelled", last_error=reason, last_attempt_at=now)
    )
    return int(result.rowcount)
