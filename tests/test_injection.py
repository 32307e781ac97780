"""Injection: titles and abstracts full of markup, template syntax, CDATA ends, header-like
text and very long words are shown as text in every output, and add no header.

Checked by parsing each output (XML, JSON, HTML, MIME), not by comparing bytes, so the
test holds whatever the templates look like.
"""

from __future__ import annotations

import email
import email.policy
import json
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import pytest

from digest.cli import main
from tests.helpers import write_toml

HEADER = "new\nSubscribe\nDaily Papers\nAug 8\n"
LONG_WORD = "Supercalifragilistic" * 10  # 200 characters, one word
TITLES = [
    # First: the subject template quotes the first paper's title.
    "Results Bcc: x@y\u2028Bcc: z@y\x85Cc: q@y\x0bTo: w@y",
    "<script>alert(1)</script> Attention Is All You Need",
    "</title><h1>Injected</h1> Heading",
    "]]> CDATA Breakout <![CDATA[ inside",
    "{{ 7*7 }} Templates {% raw %} Leak {count} {title!r} {0}",
    f"A {LONG_WORD} Title",
    "Quotes \"double\" & 'single' &amp; &lt;b&gt;",
]
# As every output shows them: the parser turns control characters (the vertical tab) into
# spaces, since XML cannot carry them and a reader sees white space.
SHOWN = [t.replace("\x0b", " ") for t in TITLES]


def abstract(i: int) -> str:
    return (
        f"Paper {i}: <script>alert('a')</script> then </title> then ]]> then {{{{ 7*7 }}}} then "
        "{% raw %} then {% endraw %} then Bcc: x@y then <img src=x onerror=alert(2)> "
        + "plain words " * 30
        + "x" * 3000
    )


def norm(text: str) -> str:
    return " ".join(text.split())


