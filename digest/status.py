"""One status snapshot of the state, behind ``digest status``, ``status --json``,
``/healthz`` and ``/metrics``.

:func:`snapshot` reads everything in ONE read transaction with SQL aggregates (counts
grouped by status, the newest rows by index), so its cost does not grow with the
history (1,000,000 delivery rows: tests/test_status.py). Lists that could grow without
bound (failed dumps, delivery errors) are cut to the newest :data:`LIST_LIMIT` rows,
with the full count beside them.

:func:`to_json` and :func:`lines` are pure renderings of a :class:`Snapshot`; the
JSON is the one ``digest status --json`` prints and ``/healthz`` serves (plus the
service's own fields), so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from digest.model import Digest, FetchState, JobRun
from digest.store import Store
from digest.store.digests import as_utc, digest_row
from digest.store.jobs import fetch_state_row, job_run_row
from digest.store.schema import deliveries_t, digests_t, dumps_t, fetch_state_t, job_runs_t, papers_t
from digest.text import counted

LIST_LIMIT = 20
DELIVERY_STATUSES = ("pending", "sent", "failed", "cancelled")
SUBSCRIBER_STATUSES = ("pending", "active", "unsubscribed", "bounced")
JOBS = ("poll", "digest")
BOUNCE_KINDS = ("hard", "soft")


@dataclass(frozen=True, slots=True)
class DeliveryError:
    recipient: str
    digest_id: int
    status: str
    error: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the state holds at one moment; every count from the same transaction."""

    dumps_ingested: int
    dumps_failed: int
    papers: int
    papers_waiting: int
    digests: int
    deliveries: Mapping[str, int]  # every status in DELIVERY_STATUSES, 0 when none
    last_digest: Digest | None
    failed_dumps: tuple[tuple[str, str], ...]  # (name, error): the newest LIST_LIMIT, oldest first
    fetch_failures: tuple[FetchState, ...]  # of the configured URLs only
    delivery_errors: tuple[DeliveryError, ...]  # the newest LIST_LIMIT, oldest first
    delivery_errors_total: int
    last_runs: Mapping[str, JobRun | None]  # per job: the newest run, finished or not
    last_finished: Mapping[str, JobRun | None]  # per job: the newest finished run
    last_ok: Mapping[str, datetime | None]  # per job: when its newest successful run finished
    subscribers: Mapping[str, int] | None = None  # by status; None without a subscribers table
    incidents: tuple[tuple[str, str, datetime, str], ...] = field(
        default=()
    )  # open: kind, key, opened, reason
    bounces: Mapping[str, int] | None = None  # bounce events by kind (hard, soft); None without the table

    @property
    def failing_jobs(self) -> tuple[JobRun, ...]:
        """The jobs whose last finished run failed: /healthz answers 503 while any does."""
        return tuple(r for r in self.last_finished.values() if r is not None and r.ok is False)


def _newest_run(conn: sa.Connection, job: str, *conditions: Any) -> JobRun | None:
    query = sa.select(job_runs_t).where(job_runs_t.c.job == job, *conditions)
    row = conn.execute(query.order_by(job_runs_t.c.id.desc()).limit(1)).one_or_none()
    return None if row is None else job_run_row(row)


