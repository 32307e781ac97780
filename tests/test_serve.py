"""`digest serve` and `digest run` as real processes: the settle rule, on_ingest, the web
server, clean shutdown, no resend on restart, a missed digest sent once, the lock."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest

from digest.config import Config, load_config
from digest.lock import run_lock
from digest.store import Store
from tests.helpers import DUMP_000, DUMP_002, ROOT, wait_for, write_toml
from tests.smtpsink import Recorder, StartServer

pytestmark = pytest.mark.slow  # runs the service end to end

RECIPIENTS = ["a@example.org", "b@example.org"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_config(tmp_path: Path, inbox: Path, **sections: dict[str, Any]) -> Path:
    data: dict[str, dict[str, Any]] = {
        "digest": {"title": "Test Digest", "base_url": "https://example.org/digest/"},
        "sources": {"inbox": str(inbox), "settle_seconds": 1},
        "state": {"url": "sqlite:///var/digest.db"},
        "feed": {"output_dir": "var/site"},
        "email": {"outbox": "var/outbox", "from": "Paper Digest <digest@example.org>", "to": RECIPIENTS},
        "schedule": {"poll": "1s", "digest": "on_ingest"},
    }
    for name, table in sections.items():
        data.setdefault(name, {}).update(table)
    return write_toml(tmp_path / "digest.toml", data)


class Serve:
    """A `digest serve` subprocess with its log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "-c", str(config), "serve"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def services() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for s in started:
        s.kill()


