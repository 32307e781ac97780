"""Pure: the one model of a subscriber (docs/DESIGN.md) and its preferences.

A subscriber is an address (stored as given, compared through :func:`normalise`), a
status, a secret token and :class:`Preferences`. Votes (likes +1, dislikes -1) are kept
beside it by paper key. Everything here is a plain value: reading and writing is
:mod:`digest.store.subscribers`, signed links are :mod:`digest.tokens`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Literal, get_args

Status = Literal["pending", "active", "unsubscribed", "bounced"]
STATUSES: tuple[Status, ...] = get_args(Status)

# Who put the subscriber there: the config's email.to, the operator (CLI, import), the web
# form, or a bare suppression (``digest unsubscribe`` of an unknown address, or one
# migrated from the old suppression list).
Source = Literal["config", "cli", "web", "import", "suppression"]
SOURCES: tuple[Source, ...] = get_args(Source)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
_CADENCE = re.compile(r"^(daily|weekly:(mon|tue|wed|thu|fri|sat|sun))$")
DEFAULT_MAX_PAPERS = 10
MAX_TEXT = 2000  # characters interests may hold (runs of white space count as one); more is refused
MAX_KEYWORDS = 50  # keywords (and excluded ones) a subscriber may give; more is refused
MAX_KEYWORD = 100  # characters a keyword may hold (runs of white space count as one); more is refused


def normalise(address: str) -> str:
    """The form addresses are compared in: stripped and case-folded as a whole.

    RFC 5321 lets a server treat the local part case-sensitively; no real one does, and
    two rows for ``Ann@x.org`` and ``ann@x.org`` would mail one person twice."""
    return address.strip().lower()


def parse_cadence(value: str) -> str:
    """``daily`` or ``weekly:<mon..sun>`` (case and spaces forgiven); ValueError otherwise."""
    text = value.strip().lower().replace(" ", "")
    if not _CADENCE.match(text):
        raise ValueError(f"{value!r} is not a cadence; write daily or weekly:mon (… weekly:sun)")
    return text


def cadence_weekday(cadence: str) -> int | None:
    """The weekday (Monday = 0) of a weekly cadence; None for daily."""
    if cadence.startswith("weekly:"):
        return WEEKDAYS.index(cadence.partition(":")[2])
    return None


def clean_terms(key: str, values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Keywords as given, one line each, stripped, empty and repeated ones (by case)
    dropped. ValueError naming ``key`` for a term over :data:`MAX_KEYWORD` characters
    (naming the term) or over :data:`MAX_KEYWORDS` different terms (naming the count):
    cutting either would drop what the reader wrote without a word."""
    out: dict[str, str] = {}
    for value in values:
        term = " ".join(str(value).split())
        if len(term) > MAX_KEYWORD:
            start = term[:60] + "…"
            raise ValueError(
                f"{key}: {start!r} is {len(term):,} characters, over the limit of {MAX_KEYWORD}; shorten it"
            )
        if term:
            out.setdefault(term.casefold(), term)
    if len(out) > MAX_KEYWORDS:
        raise ValueError(f"{key}: {len(out)} different ones, over the limit of {MAX_KEYWORDS}; drop some")
    return tuple(out.values())


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a subscriber chose. With no interests, keywords or votes they get every paper
    in listing order (today's digest); ranking (issue 15) reads the rest."""

    cadence: str = "daily"
    max_papers: int = DEFAULT_MAX_PAPERS
    only_top: bool = False
    interests: str = ""
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        parse_cadence(self.cadence)
        if self.max_papers < 1:
            raise ValueError(f"max_papers must be at least 1, got {self.max_papers}")

    @property
    def weekday(self) -> int | None:
        return cadence_weekday(self.cadence)

    def as_dict(self) -> dict[str, object]:
        """Every preference by its field name; lists for the tuples (JSON, CSV cells)."""
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {name: list(v) if isinstance(v, tuple) else v for name, v in values}


def preferences_from(data: Mapping[str, object], base: Preferences | None = None) -> Preferences:
    """``base`` (default: the defaults) with the keys of ``data`` that are set; ValueError
    naming the key for a bad value. Accepts what :meth:`Preferences.as_dict`, CSV cells
    (keywords separated by ``;``) and form fields give."""
    base = base or Preferences()
    values: dict[str, object] = base.as_dict()
    for key, value in data.items():
        if key not in values or value is None:
            continue
        if key == "cadence":
            values[key] = parse_cadence(str(value))
        elif key == "max_papers":
            try:
                number = int(str(value).strip())
            except ValueError:
                raise ValueError(f"max_papers: {value!r} is not a whole number") from None
            if not 1 <= number <= 1000:
                raise ValueError(f"max_papers: {number} is not between 1 and 1000")
            values[key] = number
        elif key == "only_top":
            values[key] = _flag(key, value)
        elif key == "interests":
            values[key] = _interests(value)
        else:  # keywords, exclude
            values[key] = clean_terms(key, split_terms(key, value))
    if data.get("keywords") is not None or data.get("exclude") is not None:
        # Only when either is given: a profile stored before this rule still takes
        # ``set --status``; changing its terms asks for the conflict to go.
        _no_keyword_excluded(values["keywords"], values["exclude"])  # type: ignore[arg-type]
    return Preferences(
        cadence=str(values["cadence"]),
        max_papers=int(values["max_papers"]),  # type: ignore[call-overload]
        only_top=bool(values["only_top"]),
        interests=str(values["interests"]),
        keywords=tuple(values["keywords"]),  # type: ignore[arg-type]
        exclude=tuple(values["exclude"]),  # type: ignore[arg-type]
    )


def _interests(value: object) -> str:
    """The interests on one line; ValueError when longer than :data:`MAX_TEXT` (cutting
    them would drop what the reader wrote last without a word)."""
    text = " ".join(str(value).split())
    if len(text) > MAX_TEXT:
        raise ValueError(f"interests: {len(text):,} characters, over the limit of {MAX_TEXT:,}; shorten them")
    return text


def _no_keyword_excluded(keywords: tuple[str, ...], exclude: tuple[str, ...]) -> None:
    """ValueError naming the first keyword that is also excluded, compared as ranking
    matches them (the same stems: "Diffusion" and "diffusions" are one word): such a
    keyword would lift the papers its exclusion sinks."""
    from digest.rank.text import Keyword  # pure and light: the stemmer keywords are matched by

    excluded = {Keyword.of(e).stems: e for e in exclude}
    for term in keywords:
        stems = Keyword.of(term).stems
        other = excluded.get(stems) if stems else None
        if other is not None:
            same = "" if other == term else f" (as {other!r})"
            raise ValueError(f"{term!r} is both a keyword and excluded{same}; keep it in one of them")


def split_terms(key: str, value: object) -> list[str]:
    """A list as given, or a text cell split at ``;`` and line breaks. ``;`` separates
    terms in CSV cells and the preferences form, so a listed term holding one is refused
    (ValueError): it could not come back from an export as one term."""
    if not isinstance(value, list | tuple):
        return str(value).replace("\n", ";").split(";")
    for item in value:
        if ";" in str(item):
            raise ValueError(f"{key}: {str(item)!r} holds ';', which separates them; give each on its own")
    return [str(v) for v in value]


def _flag(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"{key}: {value!r} is not true or false")


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    address: str  # as given
    status: Status
    token: str = field(repr=False)  # secret: never printed, logged or exported
    source: Source
    created: datetime
    confirmed: datetime | None = None
    unsubscribed: datetime | None = None
    reason: str | None = None  # why it is unsubscribed or bounced ("complaint", a bounce…)
    since_seq: int = 0  # papers up to this seq were out before they became active
    preferences: Preferences = field(default_factory=Preferences)

    @property
    def key(self) -> str:
        return normalise(self.address)

    def as_dict(self) -> dict[str, object]:
        """What ``list --json``, ``show`` and ``export`` print: never the token."""
        return {
            "address": self.address,
            "status": self.status,
            "source": self.source,
            "created": self.created.isoformat(),
            "confirmed": self.confirmed.isoformat() if self.confirmed else None,
            "unsubscribed": self.unsubscribed.isoformat() if self.unsubscribed else None,
            "reason": self.reason,
            **self.preferences.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class Vote:
    """A like (+1) or dislike (-1) of one paper by one subscriber."""

    subscriber_id: int
    paper_key: str
    value: int
    at: datetime