def snapshot(store: Store, urls: Sequence[str] = ()) -> Snapshot:
    """The state's status in one read transaction. ``urls`` are the configured
    ``sources.urls``: fetch failures of URLs no longer configured are left out."""
    with store.transaction(read=True) as conn:
        dump_counts: dict[str, int] = dict(
            conn.execute(sa.select(dumps_t.c.status, sa.func.count()).group_by(dumps_t.c.status)).all()
        )
        delivery_counts = _delivery_counts(conn)
        last_seq = sa.select(sa.func.coalesce(sa.func.max(digests_t.c.last_seq), 0)).scalar_subquery()
        n_papers, waiting = conn.execute(
            sa.select(
                sa.select(sa.func.count()).select_from(papers_t).scalar_subquery(),
                sa.select(sa.func.count())
                .select_from(papers_t)
                .where(papers_t.c.seq > last_seq)
                .scalar_subquery(),
            )
        ).one()
        n_digests = conn.execute(sa.select(sa.func.count()).select_from(digests_t)).scalar_one()
        latest = conn.execute(sa.select(digests_t).order_by(digests_t.c.id.desc()).limit(1)).one_or_none()
        failed = conn.execute(
            sa.select(dumps_t.c.name, dumps_t.c.error)
            .where(dumps_t.c.status == "failed")
            .order_by(dumps_t.c.id.desc())
            .limit(LIST_LIMIT)
        ).all()
        fetches = (
            conn.execute(sa.select(fetch_state_t).where(fetch_state_t.c.url.in_(list(urls)))).all()
            if urls
            else []
        )
        troubled = deliveries_t.c.status.in_(("pending", "failed")) & deliveries_t.c.last_error.is_not(None)
        errors = conn.execute(
            sa.select(
                deliveries_t.c.recipient,
                deliveries_t.c.digest_id,
                deliveries_t.c.status,
                deliveries_t.c.last_error,
            )
            .where(troubled)
            .order_by(deliveries_t.c.id.desc())
            .limit(LIST_LIMIT)
        ).all()
        n_errors = (
            len(errors)
            if len(errors) < LIST_LIMIT
            else conn.execute(
                sa.select(sa.func.count()).select_from(deliveries_t).where(troubled)
            ).scalar_one()
        )
        last_runs = {job: _newest_run(conn, job) for job in JOBS}
        last_finished = {job: _newest_run(conn, job, job_runs_t.c.finished_at.is_not(None)) for job in JOBS}
        last_ok = {job: _newest_run(conn, job, job_runs_t.c.ok.is_(True)) for job in JOBS}
        subscribers = _subscribers(conn)
        incidents = _incidents(conn)
        bounces = _bounces(conn)
    order = {url: i for i, url in enumerate(urls)}
    failing = sorted((fetch_state_row(r) for r in fetches), key=lambda s: order[s.url])
    return Snapshot(
        dumps_ingested=int(dump_counts.get("ingested", 0)),
        dumps_failed=int(dump_counts.get("failed", 0)),
        papers=int(n_papers),
        papers_waiting=int(waiting),
        digests=int(n_digests),
        deliveries=delivery_counts,
        last_digest=digest_row(latest) if latest is not None else None,
        failed_dumps=tuple((r.name, r.error or "") for r in reversed(failed)),
        fetch_failures=tuple(s for s in failing if s.failing),
        delivery_errors=tuple(
            DeliveryError(r.recipient, r.digest_id, r.status, r.last_error) for r in reversed(errors)
        ),
        delivery_errors_total=int(n_errors),
        last_runs=last_runs,
        last_finished=last_finished,
        last_ok={job: run.finished if run is not None else None for job, run in last_ok.items()},
        subscribers=subscribers,
        incidents=incidents,
        bounces=bounces,
    )


def _delivery_counts(conn: sa.Connection) -> dict[str, int]:
    """Deliveries by status. ``sent`` rows are nearly all of them and a GROUP BY would
    walk every one (0.3 s at 1,000,000 rows); the others are few, each counted by a seek
    on the status index, and ``sent`` is the total (SQLite counts a table without
    visiting its rows) less them. The statuses are a closed set: DELIVERY_STATUSES."""
    others = [s for s in DELIVERY_STATUSES if s != "sent"]
    count = sa.select(sa.func.count()).select_from(deliveries_t)
    row = conn.execute(
        sa.select(
            count.scalar_subquery(),
            *(count.where(deliveries_t.c.status == s).scalar_subquery() for s in others),
        )
    ).one()
    total, rest = int(row[0]), [int(n) for n in row[1:]]
    return {"sent": total - sum(rest), **dict(zip(others, rest, strict=True))}


def _has_table(conn: sa.Connection, name: str) -> bool:
    return bool(sa.inspect(conn).has_table(name))


def _counts_by(conn: sa.Connection, table: str, column: str, values: Sequence[str]) -> dict[str, int] | None:
    """The rows of ``table`` counted by ``column``, every one of ``values`` there (0 when
    none); None when the state has no such table (made by a later migration)."""
    if not _has_table(conn, table):
        return None
    rows = conn.execute(sa.text(f"SELECT {column}, COUNT(*) FROM {table} GROUP BY {column}")).all()
    counts = dict.fromkeys(values, 0)
    counts.update({str(value): int(n) for value, n in rows})
    return counts


def _subscribers(conn: sa.Connection) -> dict[str, int] | None:
    """Subscribers by status, when the state has a subscribers table (wave 2)."""
    return _counts_by(conn, "subscribers", "status", SUBSCRIBER_STATUSES)


def _bounces(conn: sa.Connection) -> dict[str, int] | None:
    """Bounce events by kind (digest/bouncing.py): every report's failed subscribers and
    every recipient refused at SMTP time because the address is bad."""
    return _counts_by(conn, "bounce_events", "kind", BOUNCE_KINDS)


