"""The service's jobs in-process against a real SQLite state, with a fixed clock: the
[schedule] and [http] config, the missed-digest rule, job records and /healthz."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import Config
from digest.errors import ConfigError
from digest.lock import run_lock
from digest.pipeline import run_once
from digest.schedule import DIGEST, POLL, Service, digest_trigger, missed_digest
from digest.store import Store
from digest.transports import make_transport
from tests.helpers import DUMP_000, DUMP_002, NOW, MakeConfig, drop

# --- config ---------------------------------------------------------------------------------


def test_schedule_defaults(config: Config) -> None:
    assert config.schedule.poll == 300
    assert config.schedule.digest == "0 7 * * *"
    assert config.schedule.misfire_grace == 6 * 3600
    assert config.http.address is None  # no web server unless asked


def test_schedule_and_http_values(make_config: MakeConfig) -> None:
    config = make_config(
        schedule={"poll": "30s", "digest": "30 6 * * MON-FRI", "misfire_grace": "1h30m"},
        http={"listen": "127.0.0.1:8080"},
    )
    assert config.schedule.poll == 30
    assert config.schedule.digest == "30 6 * * mon-fri"
    assert config.schedule.misfire_grace == 5400
    assert config.http.address == ("127.0.0.1", 8080)
    assert make_config(http={"listen": "[::1]:9000"}).http.address == ("::1", 9000)
    assert make_config(schedule={"digest": "on_ingest"}).schedule.on_ingest


@pytest.mark.parametrize("weekday", ["1", "1-5", "0", "7", "*/2", "mon,3"])
def test_numeric_weekdays_are_refused(make_config: MakeConfig, weekday: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(schedule={"digest": f"0 7 * * {weekday}"})
    message = str(caught.value)
    assert message.startswith("config key 'schedule.digest': weekday field")
    assert "Monday as 0" in message and "mon-fri" in message


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("digest", "0 7 * *", "has 4 fields"),
        ("digest", "0 25 * * *", "not a valid crontab line"),
        ("digest", "daily", "has 1 fields"),
        ("poll", "5 minutes", "is not a duration"),
        ("poll", "0s", "longer than 0 seconds"),
        ("misfire_grace", -60, "is not a duration"),
    ],
)
def test_bad_schedule_values_name_the_key(
    make_config: MakeConfig, key: str, value: object, needle: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^config key 'schedule\.{key}': .*{needle}"):
        make_config(schedule={key: value})


@pytest.mark.parametrize("listen", ["8080", "localhost", "127.0.0.1:http", "127.0.0.1:70000", ":8080"])
def test_bad_listen_names_the_key(make_config: MakeConfig, listen: str) -> None:
    with pytest.raises(ConfigError, match=r"^config key 'http\.listen': .* is not host:port"):
        make_config(http={"listen": listen})


# --- the missed-digest rule -------------------------------------------------------------------


@pytest.fixture
def daily(make_config: MakeConfig) -> Config:
    return make_config(digest={"timezone": "Europe/Berlin"}, schedule={"digest": "0 7 * * *"})


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A Berlin wall-clock time in November (UTC+1) as UTC."""
    return datetime(2026, 11, day, hour - 1, minute, tzinfo=UTC)


def test_a_digest_missed_within_the_grace_runs(daily: Config) -> None:
    trigger = digest_trigger(daily)
    grace = daily.schedule.misfire_grace
    # Down from before 07:00 Berlin until 09:00: the 07:00 digest is due.
    assert missed_digest(trigger, berlin(21, 7, 0), berlin(22, 9), grace) == berlin(22, 7)
    assert missed_digest(trigger, None, berlin(22, 9), grace) == berlin(22, 7)


def test_a_digest_already_run_is_not_run_again(daily: Config) -> None:
    trigger = digest_trigger(daily)
    grace = daily.schedule.misfire_grace
    assert missed_digest(trigger, berlin(22, 7, 0), berlin(22, 9), grace) is None  # ran on time
    assert missed_digest(trigger, berlin(22, 9, 0), berlin(22, 9, 5), grace) is None  # caught up
    assert missed_digest(trigger, berlin(22, 6, 0), berlin(22, 6, 30), grace) is None  # not due yet


