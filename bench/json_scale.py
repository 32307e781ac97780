"""The JSON-dump scenario: one dump of n tiny valid items, ingested whole, at several n.

Reading a JSON list once counted newlines from the start of the document for every item
(quadratic: 40k items took 52 s, 1M did not finish in 15 minutes). The rows show the
time per item at each size; the target is that it stays within 2x of the smallest size's,
i.e. time linear in the dump's size. The floor is ``json.loads`` of the same bytes plus
a bare executemany of (key, title, abstract), what any JSON ingester must at least do.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.scenarios import NOW, Result, Sizes, _load, _ratio_ok, write_config


def write_json_dump(path: Path, n: int) -> int:
    """A daily-papers JSON list of ``n`` tiny, distinct, valid items, one per line."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        for i in range(n):
            item = {"paper": {"id": f"2311.{i % 100000:05d}", "title": f"Paper {i}", "summary": f"S {i}."}}
            fh.write(json.dumps(item, separators=(",", ":")) + (",\n" if i + 1 < n else "\n"))
        fh.write("]\n")
    return path.stat().st_size


def _floor(path: Path, db: Path) -> float:
    started = time.perf_counter()
    items: list[Any] = json.loads(path.read_bytes())
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE papers (key TEXT PRIMARY KEY, title TEXT, abstract TEXT)")
    with conn:
        conn.executemany(
            "INSERT INTO papers VALUES (?, ?, ?)",
            ((it["paper"]["title"].casefold(), it["paper"]["title"], it["paper"]["summary"]) for it in items),
        )
    conn.close()
    return time.perf_counter() - started


def json_scale(work: Path, sizes: Sizes) -> list[Result]:
    from digest.ingest import ingest_inbox
    from digest.store import Store

    results: list[Result] = []
    base_per_item: float | None = None
    for n in sizes.json_items:
        root = work / f"json-{n}"
        config = _load(write_config(root))
        size = write_json_dump(root / "inbox" / "papers.json.txt", n)
        floor_s = _floor(root / "inbox" / "papers.json.txt", root / "floor.db")
        started = time.perf_counter()
        store = Store.open(config.state.url)
        try:
            report = ingest_inbox(config, store, NOW)
        finally:
            store.close()
        real_s = time.perf_counter() - started
        if report.failed or report.papers_new != n:
            raise RuntimeError(f"json bench: {report} (expected {n} new papers)")
        per_item = real_s / n
        base_per_item = base_per_item or per_item
        growth = per_item / base_per_item
        results.append(
            Result(
                "json-scale",
                f"{n:,} items ({size / 1e6:.1f} MB) in one JSON dump",
                real_s,
                floor_s,
                "s",
                real_s / floor_s,
                "s/item <= 2x the smallest's",
                _ratio_ok(growth, "<=", 2.0),
                {"items_per_s": n / real_s, "s_per_item_vs_smallest": growth, "bytes": size},
            )
        )
        shutil.rmtree(root, ignore_errors=True)
    return results
