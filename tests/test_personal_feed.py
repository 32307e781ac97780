"""Each reader's own page and feeds (issue 15): written by the run beside the site under
``for/<keyed hash of their secret>/``, their papers in their order with the reasons and
vote links; feedparser and newsboat read them; a golden pins one; the folder moves
with a renewed secret and goes when its reader goes."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest
import sqlalchemy as sa

from digest.cli import main
from digest.config import Config
from digest.personal import profile_of, rank_digest, top_picks
from digest.pipeline import RunReport, run_once
from digest.store import Store
from digest.store.subscribers import Subscribers, subscribers
from digest.subscribers import Preferences, Subscriber
from digest.tokens import Tokens
from digest.transports import FileTransport
from tests.helpers import GOLDEN, NOW, MakeConfig, check_golden
from tests.newsboat import needs_newsboat, newsboat
from tests.subscribe_site import HEADER
from tests.test_feed import json_feed

KEY = "a fixed test key: signs the links of these tests only"
SECRET = "fixed-subscriber-secret-for-the-golden-feed"
READER = "reader@example.org"
FILES = ("index.html", "feed.xml", "atom.xml", "feed.json")

DUMP_1 = [
    (
        "Sparse Attention for Long Documents",
        "We make attention sparse so transformers read long documents. Code: https://github.com/x/sparse",
    ),
    (
        "Diffusion Models for Protein Design",
        "A diffusion model generates protein backbones that fold as designed.",
    ),
    ("Robot Grasping from Video <b>& Tactile</b> Signals", "A robot learns to grasp from video and touch."),
    (
        "Protein Folding with Language Models",
        "Protein language models predict how a protein chain folds into its structure.",
    ),
    ("Fast Tokenizers for Source Code", "A tokenizer for source code that is ten times faster."),
    ("Graph Networks for Weather Forecasts", "Graph neural networks forecast the weather a week ahead."),
]
DUMP_2 = [
    (
        "Weather Forecasts from Satellite Images",
        "Satellite images and a transformer forecast tomorrow's weather.",
    ),
    ("Protein Binders by Diffusion", "Diffusion designs protein binders for a chosen target."),
    ("Tokenizer-free Language Models", "Language models that read bytes instead of tokens."),
    ("Robot Arms that Fold Laundry", "A robot folds laundry after watching people."),
]


def write(inbox: Path, name: str, papers: list[tuple[str, str]]) -> None:
    body = "".join(f"\n{title}\n\n{abstract}\n" for title, abstract in papers)
    (inbox / name).write_text(HEADER + body, encoding="utf-8")


@pytest.fixture
def cfg(make_config: MakeConfig) -> Config:
    # http.listen set: the pages are served, so items carry the vote links (nothing binds it here).
    return make_config(env={"DIGEST_SECRET_KEY": KEY}, http={"listen": "127.0.0.1:8099"})


@pytest.fixture
def db(cfg: Config) -> Iterator[Store]:
    s = Store.open(cfg.state.url)
    yield s
    s.close()


def run(cfg: Config, db: Store, hours: float = 0) -> RunReport:
    return run_once(cfg, db, FileTransport(cfg.email.outbox), NOW + timedelta(hours=hours))


def reader(db: Store) -> Subscriber:
    sub = Subscribers(db).get(READER)
    assert sub is not None
    return sub


def set_secret(db: Store, sub_id: int, secret: str) -> None:
    """A fixed secret, for the golden (a subscriber's secret is otherwise random)."""
    with db.transaction() as conn:
        conn.execute(sa.update(subscribers).where(subscribers.c.id == sub_id).values(token=secret))


PREFS = Preferences(interests="protein structure and design", keywords=("diffusion",), exclude=("robot",))


def personal_state(cfg: Config, db: Store, inbox: Path) -> Path:
    """Two digests; the reader (from email.to) with interests, a keyword, an exclusion,
    a fixed secret and one vote. Returns their folder."""
    write(inbox, "a.txt", DUMP_1)
    run(cfg, db)  # the reader is made from email.to; no profile yet: no folder
    sub = reader(db)
    set_secret(db, sub.id, SECRET)
    subs = Subscribers(db)
    subs.set_preferences(sub.id, PREFS)
    subs.vote(sub.id, "fast tokenizers for source code", 1, NOW)
    write(inbox, "b.txt", DUMP_2)
    run(cfg, db, hours=24)
    return cfg.feed.output_dir / Tokens(KEY).personal_dir(reader(db))


def test_the_golden_personal_feed_and_a_rebuild_gives_the_same_bytes(
    cfg: Config,
    db: Store,
    inbox: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = personal_state(cfg, db, inbox)
    assert folder.parent.name == "for" and len(folder.name) == 32
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, ".inputs"])
    check_golden((folder / "feed.xml").read_bytes(), GOLDEN / "personal" / "feed.xml")
    before = {name: (folder / name).read_bytes() for name in FILES}
    # A run with nothing new writes nothing; `digest publish` rewrites the same bytes.
    assert run(cfg, db, hours=25).published.files == ()
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)  # as the run had it
    capsys.readouterr()
    assert main(["-c", str(cfg.path), "publish"]) == 0
    assert capsys.readouterr().out.endswith(
        "2 digest pages, 1 year page, the index and 6 feeds, and the own pages and feeds of 1 reader\n"
    )  # the reader's folder is not counted as feeds of the site
    assert {name: (folder / name).read_bytes() for name in FILES} == before
    # The path comes from the secret under the key, not from the address or the id.
    assert folder.name not in json.dumps([READER, reader(db).id])
    assert Tokens("another key").personal_dir(reader(db)) != Tokens(KEY).personal_dir(reader(db))


