"""The three feeds, read back by real parsers: feedparser for RSS and Atom, json + the
JSON Feed 1.1 rules; stable GUIDs across runs; exact text; goldens for a fixed state."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import feedparser
import pytest

from digest import identity
from digest.config import Config, parse_duration
from digest.pipeline import run_once
from digest.site import publish
from digest.store import Store
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, GOLDEN, NOW, MakeConfig, check_golden, drop
from tests.sitedata import (
    AUTHORED,
    DAY1,
    TEMPLATE_ABSTRACT,
    TEMPLATE_TITLE,
    TRICKY_ABSTRACT,
    TRICKY_TITLE,
    build_fixed_state,
)

FEEDS = ("feed.xml", "atom.xml", "feed.json")


def parse_window(text: str) -> float:
    return parse_duration("feed.window", text)


def rss(site: Path) -> Any:
    parsed = feedparser.parse((site / "feed.xml").read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    return parsed


def atom(site: Path) -> Any:
    parsed = feedparser.parse((site / "atom.xml").read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def json_feed(site: Path) -> dict[str, Any]:
    """Loads feed.json and checks every rule of JSON Feed 1.1 that applies to it."""
    doc: dict[str, Any] = json.loads((site / "feed.json").read_bytes().decode("utf-8"))
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str) and doc["title"]
    assert isinstance(doc["items"], list)
    for key in ("home_page_url", "feed_url"):
        assert doc[key].startswith("https://")
    for item in doc["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert isinstance(item.get("content_html"), str) or isinstance(item.get("content_text"), str)
        datetime.fromisoformat(item["date_published"])  # RFC 3339
        for author in item.get("authors", []):
            assert isinstance(author["name"], str)
        assert all(not k.startswith("_") or isinstance(item[k], dict) for k in item)
    ids = [item["id"] for item in doc["items"]]
    assert len(ids) == len(set(ids))
    return doc


def ids(site: Path) -> list[str]:
    """The item ids of all three feeds, after checking the three agree."""
    r = [e.id for e in rss(site).entries]
    a = [e.id for e in atom(site).entries]
    j = [i["id"] for i in json_feed(site)["items"]]
    assert r == a == j
    return r


def run(config: Config, store: Store, inbox: Path, now: datetime, *dumps: Path) -> Any:
    drop(inbox, *dumps)
    return run_once(config, store, FileTransport(config.email.outbox), now)


def test_all_three_feeds_parse_and_agree(config: Config, store: Store, inbox: Path) -> None:
    run(config, store, inbox, NOW, DUMP_000)
    site = config.feed.output_dir
    papers = store.digest_papers(store.digests()[0])
    assert len(papers) == 81
    expected = [identity.paper_guid(p.key) for p in papers]
    assert ids(site) == expected  # the page's order (first listed first), in every format
    r, a, j = rss(site), atom(site), json_feed(site)
    assert len(r.entries) == len(a.entries) == len(j["items"]) == 81
    titles = [p.title for p in papers]
    assert [e.title for e in a.entries] == titles
    assert [i["title"] for i in j["items"]] == titles


@pytest.mark.slow
def test_guids_are_stable_across_runs_and_the_newest_digest_comes_first(
    make_config: MakeConfig, inbox: Path, tmp_path: Path
) -> None:
    config = make_config(feed={"max_items": 250, "window": "12h"})
    store = Store.open(config.state.url)
    try:
        site = config.feed.output_dir
        run(config, store, inbox, NOW, DUMP_000)
        first = ids(site)
        run(config, store, inbox, NOW + timedelta(days=1), DUMP_002)
        second = ids(site)
        files = {name: (site / name).read_bytes() for name in FEEDS}
        third_report = run(config, store, inbox, NOW + timedelta(days=2))

        newest = store.digests()[0]
        new_papers = store.digest_papers(newest)
        assert newest.paper_count == len(new_papers) == 216
        assert len(first) == 81 and len(set(first)) == 81  # fewer papers than max_items: all
        assert len(second) == 250 and len(set(second)) == 250
        # The newest digest first, its papers in the order its page lists them ...
        assert second[:216] == [identity.paper_guid(p.key) for p in new_papers]
        # ... then the newest 34 of the digest before, with the very same ids as in the first run.
        assert second[216:] == first[-34:]
        # A re-run with no new dump publishes nothing: the feeds are byte for byte the same.
        assert third_report.digest is None and third_report.published.files == ()
        assert {name: (site / name).read_bytes() for name in FEEDS} == files

        # Outside the window: max_items, but never fewer than the newest digest's papers;
        # a window reaching the day before carries both digests.
        for max_items, window, expected in (
            (100, "12h", 216),
            (230, "12h", 230),
            (1000, "12h", 297),
            (1, "2d", 297),
        ):
            shorter = replace(
                config, feed=replace(config.feed, max_items=max_items, window=parse_window(window))
            )
            out = tmp_path / f"max-{max_items}-{window}"
            publish(shorter, store, out, everything=True)
            assert len(json_feed(out)["items"]) == expected
    finally:
        store.close()


def test_channel_says_where_it_lives_and_when_it_was_built(config: Config, store: Store, inbox: Path) -> None:
    build_fixed_state(config, store, inbox)
    site = config.feed.output_dir
    base = "https://example.org/digest/"
    r = rss(site)
    assert r.feed.title == "Test Digest"
    assert r.feed.link == base
    assert r.feed.language == "en"
    assert r.feed.ttl == "60"
    assert r.feed.generator == "paper-digest"
    assert [lk.href for lk in r.feed.links if lk.rel == "self"] == [base + "feed.xml"]
    # The last build date is the newest digest's time, not the clock of the run.
    assert r.feed.updated_parsed[:6] == NOW.timetuple()[:6]
    raw = (site / "feed.xml").read_bytes()
    assert b"<lastBuildDate>Sun, 22 Nov 2026 07:00:00 +0000</lastBuildDate>" in raw
    assert b"feedgen" not in raw

    a = atom(site)
    assert a.feed.id == base
    assert a.feed.title == "Test Digest"
    assert a.feed.updated == NOW.isoformat()
    assert a.feed.generator == "paper-digest"
    assert {lk.rel: lk.href for lk in a.feed.links} == {"self": base + "atom.xml", "alternate": base}
    assert b"feedgen" not in (site / "atom.xml").read_bytes()

    j = json_feed(site)
    assert (j["home_page_url"], j["feed_url"], j["language"]) == (base, base + "feed.json", "en")


def test_items_carry_link_date_category_and_reader_links(config: Config, store: Store, inbox: Path) -> None:
    build_fixed_state(config, store, inbox)
    site = config.feed.output_dir
    by_id = {e.id: e for e in rss(site).entries}
    atom_by_id = {e.id: e for e in atom(site).entries}
    json_by_id = {i["id"]: i for i in json_feed(site)["items"]}
    for digest in store.digests():
        for paper in store.digest_papers(digest):
            guid = identity.paper_guid(paper.key)
            url = identity.archive_url("https://example.org/digest/", digest.slug, paper.key)
            r, a, j = by_id[guid], atom_by_id[guid], json_by_id[guid]
            assert r.guidislink is False
            assert r.link == a.link == j["url"] == url
            # Published = first seen plus its position in the digest, in every format.
            moment = paper.first_seen + timedelta(seconds=paper.seq - digest.first_seq)
            assert datetime(*r.published_parsed[:6]).replace(tzinfo=UTC) == moment
            assert datetime.fromisoformat(a.published) == moment
            assert datetime.fromisoformat(j["date_published"]) == moment
            # The category is the digest's date.
            assert [t.term for t in r.tags] == [t.term for t in a.tags] == j["tags"] == [digest.slug[:10]]
            for content in (r.content[0].value, a.content[0].value, j["content_html"]):
                if paper.paper.arxiv_id is None:
                    assert identity.arxiv_search_url(paper.title).replace("&", "&amp;") in content
                    assert identity.hf_search_url(paper.title) in content
                for link in paper.paper.links:
                    assert f'<a href="{link.replace("&", "&amp;")}">' in content

    code = by_id[identity.paper_guid(identity.paper_key(TRICKY_TITLE))]
    # The `url{url}` artefact is gone and the trailing full stop is not part of the link.
    assert '<a href="https://github.com/ex/ample">https://github.com/ex/ample</a>.' in code.content[0].value
    assert "{https://" not in code.content[0].value and "{https://" not in unescape(code.summary)


def test_search_links_are_url_encoded() -> None:
    url = identity.arxiv_search_url(TRICKY_TITLE)
    assert url.startswith("https://arxiv.org/search/?query=%3Cb%3EBold%3C%2Fb%3E%20%26%20")
    assert url.endswith("W_%2B%20%5BMASK%5D%20Models&searchtype=title")
    assert identity.hf_search_url(TEMPLATE_TITLE) == (
        "https://huggingface.co/papers?q=%C5%81ukasz%27s%20Caf%C3%A9%3A%20%7B%7B%20x%20%7D%7D"
        "%20Is%20Not%20a%20Template%20%F0%9F%A6%80"
    )


@pytest.mark.parametrize(
    ("title", "abstract"), [(TRICKY_TITLE, TRICKY_ABSTRACT), (TEMPLATE_TITLE, TEMPLATE_ABSTRACT)]
)
def test_markup_and_template_lookalikes_come_out_exactly_as_written(
    config: Config, store: Store, inbox: Path, title: str, abstract: str
) -> None:
    build_fixed_state(config, store, inbox)
    site = config.feed.output_dir
    guid = identity.paper_guid(identity.paper_key(title))
    text = abstract.replace("{https://github.com/ex/ample}", "")  # the artefact, shown once

    r = next(e for e in rss(site).entries if e.id == guid)
    assert r.title == title  # RSS titles are plain text
    # RSS descriptions are HTML to every reader: the text is escaped, so it shows as written.
    assert unescape(r.summary) == text
    assert "<i>" not in r.summary and "<b>" not in r.summary
    a = next(e for e in atom(site).entries if e.id == guid)
    assert (a.title, a.title_detail.type) == (title, "text/plain")
    assert (a.summary, a.summary_detail.type) == (text, "text/plain")
    j = next(i for i in json_feed(site)["items"] if i["id"] == guid)
    assert (j["title"], j["content_text"]) == (title, text)
    for content in (r.content[0].value, a.content[0].value, j["content_html"]):
        assert "<b>" not in content and "<script>" not in content and "<i>" not in content
        assert "{{ x }}" in content and "🦀" in content
        assert "&lt;" in content or "<" not in title + abstract
    # UTF-8 as such, never as \u escapes or character references.
    for name in FEEDS:
        raw = (site / name).read_bytes()
        assert "🦀".encode() in raw and "Ł".encode() in raw and b"{{ x }}" in raw


def test_authors_arxiv_id_and_upvotes_are_shown(config: Config, store: Store, inbox: Path) -> None:
    build_fixed_state(config, store, inbox)
    site = config.feed.output_dir
    guid = identity.paper_guid(AUTHORED.key)
    names = list(AUTHORED.authors)
    r = next(e for e in rss(site).entries if e.id == guid)
    assert [a["name"] for a in r.authors] == names  # dc:creator
    a = next(e for e in atom(site).entries if e.id == guid)
    assert [x["name"] for x in a.authors] == names
    j = next(i for i in json_feed(site)["items"] if i["id"] == guid)
    assert j["authors"] == [{"name": n} for n in names]
    assert j["external_url"] == "https://arxiv.org/abs/1706.03762"
    assert j["_paper_digest"]["upvotes"] == 42
    for content in (r.content[0].value, a.content[0].value, j["content_html"]):
        assert '<a href="https://arxiv.org/abs/1706.03762">arXiv 1706.03762</a>' in content
        assert '<a href="https://huggingface.co/papers/1706.03762">' in content
        assert "Ashish Vaswani, Noam Shazeer, Niki Parmar" in content
        assert "42 upvotes" in content
        assert "arxiv.org/search" not in content
    # A paper without authors lists none; the Atom feed's own author (required) is the site.
    parsed = atom(site)
    other = next(e for e in parsed.entries if e.id != guid)
    assert "authors" not in other and "author" not in other
    assert parsed.feed.author == "Test Digest"


def test_same_state_and_clock_give_byte_identical_feeds(make_config: MakeConfig, tmp_path: Path) -> None:
    outputs = []
    for name in ("one", "two"):
        inbox = tmp_path / f"{name}-inbox"
        inbox.mkdir()
        config = make_config(
            sources={"inbox": str(inbox)},
            state={"url": f"sqlite:///{name}/digest.db"},
            feed={"output_dir": f"{name}/site"},
        )
        store = Store.open(config.state.url)
        try:
            build_fixed_state(config, store, inbox)
        finally:
            store.close()
        outputs.append({f: (config.feed.output_dir / f).read_bytes() for f in FEEDS})
    assert outputs[0] == outputs[1]


def test_feed_goldens(config: Config, store: Store, inbox: Path) -> None:
    first, second = build_fixed_state(config, store, inbox)
    assert first.digest is not None and second.digest is not None
    assert (first.digest.created, second.digest.created) == (DAY1, NOW)
    for name in (*FEEDS, "digests.xml", "digests.atom", "digests.json"):
        check_golden((config.feed.output_dir / name).read_bytes(), GOLDEN / "feeds" / name)