def _incidents(conn: sa.Connection) -> tuple[tuple[str, str, datetime, str], ...]:
    """The open dump-health incidents (digest/alerts.py), oldest first."""
    if not _has_table(conn, "incidents"):
        return ()
    rows = conn.execute(
        sa.text("SELECT kind, key, opened, reason FROM incidents WHERE resolved IS NULL ORDER BY id")
    ).all()
    return tuple((str(kind), str(key), as_utc(opened), str(reason)) for kind, key, opened, reason in rows)


# --- renderings (pure) ------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _run_json(run: JobRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"started": iso(run.started), "finished": iso(run.finished), "ok": run.ok, "summary": run.summary}


def to_json(snap: Snapshot) -> dict[str, Any]:
    """The snapshot as ``digest status --json`` prints it and ``/healthz`` serves it."""
    last = snap.last_digest
    out: dict[str, Any] = {
        "dumps": {"ingested": snap.dumps_ingested, "failed": snap.dumps_failed},
        "papers": snap.papers,
        "papers_waiting": snap.papers_waiting,
        "digests": snap.digests,
        "deliveries": dict(snap.deliveries),
        "last_digest": (
            {"slug": last.slug, "created": iso(last.created), "papers": last.paper_count} if last else None
        ),
        "failed_dumps": [{"name": name, "error": error} for name, error in snap.failed_dumps],
        "fetch_failures": [
            {
                "url": f.url,
                "error": f.last_error,
                "status": f.last_status,
                "failures": f.failures,
                "last_fetch": iso(f.last_fetch_at),
                "last_ok": iso(f.last_ok_at),
            }
            for f in snap.fetch_failures
        ],
        "delivery_errors": [
            {"recipient": e.recipient, "digest": e.digest_id, "status": e.status, "error": e.error}
            for e in snap.delivery_errors
        ],
        "delivery_errors_total": snap.delivery_errors_total,
        "last_poll": _run_json(snap.last_runs.get("poll")),
        "last_digest_job": _run_json(snap.last_runs.get("digest")),
        "last_successful": {job: iso(at) for job, at in snap.last_ok.items()},
        "incidents": [
            {"kind": k, "key": key, "opened": iso(at), "reason": reason}
            for k, key, at, reason in snap.incidents
        ],
    }
    if snap.subscribers is not None:
        out["subscribers"] = dict(snap.subscribers)
    if snap.bounces is not None:
        out["bounces"] = dict(snap.bounces)
    return out


def lines(snap: Snapshot, state_url: str, n_urls: int) -> list[str]:
    """``digest status`` as text, one line each."""
    d = snap.deliveries
    last = snap.last_digest
    out = [
        f"state: {state_url}",
        f"dumps: {snap.dumps_ingested} ingested, {snap.dumps_failed} failed",
        f"papers: {snap.papers} stored, {snap.papers_waiting} waiting for the next digest",
        f"digests: {snap.digests}"
        + (f" (latest {last.slug}, {counted(last.paper_count, 'paper')})" if last else ""),
        f"deliveries: {d['pending']} pending, {d['sent']} sent, "
        f"{d['failed']} failed, {d['cancelled']} cancelled",
    ]
    if snap.subscribers is not None:
        out.append("subscribers: " + ", ".join(f"{n} {status}" for status, n in snap.subscribers.items()))
    if snap.bounces is not None and any(snap.bounces.values()):
        out.append("bounces: " + ", ".join(f"{n} {kind}" for kind, n in snap.bounces.items()))
    if n_urls:
        out.append(f"sources: {n_urls} URLs, {len(snap.fetch_failures)} failing")
    for kind, _, opened, reason in snap.incidents:
        out.append(f"  alert ({kind}) open since {opened:%Y-%m-%d %H:%M} UTC: {reason}")
    for name, error in snap.failed_dumps:
        out.append(f"  failed dump {name}: {error}")
    if snap.dumps_failed > len(snap.failed_dumps):
        out.append(f"  … and {snap.dumps_failed - len(snap.failed_dumps)} older failed dumps")
    for f in snap.fetch_failures:
        ok = f"last success {f.last_ok_at:%Y-%m-%d %H:%M} UTC" if f.last_ok_at else "never succeeded"
        out.append(f"  failed fetch {f.url} ({f.failures} in a row, {ok}): {f.last_error}")
    for e in snap.delivery_errors:
        out.append(f"  {e.status} delivery of digest {e.digest_id} to {e.recipient}: {e.error}")
    if snap.delivery_errors_total > len(snap.delivery_errors):
        out.append(f"  … and {snap.delivery_errors_total - len(snap.delivery_errors)} more delivery errors")
    return out
