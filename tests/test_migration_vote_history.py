"""Migration 13 (digest/store/votes.py): a state made by the previous schema, with votes
in the one-row-per-paper ``votes`` table, keeps every vote, its value and its time, as
events, on SQLite and on PostgreSQL; the migrated votes are then a history like any."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from digest.store import SCHEMA_VERSION, Store, create_engine, migrate
from digest.store.rank import voted_keys, votes_as_of
from digest.store.schema import UTCDateTime
from digest.store.subscribers import Subscribers, subscribers
from digest.store.votes import vote_events
from digest.subscribers import Vote
from tests.helpers import NOW
from tests.test_store_postgres import pg_url  # noqa: F401  (fixture)

VOTE_HISTORY = 13  # the migration under test: the state is made at the version before it

# The votes table as the previous schema wrote it.
old_votes = sa.table(
    "votes",
    sa.column("subscriber_id", sa.Integer),
    sa.column("paper_key", sa.Text),
    sa.column("value", sa.SmallInteger),
    sa.column("voted_at", UTCDateTime),
)
H = timedelta(hours=1)
# subscriber id -> (paper key, value, voted_at)
CAST = {
    1: [("alpha", 1, NOW), ("beta", -1, NOW + 2 * H), ("gamma", 1, NOW + 4 * H)],
    2: [("alpha", -1, NOW + H), ("delta", 1, NOW + 3 * H)],
    3: [],
}


def make_old_state(url: str) -> None:
    """A state at the schema before vote history, made by the migrations of then, with
    subscribers and their votes written as that schema held them."""
    engine = create_engine(url)
    try:
        assert migrate(engine, VOTE_HISTORY - 1) == VOTE_HISTORY - 1
        with engine.begin() as conn:
            tables = sa.inspect(conn)
            assert tables.has_table("votes") and not tables.has_table("vote_events")
            for sub_id in CAST:
                conn.execute(
                    sa.insert(subscribers).values(
                        id=sub_id,
                        address=f"reader{sub_id}@example.org",
                        address_key=f"reader{sub_id}@example.org",
                        status="active",
                        source="cli",
                        token=f"token-{sub_id}",
                        created_at=NOW,
                    )
                )
            rows = [
                {"subscriber_id": s, "paper_key": k, "value": v, "voted_at": at}
                for s, cast in CAST.items()
                for k, v, at in cast
            ]
            conn.execute(sa.insert(old_votes), rows)
            if conn.dialect.name == "postgresql":  # ids given by hand: move the sequence past them
                conn.execute(sa.text("SELECT setval('subscribers_id_seq', 3)"))
    finally:
        engine.dispose()


def newest_first(sub_id: int) -> list[Vote]:
    cast = sorted(CAST[sub_id], key=lambda c: (-c[2].timestamp(), c[0]))
    return [Vote(sub_id, k, v, at) for k, v, at in cast]


def test_every_vote_survives_the_migration_as_an_event(url: str) -> None:
    make_old_state(url)
    with Store.open(url) as store:
        subs = Subscribers(store)
        assert subs.all_votes() == {1: newest_first(1), 2: newest_first(2)}
        assert subs.votes(2) == newest_first(2)
        # As of a moment: the votes cast up to it, as before the migration.
        assert votes_as_of(store, NOW + 2 * H) == {
            1: [Vote(1, "alpha", 1, NOW), Vote(1, "beta", -1, NOW + 2 * H)],
            2: [Vote(2, "alpha", -1, NOW + H)],
        }
        assert voted_keys(store) == ["alpha", "beta", "delta", "gamma"]
        with store.transaction(read=True) as conn:
            assert not sa.inspect(conn).has_table("votes")
            version = conn.execute(sa.text("SELECT version FROM schema_version")).scalar_one()
            events = conn.execute(sa.select(vote_events).order_by(vote_events.c.id)).all()
        assert version == SCHEMA_VERSION
        # One event per vote, oldest first, with its value and time.
        assert [(e.subscriber_id, e.paper_key, e.value, e.at) for e in events] == sorted(
            ((s, k, v, at) for s, cast in CAST.items() for k, v, at in cast), key=lambda e: e[3]
        )

        # A migrated vote is history like any: flipped and withdrawn later, it stays in
        # force before.
        subs.vote(1, "alpha", -1, NOW + 5 * H)
        assert subs.unvote(2, "delta", NOW + 5 * H)
        assert votes_as_of(store, NOW + 4 * H) == {
            1: [Vote(1, "alpha", 1, NOW), Vote(1, "beta", -1, NOW + 2 * H), Vote(1, "gamma", 1, NOW + 4 * H)],
            2: [Vote(2, "alpha", -1, NOW + H), Vote(2, "delta", 1, NOW + 3 * H)],
        }
        assert [(v.paper_key, v.value) for v in subs.votes(1)] == [("alpha", -1), ("gamma", 1), ("beta", -1)]
        assert subs.votes(2) == [Vote(2, "alpha", -1, NOW + H)]
        # A new subscriber's votes and a removal work on the migrated state.
        new = subs.add("reader4@example.org", NOW)
        subs.vote(new.id, "alpha", 1, NOW + 6 * H)
        assert subs.remove("reader1@example.org", NOW + 6 * H)
        assert set(subs.all_votes()) == {2, new.id}

    # Opening again migrates nothing twice.
    with Store.open(url) as store, store.transaction(read=True) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(vote_events)).scalar_one() == 4
