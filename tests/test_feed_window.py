"""The feed window: every paper of the digests of the last ``feed.window`` (at least
``feed.max_items``, at most ``feed.max_items_hard``), items dated first seen + position
and ordered like the page, and the digest-level feeds. Read back with feedparser and
newsboat over a real HTTP server."""

from __future__ import annotations

import calendar
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag

import feedparser
import pytest

from bench import gen
from digest import identity
from digest.config import Config
from digest.errors import ConfigError
from digest.pipeline import run_once
from digest.store import Store
from digest.transports import FileTransport
from tests.helpers import MakeConfig
from tests.newsboat import needs_newsboat, newsboat

DAY = datetime(2026, 11, 22, tzinfo=UTC)
BASE = "https://example.org/digest/"
SIZES = (157, 40, 2)


def write_dump(inbox: Path, name: str, first: int, count: int, *, day: int = 0) -> list[str]:
    """A spaced dump of ``count`` new synthetic papers (``first`` onwards); their titles."""
    papers = [gen.paper(5, i) for i in range(first, first + count)]
    (inbox / name).write_text(gen.render(papers, "spaced", day), encoding="utf-8")
    return [p.title for p in papers]


def three_digests(
    config: Config, store: Store, inbox: Path, hours: tuple[int, ...] = (7, 12, 18)
) -> list[str]:
    """A day with three digests of 157, 40 and 2 papers; every title, in order."""
    titles: list[str] = []
    transport = FileTransport(config.email.outbox)
    first = 0
    for n, (size, hour) in enumerate(zip(SIZES, hours, strict=True)):
        titles += write_dump(inbox, f"d{n}.txt", first, size)
        first += size
        report = run_once(config, store, transport, DAY + timedelta(hours=hour))
        assert report.digest is not None and report.digest.paper_count == size
    return titles


def parsed(site: Path, name: str) -> Any:
    feed = feedparser.parse((site / name).read_bytes())
    assert feed.bozo == 0, feed.get("bozo_exception")
    return feed


def stamp(entry: Any) -> datetime:
    return datetime.fromtimestamp(calendar.timegm(entry.published_parsed), UTC)


def test_a_day_of_three_digests_puts_all_199_papers_in_every_feed(
    config: Config, store: Store, inbox: Path
) -> None:
    titles = three_digests(config, store, inbox)
    site = config.feed.output_dir
    for name in ("feed.xml", "atom.xml"):
        assert sorted(e.title for e in parsed(site, name).entries) == sorted(titles)
    doc = json.loads((site / "feed.json").read_bytes())
    assert len(doc["items"]) == 199 and len({i["id"] for i in doc["items"]}) == 199


def test_feed_order_is_the_pages_order_and_every_item_has_its_own_time(
    config: Config, store: Store, inbox: Path
) -> None:
    # Two of the digests made a minute apart: first-seen times closer than a digest is long.
    three_digests(config, store, inbox, hours=(7, 7, 18))
    site = config.feed.output_dir
    entries = parsed(site, "feed.xml").entries
    digests = store.digests()  # newest first
    expected = [identity.paper_guid(p.key) for d in digests for p in store.digest_papers(d)]
    assert [e.id for e in entries] == expected  # the newest digest first, each as its page lists it
    assert [e.id for e in parsed(site, "atom.xml").entries] == expected
    # Distinct times, in the listing order within a digest and across digests.
    by_id = {e.id: stamp(e) for e in entries}
    in_seq_order = [
        by_id[identity.paper_guid(p.key)] for d in reversed(digests) for p in store.digest_papers(d)
    ]
    assert in_seq_order == sorted(in_seq_order) and len(set(in_seq_order)) == 199
    # First seen plus the position in its digest, where the clamp is not needed.
    newest = digests[0]
    for i, p in enumerate(store.digest_papers(newest)):
        assert by_id[identity.paper_guid(p.key)] == p.first_seen + timedelta(seconds=i)
    json_times = [
        datetime.fromisoformat(i["date_published"])
        for i in json.loads((site / "feed.json").read_bytes())["items"]
    ]
    assert json_times == [by_id[g] for g in expected]


