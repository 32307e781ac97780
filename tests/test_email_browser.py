"""The HTML part in headless Chromium (Playwright, the system's /usr/bin/chromium), at a
desktop client's 600 px and a phone's 375 px, with its <style> block and without it
(as Gmail's app shows mail of other accounts): it reads the same either way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.render import email as render
from tests.test_email_budget import SETTINGS, new_in_002, views

CHROMIUM = Path("/usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.chromium,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="headless Chromium is not installed (apt-get install chromium)"
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def html() -> str:
    digest, shown = views(new_in_002())  # the 216-paper digest, a 60-character base_url
    return render.html_part(SETTINGS, digest, shown, "reader@example.org")


def measure(page: Any, selector: str) -> dict[str, Any]:
    return dict(
        page.eval_on_selector(
            selector,
            """e => { const s = getComputedStyle(e), r = e.getBoundingClientRect();
                return {width: r.width, left: r.left, height: r.height, background: s.backgroundColor,
                        color: s.color, paddingLeft: s.paddingLeft, display: s.display}; }""",
        )
    )


@pytest.mark.parametrize("width", [600, 375])
@pytest.mark.parametrize("with_style", [True, False], ids=["style", "no-style"])
def test_reads_the_same_at_600_and_375_px_with_or_without_the_style_block(
    browser: Any, html: str, tmp_path: Path, width: int, with_style: bool
) -> None:
    doc = html if with_style else re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_content(doc)
    page.screenshot(path=str(tmp_path / f"email-{width}.png"))
    assert page.evaluate("document.documentElement.scrollWidth") == width  # nothing overflows
    card = measure(page, "table.card")
    assert width - 16 - 1 <= card["width"] <= 600
    assert card["background"] == "rgb(255, 255, 255)" and card["color"] == "rgb(31, 35, 40)"
    paper = measure(page, "td.pp")
    assert paper["paddingLeft"] == ("16px" if with_style and width < 620 else "28px")
    assert measure(page, "div.pre")["display"] == "none"  # the preheader stays hidden
    # Every part is there and visible: a paper in full, the titles, the count, the footer.
    for selector in ("td.pp h2 a", "td.more li a", "td.more strong", "td.ft"):
        box = measure(page, selector)
        assert box["height"] > 0 and box["left"] >= 0, selector
    assert "more papers on the archive page" in page.inner_text("body")
    page.close()


def test_dark_mode_where_the_client_supports_it(browser: Any, html: str) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 900}, color_scheme="dark")
    page.set_content(html)
    card = measure(page, "table.card")
    assert card["background"] == "rgb(22, 27, 34)" and card["color"] == "rgb(230, 237, 243)"
    page.close()
