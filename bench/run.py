"""Runs every scenario, prints a table and writes the results as JSON.

python -m bench                 # full sizes (several minutes, a few GB of scratch)
python -m bench --quick         # tiny sizes, a second or two
python -m bench --only ingest,growth --json out.json
python -m bench --repeat 3      # every scenario three times: medians and spread
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.repeat import fold
from bench.scenarios import QUICK, SCENARIOS, Result, Sizes

DEFAULT_JSON = Path(__file__).resolve().parent / "results.json"


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit.startswith("s"):
        return f"{value * 1000:,.1f} ms" if value < 1 else f"{value:,.2f} s"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.1f} {unit}"


def _spread(r: Result) -> str:
    spread = r.detail.get("spread")
    if not spread:
        return "n/a"
    low, high = spread
    if r.ratio is not None:
        return f"{low:.2f}-{high:.2f}"
    return f"{low:,.1f}-{high:,.1f}"


def table(results: Sequence[Result]) -> str:
    """A Markdown table: scenario, what was measured, value, floor, ratio (each the median
    over the runs), the spread of the ratio across runs, target, verdict on the median."""
    runs = max((len(r.detail.get("runs", ())) for r in results), default=1)
    rows = [("scenario", "measured", "value", "floor", "ratio", f"spread ({runs} runs)", "target", "ok")]
    for r in results:
        verdict = "n/a" if r.ok is None else "yes" if r.ok else "NO"
        ratio = "n/a" if r.ratio is None else f"{r.ratio:.2f}"
        rows.append(
            (
                r.scenario,
                r.measured,
                _num(r.value, r.unit),
                _num(r.floor, r.unit),
                ratio,
                _spread(r),
                r.target,
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def run(names: Sequence[str], sizes: Sizes, work: Path, progress: bool = True) -> list[Result]:
    results: list[Result] = []
    for name in names:
        started = time.perf_counter()
        if progress:
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
        scratch = work / name
        scratch.mkdir(parents=True, exist_ok=True)
        out = SCENARIOS[name](scratch, sizes)
        shutil.rmtree(scratch, ignore_errors=True)
        results.extend(out if isinstance(out, list) else [out])
        if progress:
            print(f"bench: {name} done in {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, not the speed")
    parser.add_argument("--only", help=f"comma-separated scenarios out of {','.join(SCENARIOS)}")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})"
    )
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one, removed)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run every scenario N times; report the median and the spread (a target is met by the median)",
    )
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    sizes = QUICK if args.quick else Sizes()
    with tempfile.TemporaryDirectory(prefix="digest-bench-", dir=args.workdir) as tmp:
        runs = []
        for i in range(args.repeat):
            if args.repeat > 1:
                print(f"bench: run {i + 1} of {args.repeat}", file=sys.stderr, flush=True)
            runs.append(run(names, sizes, Path(tmp) / f"run{i}"))
        results = fold(runs)
    print(table(results))
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "repeat": args.repeat,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "sizes": asdict(sizes),
        "results": [r.as_dict() for r in results],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"bench: results written to {args.json}", file=sys.stderr)
    return 1 if any(r.ok is False for r in results) else 0