def test_a_digest_missed_beyond_the_grace_is_left_to_the_next(daily: Config) -> None:
    trigger = digest_trigger(daily)
    assert missed_digest(trigger, berlin(21, 7), berlin(22, 13, 1), daily.schedule.misfire_grace) is None


# --- jobs in-process ----------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def settled(inbox: Path) -> None:
    """Makes every dump look written long ago (the ``service`` clock is real time)."""
    for path in inbox.iterdir():
        os.utime(path, (time.time() - 3600, time.time() - 3600))


@pytest.fixture
def service(config: Config, store: Store) -> Service:
    """A service on the default config and ``store``, its clock at real time (the test's start)."""
    return Service(config, store, Clock(datetime.now(UTC)))


def test_poll_ingests_and_the_digest_job_sends(service: Service, store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000)
    settled(inbox)
    service.poll_job()
    assert store.counts()["papers"] == 81
    assert store.digests() == []  # a poll only ingests when a crontab sends the digest
    assert store.deliveries() == []
    poll = store.last_job_run(POLL)
    assert poll is not None and poll.ok is True
    assert poll.summary.startswith("poll: 1 file seen, 1 ingested, 0 failed, 81 new papers; no digest")

    service.digest_job()
    (digest,) = store.digests()
    assert digest.paper_count == 81
    assert [d.status for d in store.deliveries()] == ["sent"]
    run = store.last_job_run(DIGEST)
    assert (
        run is not None
        and run.ok is True
        and f"digest {digest.slug} (81 papers); " in run.summary
        and " files published; 1 sent, 0 pending, 0 failed" in run.summary
    )

    status, body = service.health()
    assert status == 200 and body["status"] == "ok"
    assert body["last_digest"]["slug"] == digest.slug
    assert body["last_poll"]["summary"] == poll.summary


def test_unsettled_files_wait_for_a_later_poll(service: Service, store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000)  # just written: younger than settle_seconds (10 s by default)
    service.poll_job()
    assert store.counts()["papers"] == 0
    run = store.last_job_run(POLL)
    assert run is not None and "(1 still being written)" in run.summary


def test_on_ingest_sends_after_a_poll_with_new_papers(make_config: MakeConfig, inbox: Path) -> None:
    config = make_config(schedule={"digest": "on_ingest"})
    with Store.open(config.state.url) as store:
        service = Service(config, store, Clock(datetime.now(UTC)))
        service.poll_job()  # nothing yet: no digest
        assert store.digests() == []
        drop(inbox, DUMP_000)
        settled(inbox)
        service.poll_job()
        assert [d.paper_count for d in store.digests()] == [81]
        drop(inbox, DUMP_002)
        settled(inbox)
        service.poll_job()
        service.poll_job()  # nothing new: no third digest
        assert [d.paper_count for d in store.digests()] == [216, 81]
        assert [d.status for d in store.deliveries()] == ["sent", "sent"]


def test_a_failing_job_is_recorded_and_healthz_says_503_until_one_succeeds(
    service: Service, store: Store, inbox: Path
) -> None:
    inbox.rmdir()
    service.poll_job()  # must not raise: the service keeps running
    run = store.last_job_run(POLL)
    assert run is not None and run.ok is False
    assert "poll failed:" in run.summary and "inbox folder does not exist" in run.summary
    status, body = service.health()
    assert status == 503 and body["status"] == "failing" and "inbox folder does not exist" in body["error"]

    inbox.mkdir()
    service.poll_job()
    assert service.health()[0] == 200


def test_health_survives_a_restart(service: Service, config: Config, store: Store, inbox: Path) -> None:
    inbox.rmdir()
    service.digest_job()
    # A new service (a restart) reads the same records.
    status, body = Service(config, store, Clock(datetime.now(UTC))).health()
    assert status == 503
    assert body["last_digest_job"]["ok"] is False and body["last_poll"] is None


