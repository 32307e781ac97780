"""The site server under republishing and idle connections (issue 18), against a real
uvicorn on 127.0.0.1: one open per response, gzip once per file version, header and
keep-alive timeouts, TCP_NODELAY."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount

from digest.atomic import write_atomic
from digest.web import SiteFiles, WebServer, make_app
from tests.helpers import DUMP_000, DUMP_002, ROOT, write_toml


class Served:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.app = make_app(root, lambda: (200, {"ok": True}))
        files = next(r.app for r in self.app.routes if isinstance(r, Mount))
        assert isinstance(files, SiteFiles)
        self.files = files
        self.server = WebServer(self.app, "127.0.0.1", 0)
        self.server.start()
        self.base = "http://{}:{}".format(*self.server.address)
        deadline = time.monotonic() + 10
        while not self.server.server.started and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>x</title><p>hello</p>\n", encoding="utf-8")
    s = Served(root)
    yield s
    s.server.stop()


def _asgi_get(app: Any, path: str, on_start: Any) -> tuple[dict[str, str], bytes]:
    """One GET straight through the ASGI app; ``on_start`` runs when the head is sent."""
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": [(b"host", b"x")], "server": ("x", 80), "client": ("c", 1),
    }  # fmt: skip
    head: dict[str, str] = {}
    body = bytearray()

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            head.update({k.decode(): v.decode() for k, v in message["headers"]})
            on_start()
        else:
            body.extend(message.get("body", b""))

    asyncio.run(app(scope, receive, send))
    return head, bytes(body)


def test_a_file_replaced_while_being_served_is_sent_whole_as_it_was_opened(served: Served) -> None:
    """The republish race made deterministic: the file is renamed over between the
    response head and its body. The length declared and the bytes sent must belong to
    the same version."""
    feed = served.root / "feed.xml"
    old, new = b"<rss>" + b"o" * 5000 + b"</rss>", b"<rss>" + b"n" * 9000 + b"</rss>"
    feed.write_bytes(old)
    # Straight to the files app: the gzip middleware would hold the head back until the
    # body was read, hiding the race.
    head, body = _asgi_get(served.files, "/feed.xml", lambda: write_atomic(feed, new))
    assert int(head["content-length"]) == len(body)
    assert body in (old, new)
    assert feed.read_bytes() == new


def test_gzip_is_computed_once_per_file_version(served: Served) -> None:
    feed = served.root / "feed.xml"
    first = b"<rss>" + b"<item>paper</item>" * 20000 + b"</rss>"
    feed.write_bytes(first)
    with httpx.Client(base_url=served.base) as client:
        for _ in range(5):
            r = client.get("/feed.xml", headers={"Accept-Encoding": "gzip"})
            assert r.headers["content-encoding"] == "gzip" and r.content == first
            assert r.headers["content-type"] == "application/rss+xml"
            assert r.headers["vary"] == "Accept-Encoding"
        assert served.files.gzip_cache.compressions == 1
        second = first.replace(b"paper", b"other")
        write_atomic(feed, second)
        for _ in range(3):
            assert client.get("/feed.xml", headers={"Accept-Encoding": "gzip"}).content == second
        assert served.files.gzip_cache.compressions == 2
        plain = client.get("/feed.xml", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == second
        # One Vary, however it went out: the site's files compress themselves, and the
        # app-wide gzip must neither add a second Vary nor override a refusal (q=0).
        for asked in ("identity", "gzip", "gzip;q=0", "br"):
            again = client.get("/feed.xml", headers={"Accept-Encoding": asked})
            assert again.headers.get_list("vary") == ["Accept-Encoding"], asked
            assert again.headers.get("content-encoding") == ("gzip" if asked == "gzip" else None), asked
        etag = plain.headers["etag"]
        assert client.get("/feed.xml", headers={"If-None-Match": etag}).status_code == 304
        ranged = client.get("/feed.xml", headers={"Range": "bytes=0-4", "Accept-Encoding": "identity"})
        assert ranged.status_code == 206 and ranged.content == b"<rss>"
        assert client.get("/nope.xml").status_code == 404
    assert gzip.decompress(gzip.compress(first)) == first


def _closed_within(address: tuple[str, int], send: bytes, seconds: float) -> bool:
    with socket.create_connection(address) as s:
        s.settimeout(seconds)
        s.sendall(send)
        try:
            while s.recv(4096):
                pass
        except TimeoutError:
            return False
        return True


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n"], ids=["nothing", "half-a-head"])
def test_a_connection_that_sends_no_whole_request_is_closed(
    served: Served, sent: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest import web_files

    monkeypatch.setattr(web_files, "HEADER_TIMEOUT", 1.0)
    assert _closed_within(served.server.address, sent, 6.0)


@pytest.mark.slow  # end to end: waits out the server's keep-alive timeout (5 s)
def test_a_kept_alive_connection_is_closed_when_idle(served: Served) -> None:
    from digest import web_files

    request = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
    started = time.monotonic()
    assert _closed_within(served.server.address, request, web_files.KEEP_ALIVE_TIMEOUT + 5)
    assert time.monotonic() - started >= web_files.KEEP_ALIVE_TIMEOUT - 0.5


def test_small_responses_on_a_kept_alive_connection_do_not_wait_for_delayed_acks(served: Served) -> None:
    (served.root / "index.html").write_text("<p>hello</p>" * 200, encoding="utf-8")
    with socket.create_connection(served.server.address) as s:
        times = []
        for _ in range(30):
            started = time.perf_counter()
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(65536)
            head, body = data.split(b"\r\n\r\n", 1)
            length = next(int(v) for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n")[1:])
                          if k.lower() == b"content-length")  # fmt: skip
            while len(body) < length:
                body += s.recv(65536)
            times.append(time.perf_counter() - started)
    # Without TCP_NODELAY each answer waited for the client's delayed ACK: 40-48 ms.
    assert statistics.median(times) < 0.025, f"p50 {statistics.median(times) * 1000:.1f} ms"
    assert served.server.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


# The load: CLIENTS keep-alive clients in a process of their own (not sharing the
# server's GIL), each asking for /feed.xml, plain and gzipped in turn, until the stop
# file appears; prints {"ok": n, "failed": n, "errors": [...]}.
_LOAD = """
import asyncio, json, os, sys
import httpx
base, stop, clients = sys.argv[1], sys.argv[2], int(sys.argv[3])
counts = {"ok": 0, "failed": 0, "errors": []}
async def loop():
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while not os.path.exists(stop):
            for encoding in ("identity", "gzip"):
                try:
                    r = await client.get("/feed.xml", headers={"Accept-Encoding": encoding})
                    whole = r.status_code == 200 and r.content.rstrip().endswith(b"</rss>")
                    if not whole:
                        counts["errors"].append(f"status {r.status_code}, {len(r.content)} bytes")
                except httpx.HTTPError as err:
                    whole = False
                    counts["errors"].append(f"{type(err).__name__}: {err}")
                counts["ok" if whole else "failed"] += 1
