"""Inbox scanning: which files count as dumps, and the stat cache that skips known files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from digest import sources
from digest.config import Config
from digest.errors import DumpChangedError, DumpError
from digest.ingest import ingest_inbox
from digest.parse import DumpParser, decode_runs
from digest.sources import LINE_READ_LIMIT, open_dump, read_chunks, scan, scan_changed, settled, sha256_of
from digest.store import Store
from tests.helpers import DUMP_000, DUMP_002, NOW, drop


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
            papers_in=parser.papers(read_chunks(path, hashed)),
            layout=lambda: parser.layout,
            now=NOW,
        )
    # Rolled back whole, and not remembered: the next run reads the file afresh.
    assert store.counts()["papers"] == 0 and store.dump_status(hashed) is None
    assert store.seen_files() == {}
    # The hash that matches the bytes streams through untouched.
    assert b"".join(read_chunks(path, sha256_of(path, 1 << 30))) == path.read_bytes()


def test_a_dump_is_parsed_from_the_bytes_its_hash_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dump.txt"
    original = DUMP_000.read_bytes()
    path.write_bytes(original)
    # A real-sized dump is read once: rewriting the file afterwards changes nothing parsed.
    sha, chunks = open_dump(path, 1 << 30)
    path.write_bytes(DUMP_002.read_bytes())
    assert sha == hashlib.sha256(original).hexdigest()
    assert b"".join(chunks) == original
    # A dump too large to hold is read twice; a rewrite in between is caught, not parsed.
    monkeypatch.setattr(sources, "READ_WHOLE", 1000)
    path.write_bytes(original)
    sha, chunks = open_dump(path, 1 << 30)
    assert sha == hashlib.sha256(original).hexdigest()
    path.write_bytes(DUMP_002.read_bytes())
    with pytest.raises(DumpChangedError):
        list(chunks)
    # Either way a file over sources.max_bytes is refused before anything is parsed.
    for limit in (1000, 1 << 30):
        monkeypatch.setattr(sources, "READ_WHOLE", limit)
        with pytest.raises(DumpError, match=r"larger than sources.max_bytes \(500 bytes\)"):
            open_dump(path, 500)


@pytest.mark.parametrize("end", [b"\r\n", b"\r", b"\n"])
def test_read_chunks_cut_blocks_only_at_line_ends(tmp_path: Path, end: bytes) -> None:
    # Lines cross the 1 MiB read blocks at every offset, a CRLF among them split in two.
    line = b"x" * 1000 + end
    data = line * 1100 + b"last line without an end"
    path = tmp_path / "big.txt"
    path.write_bytes(data)
    chunks = list(read_chunks(path, sha256_of(path, 1 << 30)))
    assert b"".join(chunks) == data
    assert len(chunks) == 3  # two blocks' worth of whole lines, then the unfinished last line
    assert all(chunk.endswith(end) for chunk in chunks[:-1])
    assert chunks[-1] == b"last line without an end"
    # The parser numbers the lines as an editor does, whichever line end the file uses.
    numbered = [
        (first + i, line.rstrip())
        for first, lines in decode_runs(chunks, path.name)
        for i, line in enumerate(lines)
    ]
    assert [n for n, _ in numbered] == list(range(1, 1102))
    assert numbered[-1] == (1101, "last line without an end")


def test_a_line_longer_than_the_limit_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "one-line.txt"
    path.write_bytes(b"Title\n" + b"x" * (LINE_READ_LIMIT + 3 * (1 << 20)) + b"\nmore\n")
    chunks = read_chunks(path)
    assert next(chunks) == b"Title\n"
    assert len(next(chunks)) <= LINE_READ_LIMIT + (1 << 20)  # a piece, not the whole line
    with pytest.raises(DumpError, match=r"one-line.txt:2: a line longer than"):
        list(decode_runs(read_chunks(path), path.name))


def test_stat_cache_skips_only_files_whose_name_size_and_mtime_match(
    config: Config, store: Store, inbox: Path
) -> None:
    drop(inbox, DUMP_000, DUMP_002)
    assert ingest_inbox(config, store, NOW).ingested == 2
    assert store.stat_cache().keys() == {DUMP_000.name, DUMP_002.name}
    seen, changed = scan_changed(inbox, "*.txt", store.stat_cache())
    assert (seen, changed) == (2, [])
    # A new mtime (same bytes): read and hashed again, known by its hash, not re-ingested.
    old = inbox / DUMP_000.name
    st = old.stat()
    os.utime(old, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    # A renamed copy: a new name, read, and known by its hash too.
    (inbox / "copy.txt").write_bytes(DUMP_002.read_bytes())
    seen, changed = scan_changed(inbox, "*.txt", store.stat_cache())
    assert seen == 3 and [c.name for c in changed] == [DUMP_000.name, "copy.txt"]
    again = ingest_inbox(config, store, NOW)
    assert (again.seen, again.ingested, again.papers_new) == (3, 0, 0)
    assert scan_changed(inbox, "*.txt", store.stat_cache()) == (3, [])
    # Other bytes, another size: a changed dump, read and ingested.
    old.write_bytes(
        DUMP_000.read_bytes() + b"\nA New Paper Title\n\nIts abstract, long enough to read as one.\n"
    )
    assert ingest_inbox(config, store, NOW).ingested == 1


def test_a_file_longer_than_its_stat_size_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # A dump is read in one call sized by fstat; a file that grew since (here one whose
    # size the kernel reports as 0) is read on up to the limit, never cut at the old size.
    path = Path("/proc/version")
    if not path.exists() or path.stat().st_size != 0:
        pytest.skip("needs a file whose stat size is 0 though it holds bytes")
    content = path.read_bytes()
    sha, chunks = open_dump(path, 1 << 30)
    assert (sha, b"".join(chunks)) == (hashlib.sha256(content).hexdigest(), content)
    # And the limit still holds: over READ_WHOLE it is hashed and streamed instead.
    monkeypatch.setattr(sources, "READ_WHOLE", len(content) - 1)
    sha, chunks = open_dump(path, 1 << 30)
    assert (sha, b"".join(chunks)) == (hashlib.sha256(content).hexdigest(), content)
