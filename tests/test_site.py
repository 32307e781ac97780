"""The static archive: goldens, what a normal run renders, ``digest publish``, links that
resolve, exact text, no external assets; and newsboat reading the feeds over HTTP."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import feedparser
import pytest

from digest import identity
from digest.cli import main
from digest.config import Config
from digest.ingest import ingest_inbox
from digest.pipeline import run_once
from digest.site import MARKER
from digest.store import Store
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, GOLDEN, NOW, check_golden, drop
from tests.newsboat import needs_newsboat, newsboat
from tests.sitedata import (
    DAY1,
    TEMPLATE_ABSTRACT,
    TEMPLATE_TITLE,
    TRICKY_ABSTRACT,
    TRICKY_DUMP,
    TRICKY_TITLE,
    build_fixed_state,
    head_compact,
    head_spaced,
)

BASE = "https://example.org/digest/"
FEEDS = ("feed.xml", "atom.xml", "feed.json")
DIGEST_FEEDS = ("digests.xml", "digests.atom", "digests.json")
PAGES = ("index.html", "archive/2026.html", "digests/2026-11-21.html", "digests/2026-11-22.html")


class Page(HTMLParser):
    """What a browser with CSS off would use: ids, links, <link> tags and the text of
    each paper's entry (by anchor) and of each heading."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.links: list[dict[str, str]] = []
        self.srcs: list[str] = []
        self.tags: list[str] = []
        self.entries: dict[str, list[str]] = {}
        self.headings: list[str] = []
        self._entry: str | None = None
        self._heading: list[str] | None = None
        self._style = False
        self.style = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
            if tag == "li" and a["id"].startswith("p-"):
                self._entry = a["id"]
                self.entries[self._entry] = []
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "link":
            self.links.append(a)
        if "src" in a:
            self.srcs.append(a["src"])
        if tag in ("h1", "h2"):
            self._heading = []
        self._style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "li" and self._entry is not None and tag == "li":
            self._entry = None
        if tag in ("h1", "h2") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None
        self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self.style += data
        if self._entry is not None:
            self.entries[self._entry].append(data)
        if self._heading is not None:
            self._heading.append(data)

    def entry_text(self, anchor: str) -> str:
        return "".join(self.entries[anchor])


def page(site: Path, path: str) -> Page:
    return Page((site / path).read_text(encoding="utf-8"))


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def site(config: Config, store: Store, inbox: Path) -> Path:
    build_fixed_state(config, store, inbox)
    return config.feed.output_dir


def test_site_goldens(site: Path) -> None:
    # MARKER: the newest digest id the folder shows (several instances, digest/site.py)
    assert sorted(tree(site)) == sorted([*FEEDS, *DIGEST_FEEDS, *PAGES, MARKER])
    assert (site / MARKER).read_text() == "2\n"
    for path in PAGES:
        check_golden((site / path).read_bytes(), GOLDEN / "site" / path)


def test_a_normal_run_renders_only_the_new_page_its_year_the_index_and_the_feeds(
    config: Config, store: Store, inbox: Path
) -> None:
    transport = FileTransport(config.email.outbox)
    site = config.feed.output_dir

    def pages_written(now: datetime) -> set[str]:
        """The digest pages a run at ``now`` writes, checking it writes the year page, the
        index and every feed besides."""
        written = {
            p.relative_to(site).as_posix() for p in run_once(config, store, transport, now).published.files
        }
        pages = {p for p in written if p.startswith("digests/")}
        assert written - pages == {"archive/2026.html", "index.html", *FEEDS, *DIGEST_FEEDS}
        return pages

    drop(inbox, DUMP_000)
    assert pages_written(DAY1) == {"digests/2026-11-21.html"}
    drop(inbox, DUMP_002)
    # The new page, and the one before it for its "next" link: one extra page per run.
    assert pages_written(NOW) == {"digests/2026-11-22.html", "digests/2026-11-21.html"}
    older = (site / "digests/2026-11-21.html").read_text(encoding="utf-8")
    assert 'rel="next" href="../digests/2026-11-22.html"' in older
    assert 'rel="prev"' not in older
    (site / "digests/2026-11-21.html").unlink()  # a third run must not need (or redo) it
    (inbox / "c_tricky.txt").write_text(TRICKY_DUMP, encoding="utf-8")
    assert pages_written(NOW + timedelta(hours=1)) == {"digests/2026-11-22-2.html", "digests/2026-11-22.html"}
    assert store.digests()[1].published == NOW
    # Nothing new: nothing is written at all.
    assert run_once(config, store, transport, NOW + timedelta(hours=1)).published.files == ()


