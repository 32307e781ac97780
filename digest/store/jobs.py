"""What the service keeps about its work: ``fetch_state`` per remote URL, ``job_runs``
per scheduled job, and the counts ``digest status`` prints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from digest.model import FetchState, JobName, JobRun
from digest.store.base import StoreBase
from digest.store.rows import row_mapper
from digest.store.schema import deliveries_t, digests_t, dumps_t, fetch_state_t, job_runs_t, papers_t

fetch_state_row = row_mapper(FetchState)
job_run_row = row_mapper(JobRun, started="started_at", finished="finished_at")


class JobsMixin(StoreBase):
    """The ``fetch_state`` and ``job_runs`` tables, and the status counts."""

    def fetch_state(self, url: str) -> FetchState | None:
        """What the last fetch of ``url`` left behind; None if it was never fetched."""
        with self.transaction(read=True) as conn:
            row = conn.execute(sa.select(fetch_state_t).where(fetch_state_t.c.url == url)).one_or_none()
        return None if row is None else fetch_state_row(row)

    def fetch_states(self, urls: Sequence[str] | None = None) -> list[FetchState]:
        """Every URL fetched so far (only ``urls``, when given), by URL."""
        query = sa.select(fetch_state_t).order_by(fetch_state_t.c.url)
        if urls is not None:
            query = query.where(fetch_state_t.c.url.in_(list(urls)))
        with self.transaction(read=True) as conn:
            return [fetch_state_row(r) for r in conn.execute(query)]

    def fetch_failures(self, urls: Sequence[str] | None = None) -> list[FetchState]:
        """The URLs whose last fetch failed (only ``urls``, when given: pass
        ``config.sources.urls`` so a URL removed from the config is not reported).
        For ``digest status`` and health checks."""
        return [s for s in self.fetch_states(urls) if s.failing]

    def record_fetch(self, state: FetchState) -> None:
        """Replaces what the state remembers about ``state.url``."""
        values = {
            "etag": state.etag,
            "last_modified": state.last_modified,
            "last_status": state.last_status,
            "last_error": state.last_error,
            "last_fetch_at": state.last_fetch_at,
            "last_ok_at": state.last_ok_at,
            "last_sha256": state.last_sha256,
            "last_file": state.last_file,
            "failures": state.failures,
        }
        with self.transaction() as conn:
            done = conn.execute(
                sa.update(fetch_state_t).where(fetch_state_t.c.url == state.url).values(**values)
            )
            if not done.rowcount:
                conn.execute(sa.insert(fetch_state_t).values(url=state.url, **values))

    # --- service jobs ---

    def start_job_run(self, job: JobName, now: datetime) -> int:
        """Records that a service job started; returns the run's id."""
        with self.transaction() as conn:
            run_id = conn.execute(
                sa.insert(job_runs_t).values(job=job, started_at=now, summary="")
            ).inserted_primary_key[0]  # type: ignore[index]
        return int(run_id)

    def finish_job_run(self, run_id: int, now: datetime, *, ok: bool, summary: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                sa.update(job_runs_t)
                .where(job_runs_t.c.id == run_id)
                .values(finished_at=now, ok=ok, summary=summary)
            )

    def last_job_run(
        self, job: JobName | None = None, *, finished: bool = False, ok: bool | None = None
    ) -> JobRun | None:
        """The newest run of ``job`` (of any job when None); only finished ones with
        ``finished``; only those that ended with ``ok`` when it is given."""
        query = sa.select(job_runs_t).order_by(job_runs_t.c.id.desc()).limit(1)
        if job is not None:
            query = query.where(job_runs_t.c.job == job)
        if finished:
            query = query.where(job_runs_t.c.finished_at.is_not(None))
        if ok is not None:
            query = query.where(job_runs_t.c.ok == ok)
        with self.transaction(read=True) as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else job_run_row(row)

    # --- status ---

    def counts(self) -> dict[str, Any]:
        """The numbers ``digest status --json`` prints."""
        with self.transaction(read=True) as conn:
            dump_counts: dict[str, int] = dict(
                conn.execute(sa.select(dumps_t.c.status, sa.func.count()).group_by(dumps_t.c.status)).all()
            )
            delivery_counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(deliveries_t.c.status, sa.func.count()).group_by(deliveries_t.c.status)
                ).all()
            )
            n_papers = conn.execute(sa.select(sa.func.count()).select_from(papers_t)).scalar_one()
            n_digests = conn.execute(sa.select(sa.func.count()).select_from(digests_t)).scalar_one()
            undigested = conn.execute(
                sa.select(sa.func.count())
                .select_from(papers_t)
                .where(
                    papers_t.c.seq
                    > sa.select(sa.func.coalesce(sa.func.max(digests_t.c.last_seq), 0)).scalar_subquery()
                )
            ).scalar_one()
        return {
            "dumps": {
                "ingested": dump_counts.get("ingested", 0),
                "failed": dump_counts.get("failed", 0),
            },
            "papers": n_papers,
            "papers_waiting": undigested,
            "digests": n_digests,
            "deliveries": {s: delivery_counts.get(s, 0) for s in ("pending", "sent", "failed", "cancelled")},
        }