async def main():
    await asyncio.gather(*(loop() for _ in range(clients)))
asyncio.run(main())
print(json.dumps(counts))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_no_failed_response_under_load_while_ten_runs_republish(tmp_path: Path) -> None:
    """Load on /feed.xml (10 concurrent keep-alive clients) while ``digest publish``
    rewrites every file ten times: every response complete and whole."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for dump in (DUMP_000, DUMP_002):
        (inbox / dump.name).write_bytes(dump.read_bytes())
    config = write_toml(
        tmp_path / "digest.toml",
        {"sources": {"inbox": "inbox"}, "email": {"to": []}, "feed": {"output_dir": "site"}},
    )
    cli = [sys.executable, "-m", "digest.cli", "-c", str(config)]
    subprocess.run([*cli, "run", "--no-send"], check=True, capture_output=True, cwd=ROOT)
    served = Served(tmp_path / "site")
    stop = tmp_path / "stop"
    load = subprocess.Popen(
        [sys.executable, "-c", _LOAD, served.base, str(stop), "10"], stdout=subprocess.PIPE, text=True
    )
    try:
        started = time.monotonic()
        for _ in range(10):
            subprocess.run([*cli, "publish"], check=True, capture_output=True, cwd=ROOT)
        took = time.monotonic() - started
    finally:
        stop.touch()
        out, _ = load.communicate(timeout=120)
        served.server.stop()
    counts = json.loads(out)
    print(
        f"under load while 10 runs republished ({took:.0f}s): {counts['ok']} complete responses, "
        f"{counts['failed']} failed; gzip compressions {served.files.gzip_cache.compressions}"
    )
    assert counts["failed"] == 0, counts["errors"][:5]
    assert counts["ok"] > 100
