"""Pure: which papers an email shows in full, which by title, and how many it only counts.

Gmail clips a message whose HTML passes about 102 KB, hiding the rest and the footer
with its unsubscribe link. An email therefore has a byte budget, and its papers are
chosen in order: in full while they fit (and at most ``max_full`` of them), then by
title while they fit, then the rest counted on one line that links to the archive.
The caller says what each block costs; :func:`split` never renders or measures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Split(Generic[T]):
    """An ordered list cut in three: ``full + titles + rest`` is the list given."""

    full: tuple[T, ...]
    titles: tuple[T, ...]
    rest: tuple[T, ...]


@dataclass(frozen=True, slots=True)
class Costs(Generic[T]):
    """What the blocks of an email cost, in bytes as sent.

    ``room`` is the budget less everything shown whatever the split (header, footer).
    ``titles_section`` is the frame of the titles list (its heading), paid once when
    any title is shown; ``rest_line`` the line counting the rest, paid when any is left.
    Both may be upper bounds (a count's digits vary).
    """

    room: int
    full: Callable[[T], int]
    title: Callable[[T], int]
    titles_section: int
    rest_line: int


def split(items: Sequence[T], costs: Costs[T], max_full: int) -> Split[T]:
    """The longest prefix of ``items`` that fits in full (at most ``max_full``), then the
    longest run after it that fits as titles, then the rest; room is always kept for the
    rest line while anything could still be left over. Order is kept: a paper that
    does not fit in full ends the full part even if a later, shorter one would fit.

    When not even the rest line fits (``room`` below ``rest_line``), everything is rest.
    """
    n = len(items)
    used = 0

    def fits(cost: int, next_index: int) -> bool:
        # Room for this block, and for the rest line if items remain after it.
        return used + cost + (costs.rest_line if next_index < n else 0) <= costs.room

    i = 0
    while i < n and i < max_full:
        cost = costs.full(items[i])
        if not fits(cost, i + 1):
            break
        used += cost
        i += 1
    full_end = i
    while i < n:
        cost = costs.title(items[i]) + (costs.titles_section if i == full_end else 0)
        if not fits(cost, i + 1):
            break
        used += cost
        i += 1
    return Split(tuple(items[:full_end]), tuple(items[full_end:i]), tuple(items[i:]))
