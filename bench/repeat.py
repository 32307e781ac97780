"""Stable numbers: time a call over enough loops, and fold several runs of the bench
into one row per scenario (median and spread).

A timing under a millisecond moves by half its size between two runs on a shared
machine, so a render row times each side over loops of at least ``min_seconds`` of work.
``python -m bench --repeat N`` runs every scenario N times; a row then shows the median
across the runs, the spread (lowest and highest ratio, or value when the row has no
ratio), and a target is met when the median meets it.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bench.scenarios import Result

_TARGET = re.compile(r"^\s*(>=|<=|<|>)\s*([0-9.]+)")


def per_call(
    fn: Callable[[], object], min_seconds: float, repeats: int, clock: Callable[[], float] = time.process_time
) -> tuple[float, dict[str, Any]]:
    """Seconds per call of ``fn``: the best of ``repeats`` timings, each of as many calls
    in a row as take at least ``min_seconds`` (found by doubling first, like ``timeit``).

    ``clock`` is CPU time by default: what a pure, single-threaded render costs, which
    other processes on a shared machine change far less than the wall clock."""
    loops = calibrate(fn, min_seconds, clock)
    times = [_loop(fn, loops, clock) / loops for _ in range(max(repeats, 1))]
    return min(times), {"loops": loops, "timings": len(times), "clock": clock.__name__}


def paired(
    fn: Callable[[], object],
    floor: Callable[[], object],
    min_seconds: float,
    repeats: int,
    clock: Callable[[], float] = time.process_time,
) -> tuple[float, float, dict[str, Any]]:
    """:func:`per_call` for ``fn`` and its ``floor``, their timings taken in turns (floor,
    fn, floor, fn, ...) so that both see the same machine: (fn s/call, floor s/call, how)."""
    loops, floor_loops = calibrate(fn, min_seconds, clock), calibrate(floor, min_seconds, clock)
    times, floors = [], []
    for _ in range(max(repeats, 1)):
        floors.append(_loop(floor, floor_loops, clock) / floor_loops)
        times.append(_loop(fn, loops, clock) / loops)
    how = {"loops": loops, "floor_loops": floor_loops, "timings": len(times), "clock": clock.__name__}
    return min(times), min(floors), how


def calibrate(fn: Callable[[], object], min_seconds: float, clock: Callable[[], float]) -> int:
    """How many calls in a row take at least ``min_seconds`` of ``clock``."""
    loops = 1
    while (elapsed := _loop(fn, loops, clock)) < min_seconds:
        # Aim just past min_seconds from what this try took, at least doubling.
        loops = max(loops * 2, int(loops * min_seconds * 1.2 / max(elapsed, 1e-9)))
    return loops


def _loop(fn: Callable[[], object], loops: int, clock: Callable[[], float]) -> float:
    started = clock()
    for _ in range(loops):
        fn()
    return clock() - started


def meets(target: str, x: float) -> bool | None:
    """Whether ``x`` meets a target written like ``">= 0.40"``, ``"< 10"``, ``"< 300 MiB"``."""
    match = _TARGET.match(target)
    if not match:
        return None
    op, limit = match[1], float(match[2])
    return {">=": x >= limit, "<=": x <= limit, "<": x < limit, ">": x > limit}[op]


def _bare(target: str) -> bool:
    """A target with no unit (``"< 10"``, ``">= 0.40"``) is on the ratio."""
    match = _TARGET.match(target)
    return match is not None and not target[match.end() :].strip()


def _key(r: Result) -> float:
    return r.ratio if r.ratio is not None else (r.value if r.value is not None else 0.0)


def fold(runs: Sequence[Sequence[Result]]) -> list[Result]:
    """One row per row of a run out of several runs of the same scenarios: value, floor and
    ratio are the medians, ``detail["spread"]`` the lowest and highest ratio (value when
    the row has none), and ``ok`` is the target applied to the median. One run is
    returned as it is, with its spread being that one run."""
    if len({len(results) for results in runs}) > 1:
        raise RuntimeError(f"bench: the runs gave {[len(r) for r in runs]} rows")
    rows = [list(same) for same in zip(*runs, strict=True)]  # the i-th row of every run
    out = []
    for same in rows:
        first = same[0]
        if any(r.scenario != first.scenario for r in same):
            raise RuntimeError(f"bench: the runs' rows differ: {[r.scenario for r in same]}")

        def median(xs: list[float | None]) -> float | None:
            known = [x for x in xs if x is not None]
            return statistics.median(known) if known else None

        value = median([r.value for r in same])
        floor = median([r.floor for r in same])
        ratio = median([r.ratio for r in same])
        judged = ratio if ratio is not None else value
        spread_of = [r.ratio if r.ratio is not None else r.value for r in same]
        known = [x for x in spread_of if x is not None]
        if not any(r.ok is not None for r in same) or judged is None:
            ok = None
        elif first.ratio is None or _bare(first.target):
            ok = meets(first.target, judged)
        else:
            # A target on something other than the ratio (status: "< 0.5 s, < 100 MiB" on
            # the value and the peak): the verdict of the median run.
            ordered = sorted((r for r in same if r.ok is not None), key=lambda r: _key(r))
            ok = ordered[(len(ordered) - 1) // 2].ok
        detail = dict(first.detail)
        detail["runs"] = [{"value": r.value, "floor": r.floor, "ratio": r.ratio, "ok": r.ok} for r in same]
        detail["spread"] = [min(known), max(known)] if known else None
        out.append(replace(first, value=value, floor=floor, ratio=ratio, ok=ok, detail=detail))
    return out
