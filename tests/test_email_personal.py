"""A subscriber's own email (issue 15), the renderer alone: the golden, the bytes written
from pieces against the email package's, the byte budget with hundreds of papers, the
subject and its placeholders. The delivery through a real SMTP sink, with the ranking
from the state, is tests/test_personal_delivery.py."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from digest.errors import ConfigError
from digest.identity import message_id, site_url
from digest.model import Digest, Paper
from digest.render import email as render
from digest.render import qp
from digest.render.email_personal import DEFAULT_SUBJECT, NO_PICKS, Choice, PersonalDigest, Reader
from digest.render.view import digest_view, paper_view
from digest.subscribers import Subscriber
from digest.tokens import Tokens, fingerprint, link, unsubscribe_urls, vote_urls
from tests import helpers
from tests.helpers import MakeConfig
from tests.test_email import BASE, INSTALL, SETTINGS, golden_papers, stored

GOLDEN = helpers.GOLDEN / "email"
KEY = "a-fixed-token-key-for-the-personal-golden"
SUB = Subscriber(
    id=42,
    address="ann@example.org",
    status="active",
    token="a-fixed-subscriber-secret",
    source="cli",
    created=datetime(2026, 11, 1, tzinfo=UTC),
)
_HREF = re.compile(r'href="([^"]+)"')


def personal_digest(papers: list[Paper], settings: render.EmailSettings = SETTINGS) -> PersonalDigest:
    digest = Digest(
        id=7,
        slug="2026-11-22",
        created=helpers.NOW,
        first_seq=1,
        last_seq=len(papers),
        paper_count=len(papers),
    )
    views = [paper_view(p, digest.slug, BASE) for p in stored(papers)]
    return PersonalDigest(settings, DEFAULT_SUBJECT, digest_view(digest, BASE, ZoneInfo("UTC")), views)


def reader(
    picks: tuple[Choice, ...],
    also: tuple[Choice, ...] = (),
    recipient: str = SUB.address,
    served: bool = True,
) -> Reader:
    tokens = Tokens(KEY)
    unsub = unsubscribe_urls(tokens, SUB, base_url=BASE, served=served, mailbox="digest@example.org")
    prefs = link(BASE, "preferences", tokens.make("preferences", SUB)) if served else None
    page = site_url(BASE, tokens.personal_dir(SUB) + "/") if served else None

    def votes(key: str) -> tuple[str, str]:
        return vote_urls(tokens, SUB, key, base_url=BASE)

    return Reader(
        recipient,
        message_id(7, recipient, "example.org", INSTALL),
        render.Personal(unsub, prefs),
        picks,
        also,
        page,
        votes if served else None,
    )


# Four papers: the reader's two picks (with the ranker's reasons), one more, and one an
# excluded keyword sank to the end.
GOLDEN_READER = (
    (
        Choice(2, ("keywords: scaling", "terms: masked models")),
        Choice(0, ("similar to: Progressive Temporal Feature Alignment Network for Video Inpainting",)),
    ),
    (Choice(3, ()), Choice(1, ("excluded: segmentation",))),
)


def parsed(data: bytes) -> tuple[EmailMessage, str, str]:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    text, html = msg.iter_parts()
    return msg, str(text.get_content()), str(html.get_content())


def test_a_personal_email_matches_its_golden_both_ways() -> None:
    """Fixed subscriber, key and clock: the same bytes as the golden, whether written from
    the pieces (what delivery sends) or built by the email package."""
    shared = personal_digest(golden_papers())
    who = reader(*GOLDEN_READER)
    data = shared.wire(who).data
    helpers.check_golden(data, GOLDEN / "personal.eml")
    msg, text, _ = parsed(data)
    helpers.check_golden(text.replace("\r\n", "\n"), GOLDEN / "personal.txt")
    assert render.to_bytes(shared.message(who)) == data
    assert personal_digest(golden_papers()).wire(who).data == data  # a rebuild: the same bytes
    assert msg["Subject"] == "2 picks for you · 4 new papers · 22 Nov 2026"


def test_picks_then_also_new_in_the_readers_order_with_reasons_and_vote_links() -> None:
    papers = golden_papers()
    who = reader(*GOLDEN_READER)
    _, text, html = parsed(personal_digest(papers).wire(who).data)
    titles = [unescape(t) for t in re.findall(r'<h2[^>]*><a href="[^"]+"[^>]*>([^<]+)</a></h2>', html)]
    assert titles == [papers[2].title, papers[0].title]  # the picks, in full, in order
    listed = [unescape(t) for t in re.findall(r'<li[^>]*><a href="[^"]+"[^>]*>([^<]+)</a>', html)]
    assert listed == [papers[3].title, papers[1].title]  # also new, the excluded one last
    picks_at, also_at = html.index("Top picks for you"), html.index("Also new: 2 more papers")
    assert picks_at < html.index('class="pp"') < html.rindex('class="pp"') < also_at < html.index("<li")
    assert "<strong>Why you see this:</strong> keywords: scaling · terms: masked models" in html
    assert "Why you see this: similar to: Progressive Temporal Feature Alignment Network" in " ".join(
        text.split()
    )
    assert " · excluded: segmentation" in html and "(excluded: segmentation)" in text
    tokens = Tokens(KEY)
    votes = [u for u in _HREF.findall(html) if "/vote?t=" in u]
    assert len(votes) == 2 * len(papers)  # more and less like this, for every paper shown
    claims = [tokens.read("vote", unescape(u).partition("?t=")[2]) for u in votes]
    shown = [papers[i].key for i in (2, 0, 3, 1)]
    assert [(c.paper_key, c.value) for c in claims] == [(k, v) for k in shown for v in (1, -1)]
    assert all(c.matches(SUB) for c in claims)
    assert all(u in text for u in map(unescape, votes))  # the text part offers them too
    page = site_url(BASE, tokens.personal_dir(SUB) + "/")
    assert f'href="{page}"' in html and f"Your page: {page}" in text


def test_without_the_pages_served_there_are_no_vote_or_page_links() -> None:
    who = reader(*GOLDEN_READER, served=False)
    shared = personal_digest(golden_papers())
    data = shared.wire(who).data
    _, text, html = parsed(data)
    assert "/vote?t=" not in html + text and "Your page" not in html + text
    assert "Why you see this:" in html
    assert render.to_bytes(shared.message(who)) == data


def test_only_top_shows_the_picks_alone_and_the_subject_counts_them() -> None:
    papers = golden_papers()
    one = reader((Choice(1, ("keywords: video",)),))
    msg, text, html = parsed(personal_digest(papers).wire(one).data)
    assert msg["Subject"] == "1 pick for you · 4 new papers · 22 Nov 2026"
    assert "Also new" not in html + text and "<li" not in html
    assert "more paper" not in html + text


def test_no_picks_says_so_in_the_subject_and_both_parts() -> None:
    """A digest where nothing scores as a pick (personal.top_picks): the subject and both
    parts say so, with or without the rest listed; the bytes are the email package's."""
    papers = golden_papers()
    for also in ((Choice(2, ()), Choice(0, ())), ()):  # the rest listed; only-top
        who = reader((), also)
        shared = personal_digest(papers)
        data = shared.wire(who).data
        msg, text, html = parsed(data)
        assert msg["Subject"] == "No picks for you · 4 new papers · 22 Nov 2026"
        assert NO_PICKS in html and NO_PICKS in " ".join(text.split())
        assert "Top picks for you" not in html + text
        assert ("Also new: 2 papers" in html and "Also new: 2 papers" in text) == bool(also)  # no "more"
        assert render.to_bytes(shared.message(who)) == data


