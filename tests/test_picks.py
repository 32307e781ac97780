"""The email's "Top picks for you" / "Also new" split (digest/render/picks.py)."""

from __future__ import annotations

from digest.render.picks import sections

RANKED = [("a", False), ("b", True), ("c", False), ("d", False), ("e", False), ("f", True)]


def excluded(item: tuple[str, bool]) -> bool:
    return item[1]


def test_picks_skip_excluded_papers_and_also_new_follows_in_order() -> None:
    s = sections(RANKED, excluded, 2, False, budget=1000, size=lambda _i: 10)
    assert [p[0] for p in s.picks] == ["a", "c"]
    assert [p[0] for p in s.also] == ["b", "d", "e", "f"]
    assert s.left_out == 0 and s.subject_count == 2


def test_also_new_stops_at_the_byte_budget_and_counts_the_rest() -> None:
    s = sections(RANKED, excluded, 2, False, budget=25, size=lambda _i: 10)
    assert [p[0] for p in s.also] == ["b", "d"]
    assert s.left_out == 2


def test_only_top_sends_the_picks_alone() -> None:
    s = sections(RANKED, excluded, 3, True, budget=10_000, size=lambda _i: 1)
    assert [p[0] for p in s.picks] == ["a", "c", "d"] and s.also == ()
    assert s.left_out == 3
