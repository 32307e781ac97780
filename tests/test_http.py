"""The built-in web server, over real HTTP on 127.0.0.1: content types, conditional
requests, gzip, containment in feed.output_dir, /healthz."""

from __future__ import annotations

import gzip
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.errors import DigestError
from digest.web import WebServer, make_app

FEED = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n<rss version=\"2.0\"><channel>"
    + b"<item/>" * 200
    + b"</channel></rss>"
)


class Site:
    def __init__(self, root: Path, base: str) -> None:
        self.root = root
        self.base = base
        self.health: tuple[int, dict[str, Any]] = (200, {"status": "ok"})

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.base + path, **kwargs)

    def raw(self, target: str) -> bytes:
        """Sends a request line exactly as given (httpx would normalise ``..`` away)."""
        host, port = self.base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        return b"".join(chunks)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    (root / "digests").mkdir(parents=True)
    (root / "feed.xml").write_bytes(FEED)
    (root / "atom.xml").write_bytes(b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'/>")
    (root / "feed.json").write_bytes(b'{"version": "https://jsonfeed.org/version/1.1", "items": []}')
    (root / "index.html").write_bytes(b"<!doctype html><title>index</title>")
    (root / "digests" / "2026-11-22.html").write_bytes(b"<!doctype html><title>day</title>")
    (tmp_path / "secret.txt").write_bytes(b"outside the site")
    holder: list[Site] = []
    app = make_app(root, lambda: holder[0].health)
    server = WebServer(app, "127.0.0.1", 0)
    holder.append(Site(root, f"http://127.0.0.1:{server.address[1]}"))
    server.start()  # the socket is already listening: no need to wait for uvicorn
    try:
        yield holder[0]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("/feed.xml", "application/rss+xml"),
        ("/atom.xml", "application/atom+xml"),
        ("/feed.json", "application/feed+json"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
        ("/digests/2026-11-22.html", "text/html; charset=utf-8"),
    ],
)
def test_content_types(site: Site, path: str, media: str) -> None:
    response = site.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media


def test_conditional_requests_get_304(site: Site) -> None:
    first = site.get("/feed.xml")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    by_etag = site.get("/feed.xml", headers={"If-None-Match": etag})
    assert by_etag.status_code == 304 and by_etag.content == b""
    assert site.get("/feed.xml", headers={"If-Modified-Since": modified}).status_code == 304
    assert site.get("/feed.xml", headers={"If-None-Match": '"something-else"'}).status_code == 200

    # A new feed is a new ETag: the reader's old one no longer matches.
    (site.root / "feed.xml").write_bytes(FEED.replace(b"<item/>", b"<item></item>", 1))
    os.utime(site.root / "feed.xml", (first_time := os.stat(site.root / "feed.xml").st_mtime + 5, first_time))
    changed = site.get("/feed.xml", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_gzip_only_when_asked(site: Site) -> None:
    plain = site.get("/feed.xml", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == FEED
    with httpx.stream("GET", site.base + "/feed.xml", headers={"Accept-Encoding": "gzip"}) as zipped:
        assert zipped.headers["content-encoding"] == "gzip"
        body = b"".join(zipped.iter_raw())
    assert gzip.decompress(body) == FEED and len(body) < len(FEED)


@pytest.mark.parametrize(
    "target", ["/../secret.txt", "/digests/../../secret.txt", "/%2e%2e/secret.txt", "//etc/passwd"]
)
def test_nothing_outside_the_folder(site: Site, target: str) -> None:
    response = site.raw(target)
    assert b"outside the site" not in response and b"root:" not in response
    assert response.split(b"\r\n", 1)[0].split(b" ")[1] in (b"404", b"400")


def test_symlinks_out_of_the_folder_are_not_followed(site: Site) -> None:
    (site.root / "leak.txt").symlink_to(site.root.parent / "secret.txt")
    (site.root / "up").symlink_to(site.root.parent, target_is_directory=True)
    (site.root / "alias.xml").symlink_to(site.root / "feed.xml")
    assert site.get("/leak.txt").status_code == 404
    assert site.get("/up/secret.txt").status_code == 404
    assert site.get("/alias.xml").content == FEED  # a link that stays inside is fine


def test_dot_files_are_not_served(site: Site) -> None:
    # The publisher's bookkeeping: a site's marker, a personal folder's input hash, a temp file.
    (site.root / ".published").write_text("7\n")
    (site.root / "for").mkdir()
    (site.root / "for" / ".inputs").write_text("abc")
    (site.root / ".feed.xml.x1.tmp").write_bytes(FEED)
    for path in ("/.published", "/for/.inputs", "/.feed.xml.x1.tmp", "/%2epublished"):
        assert site.get(path).status_code == 404, path
    assert site.get("/feed.xml").content == FEED


def test_read_only(site: Site) -> None:
    assert httpx.put(site.base + "/feed.xml", content=b"x").status_code == 405
    assert httpx.delete(site.base + "/feed.xml").status_code == 405
    assert (site.root / "feed.xml").read_bytes() == FEED


def test_healthz_passes_status_and_body(site: Site) -> None:
    ok = site.get("/healthz")
    assert ok.status_code == 200 and ok.json() == {"status": "ok"}
    assert ok.headers["cache-control"] == "no-store"
    site.health = (503, {"status": "failing", "error": "poll failed: inbox gone"})
    failing = site.get("/healthz")
    assert failing.status_code == 503 and failing.json()["error"] == "poll failed: inbox gone"


def test_a_port_in_use_is_one_clear_error(site: Site) -> None:
    port = int(site.base.rsplit(":", 1)[1])
    with pytest.raises(DigestError, match=r"cannot listen on 127\.0\.0\.1:\d+ .*change http\.listen"):
        WebServer(make_app(site.root, lambda: (200, {})), "127.0.0.1", port)