@pytest.mark.parametrize("recipient", ["o'brien@example.org", "émile@exämple.org", "x" * 90 + "@example.org"])
def test_written_from_pieces_is_what_the_email_package_gives(recipient: str) -> None:
    shared = personal_digest(golden_papers(), replace(SETTINGS, title="Q&A <weekly> «digest»"))
    who = reader(*GOLDEN_READER, recipient=recipient)
    assert shared.wire(who).data == render.to_bytes(shared.message(who))


def many_papers(n: int) -> list[Paper]:
    words = [
        "video",
        "inpainting",
        "optical",
        "flow",
        "segmentation",
        "diffusion",
        "transformers",
        "tracking",
    ]
    out = []
    for i in range(n):
        title = f"Paper {i:03d}: {words[i % len(words)]} and {words[(i * 3) % len(words)]} at scale"
        abstract = " ".join(f"We study {words[(i + j) % len(words)]} in setting {j}." for j in range(40))
        out.append(Paper(key=f"paper {i:03d}", title=title, abstract=abstract))
    return out


@pytest.mark.parametrize("max_picks", [10, 60])
def test_the_html_part_stays_within_the_byte_budget_with_216_and_more_papers(max_picks: int) -> None:
    papers = many_papers(240)
    settings = replace(SETTINGS, max_bytes=90_000)
    order = list(range(239, -1, -1))  # the reader's order: the listing reversed
    who = reader(
        tuple(Choice(i, ("keywords: video",)) for i in order[:max_picks]),
        tuple(Choice(i) for i in order[max_picks:]),
    )
    shared = personal_digest(papers, settings)
    data = shared.wire(who).data
    assert data == render.to_bytes(shared.message(who))
    html_raw = data.split(b"Content-Type: text/html", 1)[1].split(b"\r\n\r\n", 1)[1].split(b"\r\n--=_")[0]
    assert 80_000 < len(html_raw) + 2 <= 90_000  # the part as sent: filled, never over
    msg, text, html = parsed(data)
    full = re.findall(r'<h2[^>]*><a href="[^"]+"[^>]*>([^<]+)</a></h2>', html)
    listed = re.findall(r'<li[^>]*><a href="[^"]+"[^>]*>([^<]+)</a>', html)
    rest = int(re.search(r"<strong>(\d+) more papers? on the archive page</strong>", html).group(1))  # type: ignore[union-attr]
    assert len(full) + len(listed) + rest == 240 and rest > 0
    assert listed if max_picks == 10 else len(full) < max_picks  # 60 in full do not fit
    assert [unescape(t) for t in full + listed] == [papers[i].title for i in order[: len(full) + len(listed)]]
    assert len(full) <= max_picks
    assert msg["Subject"].startswith(
        f"{len(full)} pick{'' if len(full) == 1 else 's'} for you · 240 new papers"
    )
    assert f"{rest} more papers on the archive page:\n   {BASE}digests/2026-11-22.html\n" in text.replace(
        "\r\n", "\n"
    )
    assert "/vote?t=" in html.rsplit('class="pp"' if max_picks == 60 else "<li", 1)[1]  # the last shown too


