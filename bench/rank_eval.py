"""Ranking quality on a judged set: nDCG@10 (gains 0/1/3) and P@10 (grade >= 1) of the
ranker against listing order, BM25 and TF-IDF cosine, per profile and setting.

The digest is ranked as the product ranks it: without the papers the history dump
already held (``in_history``), which a digest never lists again. ``--with-seen`` keeps
them, as the numbers before stop 23 did (a liked paper listed again then ranks first).

python -m bench.rank_eval                      # the dev set, then the held-out set
python -m bench.rank_eval --data DIR --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.identity import paper_key
from digest.rank.model import Doc, Profile, Ranker, Settings

DEV = Path(__file__).resolve().parent.parent / "tests" / "data" / "rank"
HELDOUT = DEV / "heldout"  # other readers, digest and history: never used to choose weights
GAIN = {0: 0.0, 1: 1.0, 2: 3.0}
SETTINGS = ("all", "likes", "cold")


@dataclass(frozen=True, slots=True)
class JudgedSet:
    papers: tuple[Doc, ...]
    corpus: tuple[Doc, ...]
    profiles: tuple[dict[str, Any], ...]
    grades: dict[str, dict[int, int]]  # profile name -> listing index (0-based) -> grade
    seen: tuple[bool, ...] = ()  # per paper: also in the history dump

    def as_digest(self) -> JudgedSet:
        """The set as the product's digest holds it: the papers the history held left out."""
        keep = [i for i in range(len(self.papers)) if not (self.seen and self.seen[i])]
        grades = {name: {n: g.get(i, 0) for n, i in enumerate(keep)} for name, g in self.grades.items()}
        return JudgedSet(tuple(self.papers[i] for i in keep), self.corpus, self.profiles, grades)


def load(data: Path) -> JudgedSet:
    def docs(name: str) -> list[Doc]:
        rows = json.loads((data / name).read_text(encoding="utf-8"))
        return [Doc(paper_key(r["title"]), r["title"], r["abstract"]) for r in rows]

    papers = docs("papers.json")
    rows = json.loads((data / "papers.json").read_text(encoding="utf-8"))
    in_history = tuple(bool(r.get("in_history")) for r in rows)
    history = docs("history.json")
    seen: set[str] = set()
    corpus = []
    for d in history + papers:
        if d.key not in seen:
            seen.add(d.key)
            corpus.append(d)
    judged = json.loads((data / "judgments.json").read_text(encoding="utf-8"))
    grades = {name: {int(pos) - 1: g for pos, g in table.items()} for name, table in judged.items()}
    profiles = tuple(json.loads((data / "profiles.json").read_text(encoding="utf-8")))
    return JudgedSet(tuple(papers), tuple(corpus), profiles, grades, in_history)


def profile_for(p: dict[str, Any], setting: str) -> Profile:
    likes = tuple(paper_key(t) for t in p["likes"])
    if setting == "likes":
        return Profile(likes=likes)
    cold = Profile(p["interests"], tuple(p["keywords"]), tuple(p.get("exclude", ())))
    if setting == "cold":
        return cold
    return Profile(cold.interests, cold.keywords, cold.exclude, likes)


def ndcg(order: Sequence[int], grades: dict[int, int], k: int = 10) -> float:
    dcg = sum(GAIN[grades.get(i, 0)] / math.log2(r + 2) for r, i in enumerate(order[:k]))
    ideal = sorted((GAIN[g] for g in grades.values()), reverse=True)[:k]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def precision(order: Sequence[int], grades: dict[int, int], k: int = 10) -> float:
    return sum(1 for i in order[:k] if grades.get(i, 0) >= 1) / k


def _query_text(profile: Profile, titles: dict[str, Doc]) -> str:
    liked = [f"{titles[k].title}. {titles[k].abstract}" for k in profile.likes if k in titles]
    return " ".join([profile.interests, *profile.keywords, *liked]).strip()


