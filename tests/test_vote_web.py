"""``/vote`` over real HTTP (issue 15): the more/less-like-this links of a reader's feed.
A GET shows one button and records nothing; the POST (signed token + CSRF) records the
vote, replacing an earlier one; forged, foreign, wrong-purpose and revoked tokens and a
missing CSRF token are refused with 403; the vote changes the next ranking."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from digest import audience
from digest.cli import main
from digest.config import load_config
from digest.personal import profile_of, rank_digest
from digest.store import Store
from digest.store.subscribers import Subscribers
from digest.subscribers import Preferences, Subscriber
from digest.tokens import Tokens, vote_urls
from tests.helpers import wait_for
from tests.subscribe_site import NOW, Site
from tests.test_personal_feed import DUMP_1, DUMP_2, write
from tests.test_serve import Serve, free_port, service_config, services  # noqa: F401

pytestmark = pytest.mark.timeout(180)

ANN = "ann@example.org"
KEY = "diffusion models for protein design"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the form"
    return match[1]


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def folder_of(site: Site, sub: Subscriber) -> Path:
    return site.config.feed.output_dir / site.pages.tokens.personal_dir(sub)


def feed_items(site: Site, sub: Subscriber) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        (folder_of(site, sub) / "feed.json").read_text(encoding="utf-8")
    )["items"]
    return items


def ann(site: Site) -> Subscriber:
    sub = site.subs.get(ANN)
    assert sub is not None
    return sub


def vote_count(site: Site) -> list[tuple[str, int]]:
    return [(v.paper_key, v.value) for v in site.subs.votes(ann(site).id)]


def test_a_vote_get_records_nothing_post_records_and_the_next_ranking_follows(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    site.subs.add(
        ANN,
        NOW - timedelta(days=1),
        status="active",
        source="cli",
        prefs=Preferences(interests="weather forecasts", keywords=("protein",)),
    )
    write(site.inbox, "a.txt", DUMP_1)
    site.run(NOW)
    before = feed_items(site, ann(site))
    titles = [i["title"] for i in before]
    assert titles[0] == "Graph Networks for Weather Forecasts"
    target = next(i for i in before if i["title"] == "Diffusion Models for Protein Design")
    assert titles.index(target["title"]) >= 1  # not first before the vote
    more_url = target["_paper_digest"]["more_like_this"]
    assert more_url.startswith(site.base + "vote?t=")

    with site.client() as browser:
        page = browser.get(more_url)
        assert page.status_code == 200
        assert "More like this: <strong>Diffusion Models for Protein Design</strong>?" in page.text
        assert page.headers["referrer-policy"] == "no-referrer" and page.headers["x-frame-options"] == "DENY"
        assert browser.head(more_url).status_code == 200
        assert vote_count(site) == []  # a GET (a mail scanner, a previewer) records nothing

        # No CSRF token, or a CSRF token without its cookie: refused, nothing recorded.
        token = token_of(more_url)
        assert browser.post("vote", data={"t": token}).status_code == 403
        with site.client() as stranger:
            assert stranger.post("vote", data={"t": token, "csrf": csrf_of(page.text)}).status_code == 403
        assert vote_count(site) == []

        done = browser.post("vote", data={"t": token, "csrf": csrf_of(page.text)})
        assert done.status_code == 200 and "Noted: more like" in done.text
        assert vote_count(site) == [(KEY, 1)]

        # "Less like this" on the same paper replaces the vote; "more" again puts it back.
        less_url = target["_paper_digest"]["less_like_this"]
        page = browser.get(less_url)
        assert "Less like this: <strong>Diffusion Models for Protein Design</strong>?" in page.text
        assert "You said “more like this” about it before" in page.text
        browser.post("vote", data={"t": token_of(less_url), "csrf": csrf_of(page.text)})
        assert vote_count(site) == [(KEY, -1)]
        page = browser.get(more_url)
        assert browser.post("vote", data={"t": token, "csrf": csrf_of(page.text)}).status_code == 200
        assert vote_count(site) == [(KEY, 1)]

    # The next run: the liked paper comes first in its digest, saying why ...
    write(site.inbox, "b.txt", DUMP_2)
    site.run(NOW + timedelta(days=1))
    sub = ann(site)
    after = feed_items(site, sub)
    older = [i for i in after if i["_paper_digest"]["digest"] == site.store.digests()[1].slug]
    liked = next(i for i in older if i["title"] == "Diffusion Models for Protein Design")
    assert "you liked this paper" in liked["_paper_digest"]["reasons"]
    assert [i["title"] for i in older].index(liked["title"]) < titles.index(liked["title"])
    # ... and the new digest's order is the one `digest rank` gives with the vote, which
    # is not the order without it.
    newest = site.store.digests()[0]
    in_feed = [i["title"] for i in after if i["_paper_digest"]["digest"] == newest.slug]
    capsys.readouterr()
    assert main(["-c", str(site.config.path), "rank", ANN, "--json"]) == 0
    ranked = [p["title"] for p in json.loads(capsys.readouterr().out)]
    assert in_feed and in_feed == ranked[: len(in_feed)]  # the feed carries the top picks
    without = [p.paper.title for p in rank_digest(site.store, newest, profile_of(sub.preferences, []))]
    assert ranked != without
    assert ranked.index("Protein Binders by Diffusion") < without.index("Protein Binders by Diffusion")


def test_forged_foreign_and_revoked_vote_tokens_are_refused(site: Site) -> None:
    site.subs.add(ANN, NOW, status="active", source="cli", prefs=Preferences(interests="proteins"))
    bob = site.subs.add("bob@example.org", NOW, status="active", source="cli")
    write(site.inbox, "a.txt", DUMP_1)
    site.run(NOW)
    key = "protein folding with language models"
    good, _ = vote_urls(site.pages.tokens, ann(site), key, base_url=site.base)
    token = token_of(good)
    payload, sig = token.rsplit(".", 1)
    bad = {
        "forged": f"{payload}.{sig[:-4]}AAAA",
        "truncated": token[: len(token) // 2],
        "other install": Tokens("another install's key").make_vote(ann(site), key, 1),
        "other purpose": site.pages.tokens.make("preferences", ann(site)),
        "empty": "",
    }
    with site.client() as browser:
        csrf = csrf_of(browser.get(good).text)
        for name, t in bad.items():
            got = browser.get("vote", params={"t": t})
            assert got.status_code == 403 and "This link is not valid" in got.text, name
            assert browser.post("vote", data={"t": t, "csrf": csrf}).status_code == 403, name
        assert vote_count(site) == []
        # Bob's link votes for Bob, never for Ann.
        bobs, _ = vote_urls(site.pages.tokens, bob, key, base_url=site.base)
        assert browser.post("vote", data={"t": token_of(bobs), "csrf": csrf}).status_code == 200
        assert vote_count(site) == [] and [v.value for v in site.subs.votes(bob.id)] == [1]
        # A renewed secret revokes every link made before it: a token for the subscriber
        # the id names, but with the old secret's fingerprint.
        site.subs.new_token(ann(site).id)
        assert browser.get(good).status_code == 403
        assert browser.post("vote", data={"t": token, "csrf": csrf}).status_code == 403
        assert vote_count(site) == []


def test_the_vote_page_escapes_the_title(site: Site) -> None:
    site.subs.add(ANN, NOW, status="active", source="cli")
    write(site.inbox, "a.txt", DUMP_1)
    site.run(NOW)
    key = "robot grasping from video b tactile b signals"
    assert site.subs.titles([key])  # the key of the title with markup in it
    url, _ = vote_urls(site.pages.tokens, ann(site), key, base_url=site.base)
    page = httpx.get(url, timeout=10)
    assert "Robot Grasping from Video &lt;b&gt;&amp; Tactile&lt;/b&gt; Signals" in page.text
    assert "<b>&" not in page.text


# --- through `digest serve`, a real process --------------------------------------------


@pytest.mark.slow
def test_a_vote_through_digest_serve_reaches_the_next_feed(
    tmp_path: Path,
    inbox: Path,
    services: list[Serve],  # noqa: F811
) -> None:
    port = free_port()
    path = service_config(tmp_path, inbox, http={"listen": f"127.0.0.1:{port}"})
    config = load_config(path, {})
    base = f"http://127.0.0.1:{port}/"
    args = ["--interests", "weather forecasts", "--keyword", "tokenizers"]  # the voted paper a pick
    assert main(["-c", str(path), "subscribers", "add", ANN, *args]) == 0
    with Store.open(config.state.url) as store:
        sub = Subscribers(store).get(ANN)
        assert sub is not None
        feed_url = f"{base}{audience.tokens(config, store).personal_dir(sub)}/feed.json"
    services.append(serve := Serve(path, tmp_path / "serve.log"))
    wait_for("/healthz", lambda: httpx.get(base + "healthz").status_code == 200)
    write(inbox, "a.txt", DUMP_1)

    def published() -> list[dict[str, Any]] | None:
        got = httpx.get(feed_url)  # 404 (500 before the site's folder exists) until the run wrote it
        return got.json()["items"] if got.status_code == 200 else None

    items = wait_for("the personal feed", published)
    target = next(i for i in items if i["title"] == "Fast Tokenizers for Source Code")
    more_url = target["_paper_digest"]["more_like_this"].replace("https://example.org/digest/", base)

    def votes() -> list[tuple[str, int]]:
        with Store.open(config.state.url) as store:
            return [(v.paper_key, v.value) for v in Subscribers(store).votes(sub.id)]

    with httpx.Client(timeout=10) as browser:
        page = browser.get(more_url)
        assert page.status_code == 200 and "Fast Tokenizers for Source Code" in page.text
        assert votes() == []
        forged = token_of(more_url)[:-3] + "AAA"
        assert browser.post(base + "vote", data={"t": forged, "csrf": csrf_of(page.text)}).status_code == 403
        done = browser.post(base + "vote", data={"t": token_of(more_url), "csrf": csrf_of(page.text)})
        assert done.status_code == 200
    assert votes() == [("fast tokenizers for source code", 1)]

    def liked() -> bool:
        items = published() or []
        first = next(i for i in items if i["title"] == "Fast Tokenizers for Source Code")
        return "you liked this paper" in first["_paper_digest"]["reasons"]

    wait_for("the next poll to rank with the vote", liked)
    assert serve.stop() == 0
