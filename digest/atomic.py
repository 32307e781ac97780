"""Edge: writes published files atomically (temp file in the same folder, fsync, rename,
fsync the folder). A process killed midway leaves only a hidden ``.<name>.*.tmp`` file,
which is never published and is removed by the next run (:func:`remove_stale_temps`).

:func:`write_folders` does the same for many folders at once (the personal folders):
the same guarantee per file, with the fsyncs issued together from a few threads (the
file system commits them as a group) and one fsync per folder, not per file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from digest.crashpoints import crash_point


def write_atomic(path: Path, data: bytes) -> None:
    """Replaces ``path`` with ``data``; a reader sees the old file or the new one, never
    half of one. Raises OSError; the temp file is removed on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp(path, data)
    try:
        crash_point("publish.temp_written")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


SYNC_THREADS = 8  # fsyncs in flight at once: the journal commits them together

_T = TypeVar("_T")


def _each(fn: Callable[[_T], object], items: Iterable[_T]) -> None:
    with ThreadPoolExecutor(SYNC_THREADS) as pool:
        for _ in pool.map(fn, items):  # raises the first error
            pass


def _temp(path: Path, data: bytes) -> str:
    """``data`` in a synced temp file beside ``path`` (removed on failure); its name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def write_folders(folders: Sequence[tuple[Path, Sequence[tuple[str, bytes]]]]) -> None:
    """Writes each folder's ``(name, data)`` files, each replaced whole as by
    :func:`write_atomic`; a folder's last file is put in place only once the others are
    (renamed, and the folder synced), so it can mark the folder complete (a personal
    folder's ``.inputs``). Durable when this returns. Raises OSError; the temp files
    not yet renamed are removed on failure."""
    for folder, _ in folders:
        folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder / name, data) for folder, files in folders for name, data in files]
    temps: dict[Path, str] = {}

    def stage(job: tuple[Path, bytes]) -> None:
        temps[job[0]] = _temp(*job)

    try:
        _each(stage, jobs)
        crash_point("publish.temp_written")
        for last in (False, True):

            def place(item: tuple[Path, Sequence[tuple[str, bytes]]], last: bool = last) -> None:
                folder, files = item
                for name, _ in files[-1:] if last else files[:-1]:
                    os.replace(temps[folder / name], folder / name)
                    del temps[folder / name]
                _fsync_dir(folder)

            _each(place, [item for item in folders if item[1]])
    except BaseException:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder is synced; the state may record the file
    # as published (or a message as sent) right after this returns.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Deletes the temp files :func:`write_atomic` left under ``folder`` when a process was
    killed between writing and renaming. Call only under the run lock, when no other
    writer can be mid-write. Hidden ``.*.tmp`` names are never published, so this is
    tidying, not repair. Returns what was removed."""
    if not folder.is_dir():
        return []
    removed: list[Path] = []
    for tmp in folder.rglob(".*.tmp"):
        if tmp.is_file() and not tmp.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed
