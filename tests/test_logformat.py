"""``--log-format json``: every log line on stderr is one JSON object; a run's and a
service job's summary line carry the job, its counts and its duration."""

from __future__ import annotations

import io
import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.cli import main
from digest.config import Config
from digest.logformat import JsonFormatter
from digest.schedule import Service
from digest.store import Store
from tests.helpers import DUMP_000, drop


def test_digest_run_logs_json_lines(config: Config, inbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drop(inbox, DUMP_000)
    (inbox / "bad.txt").write_bytes(b"\xff\xfe broken")
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        assert main(["--log-format", "json", "-c", str(config.path), "run"]) == 0
    finally:
        for h in root.handlers[:]:
            if h not in before:
                root.removeHandler(h)
    err = capsys.readouterr().err
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert records, err
    for line in err.splitlines():
        if not line.startswith("failed dump:"):  # the command's own report lines stay text
            json.loads(line)
    [run] = [r for r in records if r.get("job") == "run"]
    assert run["level"] == "info" and run["ok"] is True
    assert run["counts"]["papers_new"] == 81 and run["counts"]["dumps_failed"] == 1
    assert run["counts"]["sent"] == 1 and run["seconds"] > 0
    assert any(r["level"] == "error" and "bad.txt" in r["message"] for r in records)


def test_a_service_job_line_has_the_job_counts_and_duration(
    config: Config, store: Store, inbox: Path
) -> None:
    drop(inbox, DUMP_000)
    past = time.time() - 3600
    os.utime(inbox / DUMP_000.name, (past, past))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("digest.schedule")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        Service(config, store, lambda: datetime.now(UTC)).poll_job()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    [line] = [json.loads(x) for x in stream.getvalue().splitlines() if '"job"' in x]
    assert line["job"] == "poll" and line["ok"] is True and line["logger"] == "digest.schedule"
    assert line["message"].startswith("poll: 1 file seen, 1 ingested")
    assert line["counts"]["papers_new"] == 81 and line["counts"]["digest"] is None
    assert isinstance(line["seconds"], float)
