"""How the ranker's settings were chosen, and what to expect of them on new readers.

Each variant (a handful of round values around the defaults) is scored on every dev
profile; then the choice itself is cross-validated:

- leave one profile out: pick the variant best on the other seven, score it on the eighth;
- halves: pick on four profiles, score on the other four (both ways, two splits);
- held-out: the variant picked on all eight, scored on tests/data/rank/heldout (other
  readers, digest and history), which no choice ever saw.

The objective is the mean nDCG@10 of the "all" and "likes" settings (the issue's two
targets). python -m bench.rank_tune [--variants a,b,c]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bench.rank_eval import DEV, HELDOUT, JudgedSet, load, ndcg, profile_for
from digest.rank.model import Ranker, Settings

SETTINGS = ("all", "likes", "cold")
OBJECTIVE = ("all", "likes")

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "knn-mean": {"like_mode": "knn"},
    "max": {"like_mode": "max"},
    "mix-0.3": {"like_mode": "mix", "like_max": 0.3},
    "mix-0.7": {"like_mode": "mix", "like_max": 0.7},
    "rank-fusion": {"fusion": "rank"},
    "feedback-3": {"feedback_docs": 3},
    "feedback-8": {"feedback_docs": 8},
    "feedback-0.5": {"feedback": 0.5},
    "feedback-0": {"feedback": 0.0},
    "likes-0.5": {"likes": 0.5},
    "likes-1.5": {"likes": 1.5},
    "keyword-1": {"keyword": 1.0, "keyword_title": 1.0},
    "keyword-3": {"keyword": 3.0, "keyword_title": 3.0},
    "title-1": {"title_repeat": 1},
    "title-3": {"title_repeat": 3},
    "negative-1": {"negative": 1.0},
    "negative-3": {"negative": 3.0},
    "char-0.3": {"char_weight": 0.3},
    "char-0.7": {"char_weight": 0.7},
    "bm25": {"weighting": "bm25"},
    "bm25+feedback-3": {"weighting": "bm25", "feedback_docs": 3},
    "feedback-0.5+title-1": {"feedback": 0.5, "title_repeat": 1},
    "feedback-3+title-1": {"feedback_docs": 3, "title_repeat": 1},
    "lsa-0.5": {"lsa": 0.5},  # the query's cosine in an LSA space too (digest/rank/lsa.py)
    # stop 23: characters' share between two papers (likes, feedback); 0.2 is the default,
    # picked in 12 of 12 leave-one-out splits over all twelve profiles
    "paper-char-0.5": {"paper_char": 0.5},
    "paper-char-0.35": {"paper_char": 0.35},
    "paper-char-0.1": {"paper_char": 0.1},
    "paper-char-0": {"paper_char": 0.0},
    "feedback-words-0.5": {"feedback_words": 0.5},
    "feedback-words-1": {"feedback_words": 1.0},
}


def scores(js: JudgedSet, variants: dict[str, Settings]) -> dict[str, dict[tuple[str, str], float]]:
    """variant -> (setting, profile) -> nDCG@10. One fit per distinct fitting settings."""
    fitted: dict[tuple[int, float, str], Ranker] = {}
    out: dict[str, dict[tuple[str, str], float]] = {}
    for name, settings in variants.items():
        key = (settings.title_repeat, settings.char_weight, settings.weighting)
        if key not in fitted:
            fitted[key] = Ranker(js.corpus, settings)
        ranker = fitted[key]
        ranker.settings = settings  # the rest of the settings only weigh the fitted parts
        row = {}
        for setting in SETTINGS:
            for p in js.profiles:
                order = [r.index for r in ranker.rank(js.papers, profile_for(p, setting))]
                row[(setting, p["name"])] = ndcg(order, js.grades[p["name"]])
        out[name] = row
    return out


def objective(row: dict[tuple[str, str], float], profiles: Sequence[str]) -> float:
    return statistics.fmean(row[(s, p)] for s in OBJECTIVE for p in profiles)


def pick(table: dict[str, dict[tuple[str, str], float]], profiles: Sequence[str]) -> str:
    """The best variant on ``profiles``; ties go to the first listed (the default first)."""
    return max(table, key=lambda name: objective(table[name], profiles))


def cross_validate(table: dict[str, dict[tuple[str, str], float]], names: Sequence[str]) -> dict[str, Any]:
    """Leave-one-profile-out and half-split estimates, per setting: mean and lowest profile."""
    lopo: dict[str, list[float]] = {s: [] for s in SETTINGS}
    picks = []
    for held in names:
        rest = [n for n in names if n != held]
        choice = pick(table, rest)
        picks.append(choice)
        for s in SETTINGS:
            lopo[s].append(table[choice][(s, held)])
    halves = {}
    half = len(names) // 2
    for label, a in (("first/second", list(names[:half])), ("odd/even", list(names[::2]))):
        b = [n for n in names if n not in a]
        for tune, test in ((a, b), (b, a)):
            choice = pick(table, tune)
            key = f"{label}: tune {'A' if tune is a else 'B'} ({choice})"
            halves[key] = {s: statistics.fmean(table[choice][(s, n)] for n in test) for s in SETTINGS}
    return {
        "lopo": {s: (statistics.fmean(v), min(v)) for s, v in lopo.items()},
        "lopo_picks": picks,
        "halves": halves,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rank_tune", description=__doc__.splitlines()[0])
    parser.add_argument("--variants", help="comma-separated names (default: all)")
    args = parser.parse_args(argv)
    chosen = args.variants.split(",") if args.variants else list(VARIANTS)
    variants = {n: replace(Settings(), **VARIANTS[n]) for n in chosen}
    dev, held = load(DEV).as_digest(), load(HELDOUT).as_digest()  # as the product ranks (bench/rank_eval.py)
    names = [p["name"] for p in dev.profiles]
    table = scores(dev, variants)
    held_table = scores(held, variants)
    held_names = [p["name"] for p in held.profiles]

    def cell(row: dict[tuple[str, str], float], who: Sequence[str], s: str) -> str:
        v = [row[(s, n)] for n in who]
        return f"{statistics.fmean(v):.3f} ({min(v):.2f})"

    print("| variant | dev all | dev likes | dev cold | held-out all | held-out likes | held-out cold |")
    print("|---|---|---|---|---|---|---|")
    for n in chosen:
        dev_cells = " | ".join(cell(table[n], names, s) for s in SETTINGS)
        held_cells = " | ".join(cell(held_table[n], held_names, s) for s in SETTINGS)
        print(f"| {n} | {dev_cells} | {held_cells} |")
    cv = cross_validate(table, names)
    print(
        "\nleave one profile out (mean, lowest):",
        {s: f"{m:.3f} ({lo:.2f})" for s, (m, lo) in cv["lopo"].items()},
    )
    print("picks:", ", ".join(cv["lopo_picks"]))
    for key, row in cv["halves"].items():
        print(f"half {key}:", {s: round(v, 3) for s, v in row.items()})
    best = pick(table, names)
    print(
        f"picked on all dev profiles: {best}; held-out:",
        {s: cell(held_table[best], held_names, s) for s in SETTINGS},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
