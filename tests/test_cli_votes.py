"""Votes and titles on the command line: titles shown as the pages show them (a trial
reader saw ``Fr\\'echet`` in `digest rank` and in "did you mean"), and such a title,
copied back, names its paper; `subscribers set --unvote` withdraws a vote (there was no
way to but the preferences page)."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.cli import main
from digest.config import Config
from tests.helpers import MakeConfig
from tests.subscribe_site import write_dump

LATEX = "Projected GANs Lower the Fr\\'echet Inception Distance"
SHOWN = "Projected GANs Lower the Fréchet Inception Distance"
OTHERS = ["Sparse Attention at Scale", "Diffusion Models for Faces", "Optical Flow for Video Inpainting"]


@pytest.fixture
def config(make_config: MakeConfig, inbox: Path) -> Config:
    config = make_config(email={"enabled": False})
    write_dump(inbox, "d1.txt", [LATEX, *OTHERS])
    assert main(["-c", str(config.path), "run"]) == 0
    return config


def cli(config: Config, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-c", str(config.path), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_rank_lines_show_titles_as_the_pages_do(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(config, capsys, "rank", "--keyword", "inception distance")
    assert code == 0
    assert f"  {SHOWN}\n" in out and "\\'" not in out
    code, out, _ = cli(config, capsys, "rank", "--keyword", "inception distance", "--json")
    assert code == 0 and LATEX.replace("\\", "\\\\") in out  # JSON: the stored title (its guid's)


def test_did_you_mean_shows_the_title_and_it_names_the_paper_when_copied(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(config, capsys, "rank", "--like", "Projected GANs Lower the Frechet Distance")
    assert code == 1 and out == ""
    assert f"did you mean: {SHOWN!r}" in err and "\\'" not in err
    code, out, _ = cli(config, capsys, "rank", "--like", SHOWN)
    assert code == 0 and f"  {SHOWN}\n" in out
    code, _, _ = cli(
        config, capsys, "subscribers", "add", "ann@example.org", "--like", SHOWN, "--dislike", LATEX
    )
    assert code == 0
    code, out, _ = cli(config, capsys, "subscribers", "show", "ann@example.org")
    assert code == 0 and f"dislike: {SHOWN}\n" in out and "\nlike: " not in out  # one paper, one vote


def liked_on_pages(config: Config) -> bool:
    """Whether the reader's own page and feeds, written by `digest publish`, say a paper is liked."""
    assert main(["-c", str(config.path), "publish"]) == 0
    [folder] = list((config.feed.output_dir / "for").iterdir())
    files = [folder / name for name in ("index.html", "feed.xml", "atom.xml", "feed.json")]
    found = {"you liked this paper" in f.read_text(encoding="utf-8") for f in files}
    assert len(found) == 1, "the page and the feeds disagree"
    return found.pop()


def test_unvote_withdraws_a_vote_from_ranking_pages_feeds_and_show(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ("subscribers", "add", "ann@example.org", "--interests", "image quality of generative models")
    assert cli(config, capsys, *add, "--like", LATEX, "--dislike", OTHERS[1])[0] == 0
    assert "you liked this paper" in cli(config, capsys, "rank", "ann@example.org")[1]
    assert liked_on_pages(config)

    code, out, err = cli(
        config, capsys, "subscribers", "set", "ann@example.org", "--unvote", SHOWN, "--unvote", OTHERS[0]
    )
    assert code == 0 and err == ""
    assert out.splitlines() == [
        f"ann@example.org: like of {SHOWN!r} withdrawn",
        f"ann@example.org: no vote on {OTHERS[0]!r} to withdraw",
        "ann@example.org: active, daily",
    ]
    code, out, _ = cli(config, capsys, "subscribers", "show", "ann@example.org")
    assert f"dislike: {OTHERS[1]}\n" in out and "\nlike: " not in out
    assert "you liked this paper" not in cli(config, capsys, "rank", "ann@example.org")[1]
    assert not liked_on_pages(config)
    # Twice is a no-op, said so.
    code, out, _ = cli(config, capsys, "subscribers", "set", "ann@example.org", "--unvote", LATEX)
    assert code == 0 and out.startswith(f"ann@example.org: no vote on {SHOWN!r} to withdraw\n")


def test_unvote_of_an_unknown_title_or_a_paper_also_voted_on_changes_nothing(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config, capsys, "subscribers", "add", "ann@example.org", "--dislike", OTHERS[1])[0] == 0
    set_ = ("subscribers", "set", "ann@example.org")
    code, out, err = cli(config, capsys, *set_, "--unvote", OTHERS[1], "--unvote", "Diffusion Model for Face")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "no paper titled 'Diffusion Model for Face' is known" in err
    assert err.endswith(f"; did you mean: {OTHERS[1]!r}\n")
    code, out, err = cli(config, capsys, *set_, "--like", OTHERS[0], "--unvote", OTHERS[0].upper())
    assert code == 1 and f"{OTHERS[0].upper()!r} is both voted on and withdrawn (--unvote)" in err
    code, out, _ = cli(config, capsys, "subscribers", "show", "ann@example.org")
    assert f"dislike: {OTHERS[1]}\n" in out and "\nlike: " not in out


def test_unvote_finds_an_imported_vote_on_a_paper_this_state_does_not_hold(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "subs.csv"
    data.write_text("address,likes\nann@example.org,A Paper From Elsewhere\n")
    assert cli(config, capsys, "subscribers", "import", str(data))[0] == 0
    code, out, _ = cli(
        config, capsys, "subscribers", "set", "ann@example.org", "--unvote", "a paper from elsewhere"
    )
    assert code == 0 and "like of 'a paper from elsewhere' withdrawn" in out
    assert "like: " not in cli(config, capsys, "subscribers", "show", "ann@example.org")[1]
