"""The ingest scenarios: a big inbox against a bare floor, and a run's time as the
stored history grows."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench import gen
from bench.common import NOW, Result, Sizes, _load, _ratio_ok, write_config

# --- ingest ------------------------------------------------------------------------------


def _floor_ingest(files: list[Path], db: Path) -> int:
    """Read, split lines, hash titles, bare executemany: what any ingester must at least do."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE papers (key TEXT, title TEXT, abstract TEXT)")
    rows_total = 0
    for path in files:
        lines = [ln for ln in path.read_bytes().decode("utf-8").splitlines() if ln.strip()]
        first = next(i for i, ln in enumerate(lines) if len(ln) >= 300) - 1
        rows = [
            (hashlib.sha256(lines[i].encode()).hexdigest(), lines[i], lines[i + 1])
            for i in range(first, len(lines) - 1, 2)
        ]
        with conn:
            conn.executemany("INSERT INTO papers VALUES (?, ?, ?)", rows)
        rows_total += len(rows)
    conn.close()
    return rows_total


def timed_ingest(config: Any) -> tuple[Any, float]:
    """``digest run``'s ingest of the inbox into a new store: (its report, seconds)."""
    from digest.ingest import ingest_inbox
    from digest.store import Store

    started = time.perf_counter()
    with Store.open(config.state.url) as store:
        report = ingest_inbox(config, store, NOW)
    return report, time.perf_counter() - started


def ingest(work: Path, sizes: Sizes) -> Result:
    root = work / "ingest"
    config = _load(write_config(root))
    per_dump = sizes.ingest_papers // sizes.ingest_dumps
    files, listed = gen.write_dumps(root / "inbox", n_dumps=sizes.ingest_dumps, per_dump=per_dump)
    # Each timing starts with nothing left to write back: the inbox is on disk, as a real
    # one is, and no run pays for flushing another's database. Best of ingest_runs each.
    floor_s = real_s = float("inf")
    state = Path(config.state.url.removeprefix("sqlite:///")).parent
    for _ in range(sizes.ingest_runs):
        (root / "floor.db").unlink(missing_ok=True)
        shutil.rmtree(state, ignore_errors=True)
        os.sync()
        started = time.perf_counter()
        floor_rows = _floor_ingest(files, root / "floor.db")
        floor_s = min(floor_s, time.perf_counter() - started)

        os.sync()
        report, seconds = timed_ingest(config)
        real_s = min(real_s, seconds)
    if report.failed or report.papers_found != listed or floor_rows != listed:
        raise RuntimeError(f"ingest bench: {report} (expected {listed} papers found)")
    value, floor = listed / real_s, listed / floor_s
    ratio = value / floor
    return Result(
        "ingest",
        f"{listed:,} papers in {len(files)} dumps",
        value,
        floor,
        "papers/s",
        ratio,
        ">= 0.40",
        _ratio_ok(ratio, ">=", 0.40),
        {"seconds": real_s, "floor_seconds": floor_s, "new": report.papers_new},
    )


# --- growth ------------------------------------------------------------------------------

_TS = "2026-01-01 00:00:00.000000"


