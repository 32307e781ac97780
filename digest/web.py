"""Edge: the built-in web server of ``digest serve``.

Serves ``feed.output_dir`` read-only at ``/`` (whatever the path of ``digest.base_url``)
and ``/healthz``. The HTTP handling is Starlette's: ``StaticFiles`` gives ``ETag`` and
``Last-Modified`` with ``304 Not Modified``, refuses ``..`` and, with
``follow_symlink=False``, any path whose real location is outside the folder;
``GZipMiddleware`` compresses when the client asks. uvicorn runs it in a thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
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
    """StaticFiles with the feeds' own content types."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        media = FEED_TYPES.get(os.path.basename(full_path))
        if media is not None and response.status_code != 304:
            response.headers["content-type"] = media
        return response


def make_app(site_dir: Path, health: Health, routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The ASGI app: ``/healthz`` from ``health()`` (status code, JSON), ``routes`` (the
    subscriber pages, digest/web_subscribe.py), the site at ``/``."""

    def healthz(request: Request) -> Response:
        status, body = health()
        return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            *routes,
            Mount("/", SiteFiles(directory=site_dir, html=True, check_dir=False, follow_symlink=False)),
        ],
        middleware=[Middleware(GZipMiddleware, minimum_size=500)],
    )


class WebServer:
    """uvicorn serving ``app`` on an already bound socket, in a daemon thread."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
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
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5
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
