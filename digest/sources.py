"""Edge: finds dump files in the inbox and reads them. Never moves, changes or deletes one.

A file is known by the sha256 of its bytes; the state's stat cache (name, size,
mtime) lets a run skip files it has already read without opening them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from digest.errors import DumpChangedError, DumpError
from digest.names import printable_name
from digest.parse import MAX_LINE_BYTES

_SKIP_SUFFIXES = (".part", ".tmp", "~", ".crdownload", ".swp")
# Files written by digest.fetch (``fetched-20261122T070000Z-1a2b3c4d.json``) are dumps
# whatever sources.pattern says: the fetcher names them, and JSON ones end in .json.
FETCHED_PREFIX = "fetched-"
FETCHED_PATTERNS = ("fetched-*Z-*.txt", "fetched-*Z-*.json")


def is_fetched(name: str) -> bool:
    """True for a file name :mod:`digest.fetch` writes into the inbox."""
    return any(fnmatch.fnmatchcase(name, p) for p in FETCHED_PATTERNS)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file in the inbox that looks like a dump, as it was when the inbox was scanned."""

    path: Path  # as the OS spells it: the only use of the raw name is to open the file
    name: str  # printable_name(): what is stored, logged and shown
    size: int
    mtime_ns: int
    refused: str | None = None  # why the file is not read at all (recorded as a failed dump)


def _skipped(name: str) -> bool:
    return name.startswith(".") or name.endswith(_SKIP_SUFFIXES)


def scan(inbox: Path, pattern: str) -> list[Candidate]:
    """Regular files in ``inbox`` matching ``pattern`` (or named as fetched dumps), in
    name order.

    Hidden and temporary names are skipped. A matching name that is a symlink leading
    out of the inbox, or not a regular file (a folder, a FIFO, a device), is returned
    with ``refused`` set and is never opened: a FIFO would block the run, and a link out
    of the inbox could publish any file the service can read. Raises DumpError when the
    inbox itself cannot be listed.
    """
    return _scan(inbox, pattern, None)[1]


def scan_changed(
    inbox: Path, pattern: str, known: Mapping[str, tuple[int, int]]
) -> tuple[int, list[Candidate]]:
    """:func:`scan`, leaving out the regular files whose ``(size, mtime_ns)`` is what
    ``known`` (the stat cache, by name) says: returns how many files matched and the
    candidates that are new, changed or refused, in name order.

    A run's cost must grow with the new dumps, not with the inbox's history: a file the
    cache skips costs one ``stat`` and one dict lookup, and no Path object.
    """
    return _scan(inbox, pattern, known)


def _scan(
    inbox: Path, pattern: str, known: Mapping[str, tuple[int, int]] | None
) -> tuple[int, list[Candidate]]:
    try:
        with os.scandir(inbox) as listing:
            entries = list(listing)
    except FileNotFoundError as err:
        raise DumpError(str(inbox), 0, "inbox folder does not exist; create it or fix sources.inbox") from err
    except OSError as err:
        raise DumpError(str(inbox), 0, f"cannot list the inbox ({err.strerror}); fix sources.inbox") from err
    matches = re.compile(fnmatch.translate(pattern)).match  # what fnmatchcase does, compiled once
    root: Path | None = None
    seen = 0
    found: list[Candidate] = []
    for entry in entries:
        raw = entry.name
        if _skipped(raw):
            continue
        if not (matches(raw) or (raw.startswith(FETCHED_PREFIX) and is_fetched(raw))):
            continue
        # A name that is not UTF-8 (or holds CR, LF, ESC) is stored and shown escaped:
        # raw, it cannot be written to the state and would stop the whole run.
        name = raw if raw.isprintable() else printable_name(raw)
        refused: str | None = None
        try:
            # scandir's entry: no second path lookup (is_symlink needs no system call on
            # Linux); a refused link is not followed.
            if entry.is_symlink():
                root = root or inbox.resolve()
                refused = _refusal(inbox / raw, root)
                st = entry.stat(follow_symlinks=refused is None)
            else:
                st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # vanished meanwhile
        seen += 1
        if known is not None and known.get(name) == (st.st_size, st.st_mtime_ns):
            continue  # read (or refused) before, unchanged
        if refused is None and not stat.S_ISREG(st.st_mode):
            refused = "not a regular file (a folder, FIFO or device); dumps must be plain files"
        found.append(
            Candidate(path=inbox / raw, name=name, size=st.st_size, mtime_ns=st.st_mtime_ns, refused=refused)
        )
    found.sort(key=lambda c: c.name)
    return seen, found


def _refusal(path: Path, root: Path) -> str | None:
    if not path.is_symlink():
        return None
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return "a dangling or looping symlink; point it at a dump inside the inbox"
    if not target.is_relative_to(root):
        shown = printable_name(str(target))
        return f"a symlink to {shown}, outside the inbox; copy the dump into the inbox instead"
    return None


