"""A backfill is never mailed, weekly emails included: a weekly email holds only papers of
digests that were (or would have been) mailed, so the history ``digest run --backfill``
made into digests reaches no weekly subscriber, with or without a profile, whether the
backfill came before any digest or between two mailed ones. And the migration that marks
backfilled digests keeps every digest there was, unmarked, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from digest.config import Config
from digest.pipeline import RunOptions, run_once
from digest.store import SCHEMA_VERSION, Store, create_engine, migrate
from digest.store.schema import digests_t
from digest.store.subscribers import Subscribers
from digest.subscribers import Preferences
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, MakeConfig, drop
from tests.subscribe_site import write_dump
from tests.test_store_postgres import pg_url  # noqa: F401  (fixture)
from tests.test_subscribers_weekly import sent_to, titles_in

MON = datetime(2026, 11, 30, 6, tzinfo=UTC)  # a Monday
BACKFILL = RunOptions(backfill=True)
RUN = RunOptions()


def _config(make_config: MakeConfig) -> Config:
    return make_config(email={"to": []}, sources={"settle_seconds": 0})


def _run(config: Config, store: Store, now: datetime, options: RunOptions = RUN) -> None:
    report = run_once(config, store, FileTransport(config.email.outbox), now, options)
    assert report.delivery.pending == report.delivery.failed == 0


def test_a_weekly_email_after_a_backfill_holds_only_the_new_papers(
    make_config: MakeConfig, inbox: Path
) -> None:
    """The new-user trial: subscribers first, a backfill of two dumps (297 papers), then a
    3-paper dump on the same Monday: the weekly readers get those 3, as the daily one."""
    config = _config(make_config)
    store = Store.open(config.state.url)
    try:
        subs = Subscribers(store)
        subs.add("wes@example.org", MON - timedelta(hours=1), prefs=Preferences(cadence="weekly:mon"))
        subs.add(
            "pia@example.org",
            MON - timedelta(hours=1),
            prefs=Preferences(cadence="weekly:mon", interests="video object tracking and optical flow"),
        )
        subs.add("dan@example.org", MON - timedelta(hours=1))
        drop(inbox, DUMP_000, DUMP_002)
        _run(config, store, MON, BACKFILL)
        assert [d.paper_count for d in reversed(store.digests())] == [81, 216]
        assert store.deliveries() == []  # nobody mailed, as README says
        fresh = ["Fresh paper one on tracking", "Fresh paper two on optical flow", "Fresh paper three"]
        write_dump(inbox, "new.txt", fresh)
        _run(config, store, MON + timedelta(hours=1))
        history = {p.title for d in store.digests() for p in store.digest_papers(d)} - set(fresh)
    finally:
        store.close()
    every = set(fresh) | history
    for address, subject in (
        ("dan@example.org", "3 new papers · 30 Nov 2026"),
        ("wes@example.org", "3 new papers · 30 Nov 2026"),
        ("pia@example.org", "for you · 3 new papers · 30 Nov 2026"),  # her picks, then the count
    ):
        (msg,) = sent_to(config, address)
        assert msg["Subject"].endswith(subject) and " 300 " not in msg["Subject"], address
        assert titles_in(msg, every) == set(fresh), address


def test_a_backfill_between_mailed_digests_is_left_out_of_the_week(
    make_config: MakeConfig, inbox: Path
) -> None:
    """Mailed digest, backfill, mailed digest: the week holds the two mailed digests'
    papers and none of the backfill's; a Monday with only backfilled digests since the
    last email sends no weekly email."""
    config = _config(make_config)
    store = Store.open(config.state.url)
    try:
        Subscribers(store).add(
            "wes@example.org", MON - timedelta(days=8), prefs=Preferences(cadence="weekly:mon")
        )
        tuesday = ["Tuesday paper one", "Tuesday paper two"]
        write_dump(inbox, "1.txt", tuesday)
        _run(config, store, MON - timedelta(days=6))
        history = ["Backfilled paper one", "Backfilled paper two", "Backfilled paper three"]
        write_dump(inbox, "2.txt", history)
        _run(config, store, MON - timedelta(days=2), BACKFILL)
        monday = ["Monday paper"]
        write_dump(inbox, "3.txt", monday)
        _run(config, store, MON)
        (msg,) = sent_to(config, "wes@example.org")
        every = set(tuesday + history + monday)
        assert titles_in(msg, every) == set(tuesday + monday)
        assert msg["Subject"] == "3 new papers · 30 Nov 2026"

        # Another backfill, then the next Monday with nothing new: nothing to send.
        write_dump(inbox, "4.txt", ["Backfilled paper four"])
        _run(config, store, MON + timedelta(days=3), BACKFILL)
        _run(config, store, MON + timedelta(days=7))
        assert len(sent_to(config, "wes@example.org")) == 1
        assert len(store.deliveries()) == 1
    finally:
        store.close()


def test_the_migration_keeps_every_digest_unmarked(url: str) -> None:
    """A state from before the mark: its digests table gains the column, every digest
    there was counts as mailed (it cannot be told apart), and a new one can be marked."""
    engine = create_engine(url)
    try:
        migrate(engine, SCHEMA_VERSION - 1)
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE digests DROP COLUMN backfilled"))  # as the old schema made it
            conn.execute(
                sa.text(
                    "INSERT INTO digests (slug, created_at, first_seq, last_seq, paper_count) "
                    "VALUES ('2026-11-22', :at, 1, 3, 3)"
                ),
                {"at": MON},
            )
    finally:
        engine.dispose()
    with Store.open(url) as store:
        (old,) = store.digests()
        assert (old.slug, old.backfilled) == ("2026-11-22", False)
        with store.transaction() as conn:
            conn.execute(
                sa.insert(digests_t).values(
                    slug="2026-11-23", created_at=MON, first_seq=4, last_seq=4, paper_count=1, backfilled=True
                )
            )
        assert [d.backfilled for d in store.digests()] == [True, False]
