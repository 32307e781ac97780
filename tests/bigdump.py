"""A big dump, generated quickly, and a ``digest run`` over it in a subprocess that reports
its own peak RSS. The suite uses a small size; run the 200 MB case by hand:

    python -m tests.bigdump --mb 200

or opt in from pytest with ``DIGEST_BIG_DUMP_MB=200 python -m pytest tests/test_hostile.py -k big``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HEADER = "new\nGet trending papers in your email inbox!\nSubscribe\nDaily Papers\nbyAK and the research community\nAug 8\n"
ABSTRACT = (
    "We introduce a method that scales sparse attention to long contexts while keeping "
    "quality on par with dense models; experiments on reasoning and retrieval benchmarks "
    "show consistent gains. Code is available at https://github.com/example/sparse-attn."
)

# Runs the orchestrator in this child process in the service's poll mode (ingest only:
# rendering a digest of every paper of a huge dump is a separate matter, see the report)
# and prints one JSON line with the outcome and the process's peak RSS.
_CHILD = """
import json, resource, sys
from datetime import UTC, datetime
from pathlib import Path
from digest.config import load_config
from digest.transports import FileTransport
from digest.pipeline import RunOptions, run_once
from digest.store import Store
config = load_config(Path(sys.argv[1]), {})
store = Store.open(config.state.url)
report = run_once(config, store, FileTransport(config.email.outbox), datetime.now(UTC),
                  RunOptions(build_digest=False))
print(json.dumps({"ingested": report.ingest.ingested, "failed": report.ingest.failed,
                  "papers": report.ingest.papers_new, "errors": report.ingest.errors,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def write_dump(path: Path, size_bytes: int) -> int:
    """Writes a spaced-layout dump of about ``size_bytes`` with unique titles; returns the
    number of papers. Written in blocks of 1000 papers, so 200 MB takes a few seconds."""
    count = 0
    written = 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER)
        while written < size_bytes:
            block = "".join(
                f"Sparse Attention at Scale, Part {count + i}\n\n{ABSTRACT}\n\n" for i in range(1_000)
            )
            fh.write(block)
            count += 1_000
            written += len(block)
    return count


def run_measured(config_file: Path) -> dict[str, Any]:
    """An ingest-only run in a subprocess: its report's numbers and peak RSS (KiB)."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(config_file)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"the measured run printed no result: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def config_for(folder: Path, max_bytes: int | None = None) -> Path:
    (folder / "inbox").mkdir(exist_ok=True)
    extra = f"max_bytes = {max_bytes}\n" if max_bytes else ""
    path = folder / "digest.toml"
    path.write_text(f'[sources]\ninbox = "inbox"\n{extra}[email]\nto = []\n', encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = config_for(folder)
        baseline = run_measured(config)  # empty inbox: the interpreter and libraries alone
        papers = write_dump(folder / "inbox" / "big.txt", args.mb * 1024 * 1024)
        size = (folder / "inbox" / "big.txt").stat().st_size
        result = run_measured(config)
        print(
            f"dump {size / 2**20:.0f} MiB, {papers} papers: {result['ingested']} ingested, "
            f"{result['failed']} failed, {result['papers']} new papers, "
            f"peak RSS {result['maxrss_kib'] / 1024:.0f} MiB "
            f"(empty run {baseline['maxrss_kib'] / 1024:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
