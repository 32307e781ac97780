"""A real browser signs up (issue 14): headless Chromium (Debian's, driven by Playwright)
against the app under uvicorn, with the mail read from a real SMTP sink.

subscribe → confirmation mail → confirm page, button → preferences: weekly → a digest is
delivered on that weekday → the unsubscribe link in it → button → unsubscribed.
Screenshots of the four pages go to ``$DIGEST_SCREENSHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.subscribe_site import NOW, Site, link_in, write_dump

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"needs headless Chromium at {CHROMIUM} (apt install chromium)"
    ),
]


def test_a_browser_signs_up_confirms_sets_weekly_and_unsubscribes(site: Site, tmp_path: Path) -> None:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs the playwright package (pip install playwright)"
    )
    shots = Path(os.environ.get("DIGEST_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            page.goto(site.base + "subscribe")
            page.fill("#address", "reader.one@example.org")
            page.fill("#interests", "Diffusion models that depict a given person from a few photos.")
            page.screenshot(path=str(shots / "1-subscribe.png"), full_page=True)
            page.click("button[type=submit]")
            assert "Check your inbox" in page.inner_text("h1")
            assert site.subs.get("reader.one@example.org") is not None  # pending, after the answer

            [mail] = site.mails_to("reader.one@example.org")
            assert str(mail["Subject"]).startswith("Confirm your subscription")
            page.goto(link_in(mail, "confirm"))
            assert page.inner_text("h1") == "Confirm"
            assert site.subs.get("reader.one@example.org").status == "pending"  # type: ignore[union-attr]
            page.screenshot(path=str(shots / "2-confirm.png"), full_page=True)
            page.click("button[type=submit]")
            assert "You are subscribed" in page.inner_text("h1")
            assert site.subs.get("reader.one@example.org").status == "active"  # type: ignore[union-attr]

            page.click("text=Choose how often and what comes first")
            assert page.inner_text("h1") == "Your preferences"
            page.check("input[value='weekly:mon']")
            page.fill("#keywords", "diffusion\nidentity")
            page.click("form[action^='preferences'] button[type=submit] >> nth=0")
            assert "Saved." in page.inner_text(".notice")
            page.screenshot(path=str(shots / "3-preferences.png"), full_page=True)
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
            page.screenshot(path=str(shots / "4-unsubscribe.png"), full_page=True)
            page.click("button[type=submit]")
            assert page.inner_text("h1") == "Unsubscribed"
            page.screenshot(path=str(shots / "5-unsubscribed.png"), full_page=True)
        finally:
            browser.close()
    sub = site.subs.get("reader.one@example.org")
    assert sub is not None and sub.status == "unsubscribed"
    if "DIGEST_SCREENSHOTS" not in os.environ:
        shutil.rmtree(shots, ignore_errors=True)