def emails(outbox: Path) -> dict[str, list[tuple[str, str, int, int]]]:
    """recipient → [(Subject, Message-ID, inode, mtime_ns)] of every .eml in the outbox."""
    out: dict[str, list[tuple[str, str, int, int]]] = {}
    for path in sorted(outbox.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        st = path.stat()
        out.setdefault(str(msg["To"]), []).append(
            (str(msg["Subject"]), str(msg["Message-ID"]), st.st_ino, st.st_mtime_ns)
        )
    return out


def state(config: Config) -> dict[str, Any]:
    store = Store.open(config.state.url)
    try:
        return store.counts()
    finally:
        store.close()


def write_slowly(source: Path, target: Path, chunks: int = 12, pause: float = 0.12) -> None:
    """Writes ``source`` into ``target`` in pieces, like a browser saving a page."""
    data = source.read_bytes()
    step = len(data) // chunks + 1
    with target.open("wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            time.sleep(pause)


def finished_since(run: dict[str, Any] | None, moment: datetime) -> bool:
    """True when a /healthz job entry finished after ``moment`` (a running job has no end)."""
    return bool(run and run["finished"] and datetime.fromisoformat(run["finished"]) > moment)


def test_serve_end_to_end(
    tmp_path: Path, inbox: Path, services: list[Serve], start_server: StartServer
) -> None:
    port = free_port()
    smtp = Recorder()
    smtp_port = start_server(smtp).port
    path = service_config(
        tmp_path,
        inbox,
        http={"listen": f"127.0.0.1:{port}"},
        email={"transport": "smtp"},
        **{"email.smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none", "timeout": "5s"}},
    )
    config = load_config(path, {})
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    services.append(serve := Serve(path, log))
    wait_for("/healthz", lambda: httpx.get(f"{base}/healthz").status_code == 200)

    # 000 arrives slowly (about 1.5 s, in 12 pieces): the 1 s poll sees it still being
    # written (settle_seconds = 1) and must not read half of it.
    write_slowly(DUMP_000, inbox / DUMP_000.name)
    wait_for("the first digest", lambda: state(config)["deliveries"]["sent"] == 2)
    assert "(1 still being written)" in serve.text()
    store = Store.open(config.state.url)
    try:
        dumps = store.dump_records()
        assert [(d.name, d.status, d.papers_found) for d in dumps] == [(DUMP_000.name, "ingested", 81)]
    finally:
        store.close()

    first = httpx.get(f"{base}/feed.xml")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/rss+xml"
    parsed = feedparser.parse(first.content)
    assert parsed.bozo == 0 and len(parsed.entries) == 81

    (inbox / DUMP_002.name).write_bytes(DUMP_002.read_bytes())
    wait_for("the second digest", lambda: state(config)["deliveries"]["sent"] == 4)

    store = Store.open(config.state.url)
    try:
        latest = store.digests()
        assert len(latest) == 2
        newest = [p.paper.title for p in store.digest_papers(latest[0])]
        # Both digests are within feed.window (7 days), so the feed holds every paper of both.
        expected = newest + [p.paper.title for p in store.digest_papers(latest[1])]
    finally:
        store.close()
    feed = httpx.get(f"{base}/feed.xml")
    parsed = feedparser.parse(feed.content)
    assert parsed.bozo == 0
    assert len(newest) == 216 and len(expected) == 297
    assert sorted(" ".join(e.title.split()) for e in parsed.entries) == sorted(
        " ".join(t.split()) for t in expected
    )

    # Feed readers poll with conditional requests.
    etag, modified = feed.headers["etag"], feed.headers["last-modified"]
    assert httpx.get(f"{base}/feed.xml", headers={"If-None-Match": etag}).status_code == 304
    assert httpx.get(f"{base}/feed.xml", headers={"If-Modified-Since": modified}).status_code == 304
    assert httpx.get(f"{base}/").status_code == 200  # the archive index

    # Every recipient got exactly one email per digest, over SMTP.
    assert sorted(r for m in smtp.accepted for r in m.rcpt_tos) == sorted(RECIPIENTS * 2)
    for rcpt in RECIPIENTS:
        got = smtp.to(rcpt)
        assert len(got) == 2 and len({str(m.message["Message-ID"]) for m in got}) == 2
        assert all(m.rcpt_tos == (rcpt,) for m in got)  # one message per recipient
    accepted = len(smtp.accepted)

    # A poll may be under way (its ok is None until it ends; seen on a loaded machine).
    def finished(health: httpx.Response) -> dict[str, Any] | None:
        body: dict[str, Any] = health.json()
        return body if health.status_code == 200 and body["last_poll"]["ok"] is not None else None

    body = wait_for("a finished poll", lambda: finished(httpx.get(f"{base}/healthz")))
    assert body["status"] == "ok"
    assert body["last_digest"]["slug"] == latest[0].slug and body["last_digest"]["papers"] == 216
    assert body["last_poll"]["ok"] is True
    assert body["next_run"]["poll"] is not None
    assert body["deliveries"] == {"pending": 0, "failed": 0, "sent": 4, "cancelled": 0}
    assert body["failed_dumps"] == []

    assert serve.stop() == 0
    assert "paper-digest service stopped" in serve.text()

    # A restart finds nothing to do: no digest, and no message is written again.
    restarted_at = datetime.now(UTC)
    services.append(again := Serve(path, tmp_path / "serve2.log"))
    wait_for(
        "a poll after the restart",
        lambda: finished_since(httpx.get(f"{base}/healthz").json()["last_poll"], restarted_at),
    )
    assert again.stop() == 0
    assert len(smtp.accepted) == accepted  # nothing sent again
    counts = state(config)
    assert counts["digests"] == 2 and counts["deliveries"]["sent"] == 4


def test_missed_digest_is_sent_once_on_start(tmp_path: Path, inbox: Path, services: list[Serve]) -> None:
    for dump in (DUMP_000, DUMP_002):
        target = inbox / dump.name
        target.write_bytes(dump.read_bytes())
        os.utime(target, (time.time() - 60, time.time() - 60))  # settled long ago
    # The digest was due two minutes ago, while no service was running.
    due = datetime.now(UTC) - timedelta(minutes=2)
    path = service_config(tmp_path, inbox, schedule={"digest": f"{due.minute} {due.hour} * * *"})
    config = load_config(path, {})

    services.append(first := Serve(path, tmp_path / "serve.log"))
    wait_for("the missed digest", lambda: state(config)["deliveries"]["sent"] == 2)
    assert first.stop() == 0
    assert "was missed while the service was stopped" in first.text()
    sent = emails(config.email.outbox)
    assert {r: len(rows) for r, rows in sent.items()} == {r: 1 for r in RECIPIENTS}

    # Started again (still within the misfire grace): the missed digest was already run.
    started = datetime.now(UTC)
    services.append(second := Serve(path, tmp_path / "serve2.log"))

    def polled_since_restart() -> bool:
        store = Store.open(config.state.url)
        try:
            run = store.last_job_run("poll", finished=True)
            return run is not None and run.started > started
        finally:
            store.close()

    wait_for("a poll after the restart", polled_since_restart)
    assert second.stop() == 0
    assert "was missed" not in second.text()
    assert emails(config.email.outbox) == sent
    assert state(config)["digests"] == 1


def run_cli(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "-c", str(config), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_runs_at_once_send_one_digest(tmp_path: Path, inbox: Path) -> None:
    for dump in (DUMP_000, DUMP_002):
        (inbox / dump.name).write_bytes(dump.read_bytes())
    path = service_config(tmp_path, inbox)
    config = load_config(path, {})
    Store.open(config.state.url).close()  # the schema exists before the race
    procs = [run_cli(path, "run", "--wait", "60") for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    summaries = sorted(out for out, _ in outs)
    assert "no digest" in summaries[1] or "no digest" in summaries[0]
    counts = state(config)
    assert counts["digests"] == 1 and counts["deliveries"]["sent"] == 2
    sent = emails(config.email.outbox)
    assert {r: len(rows) for r, rows in sent.items()} == {r: 1 for r in RECIPIENTS}


def test_a_run_gives_up_clearly_while_another_holds_the_lock(tmp_path: Path, inbox: Path) -> None:
    (inbox / DUMP_000.name).write_bytes(DUMP_000.read_bytes())
    path = service_config(tmp_path, inbox)
    config = load_config(path, {})
    with run_lock(config.lock_path):
        proc = run_cli(path, "run")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith("digest: error: another paper-digest run holds")
    assert state(config)["digests"] == 0


def test_a_second_serve_is_refused(tmp_path: Path, inbox: Path, services: list[Serve]) -> None:
    path = service_config(tmp_path, inbox)
    config = load_config(path, {})
    services.append(first := Serve(path, tmp_path / "serve.log"))
    wait_for("the first service", lambda: "service started" in first.text())
    proc = run_cli(path, "serve")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "another `digest serve` is already running against this state" in err
    assert first.stop(signal.SIGINT) == 0  # Ctrl-C stops it cleanly too
    assert "SIGINT received" in first.text() and "Traceback" not in first.text()
    assert config.lock_path.exists()