def baselines(js: JudgedSet) -> dict[str, Callable[[Profile], list[int]]]:
    """Listing order; BM25 (bm25s, English stop words) and TF-IDF cosine (scikit-learn
    defaults, sublinear tf) of the reader's words and liked papers' text as one query."""
    import bm25s
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    titles = {d.key: d for d in js.corpus}
    texts = [f"{d.title}. {d.abstract}" for d in js.papers]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    tfidf = TfidfVectorizer(stop_words="english", sublinear_tf=True)
    tfidf.fit([f"{d.title}. {d.abstract}" for d in js.corpus])
    matrix = tfidf.transform(texts)

    def order(scores: Any) -> list[int]:
        return [int(i) for i in np.lexsort((np.arange(len(scores)), -np.asarray(scores)))]

    def bm25(profile: Profile) -> list[int]:
        query = bm25s.tokenize([_query_text(profile, titles)], stopwords="en", show_progress=False)
        ids = query.ids[0]
        vocab = {v: k for k, v in query.vocab.items()}
        scores = retriever.get_scores([vocab[i] for i in ids])
        return order(scores)

    def cosine(profile: Profile) -> list[int]:
        q = tfidf.transform([_query_text(profile, titles)])
        return order((matrix @ q.T).toarray().ravel())

    return {"listing": lambda _p: list(range(len(js.papers))), "bm25": bm25, "tfidf": cosine}


def evaluate(
    js: JudgedSet, settings: Settings | None = None, with_baselines: bool = True, with_seen: bool = False
) -> dict[str, Any]:
    """Per method, setting and profile: nDCG@10 and P@10; plus the means. The digest is
    :meth:`JudgedSet.as_digest` unless ``with_seen``."""
    if not with_seen:
        js = js.as_digest()
    ranker = Ranker(js.corpus, settings or Settings())
    methods: dict[str, Callable[[Profile], list[int]]] = {
        "ranker": lambda p: [r.index for r in ranker.rank(js.papers, p)]
    }
    if with_baselines:
        methods.update(baselines(js))
    rows: dict[str, Any] = {}
    for method, fn in methods.items():
        for setting in SETTINGS:
            per = {}
            for p in js.profiles:
                order = fn(profile_for(p, setting))
                g = js.grades[p["name"]]
                per[p["name"]] = {"ndcg": ndcg(order, g), "p10": precision(order, g)}
            rows[f"{method}/{setting}"] = {
                "profiles": per,
                "ndcg": statistics.fmean(v["ndcg"] for v in per.values()),
                "min_ndcg": min(v["ndcg"] for v in per.values()),
                "p10": statistics.fmean(v["p10"] for v in per.values()),
            }
    return rows


def table(rows: dict[str, Any]) -> str:
    lines = ["| method | setting | nDCG@10 mean | nDCG@10 min | P@10 mean |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        method, setting = name.split("/")
        lines.append(f"| {method} | {setting} | {r['ndcg']:.3f} | {r['min_ndcg']:.3f} | {r['p10']:.3f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rank_eval", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, action="append", help=f"judged set folder (default {DEV} then {HELDOUT})"
    )
    parser.add_argument("--json", type=Path, help="also write the per-profile numbers here")
    parser.add_argument("--per-profile", action="store_true", help="print each profile's nDCG@10")
    parser.add_argument(
        "--with-seen", action="store_true", help="keep the papers the history already held in the digest"
    )
    args = parser.parse_args(argv)
    out = {}
    for data in args.data or [DEV, HELDOUT]:
        rows = evaluate(load(data), with_seen=args.with_seen)
        out[str(data)] = rows
        print(f"{data}:")
        print(table(rows))
        if args.per_profile:
            for name, r in rows.items():
                if name.startswith("ranker/"):
                    print(name, {k: round(v["ndcg"], 3) for k, v in r["profiles"].items()})
        print()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
