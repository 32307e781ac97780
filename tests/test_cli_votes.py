"""Votes and titles on the command line: titles shown as the pages show them (a trial
reader saw ``Fr\\'echet`` in `digest rank` and in "did you mean"), and such a title,
copied back, names its paper."""

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
