"""Edge: how ``digest serve`` answers for a file of the site, and its HTTP connections.

- **One open per response.** A run replaces a file by renaming a new one over it. A
  response that took the size from one ``stat`` and the bytes from a later ``open``
  could declare the old length and send the new body (``wrk`` saw "Too little data for
  declared Content-Length" while runs republished). Here the file is opened once, its
  size, date and ETag come from that open file (``fstat``), and the bytes sent are the
  ones it holds: the old version whole, or the new one whole.
- **Gzip once per file version.** A compressed body is cached by the file's identity
  (device, inode, size, mtime): a rename brings a new inode, so a new version is
  compressed once, on its first request, off the event loop, and never again.
- **Connections that do not send a request are closed.** :class:`TimedH11Protocol`
  gives a client :data:`HEADER_TIMEOUT` seconds from connecting (or from its first byte
  after a kept-alive response) to send a whole request head; uvicorn's keep-alive
  timeout closes a connection idle after a response.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import formatdate
from typing import Any, BinaryIO

import anyio
from starlette.datastructures import Headers
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import NotModifiedResponse
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = 10.0  # seconds to send a whole request head
KEEP_ALIVE_TIMEOUT = 5.0  # seconds a kept-alive connection may idle between requests
GZIP_MIN_BYTES = 500
GZIP_CACHE_BYTES = 32 * 1024 * 1024  # compressed bytes kept, newest used first
_COMPRESSIBLE = ("text/", "application/rss+xml", "application/atom+xml", "application/feed+json",
                 "application/json", "application/xml", "image/svg+xml")  # fmt: skip

Version = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


class GzipCache:
    """Compressed bodies by file version, least recently used dropped past ``limit`` bytes."""

    def __init__(self, limit: int = GZIP_CACHE_BYTES) -> None:
        self.limit = limit
        self._items: OrderedDict[Version, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._compressing = threading.Lock()  # one compression at a time: a herd of
        # requests for a new version waits for the first one instead of repeating it
        self.compressions = 0  # how many times a body was compressed (tests, logs)

    def get(self, version: Version) -> bytes | None:
        with self._lock:
            body = self._items.get(version)
            if body is not None:
                self._items.move_to_end(version)
            return body

    def compress(self, version: Version, file: BinaryIO) -> bytes:
        """The cached body of ``version``, else ``file``'s bytes compressed and cached."""
        with self._compressing:
            cached = self.get(version)
            if cached is not None:
                return cached
            return self._add(version, gzip.compress(os.pread(file.fileno(), version[2], 0), 6, mtime=0))

    def _add(self, version: Version, body: bytes) -> bytes:
        with self._lock:
            self.compressions += 1
            if version not in self._items and len(body) <= self.limit:
                self._items[version] = body
                self._size += len(body)
                while self._size > self.limit:
                    _, dropped = self._items.popitem(last=False)
                    self._size -= len(dropped)
        return body


def _open(path: str) -> tuple[BinaryIO, os.stat_result] | None:
    try:
        file = open(path, "rb")  # noqa: SIM115 - handed to the response, which closes it
    except (FileNotFoundError, NotADirectoryError):
        return None
    st = os.fstat(file.fileno())
    if not stat.S_ISREG(st.st_mode):
        file.close()
        return None
    return file, st


def _etag(st: os.stat_result) -> str:
    # Starlette's formula, from the open file's stat: the same ETags as before.
    import hashlib

    base = f"{st.st_mtime}-{st.st_size}"
    return f'"{hashlib.md5(base.encode(), usedforsecurity=False).hexdigest()}"'


def _wants_gzip(scope: Scope) -> bool:
    accepted = Headers(scope=scope).get("accept-encoding", "")
    return any(part.split(";")[0].strip().lower() == "gzip" and "q=0" not in part.replace(" ", "")
               for part in accepted.split(","))  # fmt: skip


class SiteFileResponse(Response):
    """A file of the site, opened once when the response is sent (see the module
    docstring); 404 when it vanished between the lookup and the open."""

    def __init__(
        self,
        path: str,
        media_type: str,
        is_not_modified: Any,
        cache: GzipCache,
    ) -> None:
        self.path = path
        self.media_type = self._media = media_type
        self.status_code = 200
        self.background = None
        self._is_not_modified = is_not_modified
        self._cache = cache
        self.init_headers({})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened = await anyio.to_thread.run_sync(_open, self.path)
        if opened is None:
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        file: BinaryIO | None
        file, st = opened
        try:
            headers: dict[str, str] = {
                "content-type": self._media,
                "last-modified": formatdate(st.st_mtime, usegmt=True),
                "etag": _etag(st),
            }
            compressible = self._media.startswith(_COMPRESSIBLE) and st.st_size >= GZIP_MIN_BYTES
            if compressible:
                headers["vary"] = "Accept-Encoding"
            if self._is_not_modified(Headers(headers=headers), Headers(scope=scope)):
                await NotModifiedResponse(Headers(headers=headers))(scope, receive, send)
                return
            if compressible and _wants_gzip(scope):
                version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                body = self._cache.get(version) or await anyio.to_thread.run_sync(
                    self._cache.compress, version, file
                )
                headers["content-encoding"] = "gzip"
                await Response(body, headers=headers)(scope, receive, send)
                return
            response = _OpenFileResponse(file, self.path, st, headers)
            file = None  # the response closes it
            await response(scope, receive, send)
        finally:
            if file is not None:
                file.close()


class _OpenFileResponse(FileResponse):
    """Starlette's FileResponse (ranges, HEAD) reading from a file already open, whose
    ``fstat`` gave the headers, instead of opening the path again."""

    def __init__(self, file: BinaryIO, path: str, st: os.stat_result, headers: dict[str, str]) -> None:
        super().__init__(path, headers=headers, stat_result=st, media_type=headers["content-type"])
        self._file = file

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Never hand the server the path to send itself: it would open it again.
        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != "http.response.pathsend"}
        try:
            await super().__call__({**scope, "extensions": extensions}, receive, send)
        finally:
            self._file.close()

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        self._file.seek(0)
        yield anyio.wrap_file(self._file)  # closed once the response is done, not per range


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection that has not sent a whole request
    head :data:`HEADER_TIMEOUT` seconds after connecting or after starting one."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(HEADER_TIMEOUT, self._head_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_request():
            self._cancel_head_timer()
        elif self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(HEADER_TIMEOUT, self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._cancel_head_timer()  # idle now: the keep-alive timeout applies

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self._in_request() and not self.transport.is_closing():
            self.transport.close()
