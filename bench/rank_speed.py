"""Ranking speed: one digest ranked for many subscribers, as a ratio to a floor.

The floor is what any TF-IDF ranker must at least do: the same fitted transform of every
subscriber's words and one sparse product with the digest's vectors. The measured path is
:meth:`digest.rank.model.Ranker.rank_many` with reasons for each subscriber's top ten (what
the email shows). Subscribers are made from the dev set's profiles (tests/data/rank): each
takes one profile's interests, three of its keywords, its exclusions and three liked papers
of the history. Fitting the corpus happens once per run for any number of subscribers and
is reported apart.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Any

from bench.rank_eval import DEV, load


def subscribers(profiles: Any, history: list[str], count: int, seed: int = 15) -> list[Any]:
    from digest.identity import paper_key
    from digest.rank.model import Profile

    rnd = random.Random(seed)
    out = []
    for i in range(count):
        p = profiles[i % len(profiles)]
        keywords = tuple(rnd.sample(p["keywords"], 3))
        likes = tuple(paper_key(t) for t in rnd.sample(p["likes"] + rnd.sample(history, 3), 3))
        out.append(Profile(p["interests"], keywords, tuple(p.get("exclude", ())), likes))
    return out


def measure(papers_n: int, subscribers_n: int, runs: int) -> dict[str, Any]:
    """Median and spread (min, max) of the ratio over ``runs`` runs, and the times."""
    from digest.rank.model import Ranker

    js = load(DEV)
    papers = js.papers[:papers_n]
    history = [d.title for d in js.corpus if d.key not in {p.key for p in js.papers}]
    subs = subscribers(js.profiles, history, subscribers_n)
    started = time.perf_counter()
    ranker = Ranker(js.corpus)
    fit = time.perf_counter() - started
    ratios, values, floors = [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        docs = ranker.doc_vectors(papers)
        texts = [" ".join([s.interests, *s.keywords]) for s in subs]
        scores = (ranker.vectors(texts) @ docs.T).toarray()
        floor = time.perf_counter() - started
        assert scores.shape == (subscribers_n, len(papers))
        started = time.perf_counter()
        ranked = ranker.rank_many(papers, subs, explain=10)
        value = time.perf_counter() - started
        assert len(ranked) == subscribers_n
        ratios.append(value / floor)
        values.append(value)
        floors.append(floor)
    return {
        "papers": len(papers),
        "subscribers": subscribers_n,
        "corpus": len(js.corpus),
        "fit_s": fit,
        "value_s": statistics.median(values),
        "floor_s": statistics.median(floors),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "runs": runs,
    }


def ranking(work: Path, sizes: Any) -> Any:
    """The bench scenario (see bench.scenarios.SCENARIOS)."""
    from bench.scenarios import Result

    m = measure(sizes.rank_papers, sizes.rank_subscribers, sizes.rank_runs)
    return Result(
        "ranking",
        f"{m['papers']} papers for {m['subscribers']:,} subscribers (median of {m['runs']}; "
        f"ratio {m['ratio_min']:.1f}-{m['ratio_max']:.1f})",
        m["value_s"],
        m["floor_s"],
        "s",
        m["ratio_median"],
        "n/a (report)",
        None,
        m,
    )
