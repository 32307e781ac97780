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

from digest.rank.text import Keyword, find, stem, stem_tokens, tokens

_STOP = frozenset(stem(w) for w in ENGLISH_STOP_WORDS) | frozenset(ENGLISH_STOP_WORDS)


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
    (0-based); ``excluded`` is true when an excluded keyword matched (it sorts last)."""

    index: int
    key: str
    score: float
    reasons: tuple[str, ...]
    excluded: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """Weights of the blend. Each similarity is standardised over the digest (median and
    MAD, so one liked paper listed again does not flatten the rest), so the weights compare
    like with like: a keyword match adds ``keyword`` such spreads.

    Chosen on the dev set (tests/data/rank, see bench/rank_eval.py) among a handful of
    round values; the SVM follows arxiv-sanity-lite (balanced classes, C=0.01).
    """

    query: float = 1.0
    keyword: float = 2.0
    keyword_title: float = 2.0
    likes: float = 1.0
    char_weight: float = 0.5  # share of the cosine from character 3-5-grams (morphology)
    title_repeat: int = 2
    svm_c: float = 0.01
    dislike_weight: float = 3.0  # a dislike counts as this many negatives from history
    like_mode: str = "svm"  # "svm", "knn" (mean cosine to likes) or "blend"
    prf: float = 0.0  # query expansion: share of the query moved to its top corpus docs
    prf_docs: int = 5
    robust: bool = True
    consensus: float = 0.0  # weight of the terms shared by at least two liked papers
    feedback: float = 1.0  # weight of similarity to the digest's first ranked papers
    feedback_docs: int = 5


def _analyzer(text: str) -> list[str]:
    words = [w for w in stem_tokens(text) if w not in _STOP and not w.isdigit()]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def _text(doc: Doc, repeat: int) -> str:
    return ". ".join([doc.title] * repeat + [doc.abstract])


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

    def __post_init__(self) -> None:
        s = self.settings
        self._row = {}
        for i, doc in enumerate(self.corpus):
            self._row.setdefault(doc.key, i)
        texts = [_text(d, s.title_repeat) for d in self.corpus]
        self._word = TfidfVectorizer(analyzer=_analyzer, sublinear_tf=True, dtype=np.float64)
        word = self._word.fit_transform(texts)
        self._wmatrix = word
        mats = [word * math.sqrt(1.0 - s.char_weight)]
        self._char = None
        if s.char_weight > 0:
            self._char = TfidfVectorizer(
                analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=True, dtype=np.float64
            )
            mats.append(self._char.fit_transform(texts) * math.sqrt(s.char_weight))
        self._matrix = sparse.hstack(mats, format="csr")
        self._terms = self._word.get_feature_names_out()

    def vectors(self, texts: Sequence[str]) -> Any:
        """Rows of the same space as the corpus (unit length per part)."""
        s = self.settings
        mats = [self._word.transform(texts) * math.sqrt(1.0 - s.char_weight)]
        if self._char is not None:
            mats.append(self._char.transform(texts) * math.sqrt(s.char_weight))
        return sparse.hstack(mats, format="csr")

    def doc_vectors(self, papers: Sequence[Doc]) -> Any:
        rows = [self._row.get(p.key) for p in papers]
        if all(r is not None for r in rows):
            return self._matrix[rows]
        return self.vectors([_text(p, self.settings.title_repeat) for p in papers])

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

    def like_scores(self, profile: Profile, docs: Any) -> np.ndarray | None:
        likes = [self._row[k] for k in dict.fromkeys(profile.likes) if k in self._row]
        dislikes = [self._row[k] for k in dict.fromkeys(profile.dislikes) if k in self._row]
        if not likes and not dislikes:
            return None
        s = self.settings
        knn = None
        if likes and s.like_mode in ("knn", "blend"):
            knn = (docs @ self._matrix[likes].T).toarray().mean(axis=1)
            if dislikes:
                knn = knn - (docs @ self._matrix[dislikes].T).toarray().mean(axis=1)
            if s.like_mode == "knn":
                return np.asarray(knn).ravel()
        if not likes:
            return -np.asarray((docs @ self._matrix[dislikes].T).toarray().mean(axis=1)).ravel()
        y = np.zeros(self._matrix.shape[0], dtype=np.int64)
        y[likes] = 1
        weight = np.ones(self._matrix.shape[0])
        weight[dislikes] = s.dislike_weight
        clf = LinearSVC(class_weight="balanced", C=s.svm_c, max_iter=10000, tol=1e-6, random_state=0)
        clf.fit(self._matrix, y, sample_weight=weight)
        svm = np.asarray(clf.decision_function(docs)).ravel()
        if knn is None:
            return svm
        blended: np.ndarray = _z(svm) + _z(np.asarray(knn).ravel())
        return blended

    def rank(self, papers: Sequence[Doc], profile: Profile, explain: int | None = None) -> tuple[Ranked, ...]:
        """``papers`` (a digest, in listing order) best first for ``profile``.

        Excluded papers go last; ties keep the listing order. Reasons are written for the
        first ``explain`` papers of the result (all when None); keyword and exclusion
        reasons always. A profile with nothing to rank by scores every paper 0, so the
        listing order stands (excluded papers still last).
        """
        n = len(papers)
        if n == 0:
            return ()
        s = self.settings
        score = np.zeros(n)
        docs = self.doc_vectors(papers)
        q = self.query_vector(profile)
        if q is not None:
            score += s.query * _z((docs @ q.T).toarray().ravel(), s.robust)
        likes = self.like_scores(profile, docs)
        if likes is not None:
            score += s.likes * _z(likes, s.robust)
        keywords = [Keyword.of(k) for k in profile.keywords if k.strip()]
        excluded = [Keyword.of(k) for k in profile.exclude if k.strip()]
        hits: list[list[str]] = [[] for _ in range(n)]
        ex: list[list[str]] = [[] for _ in range(n)]
        if keywords or excluded:
            for i, p in enumerate(papers):
                title, body = stem_tokens(p.title), stem_tokens(p.abstract)
                for kw in keywords:
                    if find(kw.stems, title):
                        score[i] += s.keyword_title
                        hits[i].append(kw.text)
                    elif find(kw.stems, body):
                        score[i] += s.keyword
                        hits[i].append(kw.text)
                ex[i] = [kw.text for kw in excluded if find(kw.stems, title) or find(kw.stems, body)]
        if s.feedback > 0 and score.any():
            # The digest's own best papers, by everything above, as one more query: pulls
            # up papers that say the same thing in other words (pseudo-relevance feedback).
            # A top paper is compared with the others only (its similarity to itself
            # would lock the first ranking in).
            top = np.lexsort((np.arange(n), -score))[: s.feedback_docs]
            total = np.asarray(docs[top].sum(axis=0)).ravel()
            sims = docs @ total / len(top)
            if len(top) > 1:
                own = np.asarray(docs[top].multiply(docs[top]).sum(axis=1)).ravel()
                sims[top] = (sims[top] * len(top) - own) / (len(top) - 1)
            score += s.feedback * _z(sims, s.robust)
        score = np.round(score, 6)
        order = sorted(range(n), key=lambda i: (bool(ex[i]), -score[i], i))
        explained = set(order if explain is None else order[:explain])
        why = self._explain(papers, profile, sorted(explained), q) if score.any() else {}
        out = []
        for i in order:
            reasons: list[str] = []
            if hits[i]:
                reasons.append("keywords: " + ", ".join(hits[i]))
            reasons.extend(why.get(i, ()))
            if ex[i]:
                reasons.append("excluded: " + ", ".join(ex[i]))
            out.append(Ranked(i, papers[i].key, float(score[i]), tuple(reasons), bool(ex[i])))
        return tuple(out)

    def _explain(
        self, papers: Sequence[Doc], profile: Profile, which: list[int], q: Any | None
    ) -> dict[int, list[str]]:
        """Readable reasons: the query terms that weigh most in a paper, and the liked (or
        disliked) paper it is most similar to."""
        if not which:
            return {}
        s = self.settings
        chosen = [papers[i] for i in which]
        rows = [self._row.get(p.key) for p in chosen]
        if all(r is not None for r in rows):
            words = self._wmatrix[rows]
        else:
            words = self._word.transform([_text(p, s.title_repeat) for p in chosen])
        why: dict[int, list[str]] = {i: [] for i in which}
        if q is not None:
            text = " ".join([profile.interests, *profile.keywords])
            qw = self._word.transform([text])
            contrib = words.multiply(qw).tocsr()
            for j, i in enumerate(which):
                row = contrib.getrow(j)
                if row.nnz == 0:
                    continue
                best = sorted(zip(-row.data, row.indices, strict=True))[:3]
                terms = [_surface(self._terms[t], papers[i]) for _, t in best]
                why[i].append("terms: " + ", ".join(dict.fromkeys(terms)))
        for label, keys in (("similar to", profile.likes), ("like what you disliked", profile.dislikes)):
            known = [k for k in dict.fromkeys(keys) if k in self._row]
            if not known:
                continue
            sims = (words @ self._wmatrix[[self._row[k] for k in known]].T).toarray()
            for j, i in enumerate(which):
                near = int(np.argmax(sims[j]))
                if sims[j, near] >= 0.05 and known[near] != papers[i].key:
                    why[i].append(f"{label}: {self.corpus[self._row[known[near]]].title}")
        return why


def _surface(term: str, doc: Doc) -> str:
    """The words of ``doc`` a stemmed term came from ("video inpaint" -> "video inpainting")."""
    words = tokens(f"{doc.title} {doc.abstract}")
    stems = [stem(w) for w in words]
    parts = term.split(" ")
    for k in range(len(stems) - len(parts) + 1):
        if stems[k : k + len(parts)] == parts:
            return " ".join(words[k : k + len(parts)])
    return term