def test_digest_publish_rebuilds_the_whole_site_byte_for_byte(
    config: Config, site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(site)
    shutil.rmtree(site)
    assert main(["-c", str(config.path), "publish"]) == 0
    out = capsys.readouterr().out
    assert f"published 10 files into {site}: 2 digest pages, 1 year page, the index and 6 feeds" in out
    assert tree(site) == before  # a full rebuild equals what the normal runs wrote


def test_digest_publish_marks_pending_digests_and_output_dir_changes_no_state(
    config: Config, store: Store, inbox: Path, tmp_path: Path
) -> None:
    drop(inbox, DUMP_000)
    # A run that only ingests (as the service's poll does), then a digest that nobody published.
    ingest_inbox(config, store, NOW)
    store.create_digest(
        now=NOW,
        day=NOW.date(),
        recipients=(),
        message_id=identity.message_ids("example.org", store.install_id()),
    )
    assert len(store.digests(unpublished=True)) == 1

    preview = tmp_path / "preview"
    assert main(["-c", str(config.path), "publish", "--output", str(preview)]) == 0
    assert (preview / "digests/2026-11-22.html").is_file() and (preview / "atom.xml").is_file()
    assert len(store.digests(unpublished=True)) == 1  # a preview changes no state
    assert not config.feed.output_dir.exists()

    assert main(["-c", str(config.path), "publish"]) == 0
    assert store.digests(unpublished=True) == []
    assert tree(config.feed.output_dir) == tree(preview)


def test_every_link_resolves_and_nothing_is_loaded_from_elsewhere(site: Path) -> None:
    for path in PAGES:
        p = page(site, path)
        assert p.srcs == [] and "script" not in p.tags and "img" not in p.tags
        assert "url(" not in p.style and "@import" not in p.style
        assert [lk for lk in p.links if lk.get("rel") == "stylesheet"] == []
        for href in p.hrefs:
            if href.startswith("https://"):
                continue  # arXiv, Hugging Face and code links
            target, fragment = urldefrag(urljoin(f"http://site/{path}", href))
            assert target.startswith("http://site/"), href
            local = site / target.removeprefix("http://site/")
            assert local.is_file(), f"{path}: {href} points at a missing file"
            if fragment:
                assert fragment in page(site, local.relative_to(site).as_posix()).ids, f"{path}: {href}"
    # Every feed item links to an anchor that exists on its digest's page.
    for entry in feedparser.parse((site / "feed.xml").read_bytes()).entries:
        target, fragment = urldefrag(entry.link)
        assert target.startswith(BASE)
        assert fragment in page(site, target.removeprefix(BASE)).ids


def test_index_lists_digests_newest_first_and_announces_the_feeds(site: Path) -> None:
    p = page(site, "index.html")
    alternates = [(lk["type"], lk["href"]) for lk in p.links if lk.get("rel") == "alternate"]
    assert alternates == [
        ("application/rss+xml", "feed.xml"),
        ("application/atom+xml", "atom.xml"),
        ("application/feed+json", "feed.json"),
        ("application/rss+xml", "digests.xml"),
        ("application/atom+xml", "digests.atom"),
        ("application/feed+json", "digests.json"),
    ]
    digest_links = [h for h in p.hrefs if h.startswith("digests/") and "#" not in h]
    assert digest_links == ["digests/2026-11-22.html", "digests/2026-11-21.html"]
    html = (site / "index.html").read_text(encoding="utf-8")
    assert html.index("22 Nov 2026") < html.index("21 Nov 2026")
    assert '<span class="count">6 papers</span>' in html and '<span class="count">3 papers</span>' in html
    assert "9 papers in 2 digests" in html
    # Each digest shows its first few titles, linked to their entries, and how many more.
    firsts = [h for h in p.hrefs if h.startswith("digests/2026-11-22.html#")]
    assert len(firsts) == 3 and "and 3 more" in html
    assert len([h for h in p.hrefs if h.startswith("digests/2026-11-21.html#")]) == 3
    year = (site / "archive/2026.html").read_text(encoding="utf-8")
    assert year.count('<ul class="firsts">') == 2 and "Perturbation Analysis of Neural Collapse" in year
    for name in (*FEEDS, *DIGEST_FEEDS):
        assert f"<code>{BASE}{name}</code>" in html
    # The digest pages announce the feeds too, relative to their own folder.
    sub = page(site, "digests/2026-11-22.html")
    assert [lk["href"] for lk in sub.links if lk.get("rel") == "alternate"] == [f"../{n}" for n in FEEDS]


def test_pages_show_titles_and_abstracts_exactly_as_written(site: Path, store: Store) -> None:
    p = page(site, "digests/2026-11-22.html")
    for title, abstract in ((TRICKY_TITLE, TRICKY_ABSTRACT), (TEMPLATE_TITLE, TEMPLATE_ABSTRACT)):
        anchor = identity.paper_anchor(identity.paper_key(title))
        assert f"{title} #" in p.headings
        text = abstract.replace("{https://github.com/ex/ample}", "")
        assert text in p.entry_text(anchor)
    raw = (site / "digests/2026-11-22.html").read_text(encoding="utf-8")
    assert "<b>Bold</b>" not in raw and "<script>" not in raw and "<i>this</i>" not in raw
    assert "&lt;b&gt;Bold&lt;/b&gt;" in raw and "{{ x }}" in raw and "{% if x %}" in raw and "🦀" in raw
    # Every paper of the digest has its own entry, in the order first seen.
    digest = store.digests()[0]
    anchors = [identity.paper_anchor(sp.key) for sp in store.digest_papers(digest)]
    assert list(p.entries) == anchors
    authored = p.entry_text(anchors[0])
    assert "Ashish Vaswani, Noam Shazeer, Niki Parmar" in authored and "42 upvotes" in authored
    assert 'href="https://arxiv.org/abs/1706.03762"' in raw


def test_pages_are_self_contained_responsive_and_dark_aware(site: Path) -> None:
    for path in PAGES:
        html = (site / path).read_text(encoding="utf-8")
        assert html.startswith('<!DOCTYPE html>\n<html lang="en">')
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        assert '<meta name="color-scheme" content="light dark">' in html
        assert "@media (prefers-color-scheme: dark)" in html
        assert html.count("<style>") == 1 and "<script" not in html
        # Nothing is styled or hidden outside the one style sheet, so CSS off shows it all.
        assert " style=" not in html and " hidden" not in html


def test_with_css_off_every_paper_reads_in_order(site: Path, store: Store) -> None:
    html = (site / "digests/2026-11-22.html").read_text(encoding="utf-8")
    bare = Page(html[: html.index("<style>")] + html[html.index("</style>") + len("</style>") :])
    assert bare.style == ""
    papers = store.digest_papers(store.digests()[0])
    assert [h.removesuffix(" #") for h in bare.headings[1:]] == [sp.title for sp in papers]
    for sp in papers:
        assert sp.paper.abstract.split("{")[0].strip() in bare.entry_text(identity.paper_anchor(sp.key))


def test_second_digest_of_a_day_gets_its_own_page(config: Config, store: Store, inbox: Path) -> None:
    transport = FileTransport(config.email.outbox)
    (inbox / "a.txt").write_text(head_spaced(DUMP_000, 2), encoding="utf-8")
    run_once(config, store, transport, NOW)
    (inbox / "b.txt").write_text(head_compact(DUMP_002, 2), encoding="utf-8")
    run_once(config, store, transport, NOW + timedelta(hours=3))
    site = config.feed.output_dir
    assert (site / "digests/2026-11-22.html").is_file() and (site / "digests/2026-11-22-2.html").is_file()
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "22 Nov 2026</time> (#2)" in index
    newer = (site / "digests/2026-11-22-2.html").read_text(encoding="utf-8")
    assert "edition 2" in newer
    assert 'rel="prev" href="../digests/2026-11-22.html"' in newer


# --- a real feed reader --------------------------------------------------------------------


@needs_newsboat
def test_newsboat_reads_rss_and_atom_over_http_without_duplicates(
    config: Config, store: Store, inbox: Path, tmp_path: Path, http_site: str
) -> None:
    transport = FileTransport(config.email.outbox)
    feeds = ("feed.xml", "atom.xml")
    readers = {feed: tmp_path / f"newsboat-{feed}" for feed in feeds}  # one cache per feed
    drop(inbox, DUMP_000)
    run_once(config, store, transport, NOW)
    for feed in feeds:
        assert newsboat(readers[feed], http_site + feed)[0] == 81

    drop(inbox, DUMP_002)
    run_once(config, store, transport, NOW + timedelta(days=1))
    stored = {sp.title for d in store.digests() for sp in store.digest_papers(d)}
    seen = {}
    for feed in feeds:
        unread, titles = newsboat(readers[feed], http_site + feed)
        assert unread == 81 + 216  # the feed carries all 216 new papers; the 81 stay unread
        assert len(titles) == 297 and set(titles) == stored  # exact titles, no duplicate
        seen[feed] = (unread, titles)

    run_once(config, store, transport, NOW + timedelta(days=2))  # no new dump
    for feed in feeds:
        assert newsboat(readers[feed], http_site + feed) == seen[feed]
