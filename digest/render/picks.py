"""Pure: a reader's ranked digest cut into the email's sections.

"Top picks for you": the reader's ``max_papers`` best papers, shown in full with their
reasons ("why you see this"). "Also new": the rest, best first, titles only, as many as
the email's byte budget leaves room for; the remainder is counted (and linked to the
archive by the template). Excluded papers are never picks; with ``only_top`` the email
holds the picks alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sections(Generic[T]):
    picks: tuple[T, ...]
    also: tuple[T, ...]
    left_out: int  # papers of the digest in neither section

    @property
    def subject_count(self) -> int:
        """What the subject counts: the picks."""
        return len(self.picks)


def sections(
    ranked: Sequence[T],
    excluded: Callable[[T], bool],
    max_papers: int,
    only_top: bool,
    budget: int,
    size: Callable[[T], int],
) -> Sections[T]:
    """``ranked`` (best first) as picks and "also new" titles.

    ``budget`` is how many bytes the "also new" list may take and ``size(item)`` what one
    title costs there (the renderer knows both; the email's total budget minus what the
    picks took). A title that does not fit ends the list: the rest keep their order for
    the archive link rather than letting a shorter, worse paper jump ahead.
    """
    picks = tuple(r for r in ranked if not excluded(r))[: max(max_papers, 0)]
    chosen = set(map(id, picks))
    rest = [r for r in ranked if id(r) not in chosen]
    if only_top:
        return Sections(picks, (), len(rest))
    also: list[T] = []
    spent = 0
    for r in rest:
        cost = size(r)
        if spent + cost > budget:
            break
        also.append(r)
        spent += cost
    return Sections(picks, tuple(also), len(rest) - len(also))
