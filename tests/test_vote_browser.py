"""A real browser votes (issue 15): headless Chromium (Debian's, driven by Playwright)
opens a reader's own page as the built-in server serves it, follows "Less like this",
presses the one button, and the vote is recorded; the next run's page says why.
Screenshots go to ``$DIGEST_SCREENSHOTS`` (default: the test's tmp dir)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from digest.subscribers import Preferences
from tests.subscribe_site import NOW, Site
from tests.test_personal_feed import DUMP_1, write

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"needs headless Chromium at {CHROMIUM} (apt install chromium)"
    ),
]


def test_a_browser_votes_from_the_personal_page(site: Site, tmp_path: Path) -> None:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs the playwright package (pip install playwright)"
    )
    shots = Path(os.environ.get("DIGEST_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    sub = site.subs.add(
        "reader@example.org", NOW, status="active", source="cli", prefs=Preferences(interests="proteins")
    )
    write(site.inbox, "a.txt", DUMP_1)
    site.run(NOW)
    folder = site.pages.tokens.personal_dir(sub)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            page.goto(f"{site.base}{folder}/")
            assert page.inner_text("h1") == "Your picks"
            titles = page.locator("li.paper h2").all_inner_texts()
            last = titles[-1]
            page.screenshot(path=str(shots / "1-personal.png"), full_page=True)
            page.locator("a.vote", has_text="More like this").last.click()
            assert page.inner_text("h1") == "More like this?"
            assert last in page.inner_text("form")
            assert site.subs.votes(sub.id) == []  # opening the link recorded nothing
            page.screenshot(path=str(shots / "2-vote.png"), full_page=True)
            page.click("button[type=submit]")
            assert page.inner_text("h1") == "Thank you"
            [vote] = site.subs.votes(sub.id)
            assert vote.value == 1 and site.subs.titles([vote.paper_key])[vote.paper_key] == last
            page.screenshot(path=str(shots / "3-noted.png"), full_page=True)

            site.run(NOW + timedelta(hours=1))  # the next run reads the vote
            page.click("text=Your picks")
            assert page.inner_text("h1") == "Your picks"
            assert "you liked this paper" in page.inner_text("main")
            after = page.locator("li.paper h2").all_inner_texts()
            assert sorted(after) == sorted(titles) and after.index(last) < titles.index(last)
            page.screenshot(path=str(shots / "4-moved.png"), full_page=True)
        finally:
            browser.close()
