"""Edge: the built-in web server of ``digest serve``.

Serves ``feed.output_dir`` read-only at ``/`` (whatever the path of ``digest.base_url``)
``/healthz`` and ``/metrics``. The HTTP handling is Starlette's: ``StaticFiles`` gives ``ETag`` and
``Last-Modified`` with ``304 Not Modified``, refuses ``..`` and, with
``follow_symlink=False``, any path whose real location is outside the folder;
the site's files compress themselves (:mod:`digest.web_files`) and
``GZipMiddleware`` the app's own pages, when the client asks. uvicorn runs it in a thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from mimetypes import guess_type
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from digest.errors import DigestError
from digest.web_files import KEEP_ALIVE_TIMEOUT, GzipCache, SiteFileResponse, TimedH11Protocol

log = logging.getLogger(__name__)

# Feed readers and browsers pick the right handler from these; mimetypes would say
# application/xml and application/json.
FEED_TYPES = {
    "feed.xml": "application/rss+xml",
    "atom.xml": "application/atom+xml",
    "feed.json": "application/feed+json",
    "digests.xml": "application/rss+xml",
    "digests.atom": "application/atom+xml",
    "digests.json": "application/feed+json",
}

Health = Callable[[], tuple[int, dict[str, Any]]]


class SiteFiles(StaticFiles):
    """StaticFiles with the feeds' own content types, each file opened once per response
    and compressed once per version (:mod:`digest.web_files`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gzip_cache = GzipCache()

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        # Dot files are the publisher's bookkeeping (a folder's `.published` marker, a
        # personal folder's `.inputs`, a write's `.<name>.tmp`), not part of the site.
        if any(p.startswith(".") and p not in (".", "..") for p in path.replace("\\", "/").split("/")):
            return "", None
        return super().lookup_path(path)

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        name = os.path.basename(full_path)
        media = FEED_TYPES.get(name) or guess_type(name)[0] or "application/octet-stream"
        if media.startswith("text/"):
            media += "; charset=utf-8"
        if status_code != 200:  # a 404.html page: rare, small
            response = super().file_response(full_path, stat_result, scope, status_code)
            response.headers["content-type"] = media
            return response
        return SiteFileResponse(str(full_path), media, self.is_not_modified, self.gzip_cache)


def make_app(
    site_dir: Path,
    health: Health,
    metrics: Callable[[], bytes] | None = None,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The ASGI app: ``/healthz`` from ``health()`` (status code, JSON), ``/metrics`` from
    ``metrics()`` (Prometheus text) when given, ``routes`` (the subscriber pages,
    digest/web_subscribe.py), the site at ``/``."""

    def healthz(request: Request) -> Response:
        status, body = health()
        return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})

    def prometheus(request: Request) -> Response:
        assert metrics is not None
        try:
            body = metrics()
        except DigestError as err:
            return Response(f"# state unreadable: {err}\n", status_code=503, media_type="text/plain")
        return Response(
            body,
            headers={"cache-control": "no-store", "content-type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    # Gzip on the app's own pages only: the site's files compress themselves (once per
    # version, with their own Vary), and an app-wide GZipMiddleware added a second
    # "Vary: Accept-Encoding" to them and compressed despite "gzip;q=0".
    gzip = [Middleware(GZipMiddleware, minimum_size=500)]
    own = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
    if metrics is not None:
        own.append(Route("/metrics", prometheus, methods=["GET", "HEAD"]))
    return Starlette(
        routes=[
            *(_gzipped(r, gzip) for r in [*own, *routes]),
            Mount("/", SiteFiles(directory=site_dir, html=True, check_dir=False, follow_symlink=False)),
        ],
    )


def _gzipped(route: BaseRoute, gzip: list[Middleware]) -> BaseRoute:
    """``route`` with ``gzip`` around its endpoint (a Route; any other route as it is)."""
    if not isinstance(route, Route):
        return route
    return Route(route.path, route.endpoint, methods=route.methods, name=route.name, middleware=gzip)


class WebServer:
    """uvicorn serving ``app`` on an already bound socket, in a daemon thread."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP
        # (with proto 0 every small response on a kept-alive connection waited ~40 ms).
        self.socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as err:
            self.socket.close()
            raise DigestError(
                f"cannot listen on {host}:{port} ({err.strerror}); change http.listen "
                "or stop whatever uses that port"
            ) from err
        self.socket.listen(128)
        self.socket.set_inheritable(False)
        self.address = self.socket.getsockname()[:2]
        # log_config=None: keep the service's own logging setup.
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
            http=TimedH11Protocol,  # closes connections that send no request head
            timeout_keep_alive=int(KEEP_ALIVE_TIMEOUT),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="http", daemon=True)

    def _run(self) -> None:
        self.server.run(sockets=[self.socket])

    def start(self) -> None:
        self.thread.start()
        log.info("serving the site and /healthz on http://%s:%d/", *self.address)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()
