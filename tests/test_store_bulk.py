"""The bulk insert (digest/store/bulk.py) held to its plain reference: SQLAlchemy's own
``conn.execute(sa.insert(table), dicts)``, on a real SQLite file. Same rows, byte for byte,
whether every row is new or some keys are stored already (``new_only``); ``seq`` keeps
the same order but may skip numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.store import Store
from digest.store.bulk import BulkInsert, json_strings, known_values
from digest.store.schema import dumps_t, papers_t

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
COLUMNS = ("key", "title", "abstract", "links", "listing_date", "arxiv_id", "authors", "upvotes")

_text = st.text(st.characters(codec="utf-8"), max_size=40)
_row = st.tuples(
    _text,  # title
    _text,  # abstract
    st.lists(_text, max_size=2),  # links
    st.none() | _text,  # listing_date
    st.none() | st.from_regex(r"\A[0-9]{4}\.[0-9]{5}\Z"),  # arxiv_id
    st.lists(_text, max_size=3),  # authors
    st.none() | st.integers(0, 10_000),  # upvotes
)


def _rows(raw: list[tuple[Any, ...]], prefix: str) -> list[tuple[Any, ...]]:
    return [
        (f"{prefix}{i}", t, a, json.dumps(lk), d, ax, json.dumps(au), up)
        for i, (t, a, lk, d, ax, au, up) in enumerate(raw)
    ]


def _dump(conn: sa.Connection) -> int:
    values = {"sha256": "0" * 64, "name": "d.txt", "size": 1, "seen_at": NOW, "status": "ingested"}
    return int(conn.execute(sa.insert(dumps_t).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def _stored(store: Store) -> list[tuple[Any, ...]]:
    with store.transaction(read=True) as conn:
        # The raw stored text too: the bulk insert must write first_seen in SQLAlchemy's form.
        # Not seq itself: a known key skipped by ON CONFLICT may use one up (README).
        rows = conn.exec_driver_sql("SELECT * FROM papers ORDER BY seq").all()
    return [tuple(r)[1:] for r in rows]


def _reference(store: Store, batches: list[list[tuple[Any, ...]]]) -> None:
    with store.transaction() as conn:
        dump_id = _dump(conn)
        for batch in batches:
            known = set(conn.execute(sa.select(papers_t.c.key)).scalars())
            rows = [dict(zip(COLUMNS, r, strict=True)) for r in batch if r[0] not in known]
            if rows:
                conn.execute(
                    sa.insert(papers_t), [{**r, "first_seen": NOW, "dump_id": dump_id} for r in rows]
                )


def _bulk(store: Store, batches: list[list[tuple[Any, ...]]]) -> list[int]:
    added = []
    with store.transaction() as conn:
        dump_id = _dump(conn)
        insert = BulkInsert(conn, papers_t, COLUMNS, unique="key", first_seen=NOW, dump_id=dump_id)
        assert insert.skips_existing
        for batch in batches:
            added.append(insert.new_only(batch) if batch else 0)  # the caller never passes none
    return added


@settings(max_examples=20, deadline=None)
@given(first=st.lists(_row, max_size=8), second=st.lists(_row, max_size=8), overlap=st.integers(0, 8))
def test_bulk_insert_stores_what_sqlalchemy_stores(
    tmp_path_factory: Any, first: list[tuple[Any, ...]], second: list[tuple[Any, ...]], overlap: int
) -> None:
    one = _rows(first, "k")
    two = one[:overlap] + _rows(second, "n")  # some keys stored already, then new ones
    folder: Path = tmp_path_factory.mktemp("bulk")
    with (
        Store.open(f"sqlite:///{folder / 'ref.db'}") as ref,
        Store.open(f"sqlite:///{folder / 'bulk.db'}") as bulk,
    ):
        _reference(ref, [one, two])
        added = _bulk(bulk, [one, two])
        assert _stored(bulk) == _stored(ref)
        assert added == [len(one), len(two) - min(overlap, len(one))]


def test_known_values_is_an_in_query(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'k.db'}") as store:
        _bulk(store, [_rows([("t", "a", [], None, None, [], None)] * 3, "k")])
        with store.transaction(read=True) as conn:
            for asked in (["k0"], ["k1", "x", "k2"], ["x", "y"]):
                plain = set(
                    conn.execute(sa.select(papers_t.c.key).where(papers_t.c.key.in_(asked))).scalars()
                )
                assert known_values(conn, papers_t.c.key, asked) == plain


@settings(max_examples=300)
@given(st.lists(st.text(), max_size=4))
def test_json_strings_is_json_dumps(items: list[str]) -> None:
    assert json_strings(items) == json.dumps(items)
    assert json_strings(tuple(items)) == json.dumps(tuple(items))
