"""The archive stays bounded as years of digests pile up: the index shows the recent
months and links to one page per year; a run re-renders only its year's page."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from digest.config import Config
from digest.identity import message_ids
from digest.model import Paper
from digest.site import publish
from digest.store import Store
from tests.helpers import MakeConfig
from tests.test_site import page, tree


def _digest_at(store: Store, when: datetime, n: int) -> None:
    """Stores ``n`` new papers seen at ``when`` and makes them a digest created then."""
    name = f"dump-{when:%Y%m%d%H%M}.txt"
    papers = [
        Paper(key=f"paper {when:%Y%m%d%H%M} {i}", title=f"Paper {when:%Y%m%d%H%M} {i}", abstract="A.")
        for i in range(n)
    ]
    store.ingest(
        name=name,
        sha256=hashlib.sha256(name.encode()).hexdigest(),
        size=1,
        mtime_ns=1,
        papers_in=papers,
        layout=lambda: "spaced",
        now=when,
    )
    assert store.create_digest(
        now=when, day=when.date(), recipients=(), message_id=message_ids("example.org", store.install_id())
    )


def _published(config: Config, store: Store, site: Path, *, everything: bool = False) -> set[str]:
    report = publish(config, store, site, everything=everything)
    store.mark_published(report.digests, datetime(2030, 1, 1, tzinfo=UTC))
    return {p.relative_to(site).as_posix() for p in report.files}


FEEDS = {"feed.xml", "atom.xml", "feed.json", "digests.xml", "digests.atom", "digests.json"}


def test_index_shows_recent_months_and_links_every_year(config: Config, store: Store) -> None:
    site = config.feed.output_dir
    for when, n in [
        (datetime(2024, 3, 1, 7, tzinfo=UTC), 2),
        (datetime(2025, 6, 1, 7, tzinfo=UTC), 3),
        (datetime(2025, 12, 1, 7, tzinfo=UTC), 1),
        (datetime(2026, 11, 20, 7, tzinfo=UTC), 4),
    ]:
        _digest_at(store, when, n)
    assert _published(config, store, site, everything=True) == {
        "digests/2024-03-01.html",
        "digests/2025-06-01.html",
        "digests/2025-12-01.html",
        "digests/2026-11-20.html",
        "archive/2024.html",
        "archive/2025.html",
        "archive/2026.html",
        "index.html",
        *FEEDS,
    }
    index = page(site, "index.html")
    # The twelve months up to the newest digest's: December 2025 to November 2026.
    assert [h for h in index.hrefs if h.startswith("digests/") and "#" not in h] == [
        "digests/2026-11-20.html",
        "digests/2025-12-01.html",
    ]
    assert [h for h in index.hrefs if h.startswith("archive/")] == [
        "archive/2026.html",
        "archive/2025.html",
        "archive/2024.html",
    ]
    html = (site / "index.html").read_text(encoding="utf-8")
    assert "10 papers in 4 digests" in html  # the totals count the whole archive
    assert "2 digests, 4 papers" in html  # 2025
    year = page(site, "archive/2025.html")
    assert [h for h in year.hrefs if "digests/" in h and "#" not in h] == [
        "../digests/2025-12-01.html",
        "../digests/2025-06-01.html",
    ]
    assert {"../archive/2024.html", "../archive/2026.html", "../index.html"} <= set(year.hrefs)
    assert "4 papers in 2 digests" in (site / "archive/2025.html").read_text(encoding="utf-8")
    # The oldest digest's page still links to nothing older; the others to the one before.
    assert "../digests/2025-12-01.html" in page(site, "digests/2026-11-20.html").hrefs


def test_a_run_rerenders_only_its_year_and_the_one_before_a_new_year(config: Config, store: Store) -> None:
    site = config.feed.output_dir
    _digest_at(store, datetime(2025, 6, 1, 7, tzinfo=UTC), 1)
    _digest_at(store, datetime(2026, 11, 20, 7, tzinfo=UTC), 1)
    _published(config, store, site, everything=True)
    before_2025 = (site / "archive/2025.html").read_bytes()

    _digest_at(store, datetime(2026, 11, 21, 7, tzinfo=UTC), 2)
    assert _published(config, store, site) == {
        "digests/2026-11-21.html",
        "digests/2026-11-20.html",  # its "next" link
        "archive/2026.html",
        "index.html",
        *FEEDS,
    }
    assert "../digests/2026-11-20.html" in page(site, "digests/2026-11-21.html").hrefs  # "previous"

    # The first digest of 2027: 2026's page gains its "next year" link; 2025's is untouched.
    _digest_at(store, datetime(2027, 1, 2, 7, tzinfo=UTC), 1)
    assert _published(config, store, site) == {
        "digests/2027-01-02.html",
        "digests/2026-11-21.html",
        "archive/2026.html",
        "archive/2027.html",
        "index.html",
        *FEEDS,
    }
    assert "../archive/2027.html" in page(site, "archive/2026.html").hrefs
    assert "../archive/2026.html" in page(site, "archive/2027.html").hrefs
    # What the normal runs wrote is what a full rebuild writes.
    normal = tree(site)
    assert normal["archive/2025.html"] == before_2025
    _published(config, store, site, everything=True)
    assert tree(site) == normal


def test_a_year_follows_the_configured_time_zone(make_config: MakeConfig, store: Store) -> None:
    config = make_config(digest={"timezone": "Pacific/Auckland"})
    site = config.feed.output_dir
    # 1 Jan 2027 02:00 in Auckland is still 2026 in UTC.
    _digest_at(store, datetime(2026, 12, 31, 13, tzinfo=UTC), 1)
    assert "archive/2027.html" in _published(config, store, site, everything=True)


def test_store_reads_digests_by_date_and_totals(store: Store) -> None:
    assert store.digest_span() is None and store.digest_totals() == (0, 0)
    days = [
        datetime(2025, 12, 31, 23, tzinfo=UTC),
        datetime(2026, 1, 1, 0, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
    ]
    for i, when in enumerate(days):
        _digest_at(store, when, i + 1)
    assert store.digest_span() == (days[0], days[-1])
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    assert [d.created for d in store.digests_between(start, end)] == [days[1]]
    assert [d.created for d in store.digests_between(start)] == [days[2], days[1]]
    assert store.digest_totals(start) == (2, 5) and store.digest_totals() == (3, 6)
    years = [datetime(y, 1, 1, tzinfo=UTC) for y in (2025, 2026, 2027)]
    assert store.digest_totals_per_range(years) == [(1, 1), (2, 5)]
    assert store.digest_totals_per_range(years[1:]) == [(2, 5)]
    [newest, middle, oldest] = store.digests()
    assert store.previous_digest(newest.id) == middle and store.previous_digest(oldest.id) is None
