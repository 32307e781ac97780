"""Reasons a reader understands for a ranked paper (:class:`Reasons`): the query terms
that weigh most in it, the liked paper it is most like, or the better pick it is close to.

Pure: reads what the fitted ranker hands it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from digest.rank.listing import Listing
from digest.rank.text import shown

if TYPE_CHECKING:
    from digest.rank.model import Doc, Profile

COMMON = 0.25  # share of the corpus's papers above which a term is not shown as a reason
COMMON_MIN = 25  # ... and never below this many papers: in a small corpus the reader's topic is a big share
# Terms (words, word pairs; none of the common ones) a paper must share with a liked paper
# or a better pick for the likeness to make it a pick: a short abstract off every topic
# shares one word ("time") with a like, and its cosine can still pass 0.05.
GROUNDS = 3


class Reasons:
    """The corpus's papers, their rows, the word part's terms and which of them are
    common (in more than ``COMMON`` of the papers, and more than ``COMMON_MIN``)."""

    def __init__(self, corpus: Sequence[Doc], row: dict[str, int], terms: Any, words: Any) -> None:
        self.corpus = corpus
        self.row = row
        self.terms = terms
        # a term in more than a quarter of the papers ("model", "work") says nothing as a reason
        self.common = words.getnnz(axis=0) > max(COMMON * words.shape[0], COMMON_MIN)
        self.words = words

    def _shares(self, a: Any, b: Any) -> bool:
        """Whether word rows ``a`` and ``b`` share ``GROUNDS`` terms that are not common."""
        both = np.intersect1d(a.indices, b.indices)
        return int((~self.common[both]).sum()) >= GROUNDS

    def explain(
        self,
        listing: Listing,
        profile: Profile,
        which: list[int],
        qw: Any,
        leaders: Sequence[int] = (),
        weak: set[int] | frozenset[int] = frozenset(),
    ) -> tuple[dict[int, list[str]], set[int]]:
        """Readable reasons: the query terms that weigh most in a paper (none that a
        quarter of the papers have), and the liked (or disliked) paper it is most similar
        to. A paper with neither, brought up by what it shares with the best (the feedback,
        the latent space), is "close to" the one of the ``leaders`` it resembles most. These
        weaker reasons (and common words, a faint like) go to the papers in ``weak`` only
        (the picks): a paper that scores low has no reason to be there.

        Returns the reasons and the papers ``grounded`` in what the reader said (liked
        themselves, rare words of theirs, like a liked paper, close to a better pick): the
        others, however high they score, only look less unlike it than the rest."""
        grounded: set[int] = set()
        if not which:
            return {}, grounded
        papers = listing.papers
        why: dict[int, list[str]] = {i: [] for i in which}
        for i in which:
            if papers[i].key in profile.likes:
                why[i].append("you liked this paper")
                grounded.add(i)
            elif papers[i].key in profile.dislikes:
                why[i].append("you disliked this paper")
        plain: dict[int, str] = {}  # a weak reason, for a paper with no other: common words, a faint like
        if qw is not None and qw.nnz:
            # the query's terms (rows) in the chosen papers (columns), weighted as in the dot product
            contrib = listing.by_term()[qw.indices][:, which].toarray() * qw.data[:, None]
            for j, i in enumerate(which):
                column = contrib[:, j]
                found = [int(t) for t in np.lexsort((qw.indices, -column)) if column[t] > 0]
                rare = [t for t in found if not self.common[qw.indices[t]]]
                if rare or found:
                    shown_terms = [self.terms[qw.indices[t]] for t in (rare or found)[:6]]
                    text = "terms: " + ", ".join(listing.readable(i, shown_terms)[:3])
                    if rare:
                        why[i].append(text)
                        grounded.add(i)
                    else:
                        plain[i] = text
        for label, keys in (("similar to", profile.likes), ("like what you disliked", profile.dislikes)):
            known = [k for k in dict.fromkeys(keys) if k in self.row]
            if not known:
                continue
            sims = listing.word_corpus_sims()[[self.row[k] for k in known]][:, which]
            for j, i in enumerate(which):
                near = int(np.argmax(sims[:, j]))
                if known[near] == papers[i].key or (label != "similar to" and papers[i].key in profile.likes):
                    continue
                text = f"{label}: {shown(self.corpus[self.row[known[near]]].title)}"
                if sims[near, j] >= 0.05:
                    why[i].append(text)
                    if label == "similar to" and self._shares(
                        listing.words[i], self.words[self.row[known[near]]]
                    ):
                        grounded.add(i)
                elif label == "similar to":
                    plain.setdefault(i, text)
        bare = [i for i in which if not why[i] and i in weak]
        if bare and leaders:
            near_sims = np.asarray((listing.words[bare] @ listing.words[list(leaders)].T).toarray())
            for j, i in enumerate(bare):
                row = [(near_sims[j, k], -t) for k, t in enumerate(leaders) if t != i]
                if row and max(row)[0] >= 0.05:  # words in common, as "similar to" asks
                    why[i].append(f"close to: {shown(papers[-max(row)[1]].title)}")
                    if self._shares(listing.words[i], listing.words[-max(row)[1]]):
                        grounded.add(i)
        for i, text in plain.items():
            if not why[i] and i in weak:  # weak, but better than none
                why[i].append(text)
        return why, grounded
