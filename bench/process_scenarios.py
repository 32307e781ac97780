"""The process scenarios: peak memory of ingesting one big dump, and start-up time."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import gen
from bench.common import MIB, Result, Sizes, _ratio_ok, write_config

# --- memory ------------------------------------------------------------------------------

_CHILD = """
import resource, sys
from datetime import UTC, datetime
from pathlib import Path
from digest.config import load_config
from digest.ingest import ingest_inbox
from digest.store import Store
config = load_config(Path(sys.argv[1]), {})
store = Store.open(config.state.url)
report = ingest_inbox(config, store, datetime(2026, 11, 22, tzinfo=UTC))
store.close()
assert report.ingested == 1 and not report.failed, report
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, report.papers_new)
"""


def _fresh(command: list[str]) -> list[str]:
    """``command`` started from a small intermediate interpreter: Linux carries a
    process's ru_maxrss across fork and exec, so a child of this (by now large) bench
    process would report the bench's own peak, not its own."""
    return [sys.executable, "-S", "-c", _SPAWN, *command]


_SPAWN = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def memory(work: Path, sizes: Sizes) -> Result:
    root = work / "memory"
    path = write_config(root)
    n = gen.write_big_dump(root / "inbox" / "big.txt", sizes.memory_bytes)
    size = (root / "inbox" / "big.txt").stat().st_size
    out = subprocess.run(
        _fresh([sys.executable, "-c", _CHILD, str(path)]), check=True, capture_output=True, text=True
    ).stdout.split()
    # The same interpreter doing nothing: how much of the peak is the program itself.
    idle = subprocess.run(
        _fresh(
            [
                sys.executable,
                "-c",
                "import resource, digest.ingest, digest.store; "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
            ]
        ),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    peak_mb = int(out[0]) / 1024
    return Result(
        "memory",
        f"one {size / MIB:,.0f} MiB dump ({n:,} papers)",
        peak_mb,
        int(idle) / 1024,
        "MiB peak RSS",
        None,
        "< 300 MiB",
        peak_mb < 300 if sizes.memory_bytes >= 100 * MIB else None,
        {"papers_new": int(out[1]), "floor_is": "RSS after importing the modules"},
    )


# --- start-up ----------------------------------------------------------------------------


def _digest_command() -> list[str]:
    script = Path(sys.executable).with_name("digest")
    if script.exists():
        return [str(script), "--help"]
    return [sys.executable, "-m", "digest.cli", "--help"]


def startup(work: Path, sizes: Sizes) -> Result:
    cmd = _digest_command()
    bare = [sys.executable, "-c", "import sys"]
    # Bytecode written and reused, as after `pip install`: any value of this variable, "0"
    # included, stops Python writing it (every start then compiled stale modules again).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, check=True, capture_output=True, env=env)  # bytecode compiled, files cached
    t_cmd: list[float] = []
    t_bare: list[float] = []
    for _ in range(sizes.startup_runs):
        for command, into in ((bare, t_bare), (cmd, t_cmd)):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            into.append(time.perf_counter() - started)
    value, floor = min(t_cmd), min(t_bare)
    ratio = value / floor
    return Result(
        "start-up",
        "digest --help",
        value,
        floor,
        "s",
        ratio,
        "< 3",
        _ratio_ok(ratio, "<", 3.0),
        {"median": statistics.median(t_cmd), "floor_median": statistics.median(t_bare)},
    )
