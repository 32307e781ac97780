"""Weekly emails for readers with a profile: the week's papers ranked as one listing,
delivered through a real aiosmtpd sink from a real state, the received messages parsed
with the email package.

The week: Sunday morning the first sample dump (digest 1), Sunday evening a few papers
with one on video inpainting in their middle (digest 2), Monday morning a few more
(digest 3, which carries the Monday readers' weekly rows). The on-topic paper is neither
first in listing order nor in the carrying digest, so only a ranking of the whole week
puts it first."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from digest import audience
from digest.config import Config, load_config
from digest.identity import archive_url, page_of, paper_key
from digest.model import Delivery, Digest
from digest.outbox import personal_links, row_renderer, weekly_message
from digest.personal import DigestRanking, Pick, profile_of
from digest.personal_mail import PersonalMail, Week
from digest.pipeline import run_once
from digest.render.email import to_bytes
from digest.store import Store
from digest.store import weekly as store_weekly
from digest.store.subscribers import Subscribers
from digest.subscribers import Preferences
from digest.tokens import Tokens
from digest.transports import make_transport
from tests.helpers import DUMP_000, DUMP_002, drop, write_toml
from tests.smtpsink import Recorder, free_port
from tests.subscribe_site import HEADER

SUNDAY = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
MONDAY = SUNDAY + timedelta(days=1)
ON_TOPIC = "ProPainter: Improving Propagation and Transformer for Video Inpainting"
INTERESTS = "filling holes and removing objects in video clips"
PREFS = {
    "wes@example.org": Preferences(
        cadence="weekly:mon", interests=INTERESTS, keywords=("inpainting",), max_papers=3
    ),
    "tess@example.org": Preferences(
        cadence="weekly:mon", keywords=("inpainting", "video"), max_papers=2, only_top=True
    ),
    # Excluded keywords alone: nothing scores, so the week keeps its listing order.
    "xena@example.org": Preferences(cadence="weekly:mon", exclude=("video",), max_papers=4),
    "nora@example.org": Preferences(cadence="weekly:mon"),  # no profile: today's weekly email
}
EVENING = [
    ("Graph neural networks for molecule property prediction", "We predict molecular properties."),
    ("Scaling laws of tabular foundation models", "We fit scaling laws for models of tables."),
    ("Speech synthesis with discrete units", "We synthesise speech from learned discrete units."),
]
MORNING = [
    ("Protein folding with equivariant transformers", "We fold proteins with an equivariant network."),
    ("Robot grasping from a single demonstration", "A robot learns to grasp from one demonstration."),
    ("Faster sparse attention for long documents", "We make attention over long documents sparse."),
]
_H2 = re.compile(r'<h2[^>]*><a href="([^"]+)"[^>]*>([^<]+)</a></h2>')
_LI = re.compile(r'<li[^>]*><a href="[^"]+"[^>]*>([^<]+)</a>')
_VOTE = re.compile(r'href="([^"]+/vote\?t=[^"]+)"')


def _on_topic_abstract() -> str:
    lines = DUMP_002.read_text(encoding="utf-8").splitlines()
    return lines[lines.index(ON_TOPIC) + 1]


def _write(path: Path, papers: list[tuple[str, str]]) -> None:
    body = "".join(f"\n{title}\n\n{abstract}\n" for title, abstract in papers)
    path.write_text(HEADER + body, encoding="utf-8")


@dataclass
class World:
    config: Config
    store: Store
    sink: Recorder
    digests: list[Digest]  # the three digests of the week, oldest first

    def received(self, address: str) -> tuple[EmailMessage, str, str, bytes]:
        (got,) = self.sink.to(address)
        raw = self.sink.offered_bytes[next(i for i, r in enumerate(self.sink.accepted) if r is got)]
        text, html = got.message.iter_parts()
        return got.message, str(text.get_content()), str(html.get_content()), raw

    def row(self, address: str) -> tuple[Delivery, tuple[int, int]]:
        (row,) = [r for r in self.store.deliveries("sent") if r.recipient == address]
        return row, store_weekly.ranges(self.store, [row.id])[row.id]

    def ranking(self, address: str, until: datetime | None) -> list[Pick]:
        """``address``'s order of their row's papers as one listing, on the corpus of the
        digest carrying it, with the votes cast up to ``until``."""
        row, span = self.row(address)
        sub = Subscribers(self.store).get(address)
        assert sub is not None
        votes = [v for v in Subscribers(self.store).votes(sub.id) if until is None or v.at <= until]
        week = [p for p, _ in audience.weekly_papers(self.store, *span)]
        ranking = DigestRanking(self.store, self.store.digest(row.digest_id), until)
        profile = profile_of(sub.preferences, votes)
        return ranking.rank([profile], sub.preferences.max_papers, week)[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Built once for the module (ranking and sending take seconds); the tests only read,
    but for the last, which votes after every other has looked."""
    root = tmp_path_factory.mktemp("weekly-personal")
    inbox = root / "inbox"
    inbox.mkdir()
    sink = Recorder()
    server = Controller(sink, hostname="127.0.0.1", port=free_port())
    server.start()
    data: dict[str, dict[str, Any]] = {
        "digest": {"title": "Test Digest", "base_url": "https://example.org/digest/"},
        "sources": {"inbox": str(inbox), "settle_seconds": 0},
        "state": {"url": "sqlite:///var/digest.db"},
        "feed": {"output_dir": "var/site"},
        "http": {"listen": "127.0.0.1:8080"},  # the pages are served: vote and page links
        "email": {
            "outbox": "var/outbox",
            "from": "Paper Digest <digest@example.org>",
            "to": ["reader@example.org"],
            "transport": "smtp",
            "max_bytes": 10**6,  # room for every paper of the week
        },
        "email.smtp": {"host": "127.0.0.1", "port": server.port, "security": "none", "timeout": "5s"},
    }
    config = load_config(write_toml(root / "digest.toml", data), {})
    store = Store.open(config.state.url)
    subs = Subscribers(store)
    for address, prefs in PREFS.items():
        subs.add(address, SUNDAY - timedelta(hours=1), prefs=prefs)
    digests = []
    evening = [*EVENING[:2], (ON_TOPIC, _on_topic_abstract()), *EVENING[2:]]
    for when, dump in ((SUNDAY, None), (SUNDAY.replace(hour=18), evening), (MONDAY, MORNING)):
        if dump is None:
            drop(inbox, DUMP_000)
        else:
            _write(inbox / f"{when:%a-%H}.txt", dump)
        report = run_once(config, store, make_transport(config), when)
        assert report.digest is not None and report.delivery.failed == report.delivery.pending == 0
        digests.append(report.digest)
    assert len(sink.to("reader@example.org")) == 3  # the daily reader: every digest
    assert all(len(sink.to(a)) == 1 for a in PREFS)  # the weekly ones: Monday's email
    yield World(config, store, sink, digests)
    store.close()
    server.stop()


