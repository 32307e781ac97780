"""Headless Chromium (Debian's, driven by Playwright) for the tests that click through the
app as a reader does: the marks such a test carries, and a page to drive."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"

MARKS = [
    pytest.mark.chromium,
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"needs headless Chromium at {CHROMIUM} (apt install chromium)"
    ),
]


@contextmanager
def chromium_page(tmp_path: Path) -> Iterator[tuple[Any, Callable[[str], None]]]:
    """A 900 x 1000 page in headless Chromium, and ``shot(name)``, which saves a full-page
    screenshot to ``$DIGEST_SCREENSHOTS`` (default: a folder in ``tmp_path``, removed
    when the block ends without an error). Skips without the playwright package."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs the playwright package (pip install playwright)"
    )
    shots = Path(os.environ.get("DIGEST_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            yield page, lambda name: page.screenshot(path=str(shots / name), full_page=True)
        finally:
            browser.close()
    if "DIGEST_SCREENSHOTS" not in os.environ:
        shutil.rmtree(shots, ignore_errors=True)