def settled(candidate: Candidate, now_ns: int, settle_seconds: float) -> bool:
    """True when the file has not been modified for ``settle_seconds``: a dump still being
    written keeps bumping its mtime, so it is left for a later poll. A fetched dump is
    renamed into place whole (write_atomic), so it is settled as soon as it exists."""
    if is_fetched(candidate.name):
        return True
    return now_ns - candidate.mtime_ns >= settle_seconds * 1e9


def sha256_of(path: Path, max_bytes: int) -> str:
    """Content hash, read in chunks; DumpError for an unreadable or oversized file."""
    digest = hashlib.sha256()
    total = 0
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                total += len(chunk)
                if total > max_bytes:
                    raise DumpError(
                        printable_name(path.name),
                        0,
                        f"larger than sources.max_bytes ({max_bytes} bytes); "
                        "raise sources.max_bytes if this dump is genuine",
                    )
                digest.update(chunk)
    except OSError as err:
        raise DumpError(
            printable_name(path.name), 0, f"cannot read ({err.strerror}); check its permissions"
        ) from err
    return digest.hexdigest()


# Bytes per read of one line: a longer line is handed on in pieces, the first of which
# the parser refuses as too long, so memory stays bounded whatever the file holds.
LINE_READ_LIMIT = MAX_LINE_BYTES + 1


def open_dump(path: Path, max_bytes: int) -> tuple[str, Iterator[bytes]]:
    """``(sha256, chunks)``: the dump's content hash and its bytes as :func:`read_chunks`
    hands them on, which are the bytes the hash names.

    A dump up to :data:`READ_WHOLE` bytes (every real one) is read once, into memory, and
    parsed from the bytes that were hashed. A larger one is hashed first and read again,
    lazily, in bounded memory; that read raises :class:`DumpChangedError` if the bytes
    differ. DumpError for an unreadable file or one over ``max_bytes``.
    """
    limit = min(max_bytes, READ_WHOLE)
    try:
        with path.open("rb") as fh:
            # Sized from the file's own length: read(limit + 1) would allocate the whole
            # limit (32 MB) for a 200 KB dump, and shrink it after. A file that grew
            # since fstat is read on, up to the limit.
            wanted = min(os.fstat(fh.fileno()).st_size, limit) + 1
            data = fh.read(wanted)
            if len(data) == wanted <= limit:
                data += fh.read(limit + 1 - wanted)
    except OSError as err:
        raise DumpError(
            printable_name(path.name), 0, f"cannot read ({err.strerror}); check its permissions"
        ) from err
    if len(data) > limit:
        del data
        sha = sha256_of(path, max_bytes)  # refuses a file over max_bytes
        return sha, read_chunks(path, sha)
    return hashlib.sha256(data).hexdigest(), _line_chunks(io.BytesIO(data), None)


# Read into memory whole up to this size: the largest real dump is a few MB.
READ_WHOLE = 32 * 1024 * 1024


def read_chunks(path: Path, sha256: str | None = None) -> Iterator[bytes]:
    """The file's bytes, streamed in chunks of whole lines; the file is only opened for
    reading. Every chunk but the last ends at a line end (LF, CRLF or a lone CR: the
    parser treats all three alike), so no line and no character is split between two
    chunks; joined, they are the file's bytes. A line longer than :data:`LINE_READ_LIMIT`
    bytes is the exception: it is handed on in pieces, the first of which (that long at
    least) the parser refuses, so memory stays bounded whatever the file holds.

    With ``sha256`` (the hash taken when the file was first read), the bytes are hashed
    again as they stream by and :class:`DumpChangedError` is raised at the end when they
    differ: the file was rewritten between the two reads, and what was parsed is not the
    dump the hash names.
    """
    hasher = hashlib.sha256() if sha256 else None
    try:
        with path.open("rb") as fh:
            yield from _line_chunks(fh, hasher)
    except OSError as err:
        raise DumpError(
            printable_name(path.name), 0, f"cannot read ({err.strerror}); check its permissions"
        ) from err
    if hasher is not None and hasher.hexdigest() != sha256:
        raise DumpChangedError(
            printable_name(path.name), 0, "changed while it was being read; it is read again next run"
        )


def _line_chunks(fh: BinaryIO, hasher: hashlib._Hash | None) -> Iterator[bytes]:
    # Blocks, hashed and cut at their last line end in C: the parser decodes and splits a
    # block at once, far cheaper than a step per line.
    pending = b""
    while block := fh.read(_BLOCK):
        if hasher is not None:
            hasher.update(block)
        data = pending + block if pending else block
        # A CR as the very last byte may be half of a CRLF: it waits for the next block.
        cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1
        if cut:
            yield data[:cut]
        pending = data[cut:]
        while len(pending) > LINE_READ_LIMIT:
            yield pending[:LINE_READ_LIMIT]
            pending = pending[LINE_READ_LIMIT:]
    if pending:
        yield pending


_BLOCK = 1 << 20  # bytes per read; below LINE_READ_LIMIT, so a block's lines are short
