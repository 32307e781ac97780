"""The limits the server enforces with a message (interests: 2,000 characters; keywords:
50 of at most 100 characters; an address: what email-validator takes) are not also cut
silently by the browser: no ``maxlength`` on those fields, and the limit said in the
label's hint. (tests/test_subscribe_browser.py pastes a too-long text into Chromium.)"""

from __future__ import annotations

import re

import httpx

from digest.subscribers import MAX_KEYWORD, MAX_KEYWORDS, MAX_TEXT
from tests.subscribe_site import NOW, Site

LONG = " ".join(f"word{i:04d}" for i in range(260))  # 2,339 characters on one line


def fields_of(html: str) -> dict[str, str]:
    """Every input and textarea of a page by its name: the whole tag."""
    return {m[2]: m[0] for m in re.finditer(r'<(input|textarea)\b[^>]*\bname="([^"]+)"[^>]*>', html)}


def test_no_field_the_server_limits_is_cut_by_the_browser_and_each_hint_names_the_limit(site: Site) -> None:
    sub = site.subs.add("ann@example.org", NOW, status="active", source="cli")
    with httpx.Client(base_url=site.base, timeout=10) as client:
        subscribe = client.get("subscribe").text
        preferences = client.get("preferences", params={"t": site.pages.tokens.make("preferences", sub)}).text
    limited = {"subscribe": ("address", "interests"), "preferences": ("interests", "keywords", "exclude")}
    for name, html in (("subscribe", subscribe), ("preferences", preferences)):
        tags = fields_of(html)
        for field in limited[name]:
            assert "maxlength" not in tags[field], (name, tags[field])
    assert (
        f"at most {MAX_TEXT:,} characters" in subscribe and f"at most {MAX_TEXT:,} characters" in preferences
    )
    assert preferences.count(f"at most {MAX_KEYWORDS}, each at most {MAX_KEYWORD} characters") == 2
    assert len(LONG) > MAX_TEXT
