"""The state on a real SQLite file: ingest, identity, digests, migrations (docs/DESIGN.md invariants 1, 2)."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.config import Config, sqlite_path
from digest.errors import DumpError, StoreError
from digest.identity import message_ids
from digest.ingest import ingest_inbox
from digest.model import Paper
from digest.parse import DumpParser
from digest.pipeline import run_once
from digest.store import SCHEMA_VERSION, IngestResult, Store
from digest.store.schema import deliveries_t, schema_version_t
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, NOW, drop


def test_sample_counts_in_order(config: Config, store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000)
    first = ingest_inbox(config, store, NOW)
    assert (first.papers_found, first.papers_new) == (81, 81)
    drop(inbox, DUMP_002)
    second = ingest_inbox(config, store, NOW)
    assert (second.ingested, second.papers_found, second.papers_new) == (1, 231, 216)
    assert store.counts()["papers"] == 297


def test_reverse_order_gives_the_same_papers(make_config, inbox: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    keys = []
    for order in ([DUMP_000, DUMP_002], [DUMP_002, DUMP_000]):
        for f in inbox.iterdir():
            f.unlink()
        for p in (tmp_path / "var").glob("digest.db*"):
            p.unlink()
        config = make_config()
        store = Store.open(config.state.url)
        for dump in order:
            drop(inbox, dump)
            ingest_inbox(config, store, NOW)
        with store.transaction() as conn:
            keys.append(sorted(conn.execute(sa.text("select key from papers")).scalars()))
        store.close()
    assert len(keys[0]) == 297
    assert keys[0] == keys[1]


def _dump(store: Store, n: int, papers: Iterable[Paper], name: str | None = None) -> IngestResult:
    """Ingests ``papers`` as a dump whose hash is ``n`` (and name ``n.txt`` unless given)."""
    return store.ingest(
        name=name or f"{n}.txt",
        sha256=f"{n:064d}",
        size=1,
        mtime_ns=1,
        papers_in=papers,
        layout=lambda: "spaced",
        now=NOW,
    )


def _papers(*keys: str) -> list[Paper]:
    return [Paper(key=k, title=k.upper(), abstract="x") for k in keys]


def _cut_short(*keys: str) -> Iterator[Paper]:
    yield from _papers(*keys)
    raise DumpError("2.txt", 9, "cut short")


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_paper_is_new_exactly_once_whatever_the_order(
    config: Config, store: Store, order: tuple[int, ...]
) -> None:
    """Invariant 2: three overlapping dumps, any order, repeated: each key stored once."""
    batches = [["a", "b", "c"], ["b", "c", "d"], ["d", "e", "a"]]
    total_new = 0
    for n, i in enumerate([*order, *order]):
        total_new += _dump(store, n, _papers(*batches[i]), name=f"{i}.txt").new
    assert total_new == 5
    assert store.counts()["papers"] == 5


def test_failed_dump_stores_nothing(config: Config, store: Store, inbox: Path) -> None:
    """Invariant 1: a parse error after several batches rolls the whole dump back."""
    abstract = "A paragraph long enough to be an abstract. " * 10
    lines = ["Subscribe" + "Paper 0", abstract]
    for n in range(1, 1200):
        lines += [f"Paper {n}", abstract]
    lines.append("A title at the end without its abstract")
    (inbox / "big.txt").write_text("\n".join(lines), encoding="utf-8")
    drop(inbox, DUMP_000)
    report = ingest_inbox(config, store, NOW)
    assert (report.ingested, report.failed) == (1, 1)
    assert report.papers_new == 81  # the good dump still went in
    assert store.counts()["papers"] == 81
    [failure] = store.dump_records("failed")
    assert failure.name == "big.txt"
    assert failure.error is not None and failure.error.startswith(f"big.txt:{len(lines)}: ")


def test_parse_error_inside_transaction_rolls_back(store: Store) -> None:
    parser = DumpParser("bad.txt")
    with pytest.raises(DumpError):
        store.ingest(
            name="bad.txt",
            sha256="f" * 64,
            size=1,
            mtime_ns=1,
            papers_in=parser.papers([b"Subscribe" + b"T1\n", b"A" * 400 + b"\n", b"T2\n"]),
            layout=lambda: parser.layout,
            now=NOW,
        )
    assert store.counts()["papers"] == 0
    assert store.dump_status("f" * 64) is None


def test_rerun_finds_nothing_and_sends_nothing(config: Config, store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000, DUMP_002)
    transport = FileTransport(config.email.outbox)
    first = run_once(config, store, transport, NOW)
    assert first.digest is not None and first.delivery.sent == 1
    again = run_once(config, store, transport, NOW)
    assert again.digest is None
    assert (again.ingest.ingested, again.ingest.papers_new, again.delivery.sent) == (0, 0, 0)
    assert store.counts()["digests"] == 1
    assert len(list(config.email.outbox.glob("*.eml"))) == 1


def test_renamed_copy_is_not_ingested_twice_and_changed_file_is_new(
    config: Config, store: Store, inbox: Path
) -> None:
    drop(inbox, DUMP_000)
    ingest_inbox(config, store, NOW)
    (inbox / "copy.txt").write_bytes(DUMP_000.read_bytes())
    again = ingest_inbox(config, store, NOW)
    assert (again.ingested, again.papers_new) == (0, 0)
    assert len(store.dump_records()) == 1
    # Same name, new bytes: a new dump whose new papers are stored.
    (inbox / DUMP_000.name).write_bytes(DUMP_002.read_bytes())
    changed = ingest_inbox(config, store, NOW)
    assert (changed.ingested, changed.papers_new) == (1, 216)


def test_digest_covers_papers_since_last_and_slugs_are_unique(
    config: Config, store: Store, inbox: Path
) -> None:
    drop(inbox, DUMP_000)
    ingest_inbox(config, store, NOW)
    d1 = store.create_digest(
        now=NOW, day=NOW.date(), recipients=["a@x.org"], message_id=message_ids("x.org", store.install_id())
    )
    assert (
        store.create_digest(
            now=NOW,
            day=NOW.date(),
            recipients=["a@x.org"],
            message_id=message_ids("x.org", store.install_id()),
        )
        is None
    )
    drop(inbox, DUMP_002)
    ingest_inbox(config, store, NOW)
    d2 = store.create_digest(
        now=NOW, day=NOW.date(), recipients=["a@x.org"], message_id=message_ids("x.org", store.install_id())
    )
    assert d1 is not None and d2 is not None
    assert (d1.slug, d1.first_seq, d1.paper_count) == ("2026-11-22", 1, 81)
    assert (d2.slug, d2.first_seq, d2.paper_count) == ("2026-11-22-2", 82, 216)
    # seq is monotonic, not dense: a known paper seen again may use up a number.
    seqs = [p.seq for p in store.digest_papers(d2)]
    assert len(seqs) == 216 and seqs == sorted(set(seqs))
    assert seqs[0] >= d2.first_seq and seqs[-1] == d2.last_seq
    ids = {d.message_id for d in store.deliveries()}
    assert len(ids) == 2


def test_newer_schema_is_refused(config: Config, store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(sa.update(schema_version_t).values(version=SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError, match="newer than this paper-digest knows"):
        Store.open(config.state.url)


def test_reopen_keeps_state(config: Config, store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000)
    ingest_inbox(config, store, NOW)
    store.close()
    reopened = Store.open(config.state.url)
    assert reopened.counts()["papers"] == 81
    reopened.close()


def test_reads_do_not_wait_for_a_run_that_is_writing(config: Config, store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000)
    run_once(config, store, FileTransport(config.email.outbox), NOW)
    other = Store.open(config.state.url)  # e.g. `digest status` or /healthz while a run ingests
    try:
        with store.transaction() as conn:  # a writer holds SQLite's write lock, uncommitted
            conn.execute(sa.delete(deliveries_t))
            # Before, every read began IMMEDIATE and waited for the lock (30 s, then an error).
            counts = other.counts()
            assert counts["papers"] == 81 and counts["deliveries"]["sent"] == 1  # the committed state
            assert [d.slug for d in other.digests()] == ["2026-11-22"]
    finally:
        other.close()
    assert store.counts()["deliveries"]["sent"] == 0  # the writer committed afterwards


def test_a_commit_group_keeps_each_dump_whole_and_commits_them_together(config: Config, store: Store) -> None:
    """Invariant 1 inside a group: a failing dump rolls back alone, the others commit."""
    other = Store.open(config.state.url)  # e.g. `digest status` while the run ingests
    try:
        with store.commit_group(every=3600) as group:
            _dump(group.store, 1, _papers("a", "b"))
            with pytest.raises(DumpError):
                _dump(group.store, 2, _cut_short("c", "d"))
            _dump(group.store, 3, _papers("e", "a"))
            assert not group.due()
            assert group.store.counts()["papers"] == 3  # the group sees its own work
            assert other.counts()["papers"] == 0  # nobody else does before the commit
        assert other.counts()["papers"] == 3
        with store.transaction() as conn:
            assert sorted(conn.execute(sa.text("select key from papers")).scalars()) == ["a", "b", "e"]
        assert store.dump_status(f"{2:064d}") is None
        assert store.dump_status(f"{3:064d}") == "ingested"
    finally:
        other.close()


def test_an_error_leaving_a_commit_group_loses_whole_dumps_since_its_last_commit(store: Store) -> None:
    with pytest.raises(RuntimeError, match="the run stopped"), store.commit_group(every=0) as group:
        _dump(group.store, 1, _papers("a"))
        assert group.due() and group.commit()
        assert not group.commit()  # nothing new to commit
        _dump(group.store, 2, _papers("b", "c"))
        raise RuntimeError("the run stopped")
    assert store.counts()["papers"] == 1
    assert store.dump_status(f"{1:064d}") == "ingested"
    assert store.dump_status(f"{2:064d}") is None  # not half of it: none of it, read again next run


def test_timestamps_are_stored_in_one_text_form(config: Config, store: Store, inbox: Path) -> None:
    # Papers are bulk-inserted past SQLAlchemy's statement layer; their first_seen must
    # still be the text SQLAlchemy writes (and sorts) elsewhere, not the driver's own form.
    drop(inbox, DUMP_000)
    ingest_inbox(config, store, NOW)
    path = sqlite_path(config.state.url)
    assert path is not None
    db = sqlite3.connect(path)
    try:
        row = db.execute(
            "select p.first_seen, d.seen_at from papers p join dumps d on d.id = p.dump_id limit 1"
        ).fetchone()
    finally:
        db.close()
    assert row == (f"{NOW.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}",) * 2


def test_a_commit_group_hands_checkpointing_back_when_it_ends(config: Config, store: Store) -> None:
    # During a group the checkpoints run on a thread and the connection's own automatic
    # checkpoint is off; a pooled connection left that way would let the WAL grow forever.
    with store.commit_group(every=0) as group:
        for n in range(1, 4):
            _dump(group.store, n, _papers(f"p{n}", f"q{n}"))
            assert group.commit()
    db = sqlite_path(config.state.url)
    assert db is not None and db.with_name(db.name + "-wal").exists()
    raws = [store.engine.raw_connection() for _ in range(3)]  # the pool's connections, and more
    try:
        for raw in raws:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_autocheckpoint")
            assert cursor.fetchone() == (4096,)
    finally:
        for raw in raws:
            raw.close()
    assert store.counts()["papers"] == 6


def test_an_ingest_committing_after_every_dump_gives_the_same_state(
    config: Config, store: Store, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real inboxes commit about once a second; here every dump commits (and checkpoints on
    # the background thread), with a bad dump between the good ones.
    monkeypatch.setattr("digest.ingest.COMMIT_EVERY", 0.0)
    drop(inbox, DUMP_000, DUMP_002)
    (inbox / "001_bad.txt").write_bytes(b"Subscribe" + b"A title\n" + b"\x00binary\n")
    report = ingest_inbox(config, store, NOW)
    assert (report.ingested, report.failed, report.papers_new) == (2, 1, 297)
    assert store.counts()["papers"] == 297
    assert [r.name for r in store.dump_records("failed")] == ["001_bad.txt"]
    assert ingest_inbox(config, store, NOW).papers_new == 0