def test_a_poll_skips_while_another_run_holds_the_lock(
    service: Service, config: Config, store: Store, inbox: Path
) -> None:
    drop(inbox, DUMP_000)
    settled(inbox)
    with run_lock(config.lock_path):
        service.poll_job()
    run = store.last_job_run(POLL)
    assert run is not None and run.summary == "poll: skipped, another paper-digest run holds the lock"
    assert store.counts()["papers"] == 0
    service.poll_job()  # the next poll does the work
    assert store.counts()["papers"] == 81


def test_the_digest_job_waits_for_the_lock(
    service: Service, config: Config, store: Store, inbox: Path
) -> None:
    drop(inbox, DUMP_000)
    settled(inbox)
    held, release = threading.Event(), threading.Event()

    def other_run() -> None:
        with run_lock(config.lock_path):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=other_run)
    thread.start()
    held.wait(30)
    threading.Timer(1.0, release.set).start()
    service.digest_job()
    thread.join()
    assert [d.paper_count for d in store.digests()] == [81]
    run = store.last_job_run(DIGEST)
    assert run is not None and run.ok is True


def test_a_stopping_service_starts_no_job(service: Service, store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000)
    settled(inbox)
    service.stopping.set()
    service.digest_job()
    service.poll_job()
    assert store.last_job_run() is None and store.counts()["papers"] == 0


def test_start_schedules_a_missed_digest_once(make_config: MakeConfig, inbox: Path) -> None:
    config = make_config(schedule={"digest": "0 7 * * *"})
    with Store.open(config.state.url) as store:
        at_nine = Clock(NOW.replace(hour=9))  # NOW is 07:00 UTC: the digest was due two hours ago
        first = Service(config, store, at_nine)
        first.schedule_jobs()
        assert {j.id for j in first.scheduler.get_jobs()} == {POLL, DIGEST, "digest-missed"}
        first.digest_job()  # what the scheduler runs

        again = Service(config, store, Clock(NOW.replace(hour=9, minute=5)))
        again.schedule_jobs()
        assert {j.id for j in again.scheduler.get_jobs()} == {POLL, DIGEST}


def test_a_digest_run_by_hand_counts_as_done(make_config: MakeConfig, inbox: Path) -> None:
    config = make_config(schedule={"digest": "0 7 * * *"})
    with Store.open(config.state.url) as store:
        drop(inbox, DUMP_000)
        # `digest run` at 08:00 after the service missed 07:00:
        report = run_once(config, store, make_transport(config), NOW + timedelta(hours=1))
        assert report.digest is not None
        service = Service(config, store, Clock(NOW + timedelta(hours=2)))
        service.schedule_jobs()
        assert {j.id for j in service.scheduler.get_jobs()} == {POLL, DIGEST}


def test_on_ingest_has_no_digest_job(make_config: MakeConfig) -> None:
    config = make_config(schedule={"digest": "on_ingest"})
    with Store.open(config.state.url) as store:
        service = Service(config, store, Clock(NOW))
        service.schedule_jobs()
        assert [j.id for j in service.scheduler.get_jobs()] == [POLL]


def test_a_failed_digest_job_does_not_count_as_done(make_config: MakeConfig, inbox: Path) -> None:
    config = make_config(schedule={"digest": "0 7 * * *"})
    with Store.open(config.state.url) as store:
        inbox.rmdir()
        Service(config, store, Clock(NOW.replace(hour=9))).digest_job()  # fails: no inbox
        inbox.mkdir()
        again = Service(config, store, Clock(NOW.replace(hour=9, minute=5)))
        again.schedule_jobs()
        assert "digest-missed" in {j.id for j in again.scheduler.get_jobs()}


def test_a_later_good_poll_does_not_hide_a_failed_digest_job(
    service: Service, store: Store, inbox: Path
) -> None:
    inbox.rmdir()
    service.digest_job()
    inbox.mkdir()
    service.poll_job()
    status, body = service.health()
    assert status == 503 and body["last_poll"]["ok"] is True
    assert body["error"].startswith("digest failed:")
    service.digest_job()
    assert service.health()[0] == 200
