"""The run lock, so two runs never build or send a digest at once: an OS file lock beside
a SQLite state, a PostgreSQL advisory lock on a PostgreSQL state (shared by every
instance that uses it; docs/DESIGN.md, invariant 9). :func:`state_lock` picks.

``fcntl.flock`` is released by the kernel when the holder dies, even by SIGKILL,
so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from digest.errors import LockError


@contextmanager
def run_lock(path: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Holds the exclusive lock on ``path`` for the block.

    Waits up to ``wait`` seconds for another holder, then raises LockError.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"another paper-digest run holds {path}; it is probably still "
                        "working: wait for it to finish (or pass --wait SECONDS)"
                    ) from None
                time.sleep(0.1)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def state_lock(lock_path: Path, state_url: str, *, wait: float = 0.0, holder: str = "") -> Iterator[None]:
    """Holds the run lock of the state at ``state_url`` for the block: the database's
    advisory lock for PostgreSQL (held in the name ``holder``, the instance), else the file
    lock at ``lock_path``. Waits up to ``wait`` seconds, then raises LockError."""
    from digest.store.pglock import RUN_LOCK, advisory_lock, is_postgres

    if not is_postgres(state_url):
        with run_lock(lock_path, wait=wait):
            yield
        return
    with advisory_lock(state_url, RUN_LOCK, wait=wait, holder=holder) as held:
        if not held:
            raise LockError(
                "another paper-digest instance holds the run lock of the PostgreSQL state; "
                "it is probably still working: wait for it to finish (or pass --wait SECONDS)"
            )
        yield


@contextmanager
def site_lock(lock_path: Path, state_url: str, *, wait: float = 0.0) -> Iterator[None]:
    """On a PostgreSQL state, the lock on this instance's own ``feed.output_dir``: a poll
    that brings the folder up to date without the run lock (another instance holds it,
    :func:`digest.pipeline.catch_up_site`) and a run of this instance never write it at
    once. A file beside ``lock_path``; nothing on SQLite, where the run lock is local and
    covers the site. Waits up to ``wait`` seconds, then raises LockError."""
    from digest.store.pglock import is_postgres

    if not is_postgres(state_url):
        yield
        return
    with run_lock(lock_path.with_name(lock_path.name + ".site"), wait=wait):
        yield
