"""Leftover LaTeX in titles and abstracts shown as Unicode text (digest/latex.py), in
every output, with identity kept on the original title."""

from __future__ import annotations

import email
import email.policy
import json
import re
from email.message import EmailMessage
from html import unescape
from pathlib import Path

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest import identity, latex, text
from digest.config import Config
from digest.model import Paper
from digest.parse import parse_dump
from digest.pipeline import run_once
from digest.store import Store
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, NOW
from tests.subscribe_site import Site

CONVERTED = [
    # The examples: LaTeX that lost its backslashes on the listing page ...
    ("mathcal{S^p} > mathcal{S^n}", "𝒮^p > 𝒮^n"),
    ("when m gg n and C_{Phicirc Psi} > C_Psi. This", "when m gg n and C_Φ∘Ψ > C_Ψ. This"),
    ("mathcal{O}(mathcal{C_Phi/m} + mathcal{C_Psi/n})", "𝒪(𝒞_Φ/m + 𝒞_Ψ/n)"),
    ("where C_Phi, C_Psi are the complexities mathcal{O}(1)", "where C_Φ, C_Ψ are the complexities 𝒪(1)"),
    # ... and LaTeX as written.
    (r"$\alpha$-divergence", "α-divergence"),
    (r"costs \$5 and $\beta^2$", "costs $5 and β^2"),
    (r"an {\em opposite trend} and {\bf 8.2\%} gain", "an opposite trend and 8.2% gain"),
    (r"the {\it (Model \(\times\) Attribution\(\times\) Noise)}", "the (Model × Attribution× Noise)"),
    (r"Fr\'echet, H\"older and na\"{\i}ve", "Fréchet, Hölder and naïve"),
    (r"the temperature {\tau} controls", "the temperature τ controls"),
    (r"84.8\% top-1", "84.8% top-1"),
    (
        r"shapes, \etc, can; crop (\eg, flips), \ie faces; \etc.",
        "shapes, etc., can; crop (e.g., flips), i.e. faces; etc.",
    ),
    (r"the \overfeat network", "the overfeat network"),  # a macro the paper defined: its name
    (r"m \gg n and \alpha{} b", "m ≫ n and α b"),
]

UNCHANGED = [
    "W_+: Scaling [MASK] Models — with é and a very-long-hyphenated-compound-title-word",
    "see https://github.com/a/b{https://github.com/a/b}.",
    "x_{in} and model_beta, y^{-1} {feature suppression} {data}",
    "5% of $5 and $10 -- a ''quoted'' ``word'' ~ R&D #1",
    "We prove x < y && y > z, {{ x }}, {% if x %} and ${x} are not templates",
    "World Models",
    "",
]


@pytest.mark.parametrize(("raw", "shown"), CONVERTED)
def test_recognisable_latex_becomes_unicode_text(raw: str, shown: str) -> None:
    assert latex.to_text(raw) == shown


@pytest.mark.parametrize("raw", UNCHANGED)
def test_text_that_is_not_latex_is_left_alone(raw: str) -> None:
    assert latex.to_text(raw) == raw


def test_urls_next_to_latex_are_untouched() -> None:
    raw = r"Code at https://x.org/a\_b/%7Efoo{https://x.org/a\_b/%7Efoo} with 5\% gain, $\alpha$ free."
    shown = latex.to_text(raw)
    assert shown == r"Code at https://x.org/a\_b/%7Efoo{https://x.org/a\_b/%7Efoo} with 5% gain, α free."
    assert text.links(shown) == text.links(raw)


def test_never_reads_the_clock_or_files() -> None:
    assert latex.to_text(r"made \today from \input{/etc/passwd}") == "made today from input"


@given(st.text(alphabet=st.sampled_from(list("ab \\{}$%_^&~'\"`.e")), max_size=40))
def test_any_text_converts_without_raising(raw: str) -> None:
    assert isinstance(latex.to_text(raw), str)


def test_real_dumps_keep_every_link_and_only_latex_changes() -> None:
    changed = []
    for dump in (DUMP_000, DUMP_002):
        for p in parse_dump(dump.read_bytes(), dump.name).papers:
            for raw in (p.title, p.abstract):
                shown = text.display(raw)
                assert text.links(shown) == text.links(raw)
                if shown != raw:
                    changed.append(shown)
                    assert "\\" in raw or "mathcal{" in raw
    assert any("𝒮^p > 𝒮^n" in s for s in changed)
    assert any("C_Φ∘Ψ > C_Ψ" in s for s in changed)
    assert not any("\\" in s or "mathcal{" in s for s in changed)


