"""The ranker: TF-IDF fitted on the corpus, a query from the reader's words, keyword
matches, and a linear model of the reader's likes and dislikes.

Pure: everything it needs is passed in; same inputs, same floats, same order. scikit-learn
and SciPy are imported here only, and this module is imported only when ranking is asked
for (see :mod:`digest.rank`), so the CLI starts without them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.svm import LinearSVC

from digest.rank.bm25 import BM25
from digest.rank.listing import Listing, reference
from digest.rank.reasons import Reasons
from digest.rank.text import shown, stem, stem_tokens

_STOP = frozenset(stem(w) for w in ENGLISH_STOP_WORDS) | frozenset(ENGLISH_STOP_WORDS)
PICK = 1.0  # a top pick scores at least this: one spread above the typical paper


@dataclass(frozen=True, slots=True)
class Doc:
    """What ranking reads of a paper: its key (identity), title and abstract."""

    key: str
    title: str
    abstract: str


@dataclass(frozen=True, slots=True)
class Profile:
    """A reader's preferences. ``likes``/``dislikes`` are paper keys (resolve titles first
    with :func:`digest.rank.resolve_papers`); keys not in the corpus are ignored."""

    interests: str = ""
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    likes: tuple[str, ...] = ()
    dislikes: tuple[str, ...] = ()

    @property
    def personal(self) -> bool:
        """Whether there is anything to rank by; if not, the listing order stands."""
        return bool(self.interests.strip() or self.keywords or self.likes or self.dislikes)


@dataclass(frozen=True, slots=True)
class Ranked:
    """One paper of the digest in a reader's order. ``index`` is its listing position
    (0-based); ``excluded`` is true when an excluded keyword matched (it sorts last);
    ``pick`` is known for the explained papers only (see :meth:`Ranker.rank`)."""

    index: int
    key: str
    score: float
    reasons: tuple[str, ...]
    excluded: bool = False
    pick: bool = False  # a top pick: scores PICK or more, for a reason the reader gave


@dataclass(frozen=True, slots=True)
class Settings:
    """Weights of the blend. Each similarity is standardised over the digest (median and
    MAD, so one liked paper listed again does not flatten the rest), so the weights compare
    like with like: a keyword match adds ``keyword`` such spreads.

    Chosen on the dev set (tests/data/rank, see bench/rank_eval.py) among a handful of
    round values; the SVM follows arxiv-sanity-lite (balanced classes, C=0.01). LSA on
    the query: picked in 11 of 12 leave-one-profile-out splits (bench/rank_ideas.py).
    """

    query: float = 1.0
    keyword: float = 2.0
    keyword_title: float = 2.0
    likes: float = 1.0
    char_weight: float = 0.5  # share of the cosine from character 3-5-grams (morphology)
    paper_char: float = 0.2  # the same between two papers (likes, feedback): words say more there
    title_repeat: int = 2
    svm_c: float = 0.01
    dislike: float = 1.0  # weight of the disliked papers' centroid against the liked one
    dislike_weight: float = 3.0  # "svm": a dislike counts as this many negatives from history
    like_mode: str = "rocchio"  # "rocchio", "svm", "knn", "max" or "mix": see Ranker.like_scores
    negative: float = 2.0  # Rocchio: weight of the centroid of the papers not liked (see README)
    prf: float = 0.0  # query expansion: share of the query moved to its top corpus docs
    prf_docs: int = 5
    robust: bool = True
    feedback: float = 1.0  # weight of similarity to the digest's first ranked papers (votes only)
    feedback_words: float = 0.0  # the same when the reader gave words (interests, keywords)
    feedback_docs: int = 5
    like_max: float = 0.5  # "mix": share of the best single like (the rest: their mean)
    fusion: str = "z"  # "z": standardised scores; "rank": standardised ranks
    rrf_k: float = 60.0
    weighting: str = "tfidf"  # word part: "tfidf" (sublinear) or "bm25" (k1 1.2, b 0.75)
    lsa: float = 0.5  # weight of the query's cosine in an LSA space (digest/rank/lsa.py); 0: off
    lsa_dims: int = 100
    small: int = 50  # a digest of fewer papers is scored among corpus papers up to this many


def _analyzer(text: str) -> list[str]:
    words = [w for w in stem_tokens(text) if w not in _STOP and not w.isdigit()]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def _text(doc: Doc, repeat: int) -> str:
    return ". ".join([shown(doc.title)] * repeat + [shown(doc.abstract)])  # as the pages show it


def _z(values: np.ndarray, robust: bool = False) -> np.ndarray:
    """Standardised ``values``. Robust: centred on the median and scaled by the MAD, but
    never by less than half the standard deviation (a query most papers share no word with
    has a MAD near zero, which would blow its few matches up to dominate everything)."""
    std = float(values.std())
    if not math.isfinite(std) or std < 1e-12:
        return np.zeros_like(values)
    if robust:
        centre = float(np.median(values))
        spread = max(1.4826 * float(np.median(np.abs(values - centre))), 0.5 * std)
    else:
        centre, spread = float(values.mean()), std
    return (values - centre) / spread


@dataclass
class Ranker:
    """Fitted once on a corpus (all stored papers, or the most recent ones plus every liked
    paper), then ranks any number of digests for any number of readers."""

    corpus: Sequence[Doc]
    settings: Settings = field(default_factory=Settings)
    _row: dict[str, int] = field(init=False, repr=False)
    _word: Any = field(init=False, repr=False)
    _char: Any = field(init=False, repr=False)
    _matrix: Any = field(init=False, repr=False)
    _wmatrix: Any = field(init=False, repr=False)
    _latent: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        s = self.settings
        self._row = {}
        for i, doc in enumerate(self.corpus):
            self._row.setdefault(doc.key, i)
        texts = [_text(d, s.title_repeat) for d in self.corpus]
        if s.weighting == "bm25":
            self._word = BM25(_analyzer)
        else:
            self._word = TfidfVectorizer(analyzer=_analyzer, sublinear_tf=True, dtype=np.float64)
        word = self._word.fit_transform(texts)
        self._wmatrix = word
        mats = [word * math.sqrt(1.0 - s.char_weight)]
        self._char = None
        if s.char_weight > 0:
            # accents kept here: folding them too cost the held-out "likes" 0.016 nDCG@10
            self._char = TfidfVectorizer(
                analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=True, dtype=np.float64
            )
            mats.append(self._char.fit_transform(texts) * math.sqrt(s.char_weight))
        self._matrix = sparse.hstack(mats, format="csr")
        self._terms = self._word.get_feature_names_out()
        self._reasons = Reasons(self.corpus, self._row, self._terms, word)

    def vectors(self, texts: Sequence[str]) -> Any:
        """Rows of the same space as the corpus (unit length per part)."""
        return self._vectors(texts)[1]

    def _vectors(self, texts: Sequence[str]) -> tuple[Any, Any]:
        """(word part alone, whole vector) of ``texts``."""
        s = self.settings
        word = self._word.transform(texts)
        mats = [word * math.sqrt(1.0 - s.char_weight)]
        if self._char is not None:
            mats.append(self._char.transform(texts) * math.sqrt(s.char_weight))
        return word, sparse.hstack(mats, format="csr")

    def doc_vectors(self, papers: Sequence[Doc]) -> Any:
        """The papers' vectors (their corpus rows when they are in the corpus)."""
        return self._doc_vectors(papers)[1]

    def _doc_vectors(self, papers: Sequence[Doc]) -> tuple[Any, Any]:
        rows = [self._row.get(p.key) for p in papers]
        if all(r is not None for r in rows):
            return self._wmatrix[rows], self._matrix[rows]
        return self._vectors([_text(p, self.settings.title_repeat) for p in papers])

    def _latent_space(self) -> Any:
        """The LSA space of the corpus's words, fitted on first use."""
        if self._latent is None or self._latent.asked != self.settings.lsa_dims:
            from digest.rank.lsa import Latent

            self._latent = Latent(self._wmatrix, self.settings.lsa_dims)
        return self._latent

    def _norm(self, values: np.ndarray) -> np.ndarray:
        """A component standardised over the digest; with ``fusion="rank"`` its ranks are
        (reciprocal rank, ``1 / (rrf_k + rank)``, then standardised so that a keyword
        match still weighs a fixed number of spreads)."""
        s = self.settings
        if s.fusion == "rank":
            order = np.lexsort((np.arange(len(values)), -values))
            ranks = np.empty(len(values))
            ranks[order] = np.arange(len(values))
            values = 1.0 / (s.rrf_k + ranks)
        return _z(values, s.robust)

    # -- the components -------------------------------------------------------------------

    def query_vector(self, profile: Profile) -> Any | None:
        text = " ".join([profile.interests, *profile.keywords]).strip()
        if not text:
            return None
        q = self.vectors([text])
        s = self.settings
        if s.prf > 0:
            sims = (self._matrix @ q.T).toarray().ravel()
            top = np.argsort(-sims, kind="stable")[: s.prf_docs]
            centroid = np.asarray(self._matrix[top].mean(axis=0))
            q = sparse.csr_matrix((1 - s.prf) * q.toarray() + s.prf * centroid)
        return q

    def like_scores(self, profile: Profile, listing: Listing) -> np.ndarray | None:
        """How much each paper of the digest resembles what the reader liked rather than
        the rest (None without votes).

        "rocchio" (default): the liked papers' centroid minus ``negative`` times the
        centroid of every other corpus paper: the small-C limit of the class-balanced linear
        SVM of arxiv-sanity-lite (every example a margin violator), computed from the
        digest's similarities to the corpus, so a reader costs a few row lookups; minus
        ``dislike`` times the disliked papers' centroid, so "less like this" weighs as much
        as "more like this" (in the background alone one dislike among thousands of papers
        is lost). "svm" fits that SVM (LinearSVC, C=``svm_c``, a dislike weighing
        ``dislike_weight`` examples) per reader; "knn" is the mean similarity to the liked
        papers. "max" standardises each liked paper's Rocchio score over the digest and keeps
        the best (a reader whose likes are on different topics); "mix" blends that best with
        their mean (``like_max``). On the judged sets neither beats the centroid
        (bench/rank_tune.py).
        """
        likes = [self._row[k] for k in dict.fromkeys(profile.likes) if k in self._row]
        dislikes = [self._row[k] for k in dict.fromkeys(profile.dislikes) if k in self._row]
        if not likes and not dislikes:
            return None
        s = self.settings
        sims = listing.corpus_sims()  # corpus x digest
        if not likes:
            return np.asarray(-sims[dislikes].mean(axis=0))
        disliked = [r for r in dislikes if r not in likes]
        if s.like_mode == "svm":
            y = np.zeros(self._matrix.shape[0], dtype=np.int64)
            y[likes] = 1
            weight = np.ones(self._matrix.shape[0])
            weight[disliked] = s.dislike_weight
            clf = LinearSVC(class_weight="balanced", C=s.svm_c, max_iter=10000, tol=1e-6, random_state=0)
            clf.fit(self._matrix, y, sample_weight=weight)
            return np.asarray(clf.decision_function(listing.docs)).ravel()
        against = s.dislike * sims[disliked].mean(axis=0) if disliked else 0.0
        if s.like_mode == "knn":
            return np.asarray(sims[likes].mean(axis=0) - against)
        others = listing.corpus_total() - sims[likes].sum(axis=0)
        background = s.negative * others / max(self._matrix.shape[0] - len(likes), 1)
        if s.like_mode in ("max", "mix") and len(likes) > 1:
            per = np.stack([_z(np.asarray(sims[r] - background - against), s.robust) for r in likes])
            best = np.asarray(per.max(axis=0))
            return best if s.like_mode == "max" else s.like_max * best + (1 - s.like_max) * per.mean(axis=0)
        return np.asarray(sims[likes].mean(axis=0) - background - against)

    def extra_scores(self, listing: Listing, profile: Profile) -> np.ndarray | None:
        """More evidence for the digest's papers, added to the score before the feedback
        step; None here. A subclass adds another signal this way (bench/rank_embed.py:
        sentence embeddings)."""
        return None

    def rank(self, papers: Sequence[Doc], profile: Profile, explain: int | None = None) -> tuple[Ranked, ...]:
        """``papers`` (a digest, in listing order) best first for ``profile``.

        Excluded papers go last; ties keep the listing order. Reasons are written for the
        first ``explain`` papers of the result (all when None); keyword and exclusion
        reasons always. A profile with nothing to rank by scores every paper 0, so the
        listing order stands (excluded papers still last).
        """
        return self.rank_many(papers, [profile], explain)[0]

    def rank_many(
        self, papers: Sequence[Doc], profiles: Sequence[Profile], explain: int | None = None
    ) -> list[tuple[Ranked, ...]]:
        """:meth:`rank` for many readers of one digest: the digest's vectors and keyword
        matches are computed once and every reader's query in one transform."""
        if not papers:
            return [() for _ in profiles]
        listed = [*papers, *reference(self.corpus, papers, self.settings.small)]
        listing = Listing(
            listed,
            *self._doc_vectors(listed),
            self._matrix,
            self._wmatrix,
            real=len(papers),
            char=self.settings.char_weight if self._char is not None else 0.0,
            paper_char=self.settings.paper_char,
        )
        texts = [" ".join([p.interests, *p.keywords]).strip() for p in profiles]
        asked = [t for t in texts if t]
        words: Any = None
        sims = lsims = np.zeros((len(listed), 0))
        if asked:
            words, queries = self._vectors(asked)
            sims = (listing.docs @ queries.T).toarray()
            if self.settings.lsa > 0:
                latent = self._latent_space()
                lsims = latent.project(listing.words) @ latent.project(words).T
        column = iter(range(sims.shape[1]))
        out = []
        for profile, text in zip(profiles, texts, strict=True):
            j = next(column) if text else None
            q = None if j is None else sims[:, j]
            qw = None if j is None else words[j]
            lq = None if j is None or not lsims.shape[1] else lsims[:, j]
            out.append(self._rank_one(listing, profile, q, qw, lq, explain))
        return out

    def _rank_one(
        self,
        listing: Listing,
        profile: Profile,
        q: np.ndarray | None,
        qw: Any,
        lq: np.ndarray | None,
        explain: int | None,
    ) -> tuple[Ranked, ...]:
        s = self.settings
        papers = listing.papers
        n = len(papers)
        score = np.zeros(n)
        if q is not None:
            score += s.query * self._norm(q)
        if lq is not None:
            score += s.lsa * self._norm(lq)
        likes = self.like_scores(profile, listing)
        if likes is not None:
            score += s.likes * self._norm(likes)
        extra = self.extra_scores(listing, profile)
        if extra is not None:
            score += extra
        hits: list[list[str]] = [[] for _ in range(n)]
        ex: list[list[str]] = [[] for _ in range(n)]
        for k in dict.fromkeys(k.strip() for k in profile.keywords):
            if k:
                in_title, in_body = listing.matches(k)
                score += np.where(in_title, s.keyword_title, np.where(in_body, s.keyword, 0.0))
                for m in np.flatnonzero(in_title | in_body):
                    hits[m].append(k)
        for k in dict.fromkeys(k.strip() for k in profile.exclude):
            if k:
                in_title, in_body = listing.matches(k)
                for m in np.flatnonzero(in_title | in_body):
                    ex[m].append(k)
        # Feedback sharpens the vague query three liked papers make, but drifts from a
        # reader's own words: off for them (bench/rank_eval.py, both judged sets).
        feedback = s.feedback if q is None else s.feedback_words
        if feedback > 0 and score.any():
            score += feedback * self._norm(self._feedback(listing, score))
        score = np.round(score, 6)
        sunk = np.array([bool(e) for e in ex])
        order = [int(i) for i in np.lexsort((np.arange(n), -score, sunk)) if i < listing.real]
        explained = sorted(order if explain is None else order[:explain])
        leaders = order[: s.feedback_docs]
        weak = {i for i in explained if score[i] >= PICK}  # may be given a weak reason
        why, grounded = (
            self._reasons.explain(listing, profile, explained, qw, leaders, weak)
            if score.any()
            else ({}, set())
        )
        out = []
        for i in order:
            reasons: list[str] = []
            if hits[i]:
                reasons.append("keywords: " + ", ".join(hits[i]))
            reasons.extend(why.get(i, ()))
            if ex[i]:
                reasons.append("excluded: " + ", ".join(ex[i]))
            pick = i in weak and not ex[i] and (bool(hits[i]) or i in grounded)
            out.append(Ranked(i, papers[i].key, float(score[i]), tuple(reasons), bool(ex[i]), pick))
        return tuple(out)

    def _feedback(self, listing: Listing, score: np.ndarray) -> np.ndarray:
        """The digest's own best papers by ``score`` as one more query: pulls up papers that
        say the same thing in other words (pseudo-relevance feedback). A top paper is
        compared with the others only (its similarity to itself would lock the first
        ranking in)."""
        n = len(score)
        top = np.lexsort((np.arange(n), -score))[: self.settings.feedback_docs]
        inner = listing.inner()
        fb: np.ndarray = inner[:, top].sum(axis=1) / len(top)
        if len(top) > 1:
            fb[top] = (fb[top] * len(top) - inner[top, top]) / (len(top) - 1)
        return fb
