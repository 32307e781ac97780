"""A real browser votes (issue 15): headless Chromium (Debian's, driven by Playwright)
opens a reader's own page as the built-in server serves it, follows "Less like this",
presses the one button, and the vote is recorded; the next run's page says why.
Screenshots go to ``$DIGEST_SCREENSHOTS`` (default: the test's tmp dir)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from digest.subscribers import Preferences
from tests.browser import MARKS, chromium_page
from tests.subscribe_site import NOW, Site
from tests.test_personal_feed import DUMP_1, write

pytestmark = MARKS


def test_a_browser_votes_from_the_personal_page(site: Site, tmp_path: Path) -> None:
    sub = site.subs.add(
        "reader@example.org", NOW, status="active", source="cli", prefs=Preferences(interests="proteins")
    )
    write(site.inbox, "a.txt", DUMP_1)
    site.run(NOW)
    folder = site.pages.tokens.personal_dir(sub)
    with chromium_page(tmp_path) as (page, shot):
        page.goto(f"{site.base}{folder}/")
        assert page.inner_text("h1") == "Your picks"
        titles = page.locator("li.paper h2").all_inner_texts()
        last = titles[-1]
        shot("1-personal.png")
        page.locator("a.vote", has_text="More like this").last.click()
        assert page.inner_text("h1") == "More like this?"
        assert last in page.inner_text("form")
        assert site.subs.votes(sub.id) == []  # opening the link recorded nothing
        shot("2-vote.png")
        page.click("button[type=submit]")
        assert page.inner_text("h1") == "Thank you"
        [vote] = site.subs.votes(sub.id)
        assert vote.value == 1 and site.subs.titles([vote.paper_key])[vote.paper_key] == last
        shot("3-noted.png")

        site.run(NOW + timedelta(hours=1))  # the next run reads the vote
        page.click("text=Your picks")
        assert page.inner_text("h1") == "Your picks"
        assert "you liked this paper" in page.inner_text("main")
        after = page.locator("li.paper h2").all_inner_texts()
        assert sorted(after) == sorted(titles) and after.index(last) < titles.index(last)
        shot("4-moved.png")
