"""New ideas for the ranker (not re-tunes of its knobs), judged by leave-one-profile-out
cross-validation over all twelve judged profiles (dev 8 + held-out 4).

Each idea is a family of a few variants; for each profile, the variant (default included)
best on the other eleven by the objective (mean nDCG@10 of "all" and "likes") is scored on
it. An idea counts if that estimate beats the default's mean over the same twelve.

python -m bench.rank_ideas [--families a,b]

Found (default objective over the 12 profiles 0.889): only LSA on the query helps in a
way that survives other seeds and dimensions: "all" on dev +0.006 to +0.02 in every run
(3 seeds x 30/50/100 dims, arpack), held-out "all" unchanged (near its ceiling) except at
50 dims (-0.01, one profile); it is ``Settings.lsa`` (off by default; lsa-product here). LSA on the likes
swings +-0.03 with the SVD's seed (an ill-determined subspace on ~300 papers): noise.
The adaptive blend ("agree") wins dev "all" but loses held-out "all"; likes as query
expansion, like neighbours, liked titles, keyword IDF and a title field lose or tie.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse

from bench.rank_eval import DEV, HELDOUT, JudgedSet, load, ndcg, profile_for
from digest.rank.listing import Listing
from digest.rank.model import Doc, Profile, Ranker, _z

SETTINGS = ("all", "likes", "cold")
OBJECTIVE = ("all", "likes")

FAMILIES: dict[str, dict[str, dict[str, Any]]] = {
    "lsa": {
        "lsa100-q0.5-l0.5": {"lsa_k": 100, "lsa_q": 0.5, "lsa_l": 0.5},
        "lsa100-q1-l1": {"lsa_k": 100, "lsa_q": 1.0, "lsa_l": 1.0},
        "lsa100-l1": {"lsa_k": 100, "lsa_l": 1.0},
        "lsa50-q0.5-l0.5": {"lsa_k": 50, "lsa_q": 0.5, "lsa_l": 0.5},
        "lsa200-q0.5-l0.5": {"lsa_k": 200, "lsa_q": 0.5, "lsa_l": 0.5},
    },
    "lsa-k": {
        "lsa30-q0.5-l0.5": {"lsa_k": 30, "lsa_q": 0.5, "lsa_l": 0.5},
        "lsa50-q0.5-l0.5": {"lsa_k": 50, "lsa_q": 0.5, "lsa_l": 0.5},
        "lsa70-q0.5-l0.5": {"lsa_k": 70, "lsa_q": 0.5, "lsa_l": 0.5},
    },
    "lsa50": {
        "lsa50-q0.5": {"lsa_k": 50, "lsa_q": 0.5},
        "lsa50-l0.5": {"lsa_k": 50, "lsa_l": 0.5},
        "lsa50-q0.25-l0.25": {"lsa_k": 50, "lsa_q": 0.25, "lsa_l": 0.25},
        "lsa50-q1-l1": {"lsa_k": 50, "lsa_q": 1.0, "lsa_l": 1.0},
        "lsa50-q0.5-l0.5-arpack": {"lsa_k": 50, "lsa_q": 0.5, "lsa_l": 0.5, "arpack": True},
        "lsa50-q0.5-l0.5+agree": {"lsa_k": 50, "lsa_q": 0.5, "lsa_l": 0.5, "blend": "agree"},
    },
    "lsa-seeds": {
        f"lsa{k}-s{seed}": {"lsa_k": k, "lsa_q": 0.5, "lsa_l": 0.5, "seed": seed}
        for k in (30, 50, 70, 100)
        for seed in (1, 2, 3)
    },
    "lsa-query": {
        **{
            f"lsaq{k}-s{seed}": {"lsa_k": k, "lsa_q": 0.5, "seed": seed}
            for k in (30, 50, 100)
            for seed in (0, 1, 2)
        },
        **{f"lsaq{k}-arpack": {"lsa_k": k, "lsa_q": 0.5, "arpack": True} for k in (50, 100)},
    },
    "like-neighbours": {
        "nbrs-3": {"nbrs": 3},
        "nbrs-6": {"nbrs": 6},
    },
    "lsa-product": {f"lsa-{k}": {"lsa_k": k, "lsa_q": 0.5, "product": True} for k in (30, 50, 100)},
    "title-likes": {"title-likes-0.5": {"title_l": 0.5}, "title-likes-1": {"title_l": 1.0}},
    "blend": {
        "agree": {"blend": "agree"},
        "gate-30": {"blend": "gate", "gate": 30},
        "gate-50": {"blend": "gate", "gate": 50},
        "soft": {"blend": "soft"},
    },
    "expand": {
        "expand-0.5-t30": {"expand": 0.5, "terms": 30},
        "expand-1-t30": {"expand": 1.0, "terms": 30},
        "expand-0.5-t30-nolikes": {"expand": 0.5, "terms": 30, "drop_likes": True},
        "expand-1-all": {"expand": 1.0, "terms": 0},
    },
    "keyword-idf": {
        "kwidf-10": {"kw_idf": 10.0},
        "kwidf-5": {"kw_idf": 5.0},
    },
    "title": {
        "title-0.5": {"title_q": 0.5},
        "title-1": {"title_q": 1.0},
    },
}


class IdeaRanker(Ranker):
    """The default ranker's scoring (order only, no reasons) with experimental options."""

    opts: dict[str, Any]
    _lsa: dict[tuple[int, bool, int], tuple[Any, np.ndarray]]
    _product_lsa: dict[int, Any]

    def latent(self, k: int, arpack: bool = False, seed: int = 0) -> tuple[Any, np.ndarray]:
        """(fitted SVD, unit corpus rows in its space) on the word TF-IDF."""
        from sklearn.decomposition import TruncatedSVD

        if not hasattr(self, "_lsa"):
            self._lsa = {}
        key = (k, arpack, seed)
        if key not in self._lsa:
            k_eff = min(k, self._wmatrix.shape[0] - 1, self._wmatrix.shape[1] - 1)
            algorithm = "arpack" if arpack else "randomized"
            svd = TruncatedSVD(n_components=k_eff, algorithm=algorithm, n_iter=7, random_state=seed)
            z = svd.fit_transform(self._wmatrix)
            self._lsa[key] = (svd, _unit(z))
        return self._lsa[key]

    def order(self, papers: Sequence[Doc], profile: Profile) -> list[int]:
        s, o = self.settings, self.opts
        listing = Listing(papers, *self._doc_vectors(papers), self._matrix, self._wmatrix)
        n = len(papers)
        text = " ".join([profile.interests, *profile.keywords]).strip()
        likes_rows = [self._row[k] for k in dict.fromkeys(profile.likes) if k in self._row]
        score = np.zeros(n)
        qvec = self.vectors([text]) if text else None
        if o.get("expand") and likes_rows:
            qvec = self._expanded(qvec, likes_rows)
        if qvec is not None:
            score += s.query * self._norm((listing.docs @ qvec.T).toarray().ravel())
        if o.get("title_q") and text:
            titles = self._vectors([p.title for p in papers])[1]
            score += o["title_q"] * self._norm((titles @ self.vectors([text]).T).toarray().ravel())
        for k in dict.fromkeys(k.strip() for k in profile.keywords):
            if k:
                in_title, in_body = listing.matches(k)
                w = 1.0
                if o.get("kw_idf"):
                    m = int((in_title | in_body).sum())
                    w = min(1.0, math.log(n / max(m, 1)) / math.log(o["kw_idf"])) if m else 1.0
                score += w * np.where(in_title, s.keyword_title, np.where(in_body, s.keyword, 0.0))
        likes = self.like_scores(profile, listing)
        if likes is not None and not (o.get("drop_likes") and text and o.get("expand")):
            zl = self._norm(likes)
            w = s.likes
            if text and o.get("blend") == "agree":
                # likes weighed by how much they agree with the reader's words
                w *= max(0.0, float(np.corrcoef(score, zl)[0, 1])) if score.std() > 0 else 1.0
                score += w * zl
            elif text and o.get("blend") == "gate":
                top = np.lexsort((np.arange(n), -score))[: o["gate"]]
                gate = np.zeros(n)
                gate[top] = 1.0
                score += w * zl * gate
            elif text and o.get("blend") == "soft":
                score += w * zl / (1.0 + np.exp(-_z(score, True)))
            else:
                score += w * zl
        if o.get("title_l") and likes_rows:
            # liked titles against the digest's titles: a title names the topic densely
            liked = self._vectors([self.corpus[r].title for r in likes_rows])[1]
            titles = self._vectors([p.title for p in papers])[1]
            score += o["title_l"] * self._norm(np.asarray((titles @ liked.T).toarray()).mean(axis=1))
        if o.get("lsa_k"):
            score += self._lsa_scores(listing, text, likes_rows)
        feedback = s.feedback if not text else s.feedback_words  # as the ranker does
        if feedback > 0 and score.any():
            score += feedback * self._norm(self._feedback(listing, score))
        score = np.round(score, 6)
        sunk = np.zeros(n, dtype=bool)
        for k in dict.fromkeys(k.strip() for k in profile.exclude):
            if k:
                in_title, in_body = listing.matches(k)
                sunk |= in_title | in_body
        return [int(i) for i in np.lexsort((np.arange(n), -score, sunk))]

    def like_scores(self, profile: Profile, listing: Listing) -> np.ndarray | None:
        """With ``nbrs``: the liked papers' nearest corpus papers join the likes at half weight."""
        m = self.opts.get("nbrs")
        likes = [self._row[k] for k in dict.fromkeys(profile.likes) if k in self._row]
        if not m or not likes or profile.dislikes:
            return super().like_scores(profile, listing)
        centre = np.asarray(self._matrix[likes].mean(axis=0)).ravel()
        near = self._matrix @ centre
        near[likes] = -np.inf
        extra = [int(i) for i in np.argsort(-near, kind="stable")[:m]]
        sims = listing.corpus_sims()
        weights = {r: 1.0 for r in likes} | {r: 0.5 for r in extra}
        pos = sum(w * sims[r] for r, w in weights.items()) / sum(weights.values())
        rest = listing.corpus_total() - sims[list(weights)].sum(axis=0)
        background = self.settings.negative * rest / max(self._matrix.shape[0] - len(weights), 1)
        return np.asarray(pos - background)

    def _expanded(self, qvec: Any, rows: list[int]) -> Any:
        """Rocchio on the query: the liked papers' centroid minus the corpus centroid,
        pruned to its ``terms`` largest weights, added to the (unit) query."""
        o = self.opts
        centroid = np.asarray(self._matrix[rows].mean(axis=0)).ravel()
        centroid -= np.asarray(self._matrix.mean(axis=0)).ravel()
        centroid = np.maximum(centroid, 0.0)
        if o.get("terms"):
            keep = np.argsort(-centroid, kind="stable")[: o["terms"]]
            pruned = np.zeros_like(centroid)
            pruned[keep] = centroid[keep]
            centroid = pruned
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        q = centroid * o["expand"]
        if qvec is not None:
            q = q + qvec.toarray().ravel()
        return sparse.csr_matrix(q)

    def _lsa_scores(self, listing: Listing, text: str, rows: list[int]) -> np.ndarray:
        o = self.opts
        if o.get("product"):  # the ranker's own LSA (digest/rank/lsa.py): query part only
            from digest.rank.lsa import Latent

            space = self._product_lsa.setdefault(o["lsa_k"], Latent(self._wmatrix, o["lsa_k"]))
            q = space.project(self._word.transform([text]))[0] if text else None
            lq = space.project(listing.words) @ q if q is not None else np.zeros(len(listing.papers))
            return o["lsa_q"] * self._norm(lq) if q is not None else lq
        svd, corpus = self.latent(o["lsa_k"], bool(o.get("arpack")), o.get("seed", 0))
        docs = _unit(svd.transform(listing.words))
        out = np.zeros(len(listing.papers))
        if text and o.get("lsa_q"):
            q = _unit(svd.transform(self._word.transform([text])))[0]
            out += o["lsa_q"] * self._norm(docs @ q)
        if rows and o.get("lsa_l"):
            liked = corpus[rows].mean(axis=0)
            rest = np.delete(corpus, rows, axis=0).mean(axis=0)
            out += o["lsa_l"] * self._norm(docs @ (liked - self.settings.negative * rest))
        return out


