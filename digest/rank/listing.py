"""A digest prepared once for ranking it for any number of readers (:class:`Listing`).

Pure: sparse products over vectors the ranker hands it, cached on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from digest.rank.text import Keyword, find, fold, shown, stem, stem_tokens, written

if TYPE_CHECKING:
    from digest.rank.model import Doc


def reference(corpus: Sequence[Doc], papers: Sequence[Doc], size: int) -> list[Doc]:
    """Corpus papers that a digest of fewer than ``size`` papers is scored among (never
    shown), so that it has ``size`` papers in all.

    Each part of a score is standardised over the papers it is computed for; over a
    handful of papers one middling similarity becomes several spreads and outweighs a
    keyword (a fixed 2 spreads). Among a reference sample a score means what it means in
    a full digest. The sample is spread evenly over the corpus: deterministic.
    """
    want = size - len(papers)
    if want <= 0:
        return []
    keys = {p.key for p in papers}
    pool = [d for d in corpus if d.key not in keys]
    if len(pool) <= want:
        return pool
    return [pool[i * len(pool) // want] for i in range(want)]


class Listing:
    """A digest prepared once for any number of readers: its vectors, its words, its
    similarities to the corpus and to itself, and the papers each keyword matches.

    ``papers`` are the digest's first ``real`` papers (all by default), then any reference
    papers it is scored among (:func:`reference`).

    ``docs`` and ``corpus`` are word and character parts stacked, the characters' share of
    a cosine ``char``; paper-to-paper similarities (:meth:`corpus_sims`, :meth:`inner`)
    give them the share ``paper_char`` instead (a linear blend of the two parts' cosines).
    """

    def __init__(
        self,
        papers: Sequence[Doc],
        words: Any,
        docs: Any,
        corpus: Any,
        corpus_words: Any,
        real: int | None = None,
        char: float = 0.0,
        paper_char: float | None = None,
    ) -> None:
        self.papers = papers
        self._char = char
        self._paper_char = char if paper_char is None else paper_char
        self.real = len(papers) if real is None else real
        self.words = words
        self.docs = docs
        self._corpus = corpus
        self._corpus_words = corpus_words
        self._titles = [stem_tokens(shown(p.title)) for p in papers]
        self._bodies = [stem_tokens(shown(p.abstract)) for p in papers]
        self._found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._sims: np.ndarray | None = None
        self._wsims: np.ndarray | None = None
        self._total: np.ndarray | None = None
        self._inner: np.ndarray | None = None
        self._by_term: Any = None
        self._surface: dict[int, dict[str, str]] = {}

    def corpus_sims(self) -> np.ndarray:
        """Cosine of every corpus paper (rows) with every digest paper (columns), with
        the characters' share ``paper_char``."""
        if self._sims is None:
            both = np.asarray((self._corpus @ self.docs.T).toarray())
            self._sims = self._reweigh(both, self.word_corpus_sims)
        return self._sims

    def _reweigh(self, both: np.ndarray, words: Callable[[], np.ndarray]) -> np.ndarray:
        """``both`` (cosines with the characters' share ``char``) with the share
        ``paper_char``: both = (1 - c) words + c chars, so chars follow from both and words."""
        c, p = self._char, self._paper_char
        if p == c or c <= 0:
            return both
        w = words()
        chars = (both - (1.0 - c) * w) / c
        out: np.ndarray = (1.0 - p) * w + p * chars
        return out

    def word_corpus_sims(self) -> np.ndarray:
        """:meth:`corpus_sims` on words alone (what "similar to" means to a reader)."""
        if self._wsims is None:
            self._wsims = np.asarray((self._corpus_words @ self.words.T).toarray())
        return self._wsims

    def corpus_total(self) -> np.ndarray:
        if self._total is None:
            self._total = self.corpus_sims().sum(axis=0)
        return self._total

    def by_term(self) -> Any:
        """The word vectors transposed (term x paper, CSR): a query's terms as rows."""
        if self._by_term is None:
            self._by_term = self.words.T.tocsr()
        return self._by_term

    def inner(self) -> np.ndarray:
        """Cosine of every digest paper with every other (characters' share ``paper_char``)."""
        if self._inner is None:
            both = np.asarray((self.docs @ self.docs.T).toarray())
            self._inner = self._reweigh(both, lambda: np.asarray((self.words @ self.words.T).toarray()))
        return self._inner

    def matches(self, keyword: str) -> tuple[np.ndarray, np.ndarray]:
        """(in title, in abstract only) as boolean arrays over the papers."""
        hit = self._found.get(keyword)
        if hit is None:
            stems = Keyword.of(keyword).stems
            title = np.array([find(stems, t) for t in self._titles], dtype=bool)
            body = np.array([find(stems, b) for b in self._bodies], dtype=bool) & ~title
            hit = self._found[keyword] = (title, body)
        return hit

    def readable(self, i: int, terms: list[str]) -> list[str]:
        if i not in self._surface:
            doc = self.papers[i]
            words = written(f"{shown(doc.title)} {shown(doc.abstract)}")
            stems = [stem(fold(w)) for w in words]
            first: dict[str, str] = {}
            for k in range(len(words) - 1, -1, -1):
                first[stems[k]] = words[k]
                if k + 1 < len(words):
                    first[f"{stems[k]} {stems[k + 1]}"] = f"{words[k]} {words[k + 1]}"
            self._surface[i] = first
        return _readable(terms, self._surface[i])


def _readable(terms: list[str], surface: dict[str, str]) -> list[str]:
    """Stemmed terms as a paper writes them (``surface``: stem or stem pair -> its first
    words there: "video inpaint" -> "video inpainting"), dropping a term whose words an
    earlier one already shows."""
    shown: list[str] = []
    seen: list[set[str]] = []
    # A pair the paper writes across a stop word ("data for training") is not in
    # ``surface``: its words go one by one, not as a pair it never writes.
    split = [[t] if t in surface or " " not in t else t.split(" ") for t in terms]
    for term in (t for group in split for t in group):
        parts = term.split(" ")
        if any(set(parts) <= s for s in seen):
            continue
        seen.append(set(parts))
        shown.append(surface.get(term, term))
    # "click" says less than "click rate" shown beside it
    return [t for t, w in zip(shown, seen, strict=True) if not any(w < other for other in seen)]
