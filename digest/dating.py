"""Pure: the calendar date a listing page printed, as a backfilled digest is dated.

The spaced layout prints a date without a year (``Aug 8``); the Hugging Face JSON gives
``publishedAt`` (the parser turns it into ``Aug 8, 2023``). A date without a year is
placed in the year that puts it on or before the day the file was saved (its
modification time), one day of slack allowed for time zones: ``Dec 31`` in a file saved
on 2 January is the 31 December before, ``Aug 8`` saved on 9 August is this year's.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_LISTING = re.compile(r"^([a-z]{3})[a-z]*\.? (\d{1,2})(?:, (\d{4}))?$", re.IGNORECASE)
_SLACK = timedelta(days=1)


def listing_day(text: str | None, saved: date) -> date | None:
    """The date ``text`` (``Aug 8``, ``August 8``, ``Aug. 8``, ``Aug 8, 2023``) names, its
    year inferred from ``saved`` when it has none; None when ``text`` is not a date."""
    if not text:
        return None
    match = _LISTING.match(text.strip())
    if match is None or match.group(1).lower() not in _MONTHS:
        return None
    month, day = _MONTHS.index(match.group(1).lower()) + 1, int(match.group(2))
    if match.group(3):
        try:
            return date(int(match.group(3)), month, day)
        except ValueError:
            return None
    # The latest such date not after the day it was saved (29 February: up to 8 years back).
    for year in range(saved.year + 1, saved.year - 9, -1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= saved + _SLACK:
            return candidate
    return None


def dump_moment(listing: str | None, saved: datetime, tz: ZoneInfo) -> tuple[datetime, bool]:
    """When a backfilled dump's digest is dated, and whether the listing gave the date.

    The listing's date when it has one: at the time the file was saved if it was saved
    that same (local) day, else at noon local time. Without one: the save time itself."""
    local = saved.astimezone(tz)
    day = listing_day(listing, local.date())
    if day is None:
        return saved, False
    if day == local.date():
        return saved, True
    return datetime.combine(day, time(12), tzinfo=tz).astimezone(saved.tzinfo), True
