"""``digest bounces``: read the delivery reports of ``email.bounces_source`` once and mark
the subscribers they name ``bounced`` (issue 19), and act on the unsubscribe requests
mailed there; the work is :func:`digest.bouncing.process`, which ``digest serve`` also
runs on every poll."""

from __future__ import annotations

import argparse

# Spelled out to spare importing typing at start-up (see digest/cli.py).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from digest.config import Config


def cmd_bounces(args: argparse.Namespace, config: Config) -> int:
    from datetime import UTC, datetime

    from digest.bouncing import process
    from digest.store import Store

    with Store.open(config.state.url) as store:
        summary = process(config, store, datetime.now(UTC))
    print(summary.line())
    return 0


def add_parser(add: Any) -> None:
    p = add(
        "bounces",
        help="read delivery reports and unsubscribe requests from email.bounces_source",
        description="Read the delivery reports in email.bounces_source (a maildir, an mbox or an "
        "IMAP mailbox); a hard bounce, or email.soft_bounce_limit soft ones within 7 days, marks "
        "the subscriber bounced (no more mail; 'digest subscribers set ADDRESS --status active' "
        "undoes it). An unsubscribe request mailed there (the mailto: of List-Unsubscribe) "
        "whose subject carries a valid token unsubscribes its reader; one without is kept "
        "for a human. digest serve does this on every poll.",
    )
    p.set_defaults(func=cmd_bounces)
