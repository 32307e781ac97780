"""A transport wrapped by another: the wrapper opens and closes the one inside around a
run (the context manager of :class:`digest.transports.Transport`) and changes only
``send``. DKIM signing (:class:`digest.signing.SigningTransport`) and send timing
(:class:`digest.metrics.TimedTransport`) are such wrappers."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from digest.transports import Outgoing, Transport


class TransportWrapper:
    """Enters and exits ``inner`` with itself; ``send`` passes the message on unchanged."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    def __enter__(self) -> Self:
        self.inner.__enter__()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.inner.__exit__(et, e, tb)

    def send(self, message: Outgoing, recipient: str) -> None:
        self.inner.send(message, recipient)
