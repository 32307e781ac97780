"""Preferences refused whole, never cut or kept half-right: interests over the limit
(a trial reader's long interests lost their end without a word), keywords (or excluded
ones) too long or too many, and a keyword that is also excluded, on the CLI, at import (naming the row) and on the preferences and sign-up
forms (the error shown, what was typed kept, nothing changed)."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest

from digest.cli import main
from digest.config import Config
from digest.store import Store
from digest.store.subscribers import Subscribers
from digest.subscribers import MAX_TEXT, Preferences
from tests.subscribe_site import NOW, Site

LONG = "video " * 333 + "inpainting"  # 2,008 characters
FITS = "x" * (MAX_TEXT - 2) + "  \n y"  # 2,000 once its white space is one space


def cli(config: Config, *args: str) -> int:
    return main(["-c", str(config.path), *args])


def preferences(config: Config) -> dict[str, Preferences]:
    store = Store.open(config.state.url)
    try:
        return {s.address: s.preferences for s in Subscribers(store).all()}
    finally:
        store.close()


def one_line(err: str) -> str:
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_interests_over_the_limit_are_refused_by_add_and_set(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(config, "subscribers", "add", "ann@example.org", "--interests", LONG) == 1
    err = one_line(capsys.readouterr().err)
    assert "interests: 2,008 characters, over the limit of 2,000; shorten them" in err
    assert preferences(config) == {}
    assert cli(config, "subscribers", "add", "ann@example.org", "--interests", "faces") == 0
    assert cli(config, "subscribers", "set", "ann@example.org", "--interests", LONG, "--keyword", "gan") == 1
    assert "interests: 2,008 characters" in one_line(capsys.readouterr().err)
    assert preferences(config)["ann@example.org"] == Preferences(interests="faces")
    assert cli(config, "subscribers", "set", "ann@example.org", "--interests", FITS) == 0
    assert len(preferences(config)["ann@example.org"].interests) == MAX_TEXT


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_an_import_row_with_interests_over_the_limit_is_named_and_nothing_imported(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    rows = [
        {"address": "ok@example.org", "interests": "faces"},
        {"address": "ann@example.org", "interests": LONG},
    ]
    path = tmp_path / f"subs.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(rows))
        where = f"{path}[1]"
    else:
        path.write_text("address,interests\n" + "".join(f"{r['address']},{r['interests']}\n" for r in rows))
        where = f"{path}:3"
    assert cli(config, "subscribers", "import", str(path)) == 1
    err = one_line(capsys.readouterr().err)
    assert f"{where}: interests: 2,008 characters, over the limit of 2,000" in err
    assert preferences(config) == {}


def field(html: str, name: str) -> str:
    """The text of the form's textarea ``name``, as the browser shows it."""
    found = re.search(rf'<textarea id="{name}" name="{name}"[^>]*>(.*?)</textarea>', html, re.S)
    assert found, name
    return unescape(found[1])


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found[1]


def test_the_preferences_form_shows_the_error_keeps_what_was_typed_and_saves_nothing(site: Site) -> None:
    before = Preferences(interests="faces", keywords=("gan",))
    sub = site.subs.add("ann@example.org", NOW, status="active", source="cli", prefs=before)
    token = site.pages.tokens.make("preferences", sub)
    typed = {"action": "save", "cadence": "weekly:fri", "max_papers": "7", "only_top": "1",
             "interests": LONG, "keywords": "optical flow\ntracking", "exclude": "survey"}  # fmt: skip
    with site.client() as browser:
        page = browser.get("preferences", params={"t": token})
        answer = browser.post("preferences", params={"t": token}, data={**typed, "csrf": csrf_of(page.text)})
    assert answer.status_code == 400
    assert "Not saved: interests: 2,008 characters, over the limit of 2,000; shorten them" in answer.text
    assert "Saved." not in answer.text
    assert field(answer.text, "interests") == LONG
    assert field(answer.text, "keywords") == "optical flow\ntracking"
    assert field(answer.text, "exclude") == "survey"
    assert (
        'value="weekly:fri" checked' in answer.text
        and 'name="max_papers" min="1" max="1000" value="7"' in answer.text
    )
    assert 'name="only_top" value="1" checked' in answer.text
    assert site.subs.get("ann@example.org").preferences == before  # type: ignore[union-attr]


