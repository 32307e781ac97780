"""The long-running service, ``digest serve``: APScheduler 3 jobs over ``pipeline.run_once``.

Two jobs, each ``max_instances=1``, coalesced, with ``schedule.misfire_grace``:

- **poll**, every ``schedule.poll``: reads the delivery reports of
  ``email.bounces_source`` when it is set (:mod:`digest.bouncing`), then ingests new,
  settled dumps (a file modified less than ``sources.settle_seconds`` ago is left for a
  later poll). With
  ``schedule.digest = "on_ingest"`` the poll is a full run: a poll that found new papers
  builds, publishes and sends the digest at once.
- **digest**, at the ``schedule.digest`` crontab in ``digest.timezone``: a full run.

Both take the run lock per run (:mod:`digest.lock`), so a ``digest run`` by hand waits
or gives up with a clear message. Every job run is recorded in the state's
``job_runs`` table: APScheduler's memory job store forgets everything on restart, so on
start the service compares the crontab's previous fire time with the last digest-job
run and the last digest, and runs a missed digest once (never twice). The same table
feeds ``/healthz``.

SIGTERM and SIGINT stop the service: no new job starts, a running job finishes, exit 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest import bouncing, health, status
from digest.config import Config
from digest.errors import DigestError, LockError
from digest.lock import run_lock
from digest.logformat import job_fields
from digest.metrics import Metrics
from digest.model import JobName
from digest.pipeline import RunOptions, RunReport, catch_up_site, run_once
from digest.store import Store, pglock
from digest.text import counted
from digest.transports import make_transport

if TYPE_CHECKING:
    from digest.web import WebServer
    from digest.web_subscribe import SubscriberPages

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
POLL: JobName = "poll"
DIGEST: JobName = "digest"


def utc_now() -> datetime:
    return datetime.now(UTC)


def digest_trigger(config: Config) -> CronTrigger:
    """The digest job's trigger: ``schedule.digest`` in ``digest.timezone``."""
    return CronTrigger.from_crontab(config.schedule.digest, timezone=config.tz)


def missed_digest(
    trigger: CronTrigger, last_done: datetime | None, now: datetime, grace: float
) -> datetime | None:
    """The fire time a service that was down missed, or None.

    ``last_done`` is when a digest was last run or built. A fire time after it and
    no more than ``grace`` seconds before ``now`` was missed; older ones are too
    stale to send now, and the next scheduled run covers their papers anyway.
    """
    reference = now - timedelta(seconds=grace)
    if last_done is not None and last_done > reference:
        # +1 µs: a run that started exactly at a fire time covers that fire time.
        reference = last_done + timedelta(microseconds=1)
    fire: datetime | None = trigger.get_next_fire_time(None, reference)
    return fire if fire is not None and fire <= now else None


_iso = status.iso  # one ISO rendering for /healthz and the status JSON


def job_summary(job: JobName, report: RunReport) -> str:
    """The one log line a job writes about what it did: the run's summary, named."""
    return f"{job}: {report.summary()}"


