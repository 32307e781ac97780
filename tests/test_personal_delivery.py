"""Each reader's own digest (issue 15), delivered: a real state, the real ranker and a
real aiosmtpd sink, the received messages parsed with the email package.

The history is the first sample dump (digest 1); subscribers then say what they like and
vote on papers of it; the second sample dump makes digest 2, which each receives."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from digest import audience
from digest.config import Config, load_config
from digest.identity import paper_key, site_url
from digest.model import Digest
from digest.outbox import email_settings, personal_links, renderer
from digest.personal import Pick, profile_of, rank_digest, top_picks
from digest.pipeline import run_once
from digest.render import email as render
from digest.render.view import digest_paper_views, digest_view
from digest.store import Store
from digest.store.rank import CORPUS_PAPERS
from digest.store.subscribers import Subscribers
from digest.subscribers import Preferences
from digest.tokens import Tokens
from digest.transports import FileTransport, make_transport
from tests.helpers import DUMP_000, DUMP_002, NOW, MakeConfig, drop, write_toml
from tests.smtpsink import Recorder, free_port
from tests.subscribe_site import HEADER

LIKED = "Wild-GS: Real-Time Novel View Synthesis from Unconstrained Photo Collections"
LATER = "Neural Collapse in Deep Linear Networks: From Balanced to Imbalanced Data"
PREFS = {
    "ann@example.org": Preferences(
        interests="filling holes and removing objects in video clips",
        keywords=("inpainting", "optical flow"),
        exclude=("segmentation",),
        max_papers=5,
    ),
    "bob@example.org": Preferences(
        keywords=("video",), exclude=("segmentation",), max_papers=3, only_top=True
    ),
    "carl@example.org": Preferences(),  # votes only
    "dora@example.org": Preferences(max_papers=2, only_top=True),  # nothing to rank by: today's email
}
_H2 = re.compile(r'<h2[^>]*><a href="[^"]+"[^>]*>([^<]+)</a></h2>')
_LI = re.compile(r'<li[^>]*><a href="[^"]+"[^>]*>([^<]+)</a>')


class World:
    """Digest 2 delivered through the sink to the subscribers of PREFS and email.to."""

    def __init__(self, config: Config, store: Store, sink: Recorder, digest: Digest) -> None:
        self.config, self.store, self.sink, self.digest = config, store, sink, digest

    def received(self, address: str) -> tuple[EmailMessage, str, str, bytes]:
        (got,) = [r for r in self.sink.to(address)]
        index = next(i for i, r in enumerate(self.sink.accepted) if r is got)
        raw = self.sink.offered_bytes[index]
        text, html = got.message.iter_parts()
        return got.message, str(text.get_content()), str(html.get_content()), raw

    def ranking(self, address: str) -> list[Pick]:
        """What ``digest rank`` gives ``address`` with their votes as of the digest."""
        subs = Subscribers(self.store)
        sub = subs.get(address)
        assert sub is not None
        profile = profile_of(sub.preferences, subs.votes(sub.id, self.digest.created))
        return rank_digest(self.store, self.digest, profile, sub.preferences.max_papers)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Built once for the module (ranking and sending take seconds); the tests only read."""
    root = tmp_path_factory.mktemp("personal")
    inbox = root / "inbox"
    inbox.mkdir()
    sink = Recorder()
    server = Controller(sink, hostname="127.0.0.1", port=free_port())
    server.start()
    data: dict[str, dict[str, Any]] = {
        "digest": {"title": "Test Digest", "base_url": "https://example.org/digest/"},
        "sources": {"inbox": str(inbox)},
        "state": {"url": "sqlite:///var/digest.db"},
        "feed": {"output_dir": "var/site"},
        "http": {"listen": "127.0.0.1:8080"},  # the pages are served: vote and page links
        # Room for every paper: the byte budget is tests/test_email_personal.py's.
        "email": {
            "outbox": "var/outbox",
            "from": "Paper Digest <digest@example.org>",
            "to": ["reader@example.org"],
            "transport": "smtp",
            "max_bytes": 10**6,
        },
        "email.smtp": {"host": "127.0.0.1", "port": server.port, "security": "none", "timeout": "5s"},
    }
    config = load_config(write_toml(root / "digest.toml", data), {})
    store = Store.open(config.state.url)
    drop(inbox, DUMP_000)
    first = run_once(config, store, FileTransport(config.email.outbox), NOW)
    assert first.digest is not None
    subs = Subscribers(store)
    for address, prefs in PREFS.items():
        subs.add(address, NOW + timedelta(minutes=5), prefs=prefs)
    carl = subs.get("carl@example.org")
    assert carl is not None
    subs.vote(carl.id, paper_key(LIKED), 1, NOW + timedelta(minutes=10))
    drop(inbox, DUMP_002)
    report = run_once(config, store, make_transport(config), NOW + timedelta(hours=1))
    assert report.digest is not None and report.delivery.sent == len(PREFS) + 1
    world = World(config, store, sink, report.digest)
    yield world
    store.close()
    server.stop()


