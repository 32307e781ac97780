"""Edge: votes as an append-only history (table ``vote_events``, migration 13).

Each like, dislike or withdrawal is one row: ``subscriber_id``, ``paper_key``, ``value``
(+1, -1, or 0: withdrawn) and ``at``. Nothing is updated or deleted, except every event
of a subscriber who is removed. The vote in force on a paper at T is its latest event
dated at or before T, none when that is a withdrawal; the current vote is its latest
event of all. "Latest" is the last recorded (the highest ``id``): votes are recorded as
they are cast, so that is the latest in time too, and a vote imported with an older
``voted_at`` replaces the one there, as it did when a vote was one row.

So a personal email ranks with exactly the votes in force at its moment (docs/DESIGN.md,
invariant 12), however they are flipped or withdrawn later. Every read here is one query,
for one subscriber or for all of them.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.schema import UTCDateTime, metadata
from digest.subscribers import Vote

WITHDRAWN = 0
# An :func:`in_force` query: subscriber_id, paper_key, value, at.
VoteQuery = sa.Select[tuple[int, str, int, datetime]]

vote_events = sa.Table(
    "vote_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "subscriber_id",
        sa.Integer,
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("paper_key", sa.Text, nullable=False),
    sa.Column("value", sa.SmallInteger, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.CheckConstraint("value IN (-1, 0, 1)", name="vote_events_value"),
    sqlite_autoincrement=True,  # an id is never reused: the order events were recorded in
)
# Each (subscriber, paper)'s latest event is read from the index alone.
sa.Index("vote_events_latest", vote_events.c.subscriber_id, vote_events.c.paper_key, vote_events.c.id)


def migrate(conn: Connection) -> None:
    """Schema 13: every row of ``votes`` (migration 8: one per subscriber × paper) becomes
    one event with its value and ``voted_at``, oldest first, in the same transaction; the
    old table is dropped."""
    # The table the events refer to (subscribers.py imports this module: not at its top).
    import digest.store.subscribers  # noqa: F401

    metadata.create_all(conn, tables=[vote_events])
    if not sa.inspect(conn).has_table("votes"):  # pragma: no cover - migration 8 made it
        return
    old = sa.table(
        "votes",
        sa.column("subscriber_id"),
        sa.column("paper_key"),
        sa.column("value"),
        sa.column("voted_at"),
    )
    rows = sa.select(old.c.subscriber_id, old.c.paper_key, old.c.value, old.c.voted_at).order_by(
        old.c.voted_at, old.c.subscriber_id, old.c.paper_key
    )
    columns = ["subscriber_id", "paper_key", "value", "at"]
    conn.execute(sa.insert(vote_events).from_select(columns, rows))
    conn.execute(sa.text("DROP TABLE votes"))


def record(conn: Connection, subscriber_id: int, paper_key: str, value: int, at: datetime) -> None:
    """Appends one event: +1, -1, or :data:`WITHDRAWN`."""
    conn.execute(
        sa.insert(vote_events).values(subscriber_id=subscriber_id, paper_key=paper_key, value=value, at=at)
    )


def in_force(
    until: datetime | None = None, subscriber_id: int | None = None, paper_key: str | None = None
) -> VoteQuery:
    """The query of the votes in force at ``until`` (now when None): each (subscriber,
    paper)'s latest event dated at or before it, withdrawals left out; of one subscriber
    (and one paper) when given. Columns ``subscriber_id``, ``paper_key``, ``value``,
    ``at``; unordered."""
    ev = vote_events.c
    latest = sa.select(sa.func.max(ev.id)).group_by(ev.subscriber_id, ev.paper_key)
    if until is not None:
        latest = latest.where(ev.at <= until)
    if subscriber_id is not None:
        latest = latest.where(ev.subscriber_id == subscriber_id)
    if paper_key is not None:
        latest = latest.where(ev.paper_key == paper_key)
    return sa.select(ev.subscriber_id, ev.paper_key, ev.value, ev.at).where(
        ev.id.in_(latest), ev.value != WITHDRAWN
    )


def read(conn: Connection, query: VoteQuery) -> list[Vote]:
    """The :class:`Vote` of each row of an :func:`in_force` query (ordered or not)."""
    return [Vote(r.subscriber_id, r.paper_key, r.value, r.at) for r in conn.execute(query)]


def newest_first(
    query: VoteQuery,
) -> VoteQuery:
    """``query`` ordered by subscriber, newest vote first, ties by paper key."""
    ev = vote_events.c
    return query.order_by(ev.subscriber_id, ev.at.desc(), ev.paper_key)


def by_subscriber(votes: list[Vote]) -> dict[int, list[Vote]]:
    """Votes grouped by subscriber id, each group in the order given."""
    out: dict[int, list[Vote]] = {}
    for v in votes:
        out.setdefault(v.subscriber_id, []).append(v)
    return out


def forget(conn: Connection, subscriber_id: int) -> None:
    """Deletes every event of a subscriber being removed."""
    conn.execute(sa.delete(vote_events).where(vote_events.c.subscriber_id == subscriber_id))
