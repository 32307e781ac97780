"""Edge: hands rendered messages to a transport. A transport either returns (the message
was accepted) or raises DeliveryError, whose ``temporary`` flag says whether to retry.
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Protocol

from digest.crashpoints import crash_point
from digest.errors import DeliveryError
from digest.publish import remove_stale_temps, write_atomic
from digest.render.email import to_bytes


class Transport(Protocol):
    """Sends one message to one recipient; used as a context manager around a run."""

    def __enter__(self) -> Transport: ...

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def send(self, message: EmailMessage, recipient: str) -> None: ...


class FileTransport:
    """Writes each message as ``<outbox>/<digest slug>/<recipient>.eml``, atomically.

    Re-sending the same delivery overwrites the same file: the name comes from the
    Message-ID, which is stable across retries.
    """

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def __enter__(self) -> FileTransport:
        # A run killed mid-write left a hidden temp file; its delivery is still pending.
        remove_stale_temps(self.outbox)
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def path_for(self, message: EmailMessage, recipient: str) -> Path:
        mid = str(message["Message-ID"])
        local = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in recipient)[:64]
        tag = hashlib.sha256(mid.encode()).hexdigest()[:8]
        return self.outbox / f"{mid.strip('<>').split('@')[0]}-{local}-{tag}.eml"

    def send(self, message: EmailMessage, recipient: str) -> None:
        try:
            write_atomic(self.path_for(message, recipient), to_bytes(message))
        except OSError as err:
            raise DeliveryError(
                f"cannot write to the outbox {self.outbox}: {err.strerror}", temporary=True
            ) from err
        crash_point("deliver.file_written")
