"""``digest run --backfill``: one digest per dump, dated by its listing (or its file's
time), never mailed; digest pages split at ``archive.page_size`` with every anchor still
reachable; and the dating rules on their own."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urldefrag, urljoin
from zoneinfo import ZoneInfo

import feedparser
import pytest

from bench import backfill as bench_backfill
from bench import gen
from digest import identity
from digest.cli import main
from digest.dating import dump_moment, listing_day
from digest.pipeline import run_once
from digest.store import Store
from digest.transports import FileTransport
from tests.helpers import MakeConfig
from tests.test_site import page

BASE = "https://example.org/digest/"


@pytest.mark.parametrize(
    ("text", "saved", "expected"),
    [
        ("Aug 8", date(2026, 8, 9), date(2026, 8, 8)),
        ("Aug 8", date(2026, 8, 8), date(2026, 8, 8)),
        ("Aug 9", date(2026, 8, 8), date(2026, 8, 9)),  # a day of slack for time zones
        ("Aug 10", date(2026, 8, 8), date(2025, 8, 10)),  # not yet this year: last year's
        ("Dec 31", date(2027, 1, 2), date(2026, 12, 31)),
        ("Feb 29", date(2026, 3, 1), date(2024, 2, 29)),
        ("August 8", date(2026, 9, 1), date(2026, 8, 8)),
        ("Sept. 8", date(2026, 9, 9), date(2026, 9, 8)),
        ("Aug 8, 2023", date(2026, 1, 1), date(2023, 8, 8)),  # the JSON's publishedAt, with a year
        ("Feb 30", date(2026, 3, 1), None),
        ("Foo 8", date(2026, 3, 1), None),
        ("", date(2026, 3, 1), None),
        (None, date(2026, 3, 1), None),
    ],
)
def test_listing_day_infers_the_year_from_when_the_file_was_saved(
    text: str | None, saved: date, expected: date | None
) -> None:
    assert listing_day(text, saved) == expected


def test_dump_moment_uses_the_save_time_on_the_listing_day_else_noon() -> None:
    tz = ZoneInfo("Europe/Berlin")
    saved = datetime(2026, 8, 8, 20, 30, tzinfo=UTC)  # 22:30 in Berlin, the same day
    assert dump_moment("Aug 8", saved, tz) == (saved, True)
    later = datetime(2026, 8, 10, 6, tzinfo=UTC)
    assert dump_moment("Aug 8", later, tz) == (datetime(2026, 8, 8, 10, tzinfo=UTC), True)  # noon in Berlin
    assert dump_moment(None, later, tz) == (later, False)


def _set_mtime(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def test_backfill_makes_one_digest_per_dump_in_name_order_never_mailed(
    make_config: MakeConfig, inbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(archive={"page_size": 10})
    saved = datetime(2026, 3, 20, 9, tzinfo=UTC)
    # Spaced (a date line without a year), compact (no date), JSON (publishedAt), and
    # a dump of papers already listed (no digest).
    papers = [gen.paper(3, i) for i in range(60)]
    (inbox / "a.txt").write_text(
        gen.SPACED_HEADER.format(date="Mar 2")
        + "".join(f"{p.title}\n\n{p.abstract}\n\n" for p in papers[:25]),
        encoding="utf-8",
    )
    (inbox / "b.txt").write_text(gen.render(papers[25:40], "compact", 0), encoding="utf-8")
    (inbox / "c.txt").write_text(
        json.dumps(
            [
                {
                    "paper": {"title": p.title, "summary": p.abstract},
                    "publishedAt": "2026-03-04T13:00:00.000Z",
                }
                for p in papers[40:60]
            ]
        ),
        encoding="utf-8",
    )
    (inbox / "d.txt").write_text(gen.render(papers[:5], "compact", 0), encoding="utf-8")
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        _set_mtime(inbox / name, saved)

    assert main(["-c", str(config.path), "run", "--backfill"]) == 0
    out = capsys.readouterr().out
    assert (
        "backfill: 3 digests, one per dump with new papers (2 dated by the listing, 1 by the file's time)"
        in out
    )

    store = Store.open(config.state.url)
    try:
        made = list(reversed(store.digests()))
        assert [(d.slug, d.paper_count) for d in made] == [
            ("2026-03-02", 25),
            ("2026-03-20", 15),
            ("2026-03-04", 20),
        ]
        assert made[0].created == datetime(2026, 3, 2, 12, tzinfo=UTC)  # noon: saved on another day
        assert made[1].created == saved  # no date in the dump: its modification time
        assert store.deliveries() == []  # email.to is set, and nobody was mailed
        assert all(d.published is not None for d in made)
    finally:
        store.close()
    assert not config.email.outbox.exists() or list(config.email.outbox.iterdir()) == []

    site = config.feed.output_dir
    # 25 papers at 10 a page: three pages, linked to each other; anchors resolve from the feeds.
    pages = sorted(p.name for p in (site / "digests").glob("2026-03-02*.html"))
    assert pages == ["2026-03-02-p2.html", "2026-03-02-p3.html", "2026-03-02.html"]
    counts = [
        (site / "digests" / name).read_text(encoding="utf-8").count('<li class="paper"') for name in pages
    ]
    assert sorted(counts) == [5, 10, 10]
    first = page(site, "digests/2026-03-02.html")
    assert "../digests/2026-03-02-p2.html" in first.hrefs and "../digests/2026-03-02-p3.html" in first.hrefs
    for name in ("feed.xml", "digests.xml"):
        parsed = feedparser.parse((site / name).read_bytes())
        assert parsed.bozo == 0
    for entry in feedparser.parse((site / "feed.xml").read_bytes()).entries:
        target, fragment = urldefrag(entry.link)
        assert fragment in page(site, target.removeprefix(BASE)).ids, entry.link
    # Every relative link of every page resolves, anchors included.
    for html in (site / "digests").glob("*.html"):
        here = html.relative_to(site).as_posix()
        for href in page(site, here).hrefs:
            if href.startswith("https://"):
                continue
            target, fragment = urldefrag(urljoin(f"http://site/{here}", href))
            local = target.removeprefix("http://site/")
            assert (site / local).is_file(), f"{here}: {href}"
            if fragment:
                assert fragment in page(site, local).ids, f"{here}: {href}"
    # The 11th paper of the first digest is on its page 2, and the feeds link there.
    eleventh = identity.archive_url(BASE, "2026-03-02", identity.paper_key(papers[10].title), 2)
    assert eleventh in (site / "feed.xml").read_text(encoding="utf-8")
    assert eleventh in (site / "digests.json").read_text(encoding="utf-8")


def test_email_links_go_to_the_page_that_holds_the_paper(make_config: MakeConfig, inbox: Path) -> None:
    config = make_config(archive={"page_size": 10}, email={"max_papers": 30})
    (inbox / "a.txt").write_text(
        gen.render([gen.paper(4, i) for i in range(25)], "compact", 0), encoding="utf-8"
    )
    store = Store.open(config.state.url)
    try:
        run_once(config, store, FileTransport(config.email.outbox), datetime(2026, 11, 22, 7, tzinfo=UTC))
        message = next(config.email.outbox.glob("*.eml")).read_text(encoding="utf-8")
        papers = store.digest_papers(store.digests()[0])
    finally:
        store.close()
    flat = message.replace("=\n", "").replace("=3D", "=")
    assert identity.archive_url(BASE, "2026-11-22", papers[24].key, 3) in flat
    assert identity.archive_url(BASE, "2026-11-22", papers[0].key, 1) in flat


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_backfill_of_40000_papers_over_200_dumps(tmp_path: Path) -> None:
    """The issue's must-show: one digest per dump with its listing date where the dump has
    one, no page over archive.page_size papers, the feeds within the ceiling; prints the
    run's peak RSS (python -m bench.backfill prints the same numbers)."""
    result = bench_backfill.run(tmp_path, n_dumps=200, total=40_000)
    print(json.dumps(result, indent=2))
    assert result["digests"] == 200
    assert result["dated_by_listing"] == 133  # spaced and JSON dumps; compact ones have no date
    assert result["deliveries"] == 0
    assert result["most_papers_on_a_page"] <= result["page_size"] == 500
    assert result["feed_items"] <= result["feed_ceiling"] == 2000


def test_backfill_days_are_consecutive(tmp_path: Path) -> None:
    """The synthetic history is what the slow test relies on: dated days in name order."""
    dumps = bench_backfill.write_history(tmp_path, n_dumps=6, total=60)
    assert [d for _, d, _ in dumps] == [date(2026, 1, 1) + timedelta(days=i) for i in range(6)]
    assert [p.name for p, _, _ in dumps] == sorted(p.name for p, _, _ in dumps)
    assert sum(bench_backfill.dump_sizes(200, 40_000)) == 40_000
