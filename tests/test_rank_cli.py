"""``digest rank`` on a real state: the history dump digested first, then the judged one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from digest.cli import main
from digest.identity import paper_guid, paper_key
from digest.store import Store
from tests.helpers import DUMP_000, DUMP_002, drop, write_toml

LIKED = "RSPNet: Relative Speed Perception for Unsupervised Video Representation Learning"


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rank")
    inbox = root / "inbox"
    inbox.mkdir()
    config = write_toml(root / "digest.toml", {"sources": {"inbox": str(inbox)}, "email": {"enabled": False}})
    drop(inbox, DUMP_000)
    assert main(["-c", str(config), "run"]) == 0
    drop(inbox, DUMP_002)
    assert main(["-c", str(config), "run"]) == 0
    return config


def rank(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-c", str(config), "rank", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_rank_json_schema_and_order(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--keyword", "video", "--keyword", "inpainting", "--like", LIKED, "--json"]
    code, out, _ = rank(state, capsys, *args)
    assert code == 0
    rows = json.loads(out)  # only JSON on stdout
    assert len(rows) == 216  # the latest digest: the papers of the second dump not in the first
    assert [r["rank"] for r in rows] == list(range(1, 217))
    for r in rows:
        assert set(r) >= {"title", "guid", "score", "reasons"}
        assert isinstance(r["title"], str) and isinstance(r["score"], float)
        assert r["guid"] == paper_guid(paper_key(r["title"]))
        assert isinstance(r["reasons"], list) and all(isinstance(x, str) for x in r["reasons"])
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert "inpaint" in rows[0]["title"].lower() and "video" in rows[0]["title"].lower()
    assert rows[0]["reasons"][0] == "keywords: video, inpainting"
    assert any(f"similar to: {LIKED}" in r["reasons"] for r in rows[:10])
    # determinism: the same state gives the same bytes
    assert rank(state, capsys, *args)[1] == out


def test_rank_text_shows_reasons_and_top(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = rank(state, capsys, "--interests", "tracking points through occlusions", "--top", "3")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("digest ") and "216 papers" in lines[0]
    assert sum(1 for ln in lines if ln[:5].strip().rstrip(".").isdigit()) == 3
    assert any("terms: " in ln for ln in lines)


def test_an_older_digest_by_slug_and_unknown_slug(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store.open(f"sqlite:///{state.parent / 'var' / 'digest.db'}")
    try:
        first = store.digests()[-1]
    finally:
        store.close()
    code, out, _ = rank(state, capsys, "--keyword", "neural collapse", "--json", "--digest", first.slug)
    rows = json.loads(out)
    assert code == 0 and len(rows) == 81
    assert rows[0]["reasons"][0] == "keywords: neural collapse"
    code, out, err = rank(state, capsys, "--keyword", "x", "--digest", "1999-01-01")
    assert code == 1 and out == ""
    assert err.startswith("digest: error: no digest '1999-01-01'; --digest takes a slug (")


def test_unknown_liked_title_is_an_error_with_suggestions(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = rank(state, capsys, "--like", "RSPNet: Relative Speed Perception for Video Learning")
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert "no paper titled 'RSPNet: Relative Speed Perception for Video Learning' is known" in err
    assert f"did you mean: {LIKED!r}" in err


def test_a_title_fragment_or_an_arxiv_id_gets_a_helpful_error(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = rank(state, capsys, "--like", "propainter")
    assert code == 1 and out == ""
    assert "did you mean: 'ProPainter: Improving Propagation and Transformer for Video Inpainting'" in err
    code, out, err = rank(state, capsys, "--like", "2403.01234")
    assert code == 1 and "no paper with arXiv id 2403.01234 is known" in err and "titled" not in err


def test_nothing_to_rank_by_is_a_usage_error(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = rank(state, capsys)
    assert code == 1 and "give ADDRESS or at least one of --interests" in err


def test_a_subscriber_s_profile_and_votes_rank_their_digest(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`subscribers add --interests --keyword --like`, then `rank ADDRESS`; a dislike
    added with `subscribers set` moves similar papers down."""
    add = ["subscribers", "add", "kenji@example.org", "--interests", "removing objects from clips"]
    code = main(["-c", str(state), *add, "--keyword", "optical flow", "--like", LIKED])
    assert code == 0
    code, out, _ = rank(state, capsys, "kenji@example.org", "--json")
    liked = json.loads(out)
    assert code == 0 and liked[0]["reasons"][0] == "keywords: optical flow"
    assert any(f"similar to: {LIKED}" in r["reasons"] for r in liked[:20])

    # an unknown title: nothing is written, the closest titles are named
    capsys.readouterr()
    code = main(
        [
            "-c",
            str(state),
            "subscribers",
            "set",
            "kenji@example.org",
            "--dislike",
            "RSPNet: Relative Speed Perception for Video",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "did you mean: 'RSPNet: Relative Speed Perception for Unsupervised" in err

    assert main(["-c", str(state), "subscribers", "set", "kenji@example.org", "--dislike", LIKED]) == 0
    code, out, _ = rank(state, capsys, "kenji@example.org", "--json")
    disliked = json.loads(out)
    video = [r["title"] for r in liked if "video" in r["title"].lower()]

    def mean_rank(rows: list[dict[str, Any]]) -> float:
        where = {r["title"]: int(r["rank"]) for r in rows}
        return sum(where[t] for t in video) / len(video)

    assert mean_rank(disliked) > mean_rank(liked) + 10


def test_rank_of_an_unknown_subscriber(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = rank(state, capsys, "nobody@example.org")
    assert code == 1 and out == "" and "no subscriber 'nobody@example.org'" in err


LONG_KEYWORD = "keywords: 'optical flow optical flow optical flow optical flow optical …' is 103 characters"
TOO_MANY = "exclude: 51 different ones, over the limit of 50; drop some"
BOTH = "'GANs' is both a keyword and excluded (as 'gan'); keep it in one of them"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--interests", "video " * 400],
            "interests: 2,399 characters, over the limit of 2,000; shorten them",
        ),
        (["--keyword", "optical flow " * 8], f"{LONG_KEYWORD}, over the limit of 100; shorten it"),
        ([a for i in range(51) for a in ("--exclude", f"topic {i}")], TOO_MANY),
        (["--keyword", "GANs", "--exclude", "survey", "--exclude", "gan"], BOTH),
    ],
)
def test_a_profile_on_the_command_line_is_held_to_the_rules_of_subscribers_set(
    state: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = rank(state, capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("digest: error: ") and message in err and len(err.splitlines()) == 1


def test_options_added_to_a_subscriber_s_profile_are_checked_with_it(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ["subscribers", "add", "rita@example.org", "--keyword", "tracking", "--exclude", "Diffusion"]
    assert main(["-c", str(state), *add]) == 0
    code, out, err = rank(state, capsys, "rita@example.org", "--keyword", "diffusions", "--json")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert (
        "'diffusions' is both a keyword and excluded (as 'Diffusion'); keep it in one of them "
        "(with rita@example.org's own preferences)" in err
    )
    code, out, _ = rank(state, capsys, "rita@example.org", "--keyword", "diffusion models", "--json")
    assert code == 0 and json.loads(out)[0]["reasons"][0].startswith("keywords: ")
