"""The archive's and feeds' read queries (Store.first_titles, Store.next_digest) on SQLite and
PostgreSQL: neighbours of a digest, and the first titles of many digests in one query,
also when the seqs of a digest have gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bench import gen
from digest.config import Config
from digest.identity import message_ids, paper_key
from digest.model import Paper
from digest.store import Store
from digest.store.schema import papers_t
from tests.test_store_postgres import pg_config, pg_url  # noqa: F401  (fixtures)

WHEN = datetime(2026, 11, 22, 7, tzinfo=UTC)


def _fill(store: Store, sizes: list[int]) -> list[list[str]]:
    """A digest per size, of new synthetic papers; the titles of each."""
    out, first = [], 0
    for n, size in enumerate(sizes):
        batch = [gen.paper(9, i) for i in range(first, first + size)]
        first += size
        store.ingest(
            name=f"d{n}.txt",
            sha256=f"{n:064x}",
            size=1,
            mtime_ns=0,
            papers_in=[Paper(key=paper_key(p.title), title=p.title, abstract=p.abstract) for p in batch],
            layout=lambda: "spaced",
            now=WHEN + timedelta(hours=n),
        )
        day = (WHEN + timedelta(hours=n)).date()
        assert store.create_digest(
            now=WHEN + timedelta(hours=n),
            day=day,
            recipients=(),
            message_id=message_ids("x.org", store.install_id()),
        )
        out.append([p.title for p in batch])
    return out


def _check(store: Store) -> None:
    titles = _fill(store, [30, 2, 1, 15])
    made = list(reversed(store.digests()))
    assert [store.next_digest(d.id) for d in made] == [*made[1:], None]
    # A gap at the start of the first digest and in the middle of the last one.
    with store.transaction() as conn:
        doomed = [made[0].first_seq, made[0].first_seq + 1, made[3].first_seq + 2]
        conn.execute(sa.delete(papers_t).where(papers_t.c.seq.in_(doomed)))
    got = store.first_titles(made, 3)
    assert [t for _, _, t in got[made[0].id]] == titles[0][2:5]
    assert [t for _, _, t in got[made[1].id]] == titles[1]
    assert [t for _, _, t in got[made[2].id]] == titles[2]
    assert [t for _, _, t in got[made[3].id]] == [titles[3][0], titles[3][1], titles[3][3]]
    big = store.first_titles(made, 20)
    assert [t for _, _, t in big[made[0].id]] == titles[0][2:22]
    assert store.first_titles([], 3) == {}


def test_first_titles_and_neighbours_on_sqlite(store: Store) -> None:
    _check(store)


def test_first_titles_and_neighbours_on_postgres(pg_config: Config) -> None:  # noqa: F811
    store = Store.open(pg_config.state.url)
    try:
        _check(store)
    finally:
        store.close()


@pytest.mark.parametrize("limit", [0])
def test_no_titles_asked_none_read(store: Store, limit: int) -> None:
    _fill(store, [3])
    assert store.first_titles(store.digests(), limit) == {}
