"""Result rows → the frozen dataclasses of :mod:`digest.model`.

A table's columns are named like the dataclass's fields; the few that are not (the
timestamp columns end in ``_at``) are named once, in the call that makes the mapper.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")


def row_mapper(cls: type[T], **columns: str) -> Callable[[Any], T]:
    """A function building ``cls`` from a result row: each field from the column of the
    same name, or from ``columns[field]`` (``created="created_at"``)."""
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = set(columns) - set(fields)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    assert len(fields) > 1, "attrgetter of one name returns the value, not a tuple"
    values = attrgetter(*(columns.get(name, name) for name in fields))

    def build(row: Any) -> T:
        return cls(*values(row))

    return build
