"""The benchmark scenarios. Each measures the real code path and a floor in the same run
and returns a :class:`Result`; timings are compared as ratios, never as absolute times.
The scenarios live in modules of their own; this one names them (``SCENARIOS``) and keeps
the shared pieces importable from here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.common import (
    MIB,
    NOW,
    QUICK,
    Result,
    Sizes,
    _load,
    _ratio_ok,
    _Sink,
    free_port,
    write_config,
)
from bench.delivery_scenario import delivery
from bench.ingest_scenarios import build_history, growth, ingest, timed_ingest
from bench.process_scenarios import _fresh, memory, startup
from bench.render_scenario import render, sample_digest

__all__ = [
    "MIB",
    "NOW",
    "QUICK",
    "SCENARIOS",
    "Result",
    "Sizes",
    "_Sink",
    "_fresh",
    "_load",
    "_ratio_ok",
    "build_history",
    "free_port",
    "sample_digest",
    "timed_ingest",
    "write_config",
]


def status(work: Path, sizes: Sizes) -> list[Result]:
    from bench import status as scenario

    return scenario.scenario(work, sizes.status_digests, sizes.status_recipients)  # type: ignore[return-value]


def ranking(work: Path, sizes: Sizes) -> Result:
    """Personal ranking (bench/rank_speed.py; imported here only, it loads scikit-learn)."""
    from bench.rank_speed import ranking as run

    result: Result = run(work, sizes)
    return result


SCENARIOS: dict[str, Callable[[Path, Sizes], Result | list[Result]]] = {
    "ingest": ingest,
    "growth": growth,
    "render": render,
    "delivery": delivery,
    "memory": memory,
    "start-up": startup,
    "status": status,
    "ranking": ranking,
}


def _json_scale(work: Path, sizes: Sizes) -> list[Result]:
    from bench.json_scale import json_scale  # imports this module: not at the top

    return json_scale(work, sizes)


SCENARIOS["json-scale"] = _json_scale


def _cluster(work: Path, sizes: Sizes) -> list[Result]:
    from bench.cluster import cluster  # imports this module: not at the top

    return cluster(work, sizes)


SCENARIOS["cluster"] = _cluster


def _personal_delivery(work: Path, sizes: Sizes) -> Result:
    from bench.personal_delivery import personal_delivery  # imports this module: not at the top

    return personal_delivery(work, sizes)


SCENARIOS["personal-delivery"] = _personal_delivery
