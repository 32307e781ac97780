"""A real browser signs up (issue 14): headless Chromium (Debian's, driven by Playwright)
against the app under uvicorn, with the mail read from a real SMTP sink.

subscribe → confirmation mail → confirm page, button → preferences: weekly → a digest is
delivered on that weekday → the unsubscribe link in it → button → unsubscribed.
Then: coming back from the preferences page after unsubscribing; a too-long interest
pasted into the form reaches the server (no maxlength cuts it) and comes back refused.
Screenshots of the pages go to ``$DIGEST_SCREENSHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

from pathlib import Path

from digest.subscribers import MAX_TEXT
from tests.browser import MARKS, chromium_page
from tests.subscribe_site import NOW, Site, link_in, write_dump
from tests.test_subscribe_limits import LONG

pytestmark = MARKS


def test_a_browser_signs_up_confirms_sets_weekly_and_unsubscribes(site: Site, tmp_path: Path) -> None:
    with chromium_page(tmp_path) as (page, shot):
        page.goto(site.base + "subscribe")
        page.fill("#address", "reader.one@example.org")
        page.fill("#interests", "Diffusion models that depict a given person from a few photos.")
        shot("1-subscribe.png")
        page.click("button[type=submit]")
        assert "Check your inbox" in page.inner_text("h1")
        assert site.subs.get("reader.one@example.org") is not None  # pending, after the answer

        [mail] = site.mails_to("reader.one@example.org")
        assert str(mail["Subject"]).startswith("Confirm your subscription")
        page.goto(link_in(mail, "confirm"))
        assert page.inner_text("h1") == "Confirm"
        assert site.subs.get("reader.one@example.org").status == "pending"  # type: ignore[union-attr]
        shot("2-confirm.png")
        page.click("button[type=submit]")
        assert "You are subscribed" in page.inner_text("h1")
        assert site.subs.get("reader.one@example.org").status == "active"  # type: ignore[union-attr]

        page.click("text=Choose how often and what comes first")
        assert page.inner_text("h1") == "Your preferences"
        page.check("input[value='weekly:mon']")
        page.fill("#keywords", "diffusion\nidentity")
        page.click("form[action^='preferences'] button[type=submit] >> nth=0")
        assert "Saved." in page.inner_text(".notice")
        shot("3-preferences.png")
        sub = site.subs.get("reader.one@example.org")
        assert sub is not None and sub.preferences.cadence == "weekly:mon"
        assert sub.preferences.keywords == ("diffusion", "identity")

        # A Monday: the weekly email goes out through the outbox, to the sink.
        write_dump(site.inbox, "monday.txt", ["Identity-preserving diffusion", "Sparse attention"])
        report = site.run(NOW)
        assert report.delivery.sent == 1
        [_, digest_mail] = site.mails_to("reader.one@example.org", count=2)
        assert digest_mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        page.goto(link_in(digest_mail, "unsubscribe"))
        assert page.inner_text("h1") == "Unsubscribe"
        shot("4-unsubscribe.png")
        page.click("button[type=submit]")
        assert page.inner_text("h1") == "Unsubscribed"
        shot("5-unsubscribed.png")
    sub = site.subs.get("reader.one@example.org")
    assert sub is not None and sub.status == "unsubscribed"


def test_a_browser_comes_back_from_the_preferences_page_after_unsubscribing(
    site: Site, tmp_path: Path
) -> None:
    from digest.subscribers import Preferences

    lou = site.subs.add(
        "lou@example.org", NOW, status="active", source="web", prefs=Preferences(cadence="weekly:tue")
    )
    tokens = site.pages.tokens
    with chromium_page(tmp_path) as (page, shot):
        page.goto(site.base + "unsubscribe?t=" + tokens.make("unsubscribe", lou))
        page.click("button[type=submit]")
        assert page.inner_text("h1") == "Unsubscribed"
        page.goto(site.base + "preferences?t=" + tokens.make("preferences", lou))
        assert "You are unsubscribed" in page.inner_text("#status-head")
        assert page.locator("a", has_text="Unsubscribe").count() == 0
        shot("6-preferences-unsubscribed.png")
        page.click("text=Subscribe again")
        assert "Subscribed again" in page.inner_text(".notice")
        assert page.locator("#status-head").count() == 0
        shot("7-subscribed-again.png")
    sub = site.subs.get("lou@example.org")
    assert sub is not None and sub.status == "active" and sub.preferences.cadence == "weekly:tue"


def _paste(page: object, selector: str, text: str) -> None:
    """Puts ``text`` into the field as a paste does (the browser applies maxlength)."""
    page.focus(selector)  # type: ignore[attr-defined]
    page.keyboard.insert_text(text)  # type: ignore[attr-defined]


def test_a_pasted_over_long_interest_gets_the_servers_message_not_a_silent_cut(
    site: Site, tmp_path: Path
) -> None:
    sub = site.subs.add("ann@example.org", NOW, status="active", source="cli")
    with chromium_page(tmp_path) as (page, shot):
        page.goto(site.base + "subscribe")
        page.fill("#address", "reader.two@example.org")
        _paste(page, "#interests", LONG)
        assert page.input_value("#interests") == LONG  # nothing cut on the way in
        page.click("button[type=submit]")
        assert f"over the limit of {MAX_TEXT:,}" in page.inner_text(".error")
        assert f"{len(LONG):,} characters" in page.inner_text(".error")
        assert page.input_value("#interests") == LONG  # given back to shorten
        shot("limits-subscribe.png")

        page.goto(site.base + "preferences?t=" + site.pages.tokens.make("preferences", sub))
        _paste(page, "#interests", LONG)
        page.click("form[action^='preferences'] button[type=submit] >> nth=0")
        assert "Not saved" in page.inner_text(".error") and f"limit of {MAX_TEXT:,}" in page.inner_text(
            ".error"
        )
        assert page.input_value("#interests") == LONG
        shot("limits-preferences.png")
    assert site.subs.get("reader.two@example.org") is None
    after = site.subs.get("ann@example.org")
    assert after is not None and after.preferences.interests == ""
