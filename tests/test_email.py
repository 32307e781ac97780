"""The email renderer: goldens, size, wrapping, excerpts, headers, inlined CSS."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from email.message import EmailMessage
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import Config
from digest.errors import ConfigError
from digest.identity import message_id, paper_key
from digest.model import Digest, Paper, StoredPaper
from digest.parse import parse_dump
from digest.render import email as render
from digest.render.view import PaperView, digest_view, paper_view
from tests import helpers
from tests.helpers import DUMP_000, DUMP_002, NOW, MakeConfig

GOLDEN = helpers.GOLDEN / "email"
SETTINGS = helpers.EMAIL_SETTINGS
BASE = SETTINGS.base_url
INSTALL = "0123456789abcdef"  # a fixed install id: the goldens pin the Message-ID


def stored(papers: list[Paper]) -> list[StoredPaper]:
    return [StoredPaper(seq=i + 1, paper=p, first_seen=NOW, dump_name="x.txt") for i, p in enumerate(papers)]


def build(
    papers: list[Paper], settings: render.EmailSettings = SETTINGS, recipient: str = "reader@example.org"
) -> EmailMessage:
    digest = Digest(
        id=7, slug="2026-11-22", created=NOW, first_seq=1, last_seq=len(papers), paper_count=len(papers)
    )
    views = [paper_view(p, digest.slug, BASE) for p in stored(papers)]
    view = digest_view(digest, BASE, ZoneInfo("UTC"))
    return render.message(settings, view, views, recipient, message_id(7, recipient, "example.org", INSTALL))


def sample_dump_papers() -> list[Paper]:
    seen: dict[str, Paper] = {}
    for dump in (DUMP_000, DUMP_002):
        for p in parse_dump(dump.read_bytes(), dump.name).papers:
            seen.setdefault(p.key, p)
    return list(seen.values())


def golden_papers() -> list[Paper]:
    real = sample_dump_papers()
    with_code = next(p for p in real if p.links)
    hf = Paper(
        key=paper_key("W_+: Scaling [MASK] Models — with é and a very-long-hyphenated-compound-title-word"),
        title="W_+: Scaling [MASK] Models — with é and a very-long-hyphenated-compound-title-word",
        abstract="Short abstract from the Hugging Face JSON source; see https://github.com/a/b{https://github.com/a/b}.",
        links=("https://github.com/a/b",),
        arxiv_id="2411.01234",
        authors=(
            "Ada Lovelace",
            "Alan Turing",
            "Grace Hopper",
            "Edsger Dijkstra",
            "Barbara Liskov",
            "Donald Knuth",
        ),
        upvotes=42,
    )
    return [real[0], with_code, hf, real[1]]


def parts(msg: EmailMessage) -> tuple[str, str]:
    """(text, html) of a message parsed back from its bytes, as a client sees it."""
    parsed = email.message_from_bytes(render.to_bytes(msg), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/alternative"
    text_part, html_part = parsed.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert text_part.get_content_charset() == html_part.get_content_charset() == "utf-8"
    return text_part.get_content().replace("\r\n", "\n"), html_part.get_content().replace("\r\n", "\n")


def check_golden(name: str, data: bytes) -> None:
    helpers.check_golden(data, GOLDEN / name)


# The golden .eml cases: the full build and the shared per-recipient path must both match them.
GOLDEN_CASES = [
    ("default", SETTINGS),
    (
        "https-unsubscribe-max2",
        replace(
            SETTINGS,
            max_papers=2,
            abstract_chars=120,
            unsubscribe=("mailto:leave@example.org", "https://example.org/unsubscribe"),
        ),
    ),
    # A byte budget that leaves one paper in full, one by title and two counted.
    ("budget-6000", replace(SETTINGS, max_bytes=6000)),
]


@pytest.mark.parametrize(("name", "settings"), GOLDEN_CASES)
def test_rendered_email_matches_golden(name: str, settings: render.EmailSettings) -> None:
    msg = build(golden_papers(), settings)
    data = render.to_bytes(msg)
    check_golden(f"{name}.eml", data)
    text, _ = parts(msg)
    check_golden(f"{name}.txt", text.encode("utf-8"))  # readable diffs of the text part
    assert data == render.to_bytes(build(golden_papers(), settings))


def test_headers() -> None:
    msg = build(golden_papers())
    assert msg["From"] == "Paper Digest <digest@example.org>"
    assert msg["To"] == "reader@example.org"
    assert msg["Subject"] == "4 new papers · 22 Nov 2026"
    assert msg["Date"] == format_datetime(NOW)
    assert msg["Message-ID"] == message_id(7, "reader@example.org", "example.org", INSTALL)
    assert msg["List-Id"] == "Test Digest <test-digest.example.org>"
    assert msg["List-Unsubscribe"] == "<mailto:digest@example.org?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] is None
    boundary = msg.get_boundary()
    assert boundary and boundary.startswith("=_")
    other = build(golden_papers(), recipient="other@example.org")
    assert other.get_boundary() != boundary  # derived from the Message-ID


def test_one_paper_subject_is_singular_and_https_unsubscribe_allows_one_click() -> None:
    settings = replace(SETTINGS, unsubscribe=("https://example.org/u?list=1",))
    msg = build(golden_papers()[:1], settings)
    assert msg["Subject"] == "1 new paper · 22 Nov 2026"
    assert msg["List-Unsubscribe"] == "<https://example.org/u?list=1>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(msg)
    assert "Unsubscribe: https://example.org/u?list=1" in text
    assert 'href="https://example.org/u?list=1"' in html


def test_no_cr_or_lf_from_a_title_reaches_a_header() -> None:
    evil = Paper(key="evil", title="Evil\r\nBcc: victim@example.com\nX-Injected: yes", abstract="abc")
    settings = replace(SETTINGS, subject="{title} ({count})", title="Digest\r\nX-Title: injected")
    data = render.to_bytes(build([evil], settings))
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert not [line for line in head if line.startswith((b"Bcc", b"X-Injected", b"X-Title"))]
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == "Evil Bcc: victim@example.com X-Injected: yes (1)"
    assert set(parsed.keys()) == {
        "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "List-Id",
        "List-Unsubscribe", "Auto-Submitted", "Content-Type",
    }  # fmt: skip


def test_html_is_self_contained_with_inlined_css() -> None:
    """The budget, the ellipsis and the layout without @media: tests/test_email_budget.py."""
    _, html = parts(build(golden_papers()))
    assert "<img" not in html and "<link" not in html and "@import" not in html
    assert "url(" not in html and "fonts.googleapis" not in html
    assert 'style="' in html  # inlined
    # What sits in <style> is only what cannot be inlined: the @media rules (and a font
    # for Outlook, in a conditional comment).
    [style] = re.findall(r"<style>(.*?)</style>", re.sub(r"<!--\[if mso\]>.*?<!\[endif\]-->", "", html), re.S)
    assert re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", style).strip() == ""
    assert "prefers-color-scheme: dark" in style
    assert 'name="color-scheme" content="light dark"' in html
    assert "max-width:600px" in html


def test_abstract_is_cut_at_a_word_boundary_with_continue_reading() -> None:
    p = golden_papers()[0]
    msg = build([p], replace(SETTINGS, abstract_chars=100))
    text, html = parts(msg)
    view = paper_view(stored([p])[0], "2026-11-22", BASE)
    words = view.abstract.split()
    shown = next(line for line in html.splitlines() if "continue&nbsp;reading" in line)
    visible = re.sub(r"<[^>]+>", "", shown).replace("… continue&nbsp;reading", "")
    assert len(visible) <= 100
    assert view.abstract.startswith(visible)
    assert visible.split()[-1] in words  # the last word shown is whole
    assert f'… <a href="{view.url}"' in shown
    assert f"…\n\n   Continue reading: {view.url}\n" in text


segments_st = st.lists(
    st.one_of(
        st.tuples(st.text(alphabet="ab -,\n", min_size=1, max_size=30), st.none()),
        st.tuples(st.just("https://github.com/x/y"), st.just("https://github.com/x/y")),
    ),
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(segments_st, st.integers(min_value=1, max_value=120))
def test_excerpt_never_cuts_inside_a_word_or_a_link(segs: list[tuple[str, str | None]], limit: int) -> None:
    out, cut = render.excerpt(segs, limit)
    full = "".join(piece for piece, _ in segs)
    shown = "".join(piece for piece, _ in out)
    assert cut == (len(full) > limit)
    if not cut:
        assert out == tuple(segs)
        return
    assert len(shown) <= limit
    assert full.startswith(shown)
    rest = full[len(shown) :]
    # The cut falls between words: before white space, dangling punctuation or a link.
    assert shown == "" or rest[0] in " \n,-" or rest.startswith("https://")
    for piece, url in out:
        assert url is None or piece == url  # links are whole


title_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé-:[]", min_size=1, max_size=24).filter(
    lambda w: w.strip("-")
)


@settings(max_examples=100, deadline=None)
@given(st.lists(title_words, min_size=1, max_size=16))
def test_text_part_never_breaks_a_title_inside_a_word_or_at_a_hyphen(words: list[str]) -> None:
    title = " ".join(words)
    wrapped = render.text_part(
        SETTINGS,
        digest_view(Digest(1, "2026-11-22", NOW, 1, 1, 1), BASE, ZoneInfo("UTC")),
        [paper_view(stored([Paper(key=paper_key(title) or "k", title=title, abstract="x")])[0], "s", BASE)],
        "r@example.org",
    )
    block = wrapped.split("1. ", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in block.splitlines()]
    assert " ".join(lines) == title  # breaks only where the title had a space
    for line in lines:
        assert len(line) <= render.WIDTH or " " not in line


def test_authors_upvotes_arxiv_and_code_links_show_when_present() -> None:
    text, html = parts(build(golden_papers()))
    flat = " ".join(text.split())
    assert "Ada Lovelace, Alan Turing, Grace Hopper, Edsger Dijkstra and 2 others · ▲ 42 upvotes" in flat
    assert "Ada Lovelace, Alan Turing, Grace Hopper, Edsger Dijkstra and 2 others · ▲ 42 upvotes" in html
    assert "https://arxiv.org/abs/2411.01234" in html and "https://huggingface.co/papers/2411.01234" in html
    assert '<a href="https://github.com/a/b"' in html and "code: github.com/a/b" in html
    assert "{https://github.com/a/b}" not in html and "{https://github.com/a/b}" not in text
    assert "Code: https://github.com/a/b" in text


def test_footer_says_why_and_how_to_leave() -> None:
    text, html = parts(build(golden_papers()))
    for part in (text, html):
        assert "https://example.org/digest/feed.xml" in part
        flat = " ".join(part.split())
        assert "because reader@example.org is on the recipient list of Test Digest" in flat
        assert "digest@example.org" in part and "unsubscribe" in part
    # the mailto whole, its subject (with the reader's token, when there is one) filled in
    assert text.rstrip().endswith(
        "by email (keep the subject the link fills in):\nmailto:digest@example.org?subject=unsubscribe"
    )


def test_text_part_reads_well_alone() -> None:
    text, _ = parts(build(golden_papers()))
    assert text.startswith("Test Digest · 22 Nov 2026\n=========================\n")
    assert "<a " not in text and "&amp;" not in text
    prose = [line for line in text.splitlines() if "http" not in line]
    assert max(len(line) for line in prose) <= render.WIDTH


# --- config ---------------------------------------------------------------------------------


def test_email_config_keys(make_config: MakeConfig) -> None:
    config: Config = make_config(
        email={
            "transport": "smtp",
            "abstract_chars": 300,
            "max_papers": 20,
            "retry_for": "2d12h",
            "unsubscribe": ["mailto:u@example.org", "https://example.org/u"],
        },
        email__smtp={"host": "mail.example.org", "port": 465, "security": "ssl", "timeout": "20s"},
        env={"DIGEST_SMTP_PASSWORD": "s3cret"},
    )
    e = config.email
    assert (e.transport, e.abstract_chars, e.max_papers, e.retry_for) == ("smtp", 300, 20, 2.5 * 86400)
    assert e.unsubscribe == ("mailto:u@example.org", "https://example.org/u")
    assert (e.smtp.security, e.smtp.port, e.smtp.timeout, e.smtp.password) == ("ssl", 465, 20.0, "s3cret")
    defaults = make_config().email
    assert (defaults.abstract_chars, defaults.max_papers, defaults.retry_for) == (400, 50, 3 * 86400)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"unsubscribe": "http://example.org/u"},
            "'email.unsubscribe[0]': 'http://example.org/u' is neither",
        ),
        ({"unsubscribe": []}, "'email.unsubscribe': expected a URL or a list of URLs"),
        ({"retry_for": "soon"}, "'email.retry_for': 'soon' is not a duration"),
        ({"transport": "sendmail"}, "'email.transport': 'sendmail' is not one of 'file', 'smtp'"),
        ({"subject": "{count} {nope}"}, "'email.subject': bad placeholder"),
        ({"abstract_chars": 5}, "'email.abstract_chars': expected a whole number of at least 40"),
    ],
)
def test_bad_email_config_names_the_key(
    make_config: MakeConfig, table: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(email=table)
    assert message in str(err.value)


def test_a_paper_without_authors_or_upvotes_has_no_byline() -> None:
    view: PaperView = paper_view(stored([golden_papers()[0]])[0], "s", BASE)
    assert render.email_paper(view, 400).byline == ""


def prepared(papers: list[Paper], settings: render.EmailSettings = SETTINGS) -> render.Prepared:
    digest = Digest(
        id=7, slug="2026-11-22", created=NOW, first_seq=1, last_seq=len(papers), paper_count=len(papers)
    )
    views = [paper_view(p, digest.slug, BASE) for p in stored(papers)]
    return render.Prepared(settings, digest_view(digest, BASE, ZoneInfo("UTC")), views)


@pytest.mark.parametrize(("name", "settings"), GOLDEN_CASES)
def test_a_message_cut_from_the_shared_rendering_is_the_golden_byte_for_byte(
    name: str, settings: render.EmailSettings
) -> None:
    shared = prepared(golden_papers(), settings)
    assert shared.shared  # recipients get the cheap path, not a full rebuild each
    wire = shared.wire("reader@example.org", message_id(7, "reader@example.org", "example.org", INSTALL))
    assert wire.data == (GOLDEN / f"{name}.eml").read_bytes()
    for recipient in ("a@b.io", "x" * 90 + "@example.org", "émile@exämple.org", "o'brien@example.org"):
        mid = message_id(7, recipient, "example.org", INSTALL)
        wire = shared.wire(recipient, mid)
        assert wire.data == render.to_bytes(build(golden_papers(), settings, recipient)), recipient
        assert (wire.message_id, wire.envelope_from) == (mid, "digest@example.org")


recipients_st = st.one_of(
    st.emails(),
    st.builds(
        lambda local, domain: f"{local}@{domain}",
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=80),
        st.sampled_from(["example.org", "exämple.org", "a-very-long-subdomain.of.example.org"]),
    ),
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(recipient=recipients_st, title=st.sampled_from(["Test Digest", "Q&A <weekly> «digest»", "D" * 70]))
def test_every_recipient_gets_what_a_full_rebuild_gives(recipient: str, title: str) -> None:
    """Addresses with quotes, ``&``, control characters or line breaks go the full way;
    the bytes are the same either way, and a line break never reaches a header."""
    settings = replace(SETTINGS, title=title)
    papers = golden_papers()[:2]
    mid = message_id(7, recipient, "example.org", INSTALL)
    try:
        full = render.to_bytes(build(papers, settings, recipient))
    except ValueError:  # a CR or LF in the address: refused by both
        with pytest.raises(ValueError):
            prepared(papers, settings).wire(recipient, mid)
        return
    assert prepared(papers, settings).wire(recipient, mid).data == full


_atom = "[A-Za-z0-9_%+-]{1,12}(\\.[A-Za-z0-9_%+-]{1,12}){0,3}"


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    address=st.from_regex(f"{_atom}@{_atom}", fullmatch=True),
    mid=st.from_regex(f"<{_atom}@{_atom}>", fullmatch=True),
)
def test_plain_to_and_message_id_headers_are_written_as_the_email_package_writes_them(
    address: str, mid: str
) -> None:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["To"] = address
    msg["Message-ID"] = mid
    assert (
        render._header("To", address) + render._header("Message-ID", mid)
        == msg.as_bytes().split(b"\r\n\r\n")[0] + b"\r\n"
    )
