"""Hostile servers for remote sources (issue 18), against a real HTTP server on 127.0.0.1:
a stacked-gzip bomb, HTML pages answered with 200, a long Retry-After."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest

from digest.fetch import fetch_all
from digest.store import Store
from tests.helpers import DUMP_000, NOW, ROOT, MakeConfig
from tests.test_fetch import Server, fetch_config, fetched, send
from tests.test_fetch import client as client
from tests.test_fetch import server as server


def stacked_bomb(gib: int = 1) -> bytes:
    """``gzip(gzip(zeros))``: 1,827 bytes that unpack to ``gib`` GiB."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    layer = b"".join(inner.compress(block) for _ in range(1024 * gib)) + inner.flush()
    return gzip.compress(layer, 9)


# Runs `digest fetch` in a child and prints the child's peak RSS (KiB) as its last line.
_MEASURE = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(proc.stderr)
print(proc.returncode)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@pytest.mark.slow
@pytest.mark.slow
def test_a_stacked_gzip_bomb_is_refused_in_bounded_memory(
    make_config: MakeConfig, inbox: Path, tmp_path: Path, server: Server
) -> None:
    bomb = stacked_bomb()
    assert len(bomb) < 4096
    server.routes["/bomb.txt"] = lambda h: send(h, 200, bomb, Content_Encoding="gzip, gzip")
    fetch_config(make_config, server.url("/bomb.txt"), fetch_max_bytes=32 * 1024 * 1024, fetch_timeout=30)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEASURE,
            sys.executable,
            "-m",
            "digest.cli",
            "-c",
            str(tmp_path / "digest.toml"),
            "fetch",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,  # this checkout's digest package
    )
    code, peak_kib = (int(x) for x in proc.stdout.split()[-2:])
    print(f"digest fetch against the 1 GiB stacked-gzip bomb: peak RSS {peak_kib / 1024:.1f} MiB")
    assert code == 1, proc.stderr
    assert "larger (decoded) than sources.fetch_max_bytes" in proc.stderr
    assert peak_kib < 150 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"
    assert fetched(inbox) == []


def test_decoding_is_bounded_and_exact_for_every_chain() -> None:
    from digest.fetch_body import BodyError, codings, decoded

    data = bytes(range(256)) * 4000 + b"tail"
    deflated = zlib.compress(data)
    raw = zlib.compressobj(wbits=-15)
    for chain, body in [
        ([], data),
        (["gzip"], gzip.compress(data)),
        (["gzip", "gzip"], gzip.compress(gzip.compress(data))),
        (["deflate"], deflated),
        (["deflate"], raw.compress(data) + raw.flush()),
        (["deflate", "gzip"], gzip.compress(deflated)),
        (["gzip"], gzip.compress(data[:10]) + gzip.compress(data[10:])),  # two members
    ]:
        pieces = list(decoded((body[i : i + 333] for i in range(0, len(body), 333)), chain, step=4096))
        assert b"".join(pieces) == data, chain
        assert max(map(len, pieces)) <= 4096
    with pytest.raises(BodyError, match="cut short"):
        b"".join(decoded([gzip.compress(data)[:-20]], ["gzip"]))
    with pytest.raises(BodyError, match="not supported"):
        codings("br")
    with pytest.raises(BodyError, match="stacks 4"):
        codings("gzip, gzip, gzip, gzip")
    assert codings("GZip, identity") == ["gzip"]


@pytest.mark.parametrize(
    ("headers", "body", "evidence"),
    [
        (
            {"Content_Type": "text/html; charset=utf-8"},
            b"new\nDaily Papers\n",
            "Content-Type: text/html; charset=utf-8",
        ),
        (
            {"Content_Type": "text/plain"},
            b"\n  <!DOCTYPE html>\n<html><head></head><body><h1>Sign in</h1></body></html>\n",
            "the body starts '<!DOCTYPE html>'",
        ),
        ({}, gzip.compress(b"<html lang=en>\n<h1>503</h1>\n"), "the body starts '<html lang=en>'"),
    ],
    ids=["content-type", "doctype", "gzipped-html"],
)
def test_an_html_page_answered_with_200_is_refused_and_nothing_written(
    make_config: MakeConfig,
    inbox: Path,
    server: Server,
    client: httpx.Client,
    headers: dict[str, str],
    body: bytes,
    evidence: str,
) -> None:
    if body.startswith(b"\x1f\x8b"):
        headers = {**headers, "Content_Encoding": "gzip"}
    server.routes["/page"] = lambda h: send(h, 200, body, **headers)
    server.routes["/daily.txt"] = lambda h: send(h, 200, DUMP_000.read_bytes(), Content_Type="text/plain")
    config = fetch_config(make_config, server.url("/page"), server.url("/daily.txt"))
    store = Store.open(config.state.url)
    try:
        report = fetch_all(config, store, client, NOW, force=True)
    finally:
        store.close()
    assert [r.outcome for r in report.results] == ["failed", "written"]
    assert report.results[0].error == (
        f"HTTP 200 with an HTML page ({evidence}), not a dump; nothing written "
        "(point sources.urls at the page's text or the daily-papers JSON)"
    )
    assert server.hits("/page") == 1  # not retried
    assert len(fetched(inbox)) == 1


def test_a_long_retry_after_is_left_for_the_next_run_not_slept(
    make_config: MakeConfig,
    inbox: Path,
    server: Server,
    client: httpx.Client,
) -> None:
    server.routes["/busy"] = lambda h: send(h, 503, b"busy", Retry_After="3600")
    config = fetch_config(make_config, server.url("/busy"), fetch_retries=3)
    store = Store.open(config.state.url)
    try:
        started = time.monotonic()
        report = fetch_all(config, store, client, NOW, force=True)
        elapsed = time.monotonic() - started
    finally:
        store.close()
    assert elapsed < 5
    assert server.hits("/busy") == 1
    assert report.results[0].error == (
        "HTTP 503 Service Unavailable; the server asks to wait 3600s (Retry-After), left for the next run"
    )


def test_only_codings_it_can_bound_are_asked_for(
    make_config: MakeConfig,
    inbox: Path,
    server: Server,
    client: httpx.Client,
) -> None:
    server.routes["/daily.txt"] = lambda h: send(h, 200, DUMP_000.read_bytes())
    config = fetch_config(make_config, server.url("/daily.txt"))
    store = Store.open(config.state.url)
    try:
        fetch_all(config, store, client, NOW, force=True)
    finally:
        store.close()
    assert server.requests[0][1]["Accept-Encoding"] == "gzip, deflate"
    json.dumps(server.requests)  # headers are plain strings
