"""``--log-format json``: one JSON object per log line, for people who ship logs.

Every record becomes ``{"time", "level", "logger", "message"}``; a job's summary line
adds ``job``, ``ok``, ``counts`` (files, papers, digest, deliveries) and ``seconds``
(passed as ``extra=`` by the service, see :func:`job_fields`). An exception adds its
traceback as ``exception``. The human format stays the default.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.pipeline import RunReport

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FIELDS = ("job", "ok", "counts", "seconds")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if name in record.__dict__:
                out[name] = record.__dict__[name]
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def counts(report: RunReport) -> dict[str, Any]:
    """What a run did, as numbers (the summary line's content)."""
    i, d = report.ingest, report.delivery
    return {
        "files_seen": i.seen,
        "files_unsettled": i.unsettled,
        "dumps_ingested": i.ingested,
        "dumps_failed": i.failed,
        "papers_new": i.papers_new,
        "digest": report.digest.slug if report.digest else None,
        "digest_papers": report.digest.paper_count if report.digest else 0,
        "files_published": len(report.published.files),
        "sent": d.sent,
        "pending": d.pending,
        "failed": d.failed,
    }


def job_fields(job: str, report: RunReport | None, ok: bool) -> dict[str, Any]:
    """The ``extra=`` of a job's summary line."""
    if report is None:
        return {"job": job, "ok": ok}
    return {"job": job, "ok": ok, "counts": counts(report), "seconds": round(report.seconds, 3)}


def configure(fmt: str, verbose: bool) -> None:
    """The root logger on stderr, in ``fmt`` ("text" or "json")."""
    import sys

    level = logging.DEBUG if verbose else logging.INFO
    if fmt != "json":
        logging.basicConfig(level=level, format=TEXT_FORMAT, stream=sys.stderr)
        return
    # Added even when the root logger has handlers already (basicConfig would then do
    # nothing): asking for JSON must give JSON.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
