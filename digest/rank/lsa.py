"""Latent semantic analysis (LSA) for the ranker: a truncated SVD of the corpus's word
TF-IDF, so that a reader's words meet an abstract that says the same in other words.

Pure and deterministic: fitted once per corpus with a fixed seed (randomized SVD);
the same corpus gives the same space on the same machine. Imported only by
:mod:`digest.rank.model` when ``Settings.lsa`` is on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import TruncatedSVD

# The terms in most papers: the SVD's cost grows with the columns, and the dev set's
# nDCG@10 is the same with 2,000 to 20,000 of them (bench/rank_ideas.py).
FEATURES = 5_000


class Latent:
    """The corpus's first ``dims`` singular directions (fewer on a small corpus), over
    its ``features`` most widespread terms (ties: vocabulary order)."""

    def __init__(self, words: Any, dims: int, features: int = FEATURES) -> None:
        self.asked = dims
        df = words.getnnz(axis=0)
        self._columns = np.sort(np.argsort(-df, kind="stable")[:features])
        rows, cols = words.shape[0], len(self._columns)
        self.dims = max(1, min(dims, rows - 1, cols - 1))
        self._svd: TruncatedSVD | None = None
        if rows > 2 and cols > 2:
            self._svd = TruncatedSVD(n_components=self.dims, algorithm="randomized", n_iter=4, random_state=0)
            self._svd.fit(words[:, self._columns])

    def project(self, words: Any) -> np.ndarray:
        """Unit rows in the latent space of word TF-IDF rows (zero rows stay zero)."""
        if self._svd is None:
            return np.zeros((words.shape[0], 1))
        z = np.asarray(self._svd.transform(words[:, self._columns]))
        unit: np.ndarray = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return unit