def test_the_personal_subject_allows_its_placeholders_only(make_config: MakeConfig) -> None:
    config = make_config()
    assert config.email.personal_subject == "{picks} pick{ps} for you · {count} new paper{s} · {date}"
    custom = make_config(email={"subject": "[{count}] {title}"})
    assert custom.email.personal_subject == "{picks} pick{ps} for you · [{count}] {title}"
    own = make_config(email={"personal_subject": "{picks} for you of {count} ({date})"})
    assert own.email.personal_subject == "{picks} for you of {count} ({date})"
    for bad in ("{picks.__class__}", "{reader}", "{0}"):
        with pytest.raises(ConfigError, match=r"email\.personal_subject") as err:
            make_config(email={"personal_subject": bad})
        assert "{title}, {picks} and {ps} (plural s of picks)" in str(err.value)
    with pytest.raises(ConfigError, match=r"email\.subject"):
        make_config(email={"subject": "{picks} new"})  # the shared email has no picks


# Pieces that meet every rule of the encoding: escapes, soft breaks next to an escape,
# white space at a line's end, line breaks of every kind, characters beyond Latin-1.
_qp_text = st.lists(
    st.sampled_from([*"ab =\t.·é\r\n€\x0b\x1c\x85\u2028", "x" * 30, "=" * 3, " " * 5, "\r\n", "\n\n"]),
    max_size=120,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=_qp_text)
def test_the_fast_quoted_printable_is_the_email_packages(text: str) -> None:
    assert qp.encode(text, 78) == render._qp(text)


@settings(max_examples=300, deadline=None)
@example(key="video inpainting " * 20, value=1, sub_id=42)  # compressed
@given(
    key=st.text(min_size=1, max_size=300),
    value=st.sampled_from([1, -1]),
    sub_id=st.integers(min_value=1, max_value=10**9),
)
def test_a_vote_token_is_what_itsdangerous_makes(key: str, value: int, sub_id: int) -> None:
    """The vote links are signed by a fast path (tokens._VoteSigner): what itsdangerous
    makes when it does not compress, read back by itsdangerous and Tokens.read."""
    tokens = Tokens(KEY)
    sub = replace(SUB, id=sub_id)
    made = tokens.make_vote(sub, key, value)
    payload = [sub_id, fingerprint(SUB.token), key, value]
    serializer = URLSafeSerializer(KEY, salt="paper-digest.vote")
    theirs = serializer.dumps(payload)
    assert made == theirs or theirs.startswith(".")  # itsdangerous zlib-compressed it
    assert serializer.loads(made) == payload
    claim = tokens.read("vote", made)
    assert (claim.paper_key, claim.value) == (key, value) and claim.matches(sub)
