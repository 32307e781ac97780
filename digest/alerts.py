"""Pure: dump health. (what the state shows, the rules, now) → incidents to open and close.

Four kinds of incident, each named by ``(kind, key)``:

- ``late``: ``sources.expect`` (e.g. ``"mon-fri 09:00"`` in ``digest.timezone``) says
  when a dump should arrive. The key is the expected time. A slot counts as met by any
  dump first seen from half-way between the previous slot and it; once ``expect_grace``
  has passed without one, the slot is late. It clears when a dump arrives.
- ``fetch``: one of ``sources.urls`` failed ``alert_after`` fetches in a row (key: the
  URL). It clears on the next successful fetch, or when the URL leaves the config.
- ``refused``: a dump was refused (key: its name and content hash). It clears when the
  state no longer records it as failed (fixed, re-read and ingested).
- ``small``: the newest digest has under a fifth of the median paper count of the 20
  before it (key: its slug; only with at least 5 before it). It clears with the next
  digest of normal size.

No storms: an incident already open is never opened again, so it is mailed once; the
edge (digest/alert_mail.py) mails one alert when it opens and one when it clears.
This module reads no clock, environment or disk (docs/DESIGN.md invariant 8).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from digest.config.readers import parse_expect
from digest.text import counted

SMALL_HISTORY = 20  # digests the median is taken over
SMALL_MIN_HISTORY = 5  # fewer before it: no judgement yet
SMALL_FRACTION = 5  # under a fifth of the median is "small"


@dataclass(frozen=True, slots=True)
class Rules:
    expect: str  # "" or "mon-fri 09:00"
    expect_grace: timedelta
    alert_after: int
    tz: ZoneInfo
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Observed:
    """What the state shows at ``now``."""

    now: datetime
    last_dump_seen: datetime | None  # when the newest dump was first seen
    fetch_failures: tuple[tuple[str, int, str], ...] = ()  # (url, failures in a row, last error)
    refused: tuple[tuple[str, str, str], ...] = ()  # (name, sha256, error) of dumps recorded as failed
    digest_sizes: tuple[tuple[str, int], ...] = ()  # (slug, papers), newest first, up to 21
    open: tuple[tuple[str, str], ...] = ()  # (kind, key) of the incidents open now


@dataclass(frozen=True, slots=True)
class Incident:
    kind: str
    key: str
    reason: str  # one line, for the mail, /healthz and `digest status`


@dataclass(frozen=True, slots=True)
class Decision:
    open: tuple[Incident, ...] = ()
    close: tuple[tuple[str, str], ...] = ()


def slots_before(rules: Rules, now: datetime, count: int = 2) -> list[datetime]:
    """The ``count`` latest expected times at or before ``now`` (newest first), aware, in
    ``rules.tz``; [] without ``sources.expect``."""
    if not rules.expect:
        return []
    days, hour, minute = parse_expect(rules.expect)
    local = now.astimezone(rules.tz)
    out: list[datetime] = []
    day = local.date()
    for _ in range(15):
        if day.weekday() in days:
            at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=rules.tz)
            if at <= local:
                out.append(at)
                if len(out) == count:
                    break
        day -= timedelta(days=1)
    return out


def window_start(rules: Rules, slot: datetime) -> datetime:
    """From when a dump counts for ``slot``: half-way from the slot before it."""
    before = [s for s in slots_before(rules, slot - timedelta(minutes=1), 1)]
    if not before:
        return slot - timedelta(hours=12)
    return slot - (slot - before[0]) / 2


def _late_key(slot: datetime) -> str:
    return slot.isoformat(timespec="minutes")


def decide(obs: Observed, rules: Rules) -> Decision:
    """The incidents to open (not open yet) and to close (open, no longer true)."""
    wanted: dict[tuple[str, str], Incident] = {}
    is_open = set(obs.open)
    seen = obs.last_dump_seen

    # late: the newest slot whose grace has run out, when no dump came for it
    for slot in slots_before(rules, obs.now - rules.expect_grace, 1):
        if seen is None or seen < window_start(rules, slot):
            key = _late_key(slot)
            wanted[("late", key)] = Incident(
                "late",
                key,
                f"no new dump since {slot:%a %d %b %H:%M} {slot.tzname()} "
                f"(expected by then, {_hours(rules.expect_grace)} grace)",
            )
    configured = set(rules.urls)
    for url, failures, error in obs.fetch_failures:
        if url in configured and failures >= rules.alert_after:
            wanted[("fetch", url)] = Incident(
                "fetch", url, f"{url} failed {failures} fetches in a row: {error}"
            )
    for name, sha256, error in obs.refused:
        key = f"{name} {sha256[:12]}"
        wanted[("refused", key)] = Incident("refused", key, f"dump refused: {error}")
    small = _small(obs.digest_sizes)
    if small is not None:
        wanted[("small", small.key)] = small

    to_open = tuple(i for k, i in wanted.items() if k not in is_open)
    to_close = tuple(sorted(k for k in is_open if k not in wanted and _clears(k, obs, rules)))
    return Decision(open=to_open, close=to_close)


def _clears(incident: tuple[str, str], obs: Observed, rules: Rules) -> bool:
    kind, key = incident
    if kind == "late":
        # An older slot no longer the newest one: it clears only when a dump came.
        slot = datetime.fromisoformat(key)
        return obs.last_dump_seen is not None and obs.last_dump_seen >= window_start(rules, slot)
    return True


def _small(sizes: Sequence[tuple[str, int]]) -> Incident | None:
    if len(sizes) < SMALL_MIN_HISTORY + 1:
        return None
    (slug, count), before = sizes[0], [n for _, n in sizes[1 : SMALL_HISTORY + 1]]
    median = statistics.median(before)
    if count * SMALL_FRACTION >= median:
        return None
    return Incident(
        "small",
        slug,
        f"digest {slug} has {counted(count, 'paper')}, "
        f"under a fifth of the median {median:g} of the last {len(before)}",
    )


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} h"
