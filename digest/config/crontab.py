"""The crontab reader of ``schedule.digest``: a five-field crontab line that APScheduler
3 reads as cron would, or ``"on_ingest"``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from digest.config.readers import ON_INGEST, Reader, _nonempty
from digest.errors import ConfigError

_WEEKDAY_FIELD = re.compile(r"^(\*|[a-z]{3}(-[a-z]{3})?)(,[a-z]{3}(-[a-z]{3})?)*$")


def _crontab(key: str, value: Any, base: Path) -> str:
    """A five-field crontab line for APScheduler 3, or ``"on_ingest"``.

    APScheduler 3 counts weekdays from Monday = 0 while cron counts Sunday = 0, so a
    numeric weekday would silently fire on the wrong day: only names are accepted.
    """
    text = " ".join(_nonempty(key, value, base).split())
    if text == ON_INGEST:
        return text
    fields_ = text.split(" ")
    if len(fields_) != 5:
        raise ConfigError(
            key,
            f"{text!r} has {len(fields_)} fields, a crontab line has 5 (minute hour day month weekday)",
            f'write it like "0 7 * * *", or "{ON_INGEST}" to send right after new papers arrive',
        )
    weekday = fields_[4].lower()
    if not _WEEKDAY_FIELD.match(weekday):
        raise ConfigError(
            key,
            f"weekday field {fields_[4]!r} is ambiguous or invalid (cron counts Sunday as 0, "
            "the scheduler counts Monday as 0)",
            'name the days instead, like "mon-fri" or "sat,sun"',
        )
    from apscheduler.triggers.cron import CronTrigger  # only needed to validate here

    try:
        CronTrigger.from_crontab(" ".join([*fields_[:4], weekday]))
    except ValueError as err:
        raise ConfigError(
            key, f"{text!r} is not a valid crontab line ({err})", 'write it like "0 7 * * *"'
        ) from err
    return " ".join([*fields_[:4], weekday])


CRONTAB = Reader(_crontab)
