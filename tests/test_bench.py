"""Smoke test of the benchmark harness at tiny sizes, so it cannot rot. No timings are
asserted here: speed is measured by ``python -m bench`` against same-run floors."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from bench import gen
from bench.repeat import fold, meets, paired, per_call
from bench.run import main, run
from bench.scenarios import QUICK, SCENARIOS, Result
from digest.parse import parse_dump

TINY = replace(
    QUICK,
    ingest_papers=40,
    ingest_dumps=2,
    growth_big=60,
    growth_small=20,
    growth_dump=10,
    render_papers=5,
    feed_items=3,
    delivery_recipients=2,
    delivery_papers=2,
    memory_bytes=64 * 1024,
)


def test_generated_dumps_parse_in_both_layouts_and_overlap(tmp_path: Path) -> None:
    files, listed = gen.write_dumps(tmp_path, n_dumps=4, per_dump=50, overlap=0.2)
    parsed = [parse_dump(f.read_bytes(), f.name) for f in files]
    assert [p.layout for p in parsed] == ["spaced", "compact", "spaced", "compact"]
    assert [len(p.papers) for p in parsed] == [50] * 4 and listed == 200
    keys = [paper.key for p in parsed for paper in p.papers]
    assert len(set(keys)) == 50 + 3 * 40  # every later dump repeats 10 papers
    titles = [paper.title for p in parsed for paper in p.papers]
    assert all(12 <= len(t) < 300 for t in titles)


def test_generator_is_seeded(tmp_path: Path) -> None:
    a, _ = gen.write_dumps(tmp_path / "a", n_dumps=2, per_dump=5, seed=3)
    b, _ = gen.write_dumps(tmp_path / "b", n_dumps=2, per_dump=5, seed=3)
    c, _ = gen.write_dumps(tmp_path / "c", n_dumps=2, per_dump=5, seed=4)
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b] != [f.read_bytes() for f in c]


@pytest.mark.slow
def test_every_scenario_runs_at_tiny_sizes(tmp_path: Path) -> None:
    results = run(list(SCENARIOS), TINY, tmp_path, progress=False)
    names = {r.scenario.split()[0] for r in results}
    assert names == set(SCENARIOS)
    for r in results:
        # Every row measures: a delivery "n/a" (no SMTP transport, or it could not be
        # built from the config) would let a broken SMTP path pass.
        assert "n/a" not in r.detail, r
        assert r.value is not None and math.isfinite(r.value) and r.value > 0, r
        assert r.floor is not None and r.floor > 0, r
    assert {r.scenario for r in results} >= {"render feed-rss", "render archive", "render email"}


def test_command_prints_a_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    main(["--quick", "--only", "render,start-up", "--json", str(out), "--workdir", str(tmp_path)])
    table = capsys.readouterr().out
    assert "| render archive" in table and "| start-up" in table
    data = json.loads(out.read_text())
    assert data["quick"] is True
    assert {r["scenario"] for r in data["results"]} >= {"render email", "start-up"}
    assert list(tmp_path.iterdir()) == [out]  # the scratch folder is removed


def test_repeat_reports_the_median_and_the_spread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    main(["--quick", "--repeat", "3", "--only", "start-up", "--json", str(out), "--workdir", str(tmp_path)])
    table = capsys.readouterr().out
    assert "spread (3 runs)" in table
    [row] = json.loads(out.read_text())["results"]
    runs = row["detail"]["runs"]
    assert len(runs) == 3
    ratios = sorted(r["ratio"] for r in runs)
    assert row["ratio"] == ratios[1] and row["detail"]["spread"] == [ratios[0], ratios[2]]


def _row(ratio: float | None, value: float | None = 1.0, target: str = "< 10") -> Result:
    ok = None if ratio is None else ratio < 10
    return Result("render x", "m", value, 1.0, "s", ratio, target, ok, {})


def test_a_target_is_met_when_the_median_meets_it() -> None:
    [row] = fold([[_row(9.0)], [_row(13.0)], [_row(9.5)]])
    assert (row.ratio, row.ok, row.detail["spread"]) == (9.5, True, [9.0, 13.0])
    [row] = fold([[_row(10.5)], [_row(7.5)], [_row(13.3)]])
    assert (row.ratio, row.ok) == (10.5, False)
    [memory] = fold([[_row(None, 140.0, "< 300 MiB")], [_row(None, 150.0, "< 300 MiB")]])
    assert memory.ok is None  # no run judged it (tiny sizes): no verdict from the median either
    assert meets("< 300 MiB", 299.0) and not meets(">= 0.40", 0.39) and meets("<= 1.5", 1.5)


def test_a_target_with_a_unit_is_the_median_runs_verdict_not_the_ratios() -> None:
    # status: "< 0.5 s, < 100 MiB" on the time and the peak, while the ratio to an empty
    # state (about 2) is only reported; the ratio must not be read against 0.5.
    runs = [
        [replace(_row(r, 0.04, "< 0.5 s, < 100 MiB"), ok=ok)]
        for r, ok in ((1.9, True), (2.0, True), (1.95, False))
    ]
    [row] = fold(runs)
    assert (row.ratio, row.ok) == (1.95, False)  # the median run (ratio 1.95) failed
    runs[2][0] = replace(runs[2][0], ok=True)
    assert fold(runs)[0].ok is True


def test_per_call_times_loops_of_at_least_min_seconds() -> None:
    calls = 0

    def tiny() -> None:
        nonlocal calls
        calls += 1

    seconds, how = per_call(tiny, 0.02, 3)
    assert how["loops"] > 1000 and how["timings"] == 3 and how["clock"] == "process_time"
    assert seconds * how["loops"] > 0 and seconds < 0.02 / 1000 and calls >= 3 * how["loops"]
    # Each side of a pair gets its own loop count, and both are timed as often.
    t, floor, how = paired(lambda: sum(range(200)), tiny, 0.02, 2)
    assert t > floor > 0 and how["floor_loops"] > how["loops"] and how["timings"] == 2


def test_unknown_scenario_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--only", "nope", "--json", str(tmp_path / "r.json")])
    assert exc.value.code == 2
