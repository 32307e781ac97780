"""Ranking reads what readers read: LaTeX leftovers as the pages show them, accents
folded on both sides (a trial reader's ``--keyword "Fréchet"`` matched nothing)."""

from __future__ import annotations

import pytest

from digest.identity import paper_key
from digest.rank import UnknownPaperError, resolve_papers
from digest.rank.model import Doc, Profile, Ranker
from digest.rank.text import Keyword, find, shown, stem_tokens, tokens

FILLER = [
    Doc(f"f{i}", f"A study of topic {i} in vision", f"We look at topic {i} with images and models.")
    for i in range(8)
]
SPELLINGS = [
    Doc(
        "latex",
        "Projected GANs Converge Faster",
        "It advances the state-of-the-art Fr\\'echet Inception Distance.",
    ),
    Doc("accent", "On the Fréchet Distance of Generators", "Generators compared by a distance."),
    Doc("plain", "Frechet Video Distance Revisited", "A metric for videos."),
    Doc("naive", "Naïve Bayes Returns", "A classifier of old, studied again."),
]


def matched(keyword: str) -> set[str]:
    ranking = Ranker([*FILLER, *SPELLINGS]).rank([*FILLER, *SPELLINGS], Profile(keywords=(keyword,)))
    return {r.key for r in ranking if r.reasons and r.reasons[0] == f"keywords: {keyword}"}


def test_tokens_fold_accents_and_case() -> None:
    assert tokens("Naïve Bayes, FRÉCHET, Fréchet") == ["naive", "bayes", "frechet", "frechet"]
    assert tokens("ﬁne-grained Ångström") == ["fine", "grained", "angstrom"]


@pytest.mark.parametrize("keyword", ["Fréchet", "Frechet", "frechet", "FRÉCHET"])
def test_a_keyword_with_or_without_accents_matches_every_spelling(keyword: str) -> None:
    assert matched(keyword) == {"latex", "accent", "plain"}


def test_naive_matches_naive_with_a_diaeresis() -> None:
    assert matched("naive") == {"naive"}
    assert matched("Naïve Bayes") == {"naive"}


def test_latex_leftovers_are_read_as_the_pages_show_them() -> None:
    abstract = SPELLINGS[0].abstract
    assert shown(abstract) == "It advances the state-of-the-art Fréchet Inception Distance."
    assert find(Keyword.of("Fréchet Inception").stems, stem_tokens(shown(abstract)))


def test_symbols_that_end_a_word_are_part_of_it() -> None:
    assert tokens("C++ and C# code, F#; a+b, C_Phi, 10+ runs") == [
        *("c++", "and", "c#", "code", "f#", "a", "b", "c", "phi", "10", "runs"),
    ]


@pytest.mark.parametrize("keyword", ["C++", "C#"])
def test_a_keyword_with_symbols_matches_only_those_symbols(keyword: str) -> None:
    docs = [
        *FILLER,
        Doc(
            "lone-c",
            "On the Provable Advantage of Pretraining",
            "A class C_Phi of functions, and a constant C.",
        ),
        Doc("cpp", "Compiling C++ Templates", "We compile C++ and C# code."),
    ]
    ranking = Ranker(docs).rank(docs, Profile(keywords=(keyword,)))
    assert {r.key for r in ranking if r.reasons and r.reasons[0] == f"keywords: {keyword}"} == {"cpp"}
    assert ranking[0].key == "cpp"


def test_only_a_one_letter_word_keeps_its_symbols() -> None:
    """The word of "LoRA+" is "lora" (a trial reader's keyword "LoRA" missed "LoRA+"
    papers); "C++", "C#", "F#" and "J#" stay words of their own."""
    assert tokens("LoRA+ and QLoRA#, J# or x+; ObjC++") == ["lora", "and", "qlora", "j#", "or", "x+", "objc"]


def test_the_keyword_lora_matches_a_lora_plus_title() -> None:
    docs = [
        *FILLER,
        Doc("plus", "LoRA+: Efficient Low Rank Adaptation of Large Models", "Adapters with two rates."),
        Doc("plain", "Rethinking LoRA for Vision", "Low-rank adapters revisited."),
    ]
    ranking = Ranker(docs).rank(docs, Profile(keywords=("LoRA",)))
    assert {r.key for r in ranking if r.reasons and r.reasons[0] == "keywords: LoRA"} == {"plus", "plain"}


PROPAINTER = "ProPainter: Improving Propagation and Transformer for Video Inpainting"
TITLES = {
    paper_key(t): t
    for t in (
        "Video Inpainting with ProPainter Priors",
        PROPAINTER,
        "A Propagation Network for Segmentation",
        "Painter: Images as Prompts",
    )
}


def test_a_title_fragment_suggests_the_titles_containing_it() -> None:
    with pytest.raises(UnknownPaperError) as err:
        resolve_papers(["propainter"], TITLES)
    assert err.value.suggestions[:2] == (PROPAINTER, "Video Inpainting with ProPainter Priors")
    assert f"did you mean: {PROPAINTER!r}" in str(err.value)


def test_an_unknown_arxiv_id_is_named_as_one() -> None:
    with pytest.raises(UnknownPaperError) as err:
        resolve_papers(["2403.01234"], TITLES)
    assert str(err.value).startswith("no paper with arXiv id 2403.01234 is known")
    assert "titled" not in str(err.value) and err.value.suggestions == ()


def test_a_reason_shows_a_word_as_the_paper_writes_it_accents_kept() -> None:
    docs = [*FILLER, *SPELLINGS]
    ranking = Ranker(docs).rank(docs, Profile(interests="frechet distance of generators"))
    accent = next(r for r in ranking if r.key == "accent")
    terms = next(x for x in accent.reasons if x.startswith("terms: "))
    assert "fréchet" in terms and "frechet" not in terms, accent.reasons


def test_a_title_with_latex_is_suggested_as_shown_and_named_so() -> None:
    latex = "Projected GANs Lower the Fr\\'echet Inception Distance"
    titles = {**TITLES, paper_key(latex): latex}
    with pytest.raises(UnknownPaperError) as err:
        resolve_papers(["Projected GANs Lower the Frechet Distance"], titles)
    assert err.value.suggestions == ("Projected GANs Lower the Fréchet Inception Distance",)
    assert resolve_papers(["projected gans lower the Fréchet inception distance"], titles) == (
        paper_key(latex),
    )