def test_the_feeds_parse_and_carry_the_readers_order_reasons_and_vote_links(
    cfg: Config, db: Store, inbox: Path
) -> None:
    folder = personal_state(cfg, db, inbox)
    sub = reader(db)
    newest, older = db.digests()
    expected = []
    for d in (newest, older):  # the order `digest rank` gives: each digest's top picks
        order = rank_digest(db, d, profile_of(sub.preferences, Subscribers(db).votes(sub.id)))
        expected += [p.paper.title for p in top_picks(order, sub.preferences.max_papers)[0]]
    # the papers that match nothing the reader said are no picks, in a digest of 4 or 6
    assert expected == [
        "Protein Binders by Diffusion",
        "Diffusion Models for Protein Design",
        "Fast Tokenizers for Source Code",
        "Protein Folding with Language Models",
    ]
    assert expected[:1] == ["Protein Binders by Diffusion"]

    for name in ("feed.xml", "atom.xml"):
        parsed = feedparser.parse((folder / name).read_bytes())
        assert not parsed.bozo, (name, parsed.get("bozo_exception"))
        assert [e.title for e in parsed.entries] == expected, name
        # Newest first by date too: a reader sorting by date keeps the order.
        dates = [e.published_parsed for e in parsed.entries]
        assert dates == sorted(dates, reverse=True) and len(set(dates)) == len(dates), name
        assert parsed.feed.title == "Test Digest: your picks"
        binders = parsed.entries[0]
        body = binders.content[0].value if "content" in binders else binders.summary
        assert "Why: keywords: diffusion" in body
        assert "https://example.org/digest/vote?t=" in body and "More like this" in body
    rss = feedparser.parse((folder / "feed.xml").read_bytes())
    liked = next(e for e in rss.entries if e.title == "Fast Tokenizers for Source Code")
    assert "you liked this paper" in liked.content[0].value
    data = json_feed(folder)  # every JSON Feed 1.1 rule the site's feed.json keeps
    assert [i["title"] for i in data["items"]] == expected
    dates = [i["date_published"] for i in data["items"]]
    assert dates == sorted(dates, reverse=True) and len(set(dates)) == len(dates)
    assert data["feed_url"] == f"https://example.org/digest/{folder.parent.name}/{folder.name}/feed.json"
    first = data["items"][0]["_paper_digest"]
    assert first["reasons"][0] == "keywords: diffusion" and first["more_like_this"].startswith("https://")
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert '<meta name="robots" content="noindex, nofollow">' in page
    assert page.index("Protein Binders by Diffusion") < page.index("Diffusion Models for Protein Design")
    assert "Robot " not in page and "Tokenizer-free" not in page and page.count(">More like this</a>") == 4
    assert f'href="../../for/{folder.name}/feed.xml"' in page


