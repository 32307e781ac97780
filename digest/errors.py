"""Every error paper-digest raises on purpose.

DigestError            base: the CLI prints it as one line and exits 1
 ├── UsageError        the command line asks for something it cannot have: exit 2
 ├── ConfigError       a config key is missing or wrong; names the key and the fix
 ├── DumpError         a dump cannot be read or parsed; names file:line
 │    └── DumpChangedError  the file changed while it was read: not a failure, read it later
 ├── StoreError        the state database is unusable (newer schema, locked, …)
 ├── LockError         another run holds the lock on the state
 ├── PublishError      a feed or archive file could not be written
 ├── DeliveryError     a message was not accepted; ``temporary`` says whether to retry
 └── FetchError        a source URL could not be fetched; ``temporary`` says whether to retry

digest.fetch turns httpx's errors into FetchError: httpx.TimeoutException and the other
httpx.TransportError (connect, read, protocol errors such as a body cut short) are
temporary; httpx.UnsupportedProtocol, a 4xx answer, a body over the size limit and a
refused redirect are not.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every expected failure; ``str(err)`` is a complete one-line message."""


class UsageError(DigestError):
    """Options that parse but cannot be used together or as given; the CLI prints it as
    one line and exits 2, as argparse does for a usage error."""


class ConfigError(DigestError):
    """A config value is missing or invalid."""

    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        self.key = key
        message = f"config key {key!r}: {problem}"
        if fix:
            message += f"; {fix}"
        super().__init__(message)


class DumpError(DigestError):
    """A dump file cannot be read or parsed; ``line`` is 1-based, 0 for the whole file."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}")


class DumpChangedError(DumpError):
    """The file's bytes changed between hashing and parsing; nothing of it was stored and
    it is not recorded as failed: the next run reads it again."""


class StoreError(DigestError):
    """The state database cannot be used as it is."""


class LockError(DigestError):
    """Another paper-digest process holds the lock on this state."""


class PublishError(DigestError):
    """An output file could not be written; nothing is marked published."""


class DeliveryError(DigestError):
    """A message was not accepted. ``temporary`` errors are retried later.
    ``refused_recipient`` is the SMTP server's reply ``(code, text)`` when it refused the
    recipient at ``RCPT TO`` (a synchronous bounce), else None."""

    def __init__(
        self, message: str, *, temporary: bool, refused_recipient: tuple[int, str] | None = None
    ) -> None:
        self.temporary = temporary
        self.refused_recipient = refused_recipient
        super().__init__(message)


class FetchError(DigestError):
    """A source URL gave no usable body. ``temporary`` errors are retried with backoff;
    ``status`` is the HTTP status when the server answered."""

    def __init__(self, message: str, *, temporary: bool, status: int | None = None) -> None:
        self.temporary = temporary
        self.status = status
        super().__init__(message)
