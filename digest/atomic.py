"""Edge: writes published files atomically (temp file in the same folder, fsync, rename,
fsync the folder). A process killed midway leaves only a hidden ``.<name>.*.tmp`` file,
which is never published and is removed by the next run (:func:`remove_stale_temps`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from digest.crashpoints import crash_point


def write_atomic(path: Path, data: bytes) -> None:
    """Replaces ``path`` with ``data``; a reader sees the old file or the new one, never
    half of one. Raises OSError; the temp file is removed on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        crash_point("publish.temp_written")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


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