def test_a_feed_carries_each_digests_top_picks_only(cfg: Config, db: Store, inbox: Path) -> None:
    folder = personal_state(cfg, db, inbox)
    Subscribers(db).set_preferences(reader(db).id, replace(PREFS, max_papers=2))
    assert folder / "feed.xml" in run(cfg, db, hours=26).published.files  # a preference changed
    titles = [e.title for e in feedparser.parse((folder / "atom.xml").read_bytes()).entries]
    assert titles == [
        "Protein Binders by Diffusion",  # the newest digest's one pick
        "Diffusion Models for Protein Design",
        "Fast Tokenizers for Source Code",  # liked: above the paper only the interests match
    ]
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert ": 1 paper of 4</h2>" in page and ": 2 papers of 6</h2>" in page


def test_two_digests_of_one_day_are_headed_as_the_archive_labels_them(
    cfg: Config, db: Store, inbox: Path
) -> None:
    write(inbox, "a.txt", DUMP_1)
    run(cfg, db)
    Subscribers(db).set_preferences(reader(db).id, PREFS)
    write(inbox, "b.txt", DUMP_2)
    run(cfg, db, hours=1)  # the same day: its second digest
    second, first = db.digests()
    assert (first.slug, second.slug) == ("2026-11-22", "2026-11-22-2")
    page = (cfg.feed.output_dir / Tokens(KEY).personal_dir(reader(db)) / "index.html").read_text("utf-8")
    time = '<time datetime="2026-11-22">22 Nov 2026</time>'
    headings = re.findall(r"<h2 id=\"d-([^\"]+)\"><a [^>]+>(.*?)</a>: ", page)
    assert headings == [("2026-11-22-2", f"Digest of {time} (#2)"), ("2026-11-22", f"Digest of {time}")]
    index = (cfg.feed.output_dir / "index.html").read_text("utf-8")
    assert f"{time} (#2)</a>" in index and f'"digests/2026-11-22-2.html">{time} (#2)' in index


def test_titles_and_reasons_are_escaped_everywhere(make_config: MakeConfig, inbox: Path) -> None:
    cfg = make_config(env={"DIGEST_SECRET_KEY": KEY})  # not served: no vote links
    db = Store.open(cfg.state.url)
    try:
        write(inbox, "a.txt", DUMP_1)
        run(cfg, db)
        Subscribers(db).set_preferences(reader(db).id, Preferences(keywords=("<b>& tactile</b>", "grasp")))
        run(cfg, db, hours=1)
        folder = cfg.feed.output_dir / Tokens(KEY).personal_dir(reader(db))
        page = (folder / "index.html").read_text(encoding="utf-8")
        assert "Robot Grasping from Video &lt;b&gt;&amp; Tactile&lt;/b&gt; Signals" in page
        assert "<b>" not in page and "vote?t=" not in page
        rss = feedparser.parse((folder / "feed.xml").read_bytes())
        assert rss.entries[0].title == "Robot Grasping from Video <b>& Tactile</b> Signals"
        why = rss.entries[0].content[0].value
        assert "Why: keywords:" in why and "grasp" in why
        assert "More like this" not in (folder / "feed.xml").read_text(encoding="utf-8")
    finally:
        db.close()


def test_who_has_a_folder_and_renewing_the_secret_moves_it(cfg: Config, db: Store, inbox: Path) -> None:
    write(inbox, "a.txt", DUMP_1)
    run(cfg, db)
    subs = Subscribers(db)
    other = subs.add("other@example.org", NOW, status="active", source="cli")
    run(cfg, db, hours=1)
    root = cfg.feed.output_dir / "for"
    assert not root.exists()  # nobody has a profile yet: no folder

    subs.vote(reader(db).id, "protein folding with language models", 1, NOW)  # a vote is a profile
    subs.set_preferences(other.id, Preferences(interests="weather"))
    run(cfg, db, hours=2)
    tokens = Tokens(KEY)
    old = cfg.feed.output_dir / tokens.personal_dir(reader(db))
    theirs = cfg.feed.output_dir / tokens.personal_dir(other)
    assert sorted(p.name for p in root.iterdir()) == sorted([old.name, theirs.name])

    subs.new_token(reader(db).id)  # renewed: every old link revoked, the folder moves
    run(cfg, db, hours=3)
    new = cfg.feed.output_dir / tokens.personal_dir(reader(db))
    assert new != old and (new / "feed.xml").is_file() and not old.exists()
    assert sorted(p.name for p in root.iterdir()) == sorted([new.name, theirs.name])

    subs.set_status(other.id, "unsubscribed", NOW)
    run(cfg, db, hours=4)
    assert not theirs.exists()
    assert subs.remove(READER, NOW)
    run(cfg, db, hours=5)
    assert list(root.iterdir()) == []


