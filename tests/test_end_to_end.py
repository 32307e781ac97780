"""The README's example run, end to end, against real files."""

from __future__ import annotations

import email
import email.policy
from html import unescape
from pathlib import Path

import feedparser
import pytest

from digest.config import Config
from digest.pipeline import run_once
from digest.store import Store
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, NOW, drop

pytestmark = pytest.mark.slow  # the whole example run


def test_example_run_publishes_feed_and_emails(config: Config, store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000, DUMP_002)
    report = run_once(config, store, FileTransport(config.email.outbox), NOW)
    assert report.ingest.papers_new == 297
    assert report.digest is not None and report.digest.paper_count == 297

    parsed = feedparser.parse((config.feed.output_dir / "feed.xml").read_bytes())
    assert parsed.bozo == 0
    assert len(parsed.entries) == 297
    assert len({e.id for e in parsed.entries}) == 297

    emls = sorted(config.email.outbox.glob("*.eml"))
    assert len(emls) == 1
    msg = email.message_from_bytes(emls[0].read_bytes(), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = unescape(msg.get_body(("html",)).get_content())  # type: ignore[union-attr]
    titles = [p.title for p in store.digest_papers(report.digest)]
    assert len(titles) == 297
    # Each paper is in the email, in full or by title, up to the byte budget
    # (email.max_bytes); the rest are counted with a link to the archive page.
    flat_text = " ".join(text.split())
    shown = [t for t in titles if f">{t}</a>" in html]
    assert 50 < len(shown) < 297 and shown == titles[: len(shown)]
    for title in shown:
        assert " ".join(title.split()) in flat_text
    rest = f"{297 - len(shown)} more papers on the archive page"
    assert rest in flat_text and rest in html