def titles(html: str) -> tuple[list[str], list[str]]:
    return [unescape(t) for t in _H2.findall(html)], [unescape(t) for t in _LI.findall(html)]


@pytest.mark.slow
def test_each_reader_gets_their_picks_in_rank_order_then_the_rest(world: World) -> None:
    ranked = world.ranking("ann@example.org")
    picks, rest = top_picks(ranked, 5)
    sunk = [p for p in ranked if p.ranked.excluded]
    assert len(picks) >= 3 and sunk  # the profile picks something and excludes something
    msg, text, html, _ = world.received("ann@example.org")
    full, listed = titles(html)
    assert full == [p.paper.title for p in picks]  # top picks: the best (at most five), in order
    assert listed == [p.paper.title for p in (*rest, *sunk)]  # also new: the rest, excluded last
    n = len(picks)
    assert (
        msg["Subject"]
        == f"{n} pick{'' if n == 1 else 's'} for you · {world.digest.paper_count} new papers · 22 Nov 2026"
    )
    for pick in picks:  # each pick says why it is there
        why = " · ".join(pick.ranked.reasons)
        assert why and f"<strong>Why you see this:</strong> {why}" in unescape(html)
    assert any(r.startswith("keywords: inpainting") for p in picks for r in p.ranked.reasons)
    for p in sunk:
        assert "excluded: segmentation" in p.ranked.reasons
    assert "Top picks for you" in text and "Also new:" in text
    assert text.index(picks[0].paper.title[:40]) < text.index(rest[0].paper.title[:40])


@pytest.mark.slow
def test_votes_count_and_say_what_a_pick_is_similar_to(world: World) -> None:
    ranked = world.ranking("carl@example.org")
    _, text, html, _ = world.received("carl@example.org")
    full, listed = titles(html)
    picks = top_picks(ranked, 10)[0]
    assert full == [p.paper.title for p in picks] and len(listed) == len(ranked) - len(picks)
    assert f"<strong>Why you see this:</strong> similar to: {LIKED}</p>" in unescape(html)
    assert f"Why you see this: similar to: {LIKED} More like this:" in " ".join(text.split())


@pytest.mark.slow
def test_only_top_gets_the_picks_alone_and_nothing_excluded(world: World) -> None:
    ranked = world.ranking("bob@example.org")
    msg, text, html, _ = world.received("bob@example.org")
    full, listed = titles(html)
    assert full == [p.paper.title for p in ranked if not p.ranked.excluded][:3] and listed == []
    assert msg["Subject"].startswith("3 picks for you · ")
    assert "Also new" not in html + text and "segmentation" not in " ".join(full).lower()


@pytest.mark.slow
def test_a_reader_without_a_profile_gets_todays_email(world: World) -> None:
    config, store, digest = world.config, world.store, world.digest
    links = personal_links(config, store)
    base = config.digest.base_url
    views = digest_paper_views(digest, store.digest_papers(digest), base, config.archive.page_size)
    for address in ("dora@example.org", "reader@example.org"):
        msg, _text, html, raw = world.received(address)
        shared = render.message(
            email_settings(config),
            digest_view(digest, base, config.tz),
            views,
            address,
            str(msg["Message-ID"]),
            links(address),
        )
        assert _crlf(raw) == _crlf(render.to_bytes(shared)), address
        assert "Top picks" not in html and "/vote?t=" not in html
        assert msg["Subject"] == f"{digest.paper_count} new papers · 22 Nov 2026"


