"""``/metrics`` on the service's real web server, parsed by prometheus-client's own text
parser; every state value equals what ``digest status --json`` prints."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from digest.cli import main
from digest.config import sqlite_path
from digest.schedule import Service
from digest.store import Store
from digest.web import WebServer, make_app
from tests.helpers import DUMP_000, MakeConfig, drop
from tests.smtpsink import Recorder, StartServer, free_port
from tests.test_bounce_run import dsn


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def ts(value: str | None) -> float:
    return datetime.fromisoformat(value).timestamp() if value else 0.0


def test_metrics_parse_and_match_status_json(
    make_config: MakeConfig,
    start_server: StartServer,
    inbox: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = Recorder(rcpt_replies={"bob@example.org": "550 5.1.1 <bob@example.org>: no such user"})
    server = start_server(handler)
    dead = f"http://127.0.0.1:{free_port()}/papers.txt"  # nothing listens: every fetch fails
    box = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    config = make_config(
        sources={"urls": [dead], "fetch_retries": 0, "fetch_timeout": "2s"},
        email={
            "transport": "smtp",
            "to": ["ann@example.org", "bob@example.org"],
            "bounces_source": f"maildir:{box}",
        },
        email__smtp={"host": "127.0.0.1", "port": server.port, "security": "none", "timeout": "5s"},
    )
    db = sqlite_path(config.state.url)
    assert db is not None
    drop(inbox, DUMP_000)
    past = time.time() - 3600
    os.utime(inbox / DUMP_000.name, (past, past))
    store = Store.open(config.state.url)
    service = Service(config, store, lambda: datetime.now(UTC))
    web = WebServer(make_app(config.feed.output_dir, service.health, service.metrics.render), "127.0.0.1", 0)
    web.start()
    try:
        service.poll_job()
        service.digest_job()  # bob: 550 5.1.1 at RCPT TO, a hard bounce
        # A soft bounce for ann, read by the next poll.
        (box / "new" / "1.ann").write_bytes(dsn("ann@example.org", "4.2.2", "digest@example.org"))
        service.poll_job()
        assert list((box / "new").iterdir()) == []
        from digest.store.subscribers import Subscribers

        subs = Subscribers(store)
        subs.add("carol@example.org", datetime.now(UTC), status="active")
        subs.add("dave@example.org", datetime.now(UTC), status="bounced")
        host, port = web.address
        response = httpx.get(f"http://{host}:{port}/metrics", timeout=10)
    finally:
        web.stop()
        store.close()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = samples(response.text)

    capsys.readouterr()
    assert main(["-c", str(config.path), "status", "--json"]) == 0
    body: dict[str, Any] = json.loads(capsys.readouterr().out)

    assert body["deliveries"] == {"pending": 0, "sent": 1, "failed": 1, "cancelled": 0}
    for status, n in body["deliveries"].items():
        assert got[("digest_deliveries", (("status", status),))] == n
    for status, n in body["dumps"].items():
        assert got[("digest_dumps_total", (("status", status),))] == n
    assert got[("digest_papers", ())] == body["papers"] == 81
    assert got[("digest_papers_waiting", ())] == body["papers_waiting"]
    assert got[("digest_digests_total", ())] == body["digests"] == 1
    for status, n in body["subscribers"].items():
        assert got[("digest_subscribers", (("status", status),))] == n
    # bob (refused at RCPT TO) and dave; ann's one soft bounce leaves her active.
    assert body["subscribers"] == {"pending": 0, "active": 2, "unsubscribed": 0, "bounced": 2}
    assert body["bounces"] == {"hard": 1, "soft": 1}
    for kind, n in body["bounces"].items():
        assert got[("digest_bounces_total", (("kind", kind),))] == n
    [failure] = body["fetch_failures"]
    assert got[("digest_fetch_failures", (("url", dead),))] == failure["failures"] == 1
    assert got[("digest_last_digest_timestamp_seconds", ())] == pytest.approx(
        ts(body["last_digest"]["created"])
    )
    # The digest job failed (bob's 550): it has no successful run, a time of 0.
    assert ts(body["last_successful"]["poll"]) > 0 and body["last_successful"]["digest"] is None
    for job in ("poll", "digest"):
        expected = ts(body["last_successful"][job])
        assert got[("digest_last_success_timestamp_seconds", (("job", job),))] == pytest.approx(expected)
    # Measured by this process: two messages handed to the SMTP server, one refused for good.
    assert got[("digest_send_seconds_count", ())] == 2
    assert got[("digest_send_seconds_sum", ())] > 0
    assert got[("digest_sends_total", (("result", "accepted"),))] == 1
    assert got[("digest_sends_total", (("result", "permanent"),))] == 1
    assert got[("digest_incidents_open", (("kind", "late"),))] == 0
    assert (
        got[("digest_incidents_open", (("kind", "fetch"),))] == len(body["incidents"]) == 0
    )  # 1 failure < 3
