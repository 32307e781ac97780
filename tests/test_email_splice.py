"""The email splice (``Prepared``, digest/render/email_shared.py): one digest's email
rendered once and cut per recipient, held byte for byte to the plain reference, the
message the email package builds and serialises for that one recipient
(``render.message`` then ``render.to_bytes``), for many recipients, with and without
personal links (docs/DESIGN.md invariant 12)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from digest.identity import message_id
from digest.model import Digest, StoredPaper
from digest.parse import parse_dump
from digest.render import email as render
from digest.render import email_shared
from digest.render.view import DigestView, PaperView, digest_view, paper_view
from tests.helpers import DUMP_000, EMAIL_SETTINGS, NOW

INSTALL = "0123456789abcdef"

# Addresses the shared serialisation takes, and some it must not (quotes, ``&``, ``<``:
# HTML escaping would rewrite them, so they get the full build; the bytes are the same).
PLAIN = [
    *(f"reader{i}@example.org" for i in range(40)),
    "a@b.io",
    "x" * 90 + "@example.org",
    "first.last+digest@sub.example.co.uk",
    "UPPER@Example.ORG",
    "émile@exämple.org",
    "用户@例子.中国",
]
ESCAPED = ["o'brien@example.org", "a&b@example.org", 'dq"x@example.org']


def _digest() -> tuple[DigestView, list[PaperView]]:
    papers = parse_dump(DUMP_000.read_bytes(), DUMP_000.name).papers[:3]
    digest = Digest(id=7, slug="2026-11-22", created=NOW, first_seq=1, last_seq=3, paper_count=3)
    stored = [
        StoredPaper(seq=i + 1, paper=p, first_seen=NOW, dump_name="d.txt") for i, p in enumerate(papers)
    ]
    base = EMAIL_SETTINGS.base_url
    return digest_view(digest, base, ZoneInfo("UTC")), [paper_view(p, digest.slug, base) for p in stored]


def _token(recipient: str) -> str:
    return hashlib.sha256(recipient.encode()).hexdigest()[:24]


# Each subscriber's own links, in the three shapes a config can give them.
PERSONAL: dict[str, Callable[[str], render.Personal]] = {
    "one-click and preferences": lambda r: render.Personal(
        (f"https://example.org/digest/u/{_token(r)}",), f"https://example.org/digest/p/{_token(r)}"
    ),
    "https and mailto": lambda r: render.Personal(
        (
            f"https://example.org/digest/u/{_token(r)}",
            f"mailto:digest@example.org?subject=unsubscribe%20{_token(r)}",
        ),
        f"https://example.org/digest/p/{_token(r)}",
    ),
    "mailto only": lambda r: render.Personal(
        (f"mailto:digest@example.org?subject=unsubscribe%20{_token(r)}",)
    ),
}


@pytest.fixture
def full_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The recipients ``Prepared.wire`` built in full (the plain path) instead of cutting
    the shared serialisation: the splice must be taken where it can be."""
    built: list[str] = []
    plain = render.message  # what email_shared calls for a full build

    def counted(settings: Any, digest: Any, papers: Any, recipient: str, *rest: Any) -> Any:
        built.append(recipient)
        return plain(settings, digest, papers, recipient, *rest)

    monkeypatch.setattr(email_shared, "message", counted)
    return built


@pytest.mark.parametrize("unsubscribe", [(), ("https://example.org/u?list=1", "mailto:u@example.org")])
def test_every_recipient_gets_the_bytes_of_the_plain_build(
    unsubscribe: tuple[str, ...], full_builds: list[str]
) -> None:
    settings = replace(EMAIL_SETTINGS, unsubscribe=unsubscribe)
    digest, papers = _digest()
    shared = render.Prepared(settings, digest, papers)
    assert shared.shared
    for recipient in [*PLAIN, *ESCAPED]:
        mid = message_id(7, recipient, "example.org", INSTALL)
        wire = shared.wire(recipient, mid)
        expected = render.to_bytes(render.message(settings, digest, papers, recipient, mid))
        assert wire.data == expected, recipient
        assert (wire.message_id, wire.envelope_from) == (mid, "digest@example.org")
    assert full_builds == ESCAPED  # the plain addresses were all cut from the shared one


@pytest.mark.parametrize("shape", sorted(PERSONAL))
def test_every_subscriber_gets_the_bytes_of_the_plain_build_with_their_own_links(
    shape: str, full_builds: list[str]
) -> None:
    links = PERSONAL[shape]
    digest, papers = _digest()
    shared = render.Prepared(EMAIL_SETTINGS, digest, papers, links("stand-in@example.org"))
    assert shared.shared
    for recipient in PLAIN:
        mid = message_id(7, recipient, "example.org", INSTALL)
        personal = links(recipient)
        wire = shared.wire(recipient, mid, personal)
        expected = render.to_bytes(render.message(EMAIL_SETTINGS, digest, papers, recipient, mid, personal))
        assert wire.data == expected, recipient
    assert full_builds == []
    # Another shape of links than the one prepared: built in full, still the same bytes.
    other = render.Personal(("https://example.org/digest/u/x",)) if shape == "mailto only" else None
    mid = message_id(7, "ann@example.org", "example.org", INSTALL)
    expected = render.to_bytes(render.message(EMAIL_SETTINGS, digest, papers, "ann@example.org", mid, other))
    assert shared.wire("ann@example.org", mid, other).data == expected
    assert full_builds == ["ann@example.org"]