@pytest.mark.slow
def test_vote_links_name_the_reader_and_the_paper(world: World) -> None:
    _, text, html, _ = world.received("ann@example.org")
    tokens = Tokens(audience.token_key(world.config, world.store))
    ann = Subscribers(world.store).get("ann@example.org")
    assert ann is not None
    keys = {p.paper.title: p.paper.key for p in world.ranking("ann@example.org")}
    full, listed = titles(html)
    urls = [unescape(u) for u in re.findall(r'href="([^"]+/vote\?t=[^"]+)"', html)]
    assert len(urls) == 2 * (len(full) + len(listed))
    claims = [tokens.read("vote", u.partition("?t=")[2]) for u in urls]
    assert all(c.matches(ann) for c in claims)
    expected = [(keys[t], v) for t in full + listed for v in (1, -1)]
    assert [(c.paper_key, c.value) for c in claims] == expected
    page = site_url(world.config.digest.base_url, tokens.personal_dir(ann) + "/")
    assert f"Your page: {page}" in text and urls[0] in text


@pytest.mark.slow
def test_rebuilding_gives_the_same_bytes_even_after_a_later_vote(world: World) -> None:
    """Invariant 12: votes cast after the digest do not change its email (a retry sends
    what the first attempt sent)."""
    msg, _, _, raw = world.received("ann@example.org")
    mid = str(msg["Message-ID"])
    again = render.to_bytes(renderer(world.config, world.store)(world.digest, "ann@example.org", mid))
    assert _crlf(raw) == _crlf(again)
    ann = Subscribers(world.store).get("ann@example.org")
    assert ann is not None
    Subscribers(world.store).vote(ann.id, paper_key(LATER), 1, NOW + timedelta(hours=2))
    later = render.to_bytes(renderer(world.config, world.store)(world.digest, "ann@example.org", mid))
    assert later == again


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


@pytest.mark.slow
def test_a_like_older_than_the_corpus_still_counts(make_config: MakeConfig, inbox: Path) -> None:
    """A reader liked a paper older than the 5,000 newest the ranker is fitted on: their
    email is ranked on the corpus plus that paper (one more fit, shared by every such
    reader), in the order ``digest rank`` gives them, and says what a pick is similar to."""
    config = make_config(http={"listen": "127.0.0.1:8080"}, email={"to": []})
    store = Store.open(config.state.url)
    old = "Filling holes in video clips with flow-guided inpainting"
    topics = [
        "graph neural networks",
        "protein folding",
        "speech synthesis",
        "tabular data",
        "robot grasping",
    ]
    history = [(old, "We remove objects from video and fill the holes by propagating optical flow.")]
    history += [
        (f"Study {i} of {topics[i % 5]}", f"We study {topics[i % 5]} in setting {i} and report results.")
        for i in range(CORPUS_PAPERS + 20)
    ]
    _write(inbox / "history.txt", history)
    run_once(config, store, FileTransport(config.email.outbox), NOW)
    subs = Subscribers(store)
    ann = subs.add("ann@example.org", NOW, prefs=Preferences(keywords=("robot",)))
    subs.vote(ann.id, paper_key(old), 1, NOW)
    papers = [
        (f"Today {i}: {topics[i % 5]} revisited", f"More on {topics[i % 5]}, case {i}.") for i in range(9)
    ]
    papers.append(
        ("Video inpainting by flow propagation", "We fill holes in video clips using optical flow.")
    )
    _write(inbox / "today.txt", papers)
    report = run_once(config, store, FileTransport(config.email.outbox), NOW + timedelta(hours=1))
    assert report.digest is not None and report.delivery.sent == 1
    (path,) = [p for p in config.email.outbox.rglob("*.eml") if b"ann@example.org" in p.read_bytes()]
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    html = str(msg.get_body(("html",)).get_content())  # type: ignore[union-attr]
    profile = profile_of(ann.preferences, subs.votes(ann.id))
    ranked = rank_digest(store, report.digest, profile, 10)
    assert titles(html)[0] == [p.paper.title for p in ranked]
    assert f"similar to: {old}" in unescape(html)
    store.close()


def _write(path: Path, papers: list[tuple[str, str]]) -> None:
    body = "".join(f"\n{title}\n\n{abstract}\n" for title, abstract in papers)
    path.write_text(HEADER + body, encoding="utf-8")
