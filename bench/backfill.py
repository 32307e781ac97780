"""``digest run --backfill`` over months of synthetic history, with the run's peak RSS.

    python -m bench.backfill [--dumps 200] [--papers 40000] [--keep DIR]

Writes ``--dumps`` dumps named in date order (one a day from 1 January 2026) that list
``--papers`` new papers in all: most dumps list the same number, every 20th lists
eight times as many (a day longer than ``archive.page_size``). Layouts rotate: the spaced
page (a date line without a year), the compact page (no date: dated by the file's
modification time) and the Hugging Face JSON (``publishedAt``). Each file's
modification time is the day after its listing. It then runs ``digest run --backfill``
in a child process, checks what it made and prints the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bench import gen

FIRST_DAY = date(2026, 1, 1)
LAYOUTS = ("spaced", "compact", "json")


def dump_sizes(n_dumps: int, total: int) -> list[int]:
    """Papers per dump summing to ``total``: every 20th dump lists 8 shares, the rest 1."""
    weights = [8 if i % 20 == 19 else 1 for i in range(n_dumps)]
    share = total / sum(weights)
    sizes = [int(share * w) for w in weights]
    sizes[0] += total - sum(sizes)
    return sizes


def render(papers: list[gen.Paper], layout: str, day: date) -> str:
    if layout == "spaced":
        head = gen.SPACED_HEADER.format(date=f"{gen.MONTHS[day.month - 1]} {day.day}")
        return head + "".join(f"{p.title}\n\n{p.abstract}\n\n" for p in papers)
    if layout == "compact":
        return gen.render(papers, "compact", 0)
    published = f"{day.isoformat()}T13:00:00.000Z"
    items = [{"paper": {"title": p.title, "summary": p.abstract}, "publishedAt": published} for p in papers]
    return json.dumps(items)


def write_history(folder: Path, *, n_dumps: int, total: int, seed: int = 23) -> list[tuple[Path, date, str]]:
    """Writes the dumps; returns (file, listing day, layout) for each, in name order."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    first = 0
    for i, size in enumerate(dump_sizes(n_dumps, total)):
        day = FIRST_DAY + timedelta(days=i)
        layout = LAYOUTS[i % len(LAYOUTS)]
        path = folder / f"daily_{day.isoformat()}.txt"
        papers = [gen.paper(seed, j) for j in range(first, first + size)]
        path.write_text(render(papers, layout, day), "utf-8")
        saved = datetime.combine(day + timedelta(days=1), time(9), tzinfo=UTC)  # saved the next morning
        os.utime(path, (saved.timestamp(), saved.timestamp()))
        first += size
        out.append((path, day, layout))
    return out


def run(work: Path, *, n_dumps: int, total: int) -> dict[str, Any]:
    """Writes the history into ``work``, backfills it in a child process and checks the
    result: one digest per dump, dated by the listing where the dump has one, no page
    over ``archive.page_size`` papers, the feeds within ``feed.max_items_hard``."""
    from digest.config import load_config
    from digest.store import Store

    inbox = work / "inbox"
    dumps = write_history(inbox, n_dumps=n_dumps, total=total)
    (work / "digest.toml").write_text(
        "[digest]\nbase_url = 'https://example.org/digest/'\n"
        f"[sources]\ninbox = '{inbox}'\n"
        "[email]\nto = ['reader@example.org']\nfrom = 'Digest <digest@example.org>'\n",
        encoding="utf-8",
    )
    started = clock.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "digest", "-c", str(work / "digest.toml"), "run", "--backfill"],
        cwd=Path(__file__).resolve().parents[1],  # this checkout's digest, whatever is installed
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = clock.monotonic() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    if done.returncode != 0:
        raise RuntimeError(f"digest run --backfill failed: {done.stderr}")
    config = load_config(work / "digest.toml", {})
    store = Store.open(config.state.url)
    try:
        digests = list(reversed(store.digests()))  # oldest first
        deliveries = store.deliveries()
    finally:
        store.close()
    site = config.feed.output_dir
    dated = 0
    for (path, day, layout), d in zip(dumps, digests, strict=True):
        created = d.created.astimezone(config.tz).date()
        if layout == "compact":
            assert created == day + timedelta(days=1), (path.name, d.slug)  # by mtime
        else:
            assert created == day, (path.name, d.slug)
            dated += 1
    size = config.archive.page_size
    biggest_page = 0
    pages = 0
    for page in (site / "digests").glob("*.html"):
        pages += 1
        biggest_page = max(biggest_page, page.read_text(encoding="utf-8").count('<li class="paper"'))
    feed_items = len(json.loads((site / "feed.json").read_bytes())["items"])
    return {
        "dumps": len(dumps),
        "papers": total,
        "digests": len(digests),
        "dated_by_listing": dated,
        "deliveries": len(deliveries),
        "pages": pages,
        "most_papers_on_a_page": biggest_page,
        "page_size": size,
        "feed_items": feed_items,
        "feed_ceiling": config.feed.max_items_hard,
        "largest_page_bytes": max(p.stat().st_size for p in (site / "digests").glob("*.html")),
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "summary": done.stdout.strip().splitlines(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__.splitlines()[0])
    parser.add_argument("--dumps", type=int, default=200)
    parser.add_argument("--papers", type=int, default=40_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    if args.keep:
        result = run(args.keep, n_dumps=args.dumps, total=args.papers)
    else:
        with tempfile.TemporaryDirectory(prefix="backfill-") as tmp:
            result = run(Path(tmp), n_dumps=args.dumps, total=args.papers)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
