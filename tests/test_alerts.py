"""Dump-health alerts: the pure decider (digest/alerts.py) and a simulated week of the
service on a fixed clock against a real HTTP source: a dump missing on Wednesday and the
source failing on Thursday give exactly one alert and one "resolved" email per
incident, and /healthz says ``degraded`` while one is open."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bench import gen
from digest import status
from digest.alerts import Observed, Rules, decide, slots_before
from digest.cli import main
from digest.config.readers import parse_expect
from digest.errors import ConfigError
from digest.schedule import Service
from digest.store import Store
from tests.helpers import DUMP_000, MakeConfig, drop

UTC_ZONE = ZoneInfo("UTC")
RULES = Rules(
    expect="mon-fri 09:00", expect_grace=timedelta(hours=3), alert_after=3, tz=UTC_ZONE, urls=("u",)
)
MON = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """``day`` days after Monday 2026-11-23, at hour:minute UTC."""
    return MON + timedelta(days=day, hours=hour, minutes=minute)


# --- the decider --------------------------------------------------------------------------


def test_expect_is_weekdays_and_a_time() -> None:
    assert parse_expect("mon-fri 09:00") == (frozenset(range(5)), 9, 0)
    assert parse_expect("sat,sun 7:30") == (frozenset({5, 6}), 7, 30)
    assert parse_expect("fri-mon 23:59") == (frozenset({4, 5, 6, 0}), 23, 59)
    assert parse_expect("daily 00:00") == (frozenset(range(7)), 0, 0)
    for bad in ("mon-fri", "9:00", "mon 25:00", "funday 09:00", "mon 9:5"):
        with pytest.raises(ValueError):
            parse_expect(bad)


def test_a_bad_expect_names_the_key(make_config: MakeConfig) -> None:
    with pytest.raises(ConfigError, match=r"sources\.expect.*mon-fri 09:00"):
        make_config(sources={"expect": "weekdays at nine"})


def test_slots_skip_the_weekend_and_use_the_time_zone() -> None:
    assert slots_before(RULES, at(5, 12)) == [at(4, 9), at(3, 9)]  # Saturday: Friday, Thursday
    berlin = Rules("mon-fri 09:00", timedelta(hours=3), 3, ZoneInfo("Europe/Berlin"))
    assert slots_before(berlin, at(0, 8, 30), 1) == [at(0, 8)]  # 09:00 in Berlin is 08:00 UTC


def test_late_opens_after_the_grace_and_clears_when_a_dump_comes() -> None:
    on_time = Observed(now=at(2, 12), last_dump_seen=at(2, 8, 55))
    assert decide(on_time, RULES).open == ()
    early = Observed(now=at(2, 11, 59), last_dump_seen=at(1, 9))  # still within the grace
    assert decide(early, RULES).open == ()
    late = Observed(now=at(2, 12), last_dump_seen=at(1, 9))
    [incident] = decide(late, RULES).open
    assert (incident.kind, incident.key) == ("late", "2026-11-25T09:00+00:00")
    assert "no new dump since Wed 25 Nov 09:00 UTC" in incident.reason
    # Open already: not opened again (no storm), not closed either.
    still = Observed(now=at(2, 18), last_dump_seen=at(1, 9), open=(("late", incident.key),))
    assert decide(still, RULES).open == () and decide(still, RULES).close == ()
    # The next slot passes too: a second incident; the first stays open until a dump comes.
    next_day = Observed(now=at(3, 12), last_dump_seen=at(1, 9), open=(("late", incident.key),))
    assert [i.key for i in decide(next_day, RULES).open] == ["2026-11-26T09:00+00:00"]
    assert decide(next_day, RULES).close == ()
    both = (("late", incident.key), ("late", "2026-11-26T09:00+00:00"))
    came = Observed(now=at(3, 13), last_dump_seen=at(3, 12, 30), open=both)
    assert decide(came, RULES).close == tuple(sorted(both))


def test_fetch_refused_and_small_digest() -> None:
    obs = Observed(
        now=at(0, 10),
        last_dump_seen=at(0, 8),
        fetch_failures=(("u", 3, "connection refused"), ("gone", 9, "x"), ("v", 2, "timeout")),
        refused=(("bad.txt", "ab" * 32, "bad.txt:1: not a dump"),),
        digest_sizes=(("2026-11-23", 3), *((f"d{i}", 40 + i) for i in range(20))),
    )
    opened = {(i.kind, i.key) for i in decide(obs, RULES).open}
    # "gone" is no longer configured; "v" has not failed alert_after times yet.
    assert opened == {("fetch", "u"), ("refused", "bad.txt " + "ab" * 6), ("small", "2026-11-23")}
    normal = Observed(
        now=at(1, 10),
        last_dump_seen=at(1, 8),
        digest_sizes=(("2026-11-24", 12), ("2026-11-23", 3), *((f"d{i}", 40 + i) for i in range(19))),
        open=tuple(sorted(opened)),
    )
    assert set(decide(normal, RULES).close) == opened
    few = Observed(now=at(0, 10), last_dump_seen=at(0, 8), digest_sizes=(("a", 1), ("b", 50), ("c", 50)))
    assert decide(few, RULES).open == ()  # too little history to judge
    one = Observed(now=at(0, 10), last_dump_seen=at(0, 8), digest_sizes=(("z", 1), *obs.digest_sizes[1:]))
    [small] = decide(one, RULES).open
    assert small.reason.startswith("digest z has 1 paper, under a fifth")


# --- a simulated week -----------------------------------------------------------------------


class Source:
    """A real HTTP server on 127.0.0.1 playing the dump source: what it answers depends
    on the simulated clock (``now``)."""

    def __init__(self) -> None:
        self.now = at(0, 8)
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = source.answer()
                self.send_response(status)
                self.send_header("content-type", "text/plain; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/papers.txt"

    def answer(self) -> tuple[int, bytes]:
        day = (self.now - MON).days
        if day == 3:
            return 500, b"internal error"  # Thursday: the source fails all day
        # A new dump each weekday from 08:00; Wednesday it never changes (missing).
        published = [d for d in (0, 1, 4) if (d, 8) <= (day, self.now.hour)]
        newest = published[-1]
        papers = [gen.paper(7, newest * 100 + i) for i in range(5)]
        return 200, gen.render(papers, "spaced", newest + 10).encode()


@pytest.fixture
def source() -> Iterator[Source]:
    s = Source()
    yield s
    s.server.shutdown()


class Clock:
    def __init__(self, source: Source) -> None:
        self.source = source

    def __call__(self) -> datetime:
        return self.source.now


@pytest.mark.slow
def test_a_week_with_a_missing_dump_and_a_failing_source(make_config: MakeConfig, source: Source) -> None:
    config = make_config(
        sources={
            "urls": [source.url],
            "expect": "mon-fri 09:00",
            "expect_grace": "3h",
            "fetch_retries": 0,
            "fetch_timeout": "5s",
            "fetch_interval": "1m",
        },
        email={"to": []},
        alerts={"to": ["ops@example.org"]},
        schedule={"poll": "1h"},
    )
    store = Store.open(config.state.url)
    service = Service(config, store, Clock(source))
    health: dict[datetime, tuple[int, str]] = {}
    try:
        while source.now <= at(5, 12):  # Monday 08:00 to Saturday noon, hourly
            service.poll_job()
            code, body = service.health()
            health[source.now] = (code, body["status"])
            if source.now == at(2, 13):
                assert "no new dump since Wed 25 Nov 09:00 UTC" in body["reason"]
            source.now += timedelta(hours=1)
    finally:
        store.close()

    mails = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(config.email.outbox.glob("*.eml"))
    ]
    subjects = sorted(str(m["Subject"]) for m in mails)
    assert all(str(m["To"]) == "ops@example.org" for m in mails)
    url = source.url
    assert subjects == sorted(
        [
            "[Test Digest] alert: late 2026-11-25T09:00+00:00",
            "[Test Digest] resolved: late 2026-11-25T09:00+00:00",
            f"[Test Digest] alert: fetch {url}",
            f"[Test Digest] resolved: fetch {url}",
            "[Test Digest] alert: late 2026-11-26T09:00+00:00",
            "[Test Digest] resolved: late 2026-11-26T09:00+00:00",
        ]
    )
    # /healthz: ok until Wednesday's grace ran out, degraded while an incident was open.
    assert health[at(2, 11)] == (200, "ok")
    assert health[at(2, 12)] == (200, "degraded")
    for hour in range(2, 24):  # Thursday: the fetch failed three times by 02:00
        assert health[at(3, hour)] == (200, "degraded")
    assert health[at(4, 7)] == (200, "degraded")  # Friday's dump comes at 08:00
    assert health[at(4, 8)] == (200, "ok")
    assert all(v == (200, "ok") for t, v in health.items() if t >= at(4, 8))
    assert all(v == (200, "ok") for t, v in health.items() if t < at(2, 12))


def test_a_run_by_hand_raises_no_alert_the_service_does_once(
    make_config: MakeConfig, inbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``digest run`` by hand prints what went wrong and leaves alerts to the service: it
    neither opens an incident nor mails one, however often it is run. The service's next
    job opens it and mails it once; more runs and jobs mail nothing more."""
    config = make_config(email={"to": []}, alerts={"to": ["ops@example.org"]})
    (inbox / "broken.txt").write_bytes(b"\x00\x01\x02 not a listing page\n")
    drop(inbox, DUMP_000)

    def alert_mails() -> list[str]:
        return [
            str(email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"])
            for p in sorted(config.email.outbox.glob("*.eml"))
        ]

    for _ in range(3):
        main(["-c", str(config.path), "run"])
    assert "failed dump: " in capsys.readouterr().err  # the operator sees it at once
    assert alert_mails() == []
    store = Store.open(config.state.url)
    try:
        assert status.snapshot(store).incidents == ()
        service = Service(config, store)
        service.poll_job()
        [(kind, _, _, _)] = status.snapshot(store).incidents
        assert kind == "refused"
        assert len(alert_mails()) == 1 and alert_mails()[0].startswith(
            "[Test Digest] alert: refused broken.txt"
        )
        service.poll_job()
        main(["-c", str(config.path), "run"])
        service.poll_job()
    finally:
        store.close()
    assert len(alert_mails()) == 1