class Service:
    """The scheduler, its jobs and (when ``http.listen`` is set) the web server."""

    def __init__(self, config: Config, store: Store, clock: Clock = utc_now) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.stopping = threading.Event()
        grace = max(1, int(config.schedule.misfire_grace))
        self.scheduler = BackgroundScheduler(
            timezone=config.tz,
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": grace},
        )
        self.web: WebServer | None = None
        self.pages: SubscriberPages | None = None
        urls = config.sources.urls
        self.metrics = Metrics(lambda: status.snapshot(self.store, urls), urls)

    # --- jobs ------------------------------------------------------------------------------

    def poll_options(self) -> RunOptions:
        settle = self.config.sources.settle_seconds
        if self.config.schedule.on_ingest:
            # A full run: builds and sends a digest only when the poll found new papers.
            return RunOptions(build_digest=True, settle_seconds=settle, respect_backoff=True)
        # Ingest, publish anything left unpublished and retry deliveries that failed
        # temporarily (each after its backoff); building a digest is the digest job's.
        return RunOptions(build_digest=False, settle_seconds=settle, respect_backoff=True)

    def digest_options(self) -> RunOptions:
        return RunOptions(
            build_digest=True, settle_seconds=self.config.sources.settle_seconds, respect_backoff=True
        )

    def poll_job(self) -> None:
        # Bounces first: a subscriber they mark bounced is not retried by this poll.
        self.read_bounces()
        # A poll gives up at once when another run holds the lock: the next poll retries.
        self._job(POLL, self.poll_options(), lock_wait=0.0)

    def read_bounces(self) -> None:
        """``digest bounces`` on every poll when ``email.bounces_source`` is set; a failure
        (the IMAP server down, a wrong password) is logged and the next poll retries."""
        if not self.config.email.bounces_source or self.stopping.is_set():
            return
        try:
            summary = bouncing.process(self.config, self.store, self.clock())
        except DigestError as err:
            log.error("bounces not read: %s; the next poll retries", err)
            return
        except Exception as err:  # a bug must not stop the service; keep the evidence
            log.exception("bounces not read: internal error (%s: %s)", type(err).__name__, err)
            return
        if summary.read or summary.bounced:
            log.info("bounces: %s", summary.line())

    def digest_job(self) -> None:
        # The digest waits for the lock (a poll or a `digest run` will finish), but never
        # longer than the misfire grace, and stops waiting when the service stops.
        self._job(DIGEST, self.digest_options(), lock_wait=self.config.schedule.misfire_grace)

    def _job(self, job: JobName, options: RunOptions, *, lock_wait: float) -> None:
        if self.stopping.is_set():
            return
        try:
            run_id = self.store.start_job_run(job, self.clock())
        except DigestError as err:
            log.error("%s not run: cannot record it in the state (%s); the next run retries", job, err)
            return
        ok, summary = False, ""
        try:
            report = self._run_waiting(options, lock_wait)
            if report is None:
                # On a shared state another instance holds the run lock: this poll still
                # brings this instance's own site up to date (docs/DESIGN.md invariant 9).
                site = catch_up_site(self.config, self.store) if job == POLL else None
                ok, summary = job == POLL, f"{job}: skipped, another paper-digest run holds the lock"
                if site is not None and site.files:
                    summary += f"; site brought up to date ({counted(len(site.files), 'file')})"
                shared = job == POLL and pglock.is_postgres(self.config.state.url)  # other instances
                level = logging.INFO if shared else logging.WARNING
                log.log(level, "%s", summary, extra=job_fields(job, None, ok))
                return
            ok, summary = report.ok, job_summary(job, report)
            log.info("%s", summary, extra=job_fields(job, report, ok))
            for error in report.delivery.errors:
                log.warning("%s: delivery: %s", job, error)
        except DigestError as err:
            summary = f"{job} failed: {err}"
            log.error("%s; the next run retries", summary)
        except Exception as err:  # a bug must not stop the service; keep the evidence
            summary = f"{job} failed: internal error ({type(err).__name__}: {err})"
            log.exception("%s; the next run retries", summary)
        finally:
            try:
                self.store.finish_job_run(run_id, self.clock(), ok=ok, summary=summary)
            except DigestError as err:
                log.error("cannot record the %s job's result: %s", job, err)
            self.check_health()

    def check_health(self) -> None:
        """Dump-health alerts (digest/health.py) after every job: never fails the job."""
        try:
            transport = make_transport(self.config) if self.config.alerts.to else None
            health.check(self.config, self.store, transport, self.clock())
        except DigestError as err:
            log.error("dump-health check failed: %s; the next job retries", err)

    def _run_waiting(self, options: RunOptions, lock_wait: float) -> RunReport | None:
        """run_once, retrying while another process holds the lock, up to ``lock_wait``
        seconds or until the service stops; None when the lock never came free."""
        deadline = time.monotonic() + lock_wait
        while True:
            try:
                transport = self.metrics.timed(make_transport(self.config))
                return run_once(self.config, self.store, transport, self.clock(), options)
            except LockError:
                if time.monotonic() >= deadline or self.stopping.wait(0.25):
                    return None
                log.debug("waiting for another run to release the lock")

    # --- health ----------------------------------------------------------------------------

    def next_runs(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for job in self.scheduler.get_jobs():
            out[job.id] = _iso(job.next_run_time)
        return out

    def instance(self) -> dict[str, Any]:
        """This instance's name and, on a PostgreSQL state, who holds the run lock
        (``run_lock``: "name (pid N)" or None when free; docs/DESIGN.md invariant 9)."""
        body: dict[str, Any] = {"name": self.config.instance.name}
        if pglock.is_postgres(self.config.state.url):
            with self.store.transaction(read=True) as conn:
                body["run_lock"] = pglock.lock_holder(conn)
        return body

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for /healthz: the status snapshot (one read
        transaction, :mod:`digest.status`) plus the schedule. ``status`` is ``failing``
        (503) while the last finished run of a job failed (per job: in cron mode a poll
        that went well must not hide this morning's failed digest job), ``degraded``
        (200) while a dump-health incident is open, else ``ok``."""
        try:
            snap = status.snapshot(self.store, self.config.sources.urls)
        except DigestError as err:
            return 503, {"status": "error", "error": str(err)}
        body: dict[str, Any] = {
            **status.to_json(snap),
            "next_run": self.next_runs(),
            "schedule": {"poll_seconds": self.config.schedule.poll, "digest": self.config.schedule.digest},
            "instance": self.instance(),
        }
        failed = [run.summary for run in snap.failing_jobs]
        if failed:
            return 503, {"status": "failing", "error": "; ".join(failed), **body}
        if snap.incidents:
            reasons = [reason for *_, reason in snap.incidents]
            return 200, {"status": "degraded", "reason": "; ".join(reasons), **body}
        return 200, {"status": "ok", **body}

    # --- life cycle ------------------------------------------------------------------------

    def schedule_jobs(self) -> None:
        """Adds the poll (first run now), the digest job and, when one was missed, a
        catch-up digest run now."""
        now = self.clock()
        self.scheduler.add_job(
            self.poll_job,
            IntervalTrigger(seconds=self.config.schedule.poll, timezone=self.config.tz),
            id=POLL,
            name=POLL,
            next_run_time=now,
        )
        if self.config.schedule.on_ingest:
            return
        trigger = digest_trigger(self.config)
        self.scheduler.add_job(self.digest_job, trigger, id=DIGEST, name=DIGEST)
        # A digest job that failed or never got the lock does not count as done; one that
        # failed after building the digest is covered by the digest's own time.
        done: list[datetime] = []
        if (last_run := self.store.last_job_run(DIGEST, ok=True)) is not None:
            done.append(last_run.started)
        if latest := self.store.digests(limit=1):
            done.append(latest[0].created)  # a `digest run` by hand counts too
        missed = missed_digest(trigger, max(done, default=None), now, self.config.schedule.misfire_grace)
        if missed is not None:
            log.info("the digest due at %s was missed while the service was stopped: running it now", missed)
            self.scheduler.add_job(
                self.digest_job, DateTrigger(run_date=now), id="digest-missed", name="missed digest"
            )

    def start(self) -> None:
        from digest.web import WebServer, make_app  # the web stack only when serving

        address = self.config.http.address
        if address is not None:
            from digest.web_subscribe import SubscriberPages

            self.pages = SubscriberPages(self.config, self.store)
            # An instance that has published nothing yet answers 404, not a server error
            # (a new instance of a cluster before its first poll, invariant 9).
            self.config.feed.output_dir.mkdir(parents=True, exist_ok=True)
            app = make_app(self.config.feed.output_dir, self.health, self.metrics.render, self.pages.routes())
            self.web = WebServer(app, *address)
        self.schedule_jobs()
        self.scheduler.start()
        if self.web is not None:
            self.web.start()
        jobs = ", ".join(f"{k} next at {v}" for k, v in self.next_runs().items())
        log.info("paper-digest service started: %s", jobs)

    def stop(self) -> None:
        """No new job starts; a running one finishes; then the web server stops."""
        self.stopping.set()
        running = self.scheduler.running
        if running:
            self.scheduler.shutdown(wait=True)
        if self.web is not None and self.web.thread.is_alive():
            self.web.stop()
        if self.pages is not None:
            self.pages.stop()
        if running:
            log.info("paper-digest service stopped")


@contextmanager
def service_lock(config: Config) -> Iterator[None]:
    """One ``digest serve`` per state: a second one is refused with a clear message."""
    path = config.lock_path.with_name(config.lock_path.name + ".serve")
    try:
        with run_lock(path):
            yield
    except LockError:
        raise LockError(
            f"another `digest serve` is already running against this state (lock {path}); "
            "stop it first, or point this one at another state.url"
        ) from None


def serve(config: Config, *, verbose: bool = False) -> int:
    """Runs the service until SIGTERM or SIGINT; returns the exit status (0)."""
    if not verbose:
        # The service writes its own line per job; APScheduler's "job executed" lines and
        # the pipeline's summary would repeat it.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        logging.getLogger("digest.pipeline").setLevel(logging.WARNING)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s received: stopping after the running job", signal.Signals(signum).name)
        stop.set()

    with service_lock(config), Store.open(config.state.url) as store:
        service = Service(config, store)
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            service.start()
            while not stop.wait(1.0):
                pass
        finally:
            service.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
    return 0