def test_window_is_measured_from_the_newest_digest_and_max_items_still_holds(
    make_config: MakeConfig, inbox: Path
) -> None:
    config = make_config(feed={"max_items": 1})
    store = Store.open(config.state.url)
    try:
        transport = FileTransport(config.email.outbox)
        write_dump(inbox, "a.txt", 0, 157)
        run_once(config, store, transport, DAY)
        write_dump(inbox, "b.txt", 157, 40)
        run_once(config, store, transport, DAY + timedelta(days=8))  # the first is 8 days older
        write_dump(inbox, "c.txt", 197, 2)
        run_once(config, store, transport, DAY + timedelta(days=9))
        assert len(parsed(config.feed.output_dir, "feed.xml").entries) == 42
    finally:
        store.close()


def test_the_hard_ceiling_cuts_the_feeds_and_says_so(
    make_config: MakeConfig, inbox: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(feed={"max_items": 20, "max_items_hard": 150})
    store = Store.open(config.state.url)
    try:
        with caplog.at_level(logging.WARNING, logger="digest.site"):
            titles = three_digests(config, store, inbox)
        entries = parsed(config.feed.output_dir, "feed.xml").entries
        assert len(entries) == 150
        # The newest 150 papers: all of the two newest digests and the last 108 of the first.
        assert sorted(e.title for e in entries) == sorted(titles[-150:])
        assert any(
            "feed.max_items_hard = 150" in r.getMessage() and "199 papers" in r.getMessage()
            for r in caplog.records
        )
    finally:
        store.close()


def test_max_items_above_the_hard_ceiling_is_refused(make_config: MakeConfig) -> None:
    with pytest.raises(ConfigError, match=r"feed\.max_items.*max_items_hard"):
        make_config(feed={"max_items": 3000})
    assert make_config(feed={"window": "36h"}).feed.window == 36 * 3600
    assert make_config(feed={"window": 600}).feed.window == 600
    with pytest.raises(ConfigError, match=r"archive\.page_size"):
        make_config(archive={"page_size": 1})


def test_digest_feeds_have_one_item_per_digest_with_its_titles_and_links(
    config: Config, store: Store, inbox: Path
) -> None:
    three_digests(config, store, inbox)
    site = config.feed.output_dir
    digests = store.digests()
    for name, version in (("digests.xml", "rss20"), ("digests.atom", "atom10")):
        feed = parsed(site, name)
        assert feed.version == version
        assert [e.link for e in feed.entries] == [
            identity.site_url(BASE, identity.digest_path(d.slug)) for d in digests
        ]
        assert [e.title for e in feed.entries] == [
            "Digest of 22 Nov 2026 (#3): 2 papers",
            "Digest of 22 Nov 2026 (#2): 40 papers",
            "Digest of 22 Nov 2026: 157 papers",
        ]
        for entry, digest in zip(feed.entries, digests, strict=True):
            html = entry.content[0].value if version == "atom10" else entry.description
            for p in store.digest_papers(digest):
                assert identity.archive_url(BASE, digest.slug, p.key) in html
    doc = json.loads((site / "digests.json").read_bytes())
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert [len(i["_paper_digest"]["listed"]) for i in doc["items"]] == [2, 40, 157]
    for item in doc["items"]:
        for listed in item["_paper_digest"]["listed"]:
            target, fragment = urldefrag(listed["url"])
            page = (site / target.removeprefix(BASE)).read_text(encoding="utf-8")
            assert f'id="{fragment}"' in page


@needs_newsboat
def test_newsboat_polling_once_after_three_digests_shows_all_199(
    config: Config,
    store: Store,
    inbox: Path,
    tmp_path: Path,
    http_site: str,
) -> None:
    titles = three_digests(config, store, inbox)
    for name in ("feed.xml", "atom.xml"):
        unread, seen = newsboat(tmp_path / f"newsboat-{name}", http_site + name)
        assert unread == 199
        assert sorted(seen) == sorted(titles)
    unread, seen = newsboat(tmp_path / "newsboat-digests", http_site + "digests.xml")
    assert unread == 3