def test_a_run_killed_while_moving_a_folder_leaves_nothing_half_served(
    cfg: Config, db: Store, inbox: Path
) -> None:
    """An interrupted removal leaves a hidden ``.gone-`` folder, cleared by the next run;
    a folder whose ``.inputs`` is missing (killed while writing it) is written again."""
    folder = personal_state(cfg, db, inbox)
    (folder / ".inputs").unlink()
    (folder / "feed.xml").write_bytes(b"half")
    gone = folder.parent / (".gone-" + "0" * 32)
    shutil.copytree(folder, gone)
    report = run(cfg, db, hours=30)
    assert folder / "feed.xml" in report.published.files
    assert (folder / "feed.xml").read_bytes().startswith(b"<?xml") and not gone.exists()


@needs_newsboat
def test_newsboat_reads_the_personal_feeds_over_http(
    cfg: Config,
    db: Store,
    inbox: Path,
    tmp_path: Path,
    http_site: str,
) -> None:
    folder = personal_state(cfg, db, inbox)
    rel = folder.relative_to(cfg.feed.output_dir).as_posix()
    for name in ("feed.xml", "atom.xml"):
        unread, titles = newsboat(tmp_path / f"nb-{name}", f"{http_site}{rel}/{name}")
        assert unread == 4 and len(set(titles)) == 4, name
        assert "Protein Binders by Diffusion" in titles and not any("Robot" in t for t in titles)


