"""Edge, test only: named crash points at the I/O edges, for the crash-safety harness.

``DIGEST_CRASH_AT=<point>[:<n>]`` makes the process SIGKILL itself the ``n``-th time
(default 1) it reaches ``crash_point(<point>)``: no cleanup, no ``finally``, no flush,
exactly like a power cut as far as the process is concerned. The variable is read once
at import; when it is unset a crash point is one comparison. Only edge modules call
:func:`crash_point` (the pure core reads no environment).

The points (``POINTS``) sit where a crash is most interesting: inside and after the
ingest transaction, around publishing, between an accepted delivery and its record.
"""

from __future__ import annotations

import os
import signal

ENV = "DIGEST_CRASH_AT"

POINTS: tuple[str, ...] = (
    "ingest.batch",  # a batch of papers inserted, the dump's transaction still open
    "ingest.dump_done",  # a dump's savepoint released, its commit group not yet committed
    "ingest.committed",  # a commit group of dumps committed, before the next dump
    "pipeline.digest_created",  # digest and its outbox rows committed, nothing published
    "site.file_written",  # one published file renamed into place, the others not yet
    "publish.temp_written",  # a temp file written and fsynced, not yet renamed
    "pipeline.published",  # every file in place, the digest not yet marked published
    "pipeline.marked_published",  # marked published, nothing delivered yet
    "deliver.file_written",  # the file transport wrote the .eml
    "outbox.accepted",  # the transport accepted the message, the row is not yet sent
    "outbox.marked_sent",  # the row is marked sent, before the next recipient
)


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    name, _, count = value.partition(":")
    try:
        n = int(count) if count else 1
    except ValueError:
        n = 1
    return name.strip(), max(n, 1)


_target = _parse(os.environ.get(ENV))
_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """SIGKILLs this process when ``name`` is the armed point reached for the n-th time."""
    if _target is None or _target[0] != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