def test_the_sign_up_form_refuses_long_interests_and_keeps_them(site: Site) -> None:
    with site.client() as browser:
        page = browser.get("subscribe")
        answer = browser.post(
            "subscribe",
            data={
                "csrf": csrf_of(page.text),
                "address": "ann@example.org",
                "cadence": "daily",
                "interests": LONG,
            },
        )
    assert answer.status_code == 400
    assert "interests: 2,008 characters, over the limit of 2,000; shorten them" in answer.text
    assert field(answer.text, "interests") == LONG
    site.pages.worker.join()
    assert site.subs.get("ann@example.org") is None and not site.sink.accepted


def test_a_keyword_that_is_also_excluded_is_refused_by_add_set_and_import(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Compared as ranking matches them (the same stems), not as typed; a longer phrase
    holding an excluded word is a keyword of its own."""
    args = ("--keyword", "optical flow", "--keyword", "GANs", "--exclude", "survey", "--exclude", "gan")
    assert cli(config, "subscribers", "add", "ann@example.org", *args) == 1
    err = one_line(capsys.readouterr().err)
    assert "'GANs' is both a keyword and excluded (as 'gan'); keep it in one of them" in err
    assert preferences(config) == {}
    assert (
        cli(
            config,
            "subscribers",
            "add",
            "ann@example.org",
            "--keyword",
            "diffusion models",
            "--exclude",
            "Diffusion",
        )
        == 0
    )
    assert cli(config, "subscribers", "set", "ann@example.org", "--keyword", "diffusions") == 1
    assert "'diffusions' is both a keyword and excluded (as 'Diffusion')" in one_line(capsys.readouterr().err)
    assert cli(config, "subscribers", "set", "ann@example.org", "--exclude", "Diffusion Models") == 1
    assert (
        "'diffusion models' is both a keyword and excluded (as 'Diffusion Models')" in capsys.readouterr().err
    )
    assert preferences(config)["ann@example.org"] == Preferences(
        keywords=("diffusion models",), exclude=("Diffusion",)
    )
    rows = [
        {"address": "ok@example.org"},
        {"address": "bob@example.org", "keywords": "Tracking; flow", "exclude": "tracking"},
    ]
    for fmt in ("csv", "json"):
        path = tmp_path / f"subs.{fmt}"
        if fmt == "json":
            path.write_text(json.dumps(rows))
        else:
            path.write_text(
                "address,keywords,exclude\nok@example.org,,\nbob@example.org,Tracking; flow,tracking\n"
            )
        assert cli(config, "subscribers", "import", str(path)) == 1
        where = f"{path}[1]" if fmt == "json" else f"{path}:3"
        assert f"{where}: 'Tracking' is both a keyword and excluded (as 'tracking')" in one_line(
            capsys.readouterr().err
        )
    assert set(preferences(config)) == {"ann@example.org"}


def test_a_profile_stored_with_the_conflict_still_takes_other_changes(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(config.state.url)
    try:
        Subscribers(store).add("ann@example.org", NOW, prefs=Preferences(keywords=("gan",), exclude=("GAN",)))
    finally:
        store.close()
    assert (
        cli(config, "subscribers", "set", "ann@example.org", "--status", "unsubscribed", "--max-papers", "3")
        == 0
    )
    assert cli(config, "subscribers", "set", "ann@example.org", "--keyword", "gan", "--keyword", "faces") == 1
    assert "'gan' is both a keyword and excluded (as 'GAN')" in capsys.readouterr().err


def test_the_preferences_form_refuses_a_keyword_also_excluded_and_keeps_both(site: Site) -> None:
    sub = site.subs.add("ann@example.org", NOW, status="active", source="cli")
    token = site.pages.tokens.make("preferences", sub)
    typed = {"action": "save", "cadence": "daily", "max_papers": "10", "interests": "faces in photos",
             "keywords": "Point tracking\nface", "exclude": "survey\npoint-tracking"}  # fmt: skip
    with site.client() as browser:
        page = browser.get("preferences", params={"t": token})
        answer = browser.post("preferences", params={"t": token}, data={**typed, "csrf": csrf_of(page.text)})
    assert answer.status_code == 400
    assert (
        "Not saved: &#39;Point tracking&#39; is both a keyword and excluded (as &#39;point-tracking&#39;)"
        in answer.text
    )
    assert field(answer.text, "keywords") == "Point tracking\nface"
    assert field(answer.text, "exclude") == "survey\npoint-tracking"
    assert field(answer.text, "interests") == "faces in photos"
    assert site.subs.get("ann@example.org").preferences == Preferences()  # type: ignore[union-attr]


LONG_KEYWORD = "video object segmentation " * 4 + "in the wild"  # 115 characters
MANY = [f"topic {i}" for i in range(51)]  # 51 different keywords
TOO_LONG = "keywords: 'video object segmentation video object segmentation video ob…' is 115 characters, over the limit of 100; shorten it"  # fmt: skip
TOO_MANY = "keywords: 51 different ones, over the limit of 50; drop some"


def test_keywords_too_long_or_too_many_are_refused_by_add_and_set_never_cut(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli(config, "subscribers", "add", "ann@example.org", "--keyword", "gan", "--keyword", LONG_KEYWORD)
        == 1
    )
    assert TOO_LONG in one_line(capsys.readouterr().err)
    assert (
        cli(config, "subscribers", "add", "ann@example.org", *(a for k in MANY for a in ("--keyword", k)))
        == 1
    )
    assert TOO_MANY in one_line(capsys.readouterr().err)
    assert preferences(config) == {}
    # At the limits (repeats by case count once), everything is kept as given.
    fits = [*MANY[:50], "TOPIC 0", "x" * 100]
    assert (
        cli(
            config, "subscribers", "add", "ann@example.org", *(a for k in fits[:51] for a in ("--keyword", k))
        )
        == 0
    )
    assert preferences(config)["ann@example.org"].keywords == tuple(MANY[:50])
    assert cli(config, "subscribers", "set", "ann@example.org", "--exclude", "y" * 101) == 1
    err = one_line(capsys.readouterr().err)
    assert "exclude: 'yyyy" in err and "is 101 characters, over the limit of 100" in err
    assert (
        cli(config, "subscribers", "set", "ann@example.org", *(a for k in MANY for a in ("--exclude", k)))
        == 1
    )
    assert "exclude: 51 different ones, over the limit of 50" in one_line(capsys.readouterr().err)
    assert preferences(config)["ann@example.org"] == Preferences(keywords=tuple(MANY[:50]))
    assert cli(config, "subscribers", "set", "ann@example.org", "--exclude", "z" * 100) == 0
    assert preferences(config)["ann@example.org"].exclude == ("z" * 100,)


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("trouble", ["long", "many"])
def test_an_import_row_with_keywords_too_long_or_too_many_is_named_and_nothing_imported(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, trouble: str
) -> None:
    keywords = ["gan", LONG_KEYWORD] if trouble == "long" else MANY
    rows = [
        {"address": "ok@example.org", "keywords": ["faces"]},
        {"address": "ann@example.org", "keywords": keywords},
    ]
    path = tmp_path / f"subs.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(rows))
        where = f"{path}[1]"
    else:
        path.write_text(
            "address,keywords\n" + "".join(f"{r['address']},{'; '.join(r['keywords'])}\n" for r in rows)
        )
        where = f"{path}:3"
    assert cli(config, "subscribers", "import", str(path)) == 1
    err = one_line(capsys.readouterr().err)
    assert f"{where}: {TOO_LONG if trouble == 'long' else TOO_MANY}" in err
    assert preferences(config) == {}


@pytest.mark.parametrize("trouble", ["long", "many"])
def test_the_preferences_form_refuses_keywords_too_long_or_too_many_and_keeps_them(
    site: Site, trouble: str
) -> None:
    before = Preferences(interests="faces", keywords=("gan",))
    sub = site.subs.add("ann@example.org", NOW, status="active", source="cli", prefs=before)
    token = site.pages.tokens.make("preferences", sub)
    keywords = "\n".join(["optical flow", LONG_KEYWORD] if trouble == "long" else MANY)
    typed = {"action": "save", "cadence": "weekly:fri", "max_papers": "7", "interests": "video clips",
             "keywords": keywords, "exclude": "survey"}  # fmt: skip
    with site.client() as browser:
        page = browser.get("preferences", params={"t": token})
        answer = browser.post("preferences", params={"t": token}, data={**typed, "csrf": csrf_of(page.text)})
    assert answer.status_code == 400
    shown = unescape(answer.text)
    assert f"Not saved: {TOO_LONG if trouble == 'long' else TOO_MANY}" in shown and "Saved." not in shown
    assert field(answer.text, "keywords") == keywords
    assert field(answer.text, "exclude") == "survey"
    assert field(answer.text, "interests") == "video clips"
    assert site.subs.get("ann@example.org").preferences == before  # type: ignore[union-attr]