class Html(HTMLParser):
    """The tags and the visible text of an HTML document or fragment."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.chunks: list[str] = []
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return norm("".join(self.chunks))


def assert_safe_html(source: str, *, texts: list[str]) -> Html:
    doc = Html(source)
    assert "script" not in doc.tags and "img" not in doc.tags
    assert not [name for name, _ in doc.attrs if name.startswith("on")]
    for t in texts:
        assert norm(t) in doc.text, t[:60]
    return doc


@pytest.fixture
def published(tmp_path: Path, inbox: Path) -> Path:
    (inbox / "hostile.txt").write_text(
        HEADER + "".join(f"{t}\n\n{abstract(i)}\n\n" for i, t in enumerate(TITLES)), encoding="utf-8"
    )
    config = write_toml(
        tmp_path / "digest.toml",
        {
            "digest": {"base_url": "https://example.org/d/"},
            "sources": {"inbox": str(inbox)},
            "feed": {"output_dir": "site"},
            "email": {
                "outbox": "outbox",
                "to": ["reader@example.org"],
                "subject": "{count} papers: {title}",
            },
        },
    )
    assert main(["-c", str(config), "run"]) == 0
    return tmp_path


def test_the_dump_parses_to_the_hostile_titles(published: Path) -> None:
    feed = ElementTree.parse(published / "site" / "feed.xml")
    assert sorted(el.text or "" for el in feed.iterfind("./channel/item/title")) == sorted(SHOWN)


def test_rss_shows_markup_as_text(published: Path) -> None:
    data = (published / "site" / "feed.xml").read_bytes()
    assert feedparser.parse(data).bozo == 0
    items = ElementTree.fromstring(data).findall("./channel/item")
    assert len(items) == len(SHOWN)
    for item in items:
        title = item.findtext("title") or ""
        i = SHOWN.index(title)
        # The description is HTML carried as text: its visible text is the abstract.
        assert_safe_html(item.findtext("description") or "", texts=[abstract(i)])
        for child in item:
            if child.tag.endswith("encoded"):
                assert_safe_html(child.text or "", texts=[abstract(i)])


def test_atom_shows_markup_as_text(published: Path) -> None:
    path = published / "site" / "atom.xml"
    if not path.exists():
        pytest.skip("no Atom feed on this branch")
    data = path.read_bytes()
    assert feedparser.parse(data).bozo == 0
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = ElementTree.fromstring(data).findall("a:entry", ns)
    assert len(entries) == len(SHOWN)
    for entry in entries:
        title_el = entry.find("a:title", ns)
        assert title_el is not None
        title = title_el.text or ""
        if title_el.get("type") in ("html", "xhtml"):
            title = Html(title).text
        assert title in SHOWN
        for field in ("a:summary", "a:content"):
            el = entry.find(field, ns)
            if el is not None:
                body = el.text or ""
                if el.get("type") == "html":
                    assert_safe_html(body, texts=[abstract(SHOWN.index(title))])
                else:
                    assert norm(abstract(SHOWN.index(title))) in norm(body)


def test_json_feed_shows_markup_as_text(published: Path) -> None:
    path = published / "site" / "feed.json"
    if not path.exists():
        pytest.skip("no JSON Feed on this branch")
    doc = json.loads(path.read_text(encoding="utf-8"))  # feedparser 6 does not read JSON Feed
    assert doc["version"] == "https://jsonfeed.org/version/1.1" and isinstance(doc["title"], str)
    assert all(isinstance(item["id"], str) and item["id"] for item in doc["items"])
    assert sorted(item["title"] for item in doc["items"]) == sorted(SHOWN)
    for item in doc["items"]:
        i = SHOWN.index(item["title"])
        if "content_html" in item:
            assert_safe_html(item["content_html"], texts=[abstract(i)])
        if "content_text" in item:
            assert norm(abstract(i)) in norm(item["content_text"])


def test_archive_pages_show_markup_as_text(published: Path) -> None:
    [page] = (published / "site" / "digests").glob("*.html")
    doc = assert_safe_html(
        page.read_text(encoding="utf-8"), texts=SHOWN + [abstract(i) for i in range(len(SHOWN))]
    )
    assert doc.tags.count("title") == 1 and doc.tags.count("h1") == 1  # no injected element
    assert "49" not in doc.text  # {{ 7*7 }} was not evaluated
    index = assert_safe_html((published / "site" / "index.html").read_text(encoding="utf-8"), texts=[])
    assert index.tags.count("title") == 1


def _message(published: Path) -> tuple[bytes, EmailMessage]:
    [eml] = (published / "outbox").rglob("*.eml")
    raw = eml.read_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return raw, msg


def test_email_headers_gain_nothing_from_a_title(published: Path) -> None:
    raw, msg = _message(published)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")  # headers are 7-bit on the wire
    names = [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line and not line[0].isspace()]
    assert "bcc" not in names and "cc" not in names
    assert names.count("to") == 1 and names.count("subject") == 1
    assert msg.get_all("To") == ["reader@example.org"]
    # The title arrives in the subject as one line of text, control and line-separator
    # characters folded to spaces, and the template is not applied twice.
    assert str(msg["Subject"]) == f"{len(SHOWN)} papers: " + norm(SHOWN[0])
    assert msg.defects == [] and all(not part.defects for part in msg.walk())


def test_email_bodies_show_markup_as_text(published: Path) -> None:
    _, msg = _message(published)
    html_part = msg.get_body(("html",))
    text_part = msg.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html = html_part.get_content()
    text = norm(text_part.get_content())
    starts = [abstract(i)[:120] for i in range(len(SHOWN))]  # an email may show an excerpt
    doc = assert_safe_html(html, texts=[norm(t) for t in SHOWN] + starts)
    assert "49" not in doc.text
    for t in SHOWN + starts:
        assert norm(t) in text, t[:60]
    assert "{{ 7*7 }}" in text and "{% raw %}" in text


def test_control_characters_from_a_json_dump_do_not_stop_publishing(tmp_path: Path, inbox: Path) -> None:
    """A JSON dump skips the text parser's cleaning: the view drops what XML cannot carry,
    or lxml would refuse the feed on this run and every later one."""
    item = {
        "paper": {
            "id": "2308.01234",
            "title": "Vertical\u000bTab \u0001Title",
            "summary": "An abstract with a form feed \u000c and a noncharacter \ufffe in it.",
            "authors": [{"name": "A\u0007nn"}],
        },
        "publishedAt": "2023-08-08T10:00:00.000Z",
    }
    (inbox / "daily.json").write_text(json.dumps([item]), encoding="utf-8")
    config = write_toml(
        tmp_path / "digest.toml",
        {
            "sources": {"inbox": str(inbox), "pattern": "*.json"},
            "feed": {"output_dir": "site"},
            "email": {"to": []},
        },
    )
    assert main(["-c", str(config), "run"]) == 0
    for name in ("feed.xml", "atom.xml"):
        path = tmp_path / "site" / name
        if path.exists():
            parsed = feedparser.parse(path.read_bytes())
            assert parsed.bozo == 0 and [norm(e.title) for e in parsed.entries] == ["Vertical Tab Title"]
