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


class Latent:
    """The corpus's first ``dims`` singular directions (fewer on a small corpus)."""

    def __init__(self, words: Any, dims: int) -> None:
        rows, cols = words.shape
        self.asked = dims
        self.dims = max(1, min(dims, rows - 1, cols - 1))
        self._svd: TruncatedSVD | None = None
        if rows > 2 and cols > 2:
            self._svd = TruncatedSVD(n_components=self.dims, algorithm="randomized", n_iter=7, random_state=0)
            self._svd.fit(words)

    def project(self, words: Any) -> np.ndarray:
        """Unit rows in the latent space of word TF-IDF rows (zero rows stay zero)."""
        if self._svd is None:
            return np.zeros((words.shape[0], 1))
        z = np.asarray(self._svd.transform(words))
        unit: np.ndarray = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return unit
