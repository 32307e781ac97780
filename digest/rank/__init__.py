"""Personal ranking of a digest: pure, lexical and offline.

``rank(papers, corpus, profile)`` orders a digest's papers for one reader; a
:class:`Ranker` fitted once ranks many digests for many readers. The scoring lives in
:mod:`digest.rank.model`, which imports scikit-learn: it is loaded on first use, so that
importing this package (and starting the CLI) costs nothing.

Likes and dislikes are paper keys; :func:`resolve_papers` turns what a reader typed (a
title or an arXiv id) into keys, or raises :class:`UnknownPaperError` naming the known
titles that contain what was typed and the closest ones (:func:`unknown_paper`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from digest.errors import DigestError
from digest.identity import paper_key
from digest.rank.text import arxiv_id, shown

if TYPE_CHECKING:
    from digest.rank.model import Doc, Profile, Ranked, Ranker, Settings

__all__ = [
    "Doc",
    "Profile",
    "Ranked",
    "Ranker",
    "Settings",
    "UnknownPaperError",
    "rank",
    "resolve_papers",
    "shown_title_key",
    "suggestions",
    "unknown_paper",
]


def __getattr__(name: str) -> Any:
    if name in ("Doc", "Profile", "Ranked", "Ranker", "Settings"):
        from digest.rank import model

        return getattr(model, name)
    raise AttributeError(name)


class UnknownPaperError(DigestError):
    """A liked or disliked paper is not in the state; the message suggests known titles.
    ``arxiv`` is the id when ``given`` is one."""

    def __init__(self, given: str, suggestions: Sequence[str], arxiv: str | None = None) -> None:
        self.given = given
        self.suggestions = tuple(suggestions)
        if arxiv:
            message = (
                f"no paper with arXiv id {arxiv} is known (a paper has one only if its dump lists it, "
                "and the text dumps list none: give its title)"
            )
        else:
            message = (
                f"no paper titled {given!r} is known (papers are known once a dump listing them is ingested)"
            )
        if suggestions:
            message += "; did you mean: " + " | ".join(repr(s) for s in suggestions)
        super().__init__(message)


def resolve_papers(
    given: Iterable[str], titles: Mapping[str, str], arxiv_ids: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Keys of the papers named by ``given`` (titles, matched by their normalised key, or
    arXiv ids such as ``2403.01234``/``arXiv:2403.01234v2``), in order, without repeats.

    ``titles`` maps every known key to its title; ``arxiv_ids`` maps arXiv id to key. The
    first name that matches nothing raises :func:`unknown_paper`'s error.
    """
    keys: list[str] = []
    for name in given:
        ident = arxiv_id(name)
        key = (arxiv_ids or {}).get(ident) if ident else paper_key(name)
        if key is not None and key not in titles and not ident:
            key = shown_title_key(name, titles)
        if key is None or key not in titles:
            raise unknown_paper(name, titles)
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def shown_title_key(name: str, titles: Mapping[str, str]) -> str | None:
    """The key of the title in ``titles`` (key -> title) that ``name`` names as the pages
    and the CLI show it (:func:`~digest.rank.text.shown`: "Fréchet" for ``Fr\\'echet``),
    so that a title copied from what was shown names its paper; None when none does.
    Only titles holding LaTeX can read otherwise than their key says."""
    key = paper_key(name)
    for known, title in titles.items():
        if ("\\" in title or "$" in title or "{" in title) and paper_key(shown(title)) == key:
            return known
    return None


def unknown_paper(name: str, titles: Mapping[str, str]) -> UnknownPaperError:
    """The error for ``name``, which named no known paper: an arXiv id is said to be one
    (no suggestions), a title gets :func:`suggestions` from ``titles`` (key -> title),
    each as the pages show it."""
    ident = arxiv_id(name)
    if ident:
        return UnknownPaperError(name, (), arxiv=ident)
    return UnknownPaperError(name, [shown(t) for t in suggestions(name, titles)])


def suggestions(name: str, titles: Mapping[str, str], n: int = 3) -> list[str]:
    """Known titles for a ``name`` that matched none: up to ``n`` whose key contains its
    key (those starting with it first, then those with it at a word's start; otherwise in
    ``titles``' order), then up to ``n`` closest (difflib on the normalised keys).

    A fragment such as "propainter" is far from its full title for difflib, but is in it.
    """
    key = paper_key(name)
    if not key:
        return []
    containing: list[str] = []
    if len(key) >= 3:  # shorter is in too many titles to say anything
        found = [k for k in titles if key in k and k != key]
        containing = sorted(found, key=lambda k: (not k.startswith(key), f" {key}" not in k))[:n]
    close = difflib.get_close_matches(key, list(titles), n=n, cutoff=0.5)
    return [titles[k] for k in dict.fromkeys([*containing, *close])]


def rank(papers: Sequence[Doc], corpus: Sequence[Doc], profile: Profile) -> tuple[Ranked, ...]:
    """``papers`` best first for ``profile``, with TF-IDF statistics from ``corpus``.

    A profile with no interests, keywords or votes keeps the listing order (score 0).
    """
    from digest.rank.model import Ranked, Ranker

    if not profile.personal and not profile.exclude:
        return tuple(Ranked(i, p.key, 0.0, ()) for i, p in enumerate(papers))
    return Ranker(corpus).rank(papers, profile)
