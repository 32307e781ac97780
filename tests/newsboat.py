"""newsboat, the console feed reader, as a subscriber runs it, reading the site's feeds
from a real HTTP server: the ``http_site`` fixture (registered in ``conftest.py``), one
poll (:func:`newsboat`) and the marks such a test carries (:func:`needs_newsboat`)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from digest.config import Config

_Test = TypeVar("_Test", bound=Callable[..., None])


def needs_newsboat(test: _Test) -> _Test:
    """Marks ``test`` ``newsboat`` and skips it where newsboat is not installed."""
    installed = shutil.which("newsboat") is not None
    skip = pytest.mark.skipif(not installed, reason="newsboat is not installed (apt-get install newsboat)")
    marked: _Test = pytest.mark.newsboat(skip(test))  # pytest's marks are untyped
    return marked


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_site(config: Config) -> Iterator[str]:
    """Serves feed.output_dir on 127.0.0.1 with a real HTTP server in a thread."""
    config.feed.output_dir.mkdir(parents=True, exist_ok=True)
    handler = partial(_QuietHandler, directory=str(config.feed.output_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# As a subscriber runs it, without a terminal; -l 4 -d log records errors (it exits 0 anyway).
NEWSBOAT = [
    "newsboat",
    "-u",
    "urls",
    "-c",
    "cache.db",
    "-C",
    "/dev/null",
    "-x",
    "reload",
    "print-unread",
    "-l",
    "4",
    "-d",
    "log",
]


def newsboat(home: Path, url: str) -> tuple[int, list[str]]:
    """One subscriber polling ``url`` as newsboat does: returns its unread count and the
    titles in its cache. Fails on any error newsboat logs (it exits 0 even then)."""
    home.mkdir(exist_ok=True)
    (home / "urls").write_text(url + "\n", encoding="utf-8")
    log = home / "log"
    log.unlink(missing_ok=True)
    result = subprocess.run(
        NEWSBOAT,
        cwd=home,
        # A fresh HOME, and no proxy between the reader and 127.0.0.1.
        env={**{k: v for k, v in os.environ.items() if "proxy" not in k.lower()}, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    errors = (
        [line for line in log.read_text(encoding="utf-8").splitlines() if "ERROR" in line]
        if log.exists()
        else []
    )
    assert errors == [], errors
    unread = int(result.stdout.split()[0])
    assert result.stdout.strip() == f"{unread} unread articles"
    with sqlite3.connect(home / "cache.db") as db:
        titles = [row[0] for row in db.execute("SELECT title FROM rss_item ORDER BY id")]
    return unread, titles
