"""The dump-size scenario: one dump of n tiny valid papers, ingested whole, at each n of
``Sizes.json_items`` (10k, 100k, 1M): the JSON list, and the same papers as a text dump.

Reading a JSON list once counted newlines from the start of the document for every item
(quadratic: 40k items took 52 s, 1M did not finish in 15 minutes). Each ingest runs in a
fresh process on a new state, which reports its peak RSS and the wall and CPU time of
``ingest_inbox`` and closing the state (not of making the schema). A row after the first
is judged on how the time per paper grew from the size before it: ``floor`` is that
size's time scaled to this many papers (what linear time gives), ``ratio`` the time over
it, and the target ``<= 1.5``; the first size is the reference (its floor is itself).
The CPU time is in the detail: on a shared machine the wall time moves with the load.
tests/test_harden_inbox.py holds the same at 10k and 40k papers.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.scenarios import NOW, Result, Sizes, _fresh, _load, _ratio_ok, write_config

TEXT_HEADER = (
    "new\nGet trending papers in your email inbox!\nSubscribe\nDaily Papers\n"
    "byAK and the research community\nAug 8\n"
)
GROWTH_LIMIT = 1.5  # time per paper at n over that at the size before it


def write_json_dump(path: Path, n: int) -> int:
    """A daily-papers JSON list of ``n`` tiny, distinct, valid items, one per line."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        for i in range(n):
            item = {"paper": {"id": f"2311.{i % 100000:05d}", "title": f"Paper {i}", "summary": f"S {i}."}}
            fh.write(json.dumps(item, separators=(",", ":")) + (",\n" if i + 1 < n else "\n"))
        fh.write("]\n")
    return path.stat().st_size


def write_text_dump(path: Path, n: int) -> int:
    """The papers of :func:`write_json_dump` (no arXiv ids) as a spaced-layout text dump."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write(TEXT_HEADER)
        for start in range(0, n, 10_000):
            fh.write("".join(f"Paper {i}\n\nS {i}.\n\n" for i in range(start, min(start + 10_000, n))))
    return path.stat().st_size


def measure_ingest(config_file: Path) -> dict[str, float]:
    """In this process: opens a new state, then ingests the inbox and closes the state.
    The wall and CPU seconds of the ingest and close (not of making the schema), papers
    new, and the process's peak RSS (MiB)."""
    from digest.ingest import ingest_inbox
    from digest.store import Store

    config = _load(config_file)
    opened = time.perf_counter()
    store = Store.open(config.state.url)  # a new state: its schema made, the same at any n
    wall_open = time.perf_counter() - opened
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        report = ingest_inbox(config, store, NOW)
    finally:
        store.close()  # closing checkpoints the WAL: part of the ingest's cost
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if report.failed or report.ingested != 1:
        raise RuntimeError(f"dump-size bench: {report}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "open_s": wall_open,
        "new": report.papers_new,
        "peak_rss_mib": peak,
    }


_CHILD = (
    "import json, sys; from pathlib import Path; from bench.json_scale import measure_ingest; "
    "print(json.dumps(measure_ingest(Path(sys.argv[1]))))"
)


def _ingest_in_child(config_file: Path) -> dict[str, float]:
    out = subprocess.run(
        _fresh([sys.executable, "-c", _CHILD, str(config_file)]), check=True, capture_output=True, text=True
    ).stdout
    measured: dict[str, float] = json.loads(out.splitlines()[-1])
    return measured


def json_scale(work: Path, sizes: Sizes) -> list[Result]:
    results: list[Result] = []
    for kind, write in (("JSON", write_json_dump), ("text", write_text_dump)):
        before: tuple[int, float] | None = None  # (papers, wall seconds) of the size before
        for n in sizes.json_items:
            root = work / f"{kind}-{n}"
            config_file = write_config(root)
            size = write(root / "inbox" / f"papers.{kind.lower()}.txt", n)
            m = _ingest_in_child(config_file)
            shutil.rmtree(root, ignore_errors=True)
            if m["new"] != n:
                raise RuntimeError(f"dump-size bench: {m['new']} new papers, expected {n}")
            # The size before, scaled to n; the first size is the reference itself.
            linear = before[1] * n / before[0] if before else m["wall_s"]
            ratio = m["wall_s"] / linear if before else None
            results.append(
                Result(
                    "json-scale",
                    f"{n:,} papers ({size / 1e6:.1f} MB) in one {kind} dump, "
                    f"peak RSS {m['peak_rss_mib']:.0f} MiB",
                    m["wall_s"],
                    linear,
                    "s",
                    ratio,
                    f"<= {GROWTH_LIMIT}",
                    _ratio_ok(ratio, "<=", GROWTH_LIMIT),
                    {
                        "papers": n,
                        "bytes": size,
                        "us_per_paper": m["wall_s"] / n * 1e6,
                        "cpu_s": m["cpu_s"],
                        "cpu_us_per_paper": m["cpu_s"] / n * 1e6,
                        "peak_rss_mib": m["peak_rss_mib"],
                    },
                )
            )
            before = (n, m["wall_s"])
    return results