def build_history(config: Any, n_papers: int, per_dump: int) -> None:
    """A state holding ``n_papers`` papers in dumps of ``per_dump``, one digest per dump
    (published, delivered), and the dumps' files in the inbox with a matching stat cache.

    Rows go in with sqlite3 directly: building a big history through the pipeline would
    take hours. The files are sparse (their content is never read: the stat cache holds).
    """
    from digest.identity import message_id, paper_key
    from digest.store import Store

    store = Store.open(config.state.url)  # the real schema
    install = store.install_id()
    store.close()
    db = config.state.url.removeprefix("sqlite:///")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    pool = [gen.paper(99, i) for i in range(500)]
    inbox = config.sources.inbox
    n_dumps = max(1, n_papers // per_dump)
    seq = 0
    with conn:
        for d in range(n_dumps):
            name = f"history_{d:06d}.txt"
            path = inbox / name
            with path.open("wb") as fh:
                fh.truncate(per_dump * 1400)
            st = path.stat()
            sha = hashlib.sha256(name.encode()).hexdigest()
            conn.execute(
                "INSERT INTO dumps (id, sha256, name, size, seen_at, status, layout, papers_found, "
                "papers_new) VALUES (?, ?, ?, ?, ?, 'ingested', 'spaced', ?, ?)",
                (d + 1, sha, name, st.st_size, _TS, per_dump, per_dump),
            )
            conn.execute(
                "INSERT INTO seen_files VALUES (?, ?, ?, ?)", (name, st.st_size, st.st_mtime_ns, sha)
            )
            rows = []
            for _ in range(per_dump):
                p = pool[seq % len(pool)]
                title = f"{gen._name(seq + 10_000_000)}: {p.title.partition(': ')[2]}"
                seq += 1
                rows.append((seq, paper_key(title), title, p.abstract, "[]", "Aug 8", "[]", _TS, d + 1))
            conn.executemany(
                "INSERT INTO papers (seq, key, title, abstract, links, listing_date, authors, "
                "first_seen, dump_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            created = (datetime(2000, 1, 1) + timedelta(days=d)).strftime("%Y-%m-%d %H:%M:%S.%f")
            conn.execute(
                "INSERT INTO digests (id, slug, created_at, first_seq, last_seq, paper_count, "
                "published_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (d + 1, created[:10], created, seq - per_dump + 1, seq, per_dump, created),
            )
            recipient = config.email.to[0]
            conn.execute(
                "INSERT INTO deliveries (digest_id, recipient, status, attempts, message_id, "
                "created_at, sent_at) VALUES (?, ?, 'sent', 1, ?, ?, ?)",
                (
                    d + 1,
                    recipient,
                    message_id(d + 1, recipient, config.email.domain, install),
                    created,
                    created,
                ),
            )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    # The build wrote with synchronous=OFF: flush it now, or the first measured run's
    # checkpoint would pay for writing back the whole history.
    fd = os.open(db, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _timed_runs(config: Any, runs: int, per_dump: int, seed: int) -> list[float]:
    from digest.pipeline import run_once
    from digest.store import Store
    from digest.transports import FileTransport

    times = []
    for r in range(runs):
        papers = [gen.paper(seed, 20_000_000 + r * per_dump + i) for i in range(per_dump)]
        name = f"zz_new_{r:03d}.txt"
        (config.sources.inbox / name).write_text(gen.render(papers, "spaced", r), encoding="utf-8")
        now = NOW + timedelta(days=r + 1)
        started = time.perf_counter()
        store = Store.open(config.state.url)
        try:
            report = run_once(config, store, FileTransport(config.email.outbox), now)
        finally:
            store.close()
        times.append(time.perf_counter() - started)
        if report.ingest.papers_new != per_dump or report.digest is None or not report.ok:
            raise RuntimeError(f"growth bench: unexpected run: {report.summary()}")
    return times


def growth(work: Path, sizes: Sizes) -> Result:
    results: dict[str, dict[str, Any]] = {}
    for label, n in (("small", sizes.growth_small), ("big", sizes.growth_big)):
        root = work / f"growth_{label}"
        config = _load(write_config(root))
        started = time.perf_counter()
        build_history(config, n, sizes.growth_dump)
        build_s = time.perf_counter() - started
        times = _timed_runs(config, sizes.growth_runs, sizes.growth_dump, seed=5)
        results[label] = {"papers": n, "build_seconds": build_s, "runs": times}
        shutil.rmtree(root)
    small, big = min(results["small"]["runs"]), min(results["big"]["runs"])
    ratio = big / small
    return Result(
        "growth",
        f"run with a {sizes.growth_dump}-paper dump, {sizes.growth_big:,} vs {sizes.growth_small:,} stored",
        big,
        small,
        "s/run",
        ratio,
        "<= 1.5",
        _ratio_ok(ratio, "<=", 1.5),
        results,
    )