HREF = re.compile(r'href="[^"]*"')
LATEX_TITLE = r"Well-discriminative features: mathcal{S^p} > mathcal{S^n} and $\alpha$-Fr\'echet means"
SHOWN_TITLE = "Well-discriminative features: 𝒮^p > 𝒮^n and α-Fréchet means"
LATEX_ABSTRACT = (
    r"When m gg n and C_{Phicirc Psi} > C_Psi, pretraining helps {\em a lot}: 84.8\% top-1 "
    "with [MASK] tokens and W_+; code: https://github.com/ex/ample{https://github.com/ex/ample}."
)
SHOWN_ABSTRACT = (
    "When m gg n and C_Φ∘Ψ > C_Ψ, pretraining helps a lot: 84.8% top-1 "
    "with [MASK] tokens and W_+; code: https://github.com/ex/ample."
)


def test_every_output_shows_the_text_and_identity_stays_on_the_original_title(
    config: Config, store: Store, inbox: Path
) -> None:
    dump = f"Daily Papers\n\nbyAK and the research community\n\nAug 8\n\n{LATEX_TITLE}\n\n{LATEX_ABSTRACT}\n"
    (inbox / "latex.txt").write_text(dump, encoding="utf-8")
    run_once(config, store, FileTransport(config.email.outbox), NOW)
    [stored] = store.recent_papers(10, 10**9)
    paper = stored[0].paper
    assert paper.title == LATEX_TITLE  # the state keeps what the dump said
    assert paper.key == identity.paper_key(LATEX_TITLE)
    guid = identity.paper_guid(paper.key)

    site = config.feed.output_dir
    rss = feedparser.parse((site / "feed.xml").read_bytes())
    atom = feedparser.parse((site / "atom.xml").read_bytes())
    for feed in (rss, atom):
        [entry] = feed.entries
        assert entry.title == SHOWN_TITLE
        assert entry.id == guid
        assert SHOWN_ABSTRACT.partition(" code:")[0] in unescape(entry.summary)
    [item] = json.loads((site / "feed.json").read_bytes())["items"]
    assert item["title"] == SHOWN_TITLE and item["id"] == guid
    assert item["content_text"] == SHOWN_ABSTRACT
    # Visible text only: the arXiv and Hugging Face title searches search the title as given.
    page = unescape(HREF.sub("", (site / "digests" / "2026-11-22.html").read_text(encoding="utf-8")))
    assert SHOWN_TITLE in page and "mathcal" not in page and "Phicirc" not in page
    assert f'id="{identity.paper_anchor(paper.key)}"' in page

    [eml] = config.email.outbox.glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["Subject"] is not None
    text_part, html_part = msg.iter_parts()
    plain = " ".join(text_part.get_content().split())
    html = unescape(HREF.sub("", html_part.get_content()))
    assert SHOWN_TITLE in plain and SHOWN_ABSTRACT in plain
    assert SHOWN_TITLE in html and "mathcal" not in html and "Phicirc" not in html


def test_the_preferences_page_lists_votes_by_the_title_shown_still_escaped(site: Site) -> None:
    """The vote list of ``/preferences`` showed the stored title, LaTeX and all."""
    raw = r"Fr\'echet <b>means</b> & mathcal{S^p} > $\alpha$"
    paper = Paper(key=identity.paper_key(raw), title=raw, abstract="An abstract.")
    site.store.ingest(
        name="d.txt", sha256="0" * 64, size=1, mtime_ns=0, papers_in=[paper], layout=lambda: "spaced", now=NOW
    )
    sub = site.subs.add("ann@example.org", NOW, status="active", source="cli")
    site.subs.vote(sub.id, paper.key, 1, NOW)
    with site.client() as browser:
        page = browser.get("preferences", params={"t": site.pages.tokens.make("preferences", sub)})
    assert page.status_code == 200
    assert "Liked: Fréchet &lt;b&gt;means&lt;/b&gt; &amp; 𝒮^p &gt; α</span>" in page.text
    # The undo still names the paper by its key (identity stays on the stored title).
    assert f'name="paper" value="{paper.key}"' in page.text
    shown = page.text.replace(f'value="{paper.key}"', "")
    assert "mathcal" not in shown and "<b>means" not in shown