def titles(html: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(each paper in full as (link, title)), the titles listed after them)."""
    full = [(unescape(u), unescape(t)) for u, t in _H2.findall(html)]
    return full, [unescape(t) for t in _LI.findall(html)]


@pytest.mark.slow
def test_a_weekly_reader_with_interests_gets_the_weeks_best_paper_first(world: World) -> None:
    d1, d2, d3 = world.digests
    msg, text, html, _ = world.received("wes@example.org")
    assert msg["Date"].datetime == d3.created  # dated by the digest carrying the row
    full, listed = titles(html)
    (link, top), *_ = full
    assert top == ON_TOPIC  # from Sunday evening's digest, third of five there
    on_topic = next(
        p for p, _ in audience.weekly_papers(world.store, d1.first_seq, d3.last_seq) if p.title == top
    )
    assert link == archive_url(
        world.config.digest.base_url,
        d2.slug,
        on_topic.ident,
        page_of(on_topic.seq, d2.first_seq, world.config.archive.page_size),
    )
    # The whole week is one listing: every paper of the three digests, once each.
    every = [p.title for p, _ in audience.weekly_papers(world.store, d1.first_seq, d3.last_seq)]
    shown = [t for _, t in full] + listed
    assert sorted(shown) == sorted(every) and len(every) == d1.paper_count + d2.paper_count + d3.paper_count
    ranked = world.ranking("wes@example.org", d3.created)
    assert shown == [p.paper.title for p in ranked]  # picks then also new, best first
    assert msg["Subject"] == f"3 picks for you · {len(every)} new papers · 23 Nov 2026"
    assert "Top picks for you" in text and "Also new:" in text
    why = " · ".join(ranked[0].ranked.reasons)
    assert why.startswith("keywords: inpainting") and f"<strong>Why you see this:</strong> {why}" in unescape(
        html
    )
    # Vote links: two per paper shown, each naming this reader and its paper.
    tokens = Tokens(audience.token_key(world.config, world.store))
    wes = Subscribers(world.store).get("wes@example.org")
    assert wes is not None
    urls = [unescape(u) for u in _VOTE.findall(html)]
    claims = [tokens.read("vote", u.partition("?t=")[2]) for u in urls]
    assert all(c.matches(wes) for c in claims)
    assert [(c.paper_key, c.value) for c in claims] == [(paper_key(t), v) for t in shown for v in (1, -1)]
    assert urls[0] in text


@pytest.mark.slow
def test_only_top_works_for_a_weekly_reader(world: World) -> None:
    msg, text, html, _ = world.received("tess@example.org")
    full, listed = titles(html)
    ranked = world.ranking("tess@example.org", world.digests[2].created)
    assert [t for _, t in full] == [p.paper.title for p in ranked[:2]] and listed == []
    assert ON_TOPIC in [t for _, t in full]
    assert msg["Subject"].startswith("2 picks for you · ")
    assert "Also new" not in html + text and len(_VOTE.findall(html)) == 4


@pytest.mark.slow
def test_ties_keep_the_weeks_listing_order_oldest_digest_first(world: World) -> None:
    """Excluded keywords alone score nothing: the picks are the week's first papers in
    listing order (Sunday morning's first), the excluded ones last."""
    d1, _, d3 = world.digests
    _, _, html, _ = world.received("xena@example.org")
    full, listed = titles(html)
    every = [p for p, _ in audience.weekly_papers(world.store, d1.first_seq, d3.last_seq)]
    video = [p.title for p in every if "video" in f"{p.title} {p.paper.abstract}".lower()]
    kept = [p.title for p in every if p.title not in video]
    assert video and ON_TOPIC in video
    assert [t for _, t in full] == kept[:4]
    assert listed == kept[4:] + video
    assert "(excluded: video)" in " ".join(world.received("xena@example.org")[1].split())


@pytest.mark.slow
def test_a_weekly_reader_without_a_profile_gets_todays_weekly_email(world: World) -> None:
    row, span = world.row("nora@example.org")
    msg, _, html, raw = world.received("nora@example.org")
    links = personal_links(world.config, world.store)
    shared = weekly_message(
        world.config,
        world.store,
        world.store.digest(row.digest_id),
        span,
        row.recipient,
        row.message_id,
        links(row.recipient),
    )
    assert _crlf(raw) == _crlf(shared.data)
    assert "Top picks" not in html and "/vote?t=" not in html
    assert msg["Subject"].startswith(f"{span[1] - span[0] + 1} new papers · ")


_BROWSER = re.compile(r'<a href="([^"]+)"[^>]*>view in a browser</a>')


@pytest.mark.slow
def test_a_weekly_email_links_the_archive_index_not_the_digest_carrying_it(world: World) -> None:
    """The week spans three digests: "view in a browser" and "On the web:" go to the
    archive's index, which lists them all, in the personal and the shared email alike;
    each paper still links to its own digest's page."""
    base = world.config.digest.base_url
    for address in ("wes@example.org", "nora@example.org"):
        _, text, html, _ = world.received(address)
        assert [unescape(u) for u in _BROWSER.findall(html)] == [base], address
        (line,) = [t for t in text.splitlines() if "On the web:" in t and "new paper" in t]
        assert line.endswith(f"new papers. On the web: {base}"), address


@pytest.mark.slow
def test_rebuilding_a_weekly_delivery_gives_the_same_bytes_even_after_a_new_vote(world: World) -> None:
    """Invariant 12: the email ranks by the votes cast up to the row's making; a retry
    after a vote that would change it sends what the first attempt sent."""
    row, span = world.row("wes@example.org")
    _, _, _, raw = world.received("wes@example.org")
    assert _crlf(to_bytes(row_renderer(world.config, world.store)(row, span))) == _crlf(raw)
    wes = Subscribers(world.store).get("wes@example.org")
    assert wes is not None
    liked = "Speech synthesis with discrete units"
    Subscribers(world.store).vote(wes.id, paper_key(liked), 1, MONDAY + timedelta(hours=1))
    again = row_renderer(world.config, world.store)(row, span)
    assert _crlf(again.data) == _crlf(raw)
    # The vote would change the email: the same row ranked with the votes of now.
    links = personal_links(world.config, world.store)(row.recipient)
    now = Week(span, MONDAY + timedelta(hours=2))
    digest = world.store.digest(row.digest_id)
    newer = PersonalMail(world.config, world.store).wire(digest, row.recipient, row.message_id, links, now)
    assert newer is not None and _order(newer.data) != _order(again.data)


def _order(data: bytes) -> list[str]:
    """The titles an email shows, in its order."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    full, listed = titles(str(msg.get_body(("html",)).get_content()))  # type: ignore[union-attr]
    return [t for _, t in full] + listed


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")
