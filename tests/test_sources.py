"""Inbox scanning: which files count as dumps, and the stat cache that skips known files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digest.config import Config
from digest.errors import DumpChangedError
from digest.ingest import ingest_inbox
from digest.parse import DumpParser
from digest.sources import read_lines, scan, settled, sha256_of
from digest.store import Store
from tests.conftest import DUMP_000, DUMP_002, NOW, drop


def test_scan_skips_hidden_temporary_and_unmatched(inbox: Path, tmp_path: Path) -> None:
    for name in ["b.txt", "a.txt", ".hidden.txt", "x.txt.part", "y.tmp", "z.txt~", "notes.md"]:
        (inbox / name).write_text("x")
    (inbox / "sub.txt").mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (inbox / "link-out.txt").symlink_to(outside)
    (inbox / "link-in.txt").symlink_to(inbox / "a.txt")
    found = scan(inbox, "*.txt")
    assert [c.name for c in found if not c.refused] == ["a.txt", "b.txt", "link-in.txt"]
    # A folder or a link out of the inbox is never read, but reported (a failed dump).
    refused = {c.name: c.refused for c in found if c.refused}
    assert sorted(refused) == ["link-out.txt", "sub.txt"]
    assert "outside the inbox" in str(refused["link-out.txt"])


def test_unchanged_file_is_not_read_again(config: Config, store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000)
    assert ingest_inbox(config, store, NOW).ingested == 1
    path = inbox / DUMP_000.name
    st = path.stat()
    # Same name, size and mtime but other bytes: the stat cache says "seen", so it is not opened.
    data = bytearray(path.read_bytes())
    data[-1:] = b"!"
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = ingest_inbox(config, store, NOW)
    assert (again.seen, again.ingested, again.failed) == (1, 0, 0)
    assert len(store.dump_records()) == 1


def test_settle_rule_leaves_recent_files_for_later(config: Config, store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000, DUMP_002)
    young = inbox / DUMP_002.name
    now_ns = int(NOW.timestamp() * 1e9)
    os.utime(inbox / DUMP_000.name, ns=(now_ns - 60 * 10**9, now_ns - 60 * 10**9))
    os.utime(young, ns=(now_ns - 2 * 10**9, now_ns - 2 * 10**9))
    [old_c, young_c] = scan(inbox, "*.txt")
    assert settled(old_c, now_ns, 10) and not settled(young_c, now_ns, 10)
    report = ingest_inbox(config, store, NOW, settle_seconds=10)
    assert (report.ingested, report.unsettled) == (1, 1)


def test_a_file_rewritten_between_hash_and_parse_stores_nothing(store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000)
    path = inbox / DUMP_000.name
    hashed = sha256_of(path, 1 << 30)
    # The hash was taken; now the file is rewritten before the parse reads it.
    path.write_bytes(DUMP_002.read_bytes())
    parser = DumpParser(path.name)
    with pytest.raises(DumpChangedError, match="changed while it was being read"):
        store.ingest(
            name=path.name,
            sha256=hashed,
            size=path.stat().st_size,
            mtime_ns=path.stat().st_mtime_ns,
            papers_in=parser.papers(read_lines(path, hashed)),
            layout=lambda: parser.layout,
            now=NOW,
        )
    # Rolled back whole, and not remembered: the next run reads the file afresh.
    assert store.counts()["papers"] == 0 and store.dump_status(hashed) is None
    assert store.seen_files() == {}
    # The hash that matches the bytes streams through untouched.
    assert list(read_lines(path, sha256_of(path, 1 << 30))) == path.read_bytes().splitlines(keepends=True)