def test_ranking_many_readers_at_once_gives_each_the_order_digest_rank_gives_them(
    cfg: Config, db: Store, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One fit per digest serves every reader: the corpus is the newest papers plus every
    paper anyone voted on, whoever asks, so each reader's order among many is the order
    ``digest rank`` gives them alone."""
    from functools import partial

    from digest.personal import DigestRanking
    from digest.store import rank as store_rank

    write(inbox, "a.txt", DUMP_1)
    run(cfg, db)
    write(inbox, "b.txt", DUMP_2)
    run(cfg, db, hours=24)
    # A corpus of the 3 newest papers: the first digest's papers are older than it.
    monkeypatch.setattr(store_rank, "corpus", partial(store_rank.corpus, limit=3))
    newest = db.digests()[0]
    subs = Subscribers(db)
    votes = [
        [("fast tokenizers for source code", 1)],
        [],
        [("diffusion models for protein design", 1), ("graph networks for weather forecasts", -1)],
        [],
        [("tokenizer free language models", 1)],  # inside the corpus
    ]
    prefs = [Preferences(), Preferences(interests="weather forecasts"), Preferences(), Preferences()]
    prefs.append(Preferences(interests="weather forecasts"))
    profiles = []
    for n, (pref, cast) in enumerate(zip(prefs, votes, strict=True)):
        sub = subs.add(f"r{n}@example.org", NOW, status="active", source="cli", prefs=pref)
        for key, value in cast:
            subs.vote(sub.id, key, value, NOW)
        profiles.append(profile_of(pref, subs.votes(sub.id)))
    ranking = DigestRanking(db, newest)
    together = ranking.rank(profiles)
    for profile, picks in zip(profiles, together, strict=True):
        alone = rank_digest(db, newest, profile)
        assert [(p.paper.key, p.ranked.score, p.ranked.reasons) for p in picks] == [
            (p.paper.key, p.ranked.score, p.ranked.reasons) for p in alone
        ]
    reasons = [r for p in together[0] for r in p.ranked.reasons]
    assert "similar to: Fast Tokenizers for Source Code" in reasons  # the older like counts
    assert len(ranking.ranker().corpus) == 3 + 3  # the newest papers and the older ones voted on


def test_digest_rank_the_email_and_the_feed_give_a_reader_one_order(
    cfg: Config, db: Store, inbox: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15, one model: a reader whose like is older than the newest papers the ranker
    is fitted on gets one order from ``digest rank --json``, in their email's top picks
    and in their personal feed (no vote cast since the digest)."""
    import email
    import email.policy
    import re
    from functools import partial
    from html import unescape

    from digest.store import rank as store_rank

    # A corpus of the 3 newest papers: the liked paper of the first digest is older.
    monkeypatch.setattr(store_rank, "corpus", partial(store_rank.corpus, limit=3))
    write(inbox, "a.txt", DUMP_1)
    run(cfg, db)
    subs = Subscribers(db)
    subs.set_preferences(reader(db).id, PREFS)
    subs.vote(reader(db).id, "robot grasping from video tactile signals", -1, NOW)
    subs.vote(reader(db).id, "fast tokenizers for source code", 1, NOW)
    other = subs.add("other@example.org", NOW, status="active", source="cli")
    subs.vote(other.id, "graph networks for weather forecasts", 1, NOW)  # in the corpus for all
    write(inbox, "b.txt", DUMP_2)
    report = run(cfg, db, hours=24)
    assert report.digest is not None

    orders = []
    for extra in ([], ["--as-emailed"]):
        assert main(["-c", str(cfg.path), "rank", READER, "--json", *extra]) == 0
        ranked = json.loads(capsys.readouterr().out)
        orders.append([p["title"] for p in ranked if not p["excluded"]])
    assert orders[0] == orders[1] and len(orders[0]) == 3  # Robot Arms: excluded
    assert any("similar to: Fast Tokenizers for Source Code" in p["reasons"] for p in ranked)

    (eml,) = [
        p
        for p in cfg.email.outbox.rglob("*.eml")
        if f"To: {READER}" in p.read_text("utf-8") and "picks for you" in p.read_text("utf-8")
    ]  # digest 1 came as the shared email (no profile yet)
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    html = unescape(str(msg.get_body(("html",)).get_content()))  # type: ignore[union-attr]
    assert "Top picks for you" in html
    picks = re.findall(r'<h2[^>]*><a href="[^"]+"[^>]*>([^<]+)</a></h2>', html)

    folder = cfg.feed.output_dir / Tokens(KEY).personal_dir(reader(db))
    entries = [e.title for e in feedparser.parse((folder / "feed.xml").read_bytes()).entries]
    assert picks and picks == orders[0][: len(picks)] == entries[: len(picks)]


def test_folders_written_together_mark_none_complete_when_one_file_fails(tmp_path: Path) -> None:
    """write_folders puts a folder's last file (``.inputs``) in place only once every
    folder's other files are: a failure leaves no folder marked complete, and no temp file."""
    from digest.atomic import write_folders

    a, b = tmp_path / "a", tmp_path / "b"
    (a / "feed.xml").mkdir(parents=True)  # a folder where a file goes: its rename fails
    files = [("index.html", b"<html>"), ("feed.xml", b"<rss/>"), (".inputs", b"0" * 64)]
    with pytest.raises(OSError):
        write_folders([(a, files), (b, files)])
    assert not (a / ".inputs").exists() and not (b / ".inputs").exists()
    assert not list(tmp_path.rglob("*.tmp"))
    shutil.rmtree(a / "feed.xml")
    write_folders([(a, files), (b, files)])
    for folder in (a, b):
        assert sorted(p.name for p in folder.iterdir()) == sorted(n for n, _ in files)
        assert (folder / ".inputs").read_bytes() == b"0" * 64


def test_a_vote_that_widens_the_corpus_rewrites_every_folder_as_publish_would(
    cfg: Config, db: Store, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The corpus is everyone's: another reader's vote on a paper older than it changes
    it, so the reader's folder is rewritten, with the bytes ``digest publish`` writes; a
    vote on a paper already in it, or newer than the digest, changes nobody else's folder."""
    from functools import partial

    from digest.store import rank as store_rank

    monkeypatch.setattr(store_rank, "corpus", partial(store_rank.corpus, limit=3))
    folder = personal_state(cfg, db, inbox)
    other = Subscribers(db).add("other@example.org", NOW, status="active", source="cli")
    Subscribers(db).vote(other.id, "fast tokenizers for source code", -1, NOW)  # in both corpora
    written = run(cfg, db, hours=25).published.files
    assert folder / "feed.xml" not in written and written  # only the other's new folder
    # Newer than the first digest: its corpus, and the reader's order in it, stay as they were.
    Subscribers(db).vote(other.id, "robot arms that fold laundry", 1, NOW)
    written = run(cfg, db, hours=25.5).published.files
    assert folder / "feed.xml" not in written and written  # only the other's folder
    Subscribers(db).vote(other.id, "graph networks for weather forecasts", 1, NOW)  # older
    assert folder / "feed.xml" in run(cfg, db, hours=26).published.files
    before = {name: (folder / name).read_bytes() for name in FILES}
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    assert main(["-c", str(cfg.path), "publish"]) == 0
    assert {name: (folder / name).read_bytes() for name in FILES} == before
