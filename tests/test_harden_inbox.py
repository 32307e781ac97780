"""Hostile inbox names and contents (issue 18): a name that is not UTF-8 or that holds
CR, LF or ESC, a dump of HTML markup, invisible characters in titles."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from digest.cli import main
from tests.helpers import write_toml
from tests.test_hostile import GOOD, spaced

SMALL = "new\n\nDaily Papers\n\nNov 3\n\nT\n\nAbstract long enough.\n"


@pytest.fixture
def config_file(tmp_path: Path, inbox: Path) -> Path:
    return write_toml(tmp_path / "digest.toml", {"sources": {"inbox": str(inbox)}, "email": {"to": []}})


def status_json(config_file: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["-c", str(config_file), "status", "--json"]) == 0
    status: dict[str, Any] = json.loads(capsys.readouterr().out)
    return status


def test_printable_name_escapes_bytes_that_are_not_utf8_and_controls() -> None:
    from digest.names import printable_name

    assert printable_name("plain café.txt") == "plain café.txt"
    assert printable_name(os.fsdecode(b"caf\xe9.txt")) == "caf\\xe9.txt"
    assert printable_name("a\r\nb\x1b[31mc\u2028.txt") == "a\\r\\nb\\e[31mc\\u2028.txt"
    assert printable_name("nbsp\u00a0ok.txt") == "nbsp\u00a0ok.txt"
    for name in ("caf\udce9.txt", "x\n\x00\x7f\u200b"):
        escaped = printable_name(name)
        escaped.encode("utf-8")  # storable
        assert escaped.isprintable()


def test_a_name_that_is_not_utf8_is_ingested_under_its_escaped_name_and_stops_nothing(
    inbox: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (inbox / "good.txt").write_text(GOOD, encoding="utf-8")
    with open(os.path.join(os.fsencode(inbox), b"caf\xe9.txt"), "wb") as fh:
        fh.write(SMALL.encode())
    # Also one that fails to parse: its failure must be recordable too.
    with open(os.path.join(os.fsencode(inbox), b"bad\xff.txt"), "wb") as fh:
        fh.write(b"")
    assert main(["-c", str(config_file), "run", "--no-send"]) == 0
    status = status_json(config_file, capsys)
    assert status["dumps"] == {"ingested": 2, "failed": 1}
    assert status["papers"] == 3
    assert [f["name"] for f in status["failed_dumps"]] == ["bad\\xff.txt"]
    assert status["failed_dumps"][0]["error"].startswith("bad\\xff.txt: ")
    # The stat cache knows the escaped name: the next run opens nothing again.
    assert main(["-c", str(config_file), "run", "--no-send"]) == 0
    assert status_json(config_file, capsys)["dumps"] == {"ingested": 2, "failed": 1}


def test_cr_lf_and_esc_in_a_file_name_are_escaped_in_logs_and_status(
    inbox: Path, config_file: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    (inbox / "evil\r\nERROR forged line\x1b[2J.txt").write_text(spaced("Evil Named Paper"), encoding="utf-8")
    (inbox / "empty\n.txt").write_bytes(b"")
    with caplog.at_level(logging.INFO):
        assert main(["-c", str(config_file), "run", "--no-send"]) == 0
    for record in caplog.records:
        message = record.getMessage()
        assert "\r" not in message and "\n" not in message and "\x1b" not in message, message
    assert any("evil\\r\\nERROR forged line\\e[2J.txt" in r.getMessage() for r in caplog.records)
    capsys.readouterr()
    assert main(["-c", str(config_file), "status"]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\r" not in text
    assert "failed dump empty\\n.txt: empty\\n.txt: empty file" in text


# --- item 2: a JSON list is read in time linear in its size -------------------------------


@pytest.mark.slow
def test_a_large_json_list_parses_in_linear_time(tmp_path: Path) -> None:
    """100k tiny items: quadratic line counting took minutes (40k items 52 s); linear is
    a second or two. The bound leaves room for a loaded machine."""
    import time

    from bench.json_scale import write_json_dump
    from digest.parse import DumpParser

    path = tmp_path / "big.json"
    write_json_dump(path, 100_000)
    parser = DumpParser("big.json")
    started = time.perf_counter()
    papers = list(parser.papers([path.read_bytes()]))
    elapsed = time.perf_counter() - started
    assert len(papers) == 100_000
    assert (papers[0].line, papers[-1].line) == (2, 100_001)  # line numbers still right
    assert elapsed < 20, f"{elapsed:.1f}s for 100k items"


def _ingest_cpu_seconds(folder: Path, kind: str, n: int) -> float:
    """CPU seconds of ``ingest_inbox`` (and closing the state) over one dump of ``n``
    papers, on a new SQLite state. CPU time, not wall time: it moves far less with the
    load of a shared machine."""
    import time

    from bench.json_scale import write_json_dump, write_text_dump
    from digest.config import load_config
    from digest.ingest import ingest_inbox
    from digest.store import Store
    from tests.helpers import NOW

    (folder / "inbox").mkdir(parents=True)
    write = write_json_dump if kind == "json" else write_text_dump
    write(folder / "inbox" / "papers.txt", n)
    config = load_config(
        write_toml(folder / "digest.toml", {"sources": {"inbox": "inbox"}, "email": {"to": []}}), {}
    )
    store = Store.open(config.state.url)
    started = time.process_time()
    try:
        report = ingest_inbox(config, store, NOW)
    finally:
        store.close()
    elapsed = time.process_time() - started
    assert (report.ingested, report.papers_new) == (1, n)
    return elapsed


@pytest.mark.slow  # scale: ingests 10k and 40k papers of each kind
@pytest.mark.parametrize("kind", ["json", "text"])
def test_the_whole_ingest_of_a_dump_takes_time_linear_in_its_size(tmp_path: Path, kind: str) -> None:
    """Parse, dedup, identity, insert and commit of one dump of n and of 4n papers: the
    time per paper may not grow by half (quadratic work makes it 4x; the line counting of
    a JSON list once made 40k items take 52 s). The bench row json-scale does the same at
    10k, 100k and 1M papers."""
    n = 10_000
    small = _ingest_cpu_seconds(tmp_path / "small", kind, n)
    large = _ingest_cpu_seconds(tmp_path / "large", kind, 4 * n)
    growth = (large / (4 * n)) / (small / n)
    assert growth < 1.5, (
        f"{kind}: {small:.2f}s for {n:,} papers, {large:.2f}s for {4 * n:,} (x{growth:.2f} per paper)"
    )


# --- item 4: a dump of HTML markup is refused ---------------------------------------------

HTML_PAGE = (
    "<!DOCTYPE html>\n<html>\n<head>\n<title>Daily Papers</title>\n</head>\n<body>\n"
    "<h1>Something went wrong</h1>\n<p>Please try again later, we are sorry for this.</p>\n</body>\n</html>\n"
)


@pytest.mark.parametrize(
    ("page", "line", "shown"),
    [
        (HTML_PAGE, 1, "<!DOCTYPE html>"),
        ("new\nSubscribe\nDaily Papers\n<head>\n<h1>\nAbstract text\n", 4, "<head>"),
        (spaced("A Real Paper") + "</body>\n\n<p>a long enough paragraph here</p>\n", 11, "</body>"),
    ],
    ids=["doctype", "tags-after-furniture", "tags-after-a-paper"],
)
def test_a_dump_of_html_markup_is_refused_with_a_clear_reason(
    page: str, line: int, shown: str, inbox: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (inbox / "good.txt").write_text(GOOD, encoding="utf-8")
    (inbox / "page.txt").write_text(page, encoding="utf-8")
    assert main(["-c", str(config_file), "run", "--no-send"]) == 0
    status = status_json(config_file, capsys)
    assert status["papers"] == 2  # only the good dump's
    [failure] = status["failed_dumps"]
    assert failure["error"] == (
        f"page.txt:{line}: HTML markup ({shown!r}), not the text of a listing page; "
        "save the page as text (or copy its text into a .txt file)"
    )


def test_titles_that_merely_contain_angle_brackets_still_parse() -> None:
    from digest.parse import parse_dump

    titles = ["<think> Tokens Make Models Reason", "[MASK] and <unk> Are Enough", "x < y > z Revisited"]
    parsed = parse_dump(spaced(*titles).encode(), "t.txt")
    assert [p.title for p in parsed.papers] == titles


# --- item 7: invisible characters do not make a second paper ------------------------------


def test_format_chars_list_matches_unicode() -> None:
    import sys
    import unicodedata

    from digest.identity import _DROP_FORMAT

    assert all(unicodedata.category(chr(c)) == "Cf" for c in _DROP_FORMAT)
    if unicodedata.unidata_version == "14.0.0":
        assert set(_DROP_FORMAT) == {
            c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"
        }


@pytest.mark.parametrize("invisible", ["\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"])
def test_a_title_with_an_invisible_character_is_the_same_paper(invisible: str) -> None:
    from digest.identity import paper_key

    assert paper_key(f"Atten{invisible}tion Is All You Need") == paper_key("Attention Is All You Need")
    assert paper_key(f"{invisible}Caf\u00e9{invisible}") == "caf\u00e9"


def _old_key(title: str) -> str:
    """paper_key as it was before schema version 6: format characters became spaces."""
    import re
    import unicodedata

    if title.isascii():
        return " ".join(re.sub(r"[\W_]+", " ", title.lower()).split())
    return re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", title).casefold()).strip()


def _downgrade_to_v5(db: Path, old_keys: dict[str, str]) -> None:
    """Turns a fresh state into what version 5 stored: old keys, no guid_key column."""
    import sqlite3

    conn = sqlite3.connect(db)
    with conn:
        for title, key in old_keys.items():
            conn.execute("UPDATE papers SET key = ? WHERE title = ?", (key, title))
        conn.execute("ALTER TABLE papers DROP COLUMN guid_key")
        conn.execute("UPDATE schema_version SET version = 5")
    conn.close()


def test_migration_rekeys_stored_papers_and_keeps_published_guids_and_anchors(
    tmp_path: Path, inbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from digest.identity import paper_anchor, paper_guid, paper_key

    config = write_toml(
        tmp_path / "digest.toml",
        {"sources": {"inbox": str(inbox)}, "email": {"to": []}, "feed": {"output_dir": "site"}},
    )
    soft = "Atten\u00adtion Is All You Need"
    both_plain = "Zero\u200bShot Reasoners"  # stored twice under v5: with and without the ZWSP
    (inbox / "a.txt").write_text(spaced(soft, both_plain), encoding="utf-8")
    (inbox / "b.txt").write_text(spaced("ZeroShot Reasoners"), encoding="utf-8")
    assert main(["-c", str(config), "run", "--no-send"]) == 0
    db = tmp_path / "var" / "digest.db"
    # Under v5, the ZWSP title and the plain one were two papers.
    import sqlite3

    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM papers").fetchone()[0] == 2  # v6 already merges them
    with conn:  # so make the v5 state by hand: the ZWSP one as its own paper
        conn.execute(
            "INSERT INTO papers (key, title, abstract, links, authors, first_seen, dump_id) "
            "SELECT ?, ?, abstract, links, authors, first_seen, dump_id FROM papers WHERE title = ?",
            (_old_key(both_plain), both_plain, soft),
        )
        conn.execute("UPDATE digests SET last_seq = (SELECT max(seq) FROM papers), paper_count = 3")
    conn.close()
    _downgrade_to_v5(db, {soft: _old_key(soft)})
    old_soft, old_zw = _old_key(soft), _old_key(both_plain)
    assert old_soft != paper_key(soft) and old_zw != paper_key(both_plain)
    assert main(["-c", str(config), "publish"]) == 0  # migrates, then rebuilds the site
    site = tmp_path / "site"
    feed = (site / "feed.xml").read_text(encoding="utf-8")
    page = next((site / "digests").glob("*.html")).read_text(encoding="utf-8")
    index = (site / "index.html").read_text(encoding="utf-8")
    digest_feed = (site / "digests.xml").read_text(encoding="utf-8")
    for old in (old_soft, old_zw, paper_key("ZeroShot Reasoners")):
        assert paper_guid(old) in feed
        assert f'id="{paper_anchor(old)}"' in page
        assert f"#{paper_anchor(old)}" in feed
        # The index and the digest feed link each first title to that same anchor.
        assert f"#{paper_anchor(old)}" in index
        assert f"#{paper_anchor(old)}" in digest_feed
    conn = sqlite3.connect(db)
    rows = dict(conn.execute("SELECT title, key FROM papers").fetchall())
    guid_keys = dict(conn.execute("SELECT title, guid_key FROM papers").fetchall())
    conn.close()
    assert rows[soft] == paper_key(soft) and guid_keys[soft] == old_soft  # rekeyed, old key kept
    assert rows[both_plain] == old_zw and guid_keys[both_plain] is None  # new key taken: left alone
    # The same titles with or without invisible characters are not new again.
    (inbox / "c.txt").write_text(
        spaced("Attention Is All You Need", "Zero\u2060Shot Reasoners"), encoding="utf-8"
    )
    assert main(["-c", str(config), "run", "--no-send"]) == 0
    status = status_json(config, capsys)
    assert status["papers"] == 3
