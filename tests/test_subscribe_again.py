"""Coming back after unsubscribing, by raw HTTP against the app under uvicorn with a real
SMTP sink: the sign-up form's choices are what confirming sets (for an address that was
unsubscribed too), and the preferences page of an unsubscribed reader says so and offers
"Subscribe again" (a POST with the CSRF token; a GET changes nothing)."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from digest.subscribers import Preferences, Subscriber
from tests.subscribe_site import NOW, Site, link_in
from tests.test_subscribe_web import csrf_of

pytestmark = pytest.mark.timeout(180)

LOU = "lou@example.org"


def unsubscribed_lou(site: Site) -> Subscriber:
    """Lou, weekly on Tuesdays with interests, who left by the RFC 8058 one-click POST."""
    prefs = Preferences(cadence="weekly:tue", interests="sparse attention", max_papers=4)
    lou = site.subs.add(LOU, NOW - timedelta(days=30), status="active", source="web", prefs=prefs)
    url = site.base + "unsubscribe?t=" + site.pages.tokens.make("unsubscribe", lou)
    answer = httpx.post(url, content=b"List-Unsubscribe=One-Click", timeout=10)
    assert answer.status_code == 200
    after = site.subs.get(LOU)
    assert after is not None and after.status == "unsubscribed"
    return after


def sign_up(site: Site, browser: httpx.Client, **fields: str) -> str:
    """Submits the sign-up form for Lou; returns the confirmation link mailed to him."""
    count = len(site.sink.to(LOU)) + 1
    token = csrf_of(browser.get("subscribe").text)
    answer = browser.post("subscribe", data={"csrf": token, "address": LOU, **fields})
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    mails = site.mails_to(LOU, count=count)
    assert len(mails) == count
    return link_in(mails[-1], "confirm")


def confirm(browser: httpx.Client, url: str) -> httpx.Response:
    page = browser.get(url)
    assert page.status_code == 200
    t = parse_qs(urlsplit(url).query)["t"][0]
    done = browser.post("confirm", data={"csrf": csrf_of(page.text), "t": t})
    assert done.status_code == 200 and "now receives" in done.text
    return page


def test_signing_up_again_after_unsubscribing_sets_what_the_form_asked_for(site: Site) -> None:
    unsubscribed_lou(site)
    with site.client() as browser:
        url = sign_up(site, browser, cadence="daily")
        page = confirm(browser, url)
        assert "every digest" in page.text  # the confirm page says what confirming sets
    lou = site.subs.get(LOU)
    assert lou is not None and lou.status == "active"
    assert lou.preferences.cadence == "daily"  # the form's choice, not the old weekly:tue
    # Interests left blank keep the ones he had; what the form does not ask stays too.
    assert lou.preferences.interests == "sparse attention" and lou.preferences.max_papers == 4


def test_interests_typed_on_the_form_replace_the_old_ones_once_confirmed(site: Site) -> None:
    unsubscribed_lou(site)
    with site.client() as browser:
        url = sign_up(site, browser, cadence="weekly:fri", interests="Diffusion  models\nfor faces")
        # Nothing changes before the link is confirmed: anyone can type his address.
        held = site.subs.get(LOU)
        assert held is not None and held.status == "unsubscribed"
        assert held.preferences.cadence == "weekly:tue" and held.preferences.interests == "sparse attention"
        page = confirm(browser, url)
        assert "weekly, on Friday" in page.text and "Diffusion models for faces" in page.text
    lou = site.subs.get(LOU)
    assert lou is not None and lou.status == "active"
    assert (lou.preferences.cadence, lou.preferences.interests) == (
        "weekly:fri",
        "Diffusion models for faces",
    )


def test_each_link_sets_its_own_forms_choices_and_an_active_reader_is_left_alone(site: Site) -> None:
    unsubscribed_lou(site)
    with site.client() as browser:
        first = sign_up(site, browser, cadence="weekly:mon")
        second = sign_up(site, browser, cadence="weekly:wed")
        confirm(browser, first)  # the link of the first form, though a second came later
        lou = site.subs.get(LOU)
        assert lou is not None and lou.preferences.cadence == "weekly:mon"
        # Active now: the other link (or this one again) confirms without changing anything,
        # so a preference saved meanwhile is not undone by an old link.
        site.subs.set_preferences(lou.id, Preferences(cadence="weekly:sat"))
        confirm(browser, second)
        confirm(browser, first)
    lou = site.subs.get(LOU)
    assert lou is not None and lou.status == "active" and lou.preferences.cadence == "weekly:sat"


def test_an_expired_link_asks_for_a_new_one_with_the_same_choices(site: Site) -> None:
    lou = unsubscribed_lou(site)
    old = site.pages.tokens.make(
        "confirm", lou, now=site.pages.clock() - timedelta(days=4), asked={"cadence": "weekly:thu"}
    )
    with site.client() as browser:
        page = browser.get("confirm", params={"t": old})
        assert page.status_code == 410 and "Send me a new link" in page.text
        assert 'name="cadence" value="weekly:thu"' in page.text
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        answer = browser.post("subscribe", data=fields)
        assert answer.status_code == 200
        [mail] = site.mails_to(LOU)
        confirm(browser, link_in(mail, "confirm"))
    after = site.subs.get(LOU)
    assert after is not None and after.status == "active" and after.preferences.cadence == "weekly:thu"


def test_a_link_claiming_other_choices_fails_its_signature(site: Site) -> None:
    lou = unsubscribed_lou(site)
    real = site.pages.tokens.make("confirm", lou, now=site.pages.clock(), asked={"cadence": "daily"})
    other = site.pages.tokens.make("confirm", lou, now=site.pages.clock(), asked={"cadence": "weekly:sun"})
    # The payload of one with the signature of the other: refused, nothing changes.
    forged = other.rsplit(".", 2)[0] + "." + ".".join(real.rsplit(".", 2)[1:])
    with site.client() as browser:
        token = csrf_of(browser.get("confirm", params={"t": real}).text)
        page = browser.get("confirm", params={"t": forged})
        assert page.status_code == 400
        answer = browser.post("confirm", data={"csrf": token, "t": forged})
        assert answer.status_code == 400
    after = site.subs.get(LOU)
    assert after is not None and after.status == "unsubscribed" and after.preferences.cadence == "weekly:tue"


def test_the_preferences_page_of_an_unsubscribed_reader_says_so_and_offers_to_come_back(site: Site) -> None:
    lou = unsubscribed_lou(site)
    prefs = site.pages.tokens.make("preferences", lou)
    with site.client() as browser:
        page = browser.get("preferences", params={"t": prefs})
        assert page.status_code == 200
        assert "You are unsubscribed" in page.text and "gets no emails" in page.text
        assert 'name="action" value="resubscribe"' in page.text and "Subscribe again" in page.text
        assert ">Unsubscribe</a>" not in page.text
        # A GET (a mail scanner) changes nothing, nor does a POST without the CSRF token.
        browser.get("preferences", params={"t": prefs, "action": "resubscribe"})
        with site.client() as attacker:
            refused = attacker.post("preferences", params={"t": prefs}, data={"action": "resubscribe"})
            assert refused.status_code == 403
        # Another purpose's token is not a preferences link.
        wrong = site.pages.tokens.make("unsubscribe", lou)
        forged = browser.post(
            "preferences", params={"t": wrong}, data={"csrf": csrf_of(page.text), "action": "resubscribe"}
        )
        assert forged.status_code == 403
        assert site.subs.get(LOU).status == "unsubscribed"  # type: ignore[union-attr]

        back = browser.post(
            "preferences", params={"t": prefs}, data={"csrf": csrf_of(page.text), "action": "resubscribe"}
        )
        assert back.status_code == 200 and "Subscribed again" in back.text
        assert "You are unsubscribed" not in back.text and ">Unsubscribe</a>" in back.text
        assert 'value="resubscribe"' not in back.text
    after = site.subs.get(LOU)
    assert after is not None and after.status == "active"
    assert after.preferences.cadence == "weekly:tue"  # his preferences as he left them
    assert after.reason is None and after.unsubscribed is None


def test_an_active_readers_page_shows_no_status_and_a_bounced_one_can_come_back(site: Site) -> None:
    ann = site.subs.add("ann@example.org", NOW, status="active", source="cli")
    with site.client() as browser:
        page = browser.get("preferences", params={"t": site.pages.tokens.make("preferences", ann)})
        assert "Subscribe again" not in page.text and "You are unsubscribed" not in page.text
        assert ">Unsubscribe</a>" in page.text
        site.subs.set_status(ann.id, "bounced", NOW, "hard bounce 5.1.1")
        t = site.pages.tokens.make("preferences", ann)
        page = browser.get("preferences", params={"t": t})
        assert "Mail to you bounced" in page.text and "Subscribe again" in page.text
        back = browser.post(
            "preferences", params={"t": t}, data={"csrf": csrf_of(page.text), "action": "resubscribe"}
        )
        assert back.status_code == 200 and "Subscribed again" in back.text
    assert site.subs.get("ann@example.org").status == "active"  # type: ignore[union-attr]
