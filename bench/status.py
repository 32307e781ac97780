"""The status scenario: ``digest status --json`` and ``/healthz`` on a state with
``digests x recipients`` delivery rows (100 x 10,000 = 1,000,000 at full size),
each timed in a fresh process with its own peak RSS. Targets: under 0.5 s and 100 MiB.

The state is made by the real migrations, then filled by bulk inserts straight into
the SQLite file (building 1,000,000 deliveries through the outbox would take minutes).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TARGET_SECONDS = 0.5
TARGET_MIB = 100.0
_TS = "2026-11-22 07:00:00.000000"


@dataclass(frozen=True, slots=True)
class Measured:
    seconds: float  # status: the first command after the imports; healthz: the median request
    peak_mib: float  # the child's peak RSS
    body: dict[str, object]
    imports: float = 0.0  # status: seconds spent importing before the command ran


def build_state(config_path: Path, n_digests: int, recipients: int) -> int:
    """Fills the state of ``config_path`` with ``n_digests`` digests, each delivered to
    ``recipients`` addresses (sent, with a few failed and pending rows carrying an
    error); returns the number of delivery rows."""
    from digest.config import load_config, sqlite_path
    from digest.store import Store

    config = load_config(config_path, {})
    Store.open(config.state.url).close()  # the real schema, by the real migrations
    db = sqlite_path(config.state.url)
    assert db is not None
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(
                "INSERT INTO dumps (id, sha256, name, size, seen_at, status, papers_found, papers_new)"
                " VALUES (1, ?, 'bench.txt', 1, ?, 'ingested', ?, ?)",
                ("0" * 64, _TS, n_digests, n_digests),
            )
            conn.executemany(
                "INSERT INTO papers (seq, key, title, abstract, links, authors, first_seen, dump_id)"
                " VALUES (?, ?, ?, '', '[]', '[]', ?, 1)",
                ((i, f"paper {i}", f"Paper {i}", _TS) for i in range(1, n_digests + 1)),
            )
            conn.executemany(
                "INSERT INTO digests (id, slug, created_at, first_seq, last_seq, paper_count)"
                " VALUES (?, ?, ?, ?, ?, 1)",
                ((d, f"bench-{d:04d}", _TS, d, d) for d in range(1, n_digests + 1)),
            )

            def rows() -> object:
                for d in range(1, n_digests + 1):
                    for r in range(recipients):
                        status, error = "sent", None
                        if r % 1000 == 1:
                            status, error = "failed", "server refused the recipient: 550 5.1.1 no such user"
                        elif d == n_digests and r % 1000 == 2:
                            status, error = "pending", "cannot connect to smtp.example.org:587: timed out"
                        yield (d, f"reader{r}@example.org", status, 1, error, f"<d{d}.r{r}@example.org>", _TS)

            conn.executemany(
                "INSERT INTO deliveries (digest_id, recipient, status, attempts, last_error, message_id,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows(),  # type: ignore[arg-type]
            )
        return int(conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0])
    finally:
        conn.close()


# Each child times its own work and prints seconds, peak RSS in KiB and the JSON it got.
# `digest status` is timed from after its imports (SQLAlchemy alone takes 0.15 s idle,
# several times that on a loaded machine): the imports are the same for an empty state,
# the rest is what grows with the history. The imports are reported beside it.
_STATUS_CHILD = """
import contextlib, io, json, resource, sys, time
started = time.perf_counter()
from digest.cli import main
import digest.status, digest.store, digest.config
imports = time.perf_counter() - started
times = []
for i in range(int(sys.argv[2])):
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        assert main(["-c", sys.argv[1], "status", "--json"]) == 0
    times.append(time.perf_counter() - started)
print(times[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, imports)
print(out.getvalue().replace(chr(10), " "))
"""

_HEALTHZ_CHILD = """
import json, resource, statistics, sys, time
import httpx
from digest.config import load_config
from digest.schedule import Service
from digest.store import Store
from digest.web import WebServer, make_app
config = load_config(__import__("pathlib").Path(sys.argv[1]), {})
store = Store.open(config.state.url)
service = Service(config, store)
web = WebServer(make_app(config.feed.output_dir, service.health), "127.0.0.1", 0)
web.start()
host, port = web.address
times = []
with httpx.Client() as client:
    for _ in range(100):
        if client.get(f"http://{host}:{port}/healthz").status_code < 600:
            break
        time.sleep(0.05)
    for _ in range(int(sys.argv[2])):
        started = time.perf_counter()
        response = client.get(f"http://{host}:{port}/healthz")
        times.append(time.perf_counter() - started)
web.stop()
store.close()
print(statistics.median(times), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(json.dumps(response.json()))
"""

# Linux carries ru_maxrss across fork and exec: start the child from a small interpreter.
_SPAWN = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def _child(script: str, config_path: Path, repeats: int) -> Measured:
    out = subprocess.run(
        [sys.executable, "-S", "-c", _SPAWN, sys.executable, "-c", script, str(config_path), str(repeats)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    seconds, rss, *imports = out[0].split()
    return Measured(
        float(seconds), int(rss) / 1024, json.loads(out[1]), float(imports[0]) if imports else 0.0
    )


def measure_status(config_path: Path, repeats: int = 3) -> Measured:
    """``digest status --json`` in a fresh process: the first call includes the imports."""
    return _child(_STATUS_CHILD, config_path, repeats)


def measure_healthz(config_path: Path, repeats: int = 5) -> Measured:
    """``GET /healthz`` on the service's real web server, in a fresh process."""
    return _child(_HEALTHZ_CHILD, config_path, repeats)


def scenario(work: Path, n_digests: int, recipients: int) -> list[object]:
    """The two bench rows (``bench.scenarios.Result``), measured on a state built in
    ``work``; the floor is the same measurement on an empty state, so the ratio says
    how much the history costs."""
    from bench.scenarios import Result, write_config

    config_path = write_config(work / "status")
    empty = write_config(work / "empty")
    build_state(empty, 0, 0)
    rows = build_state(config_path, n_digests, recipients)
    full = rows >= 1_000_000
    results: list[object] = []
    for name, measure in (("status --json", measure_status), ("healthz", measure_healthz)):
        m, floor = measure(config_path), measure(empty)
        ok = m.seconds < TARGET_SECONDS and m.peak_mib < TARGET_MIB
        results.append(
            Result(
                f"status {name}",
                f"{rows:,} delivery rows",
                m.seconds,
                floor.seconds,
                "s",
                m.seconds / floor.seconds,
                f"< {TARGET_SECONDS} s, < {TARGET_MIB:.0f} MiB",
                ok if full else None,
                {
                    "peak_mib": round(m.peak_mib, 1),
                    "imports_s": round(m.imports, 3),
                    "floor_is": "empty state",
                },
            )
        )
    return results
