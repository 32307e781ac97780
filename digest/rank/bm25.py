"""BM25 term weights for the ranker's word part (``Settings(weighting="bm25")``).

A drop-in for the fitted ``TfidfVectorizer`` (``fit_transform``, ``transform``,
``get_feature_names_out``): the same analyzer, Robertson-Sparck Jones idf and BM25's
saturating, length-normalised term frequency, each row scaled to unit length so that dot
products stay cosines. Tried against the sublinear TF-IDF on the judged sets (see
bench/rank_tune.py): no better, so not the default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize


class BM25:
    """BM25 term weights (Robertson idf, k1 1.2, b 0.75), rows scaled to unit length."""

    def __init__(self, analyzer: Callable[[str], list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._counts = CountVectorizer(analyzer=analyzer, dtype=np.float64)
        self._idf = np.zeros(0)
        self._avgdl = 1.0

    def fit_transform(self, texts: Sequence[str]) -> Any:
        counts = self._counts.fit_transform(texts).tocsr()
        n = counts.shape[0]
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        self._idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        self._avgdl = float(counts.sum()) / max(n, 1)
        return self._weigh(counts)

    def transform(self, texts: Sequence[str]) -> Any:
        return self._weigh(self._counts.transform(texts).tocsr())

    def get_feature_names_out(self) -> Any:
        return self._counts.get_feature_names_out()

    def _weigh(self, counts: Any) -> Any:
        counts = counts.astype(np.float64)
        length = np.asarray(counts.sum(axis=1)).ravel()
        norm = self.k1 * (1 - self.b + self.b * length / max(self._avgdl, 1e-9))
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        tf = counts.data
        counts.data = tf * (self.k1 + 1) / (tf + norm[rows]) * self._idf[counts.indices]
        return normalize(counts)
