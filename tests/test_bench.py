"""Smoke test of the benchmark harness at tiny sizes, so it cannot rot. No timings are
asserted here: speed is measured by ``python -m bench`` against same-run floors."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from bench import gen
from bench.run import main, run
from bench.scenarios import QUICK, SCENARIOS
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


def test_every_scenario_runs_at_tiny_sizes(tmp_path: Path) -> None:
    results = run(list(SCENARIOS), TINY, tmp_path, progress=False)
    names = {r.scenario.split()[0] for r in results}
    assert names == set(SCENARIOS)
    for r in results:
        if r.scenario == "delivery" and r.value is None:
            assert r.detail["n/a"]  # no SMTP transport in this version: says why
            continue
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


def test_unknown_scenario_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--only", "nope", "--json", str(tmp_path / "r.json")])
    assert exc.value.code == 2