def _unit(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    unit: np.ndarray = m / np.maximum(norms, 1e-12)
    return unit


def scores(js: JudgedSet, variants: dict[str, dict[str, Any]]) -> dict[str, dict[tuple[str, str], float]]:
    ranker = IdeaRanker(js.corpus)
    ranker._product_lsa = {}
    out = {}
    for name, opts in variants.items():
        ranker.opts = opts
        out[name] = {
            (setting, p["name"]): ndcg(ranker.order(js.papers, profile_for(p, setting)), js.grades[p["name"]])
            for setting in SETTINGS
            for p in js.profiles
        }
    return out


def objective(row: dict[tuple[str, str], float], who: Sequence[str]) -> float:
    return statistics.fmean(row[(s, p)] for s in OBJECTIVE for p in who)


def lopo(table: dict[str, dict[tuple[str, str], float]], names: Sequence[str]) -> tuple[float, list[str]]:
    """Leave one profile out: the variant best on the others (ties: first listed), scored on it."""
    held, picks = [], []
    for name in names:
        rest = [n for n in names if n != name]
        choice = max(table, key=lambda v: objective(table[v], rest))
        picks.append(choice)
        held.append(objective(table[choice], [name]))
    return statistics.fmean(held), picks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rank_ideas", description=__doc__.splitlines()[0])
    parser.add_argument("--families", help="comma-separated (default: all)")
    args = parser.parse_args(argv)
    chosen = args.families.split(",") if args.families else list(FAMILIES)
    variants: dict[str, dict[str, Any]] = {"default": {}}
    for f in chosen:
        variants.update(FAMILIES[f])
    dev, held = load(DEV).as_digest(), load(HELDOUT).as_digest()  # as the product ranks (bench/rank_eval.py)
    table = scores(dev, variants)
    for name, row in scores(held, variants).items():
        table[name].update(row)
    dev_names = [p["name"] for p in dev.profiles]
    held_names = [p["name"] for p in held.profiles]
    everyone = dev_names + held_names

    def cell(row: dict[tuple[str, str], float], who: Sequence[str], s: str) -> str:
        v = [row[(s, n)] for n in who]
        return f"{statistics.fmean(v):.3f} ({min(v):.2f})"

    print(
        "| variant | dev all | dev likes | dev cold | held all | held likes | held cold"
        " | obj dev | obj held | obj 12 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, row in table.items():
        cells = [cell(row, dev_names, s) for s in SETTINGS] + [cell(row, held_names, s) for s in SETTINGS]
        objs = [objective(row, w) for w in (dev_names, held_names, everyone)]
        print(f"| {n} | {' | '.join(cells)} | {' | '.join(f'{x:.3f}' for x in objs)} |")
    base = objective(table["default"], everyone)
    print(f"\ndefault objective over 12 profiles: {base:.4f}")
    for f in chosen:
        sub = {"default": table["default"], **{v: table[v] for v in FAMILIES[f]}}
        est, picks = lopo(sub, everyone)
        print(f"LOPO CV {f}: {est:.4f} ({est - base:+.4f}); picks: {', '.join(picks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
