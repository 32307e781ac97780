"""``digest bounces``: read delivery reports from ``email.bounces_source`` and mark the
subscribers they name ``bounced`` (issue 19).

A subscriber is marked after one hard (5.x.x) bounce, or after ``email.soft_bounce_limit``
soft (4.x.x) ones within 7 days; only events since they last became active count, so
``digest subscribers set ADDRESS --status active`` brings one back for good.

Each report is hashed; a handled hash is never counted again (an mbox is read whole every
time). A handled maildir message moves from ``new/`` to ``cur/`` with the ``S`` flag. A
message that is not a delivery report, or names nobody we know, is left where it is and
logged: nothing is deleted.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.config import Config
    from digest.store import Store

log = logging.getLogger(__name__)


@dataclass
class Summary:
    read: int = 0
    skipped: int = 0  # handled before
    kept: list[str] = field(default_factory=list)  # not a report / nobody known: left in place
    bounced: list[str] = field(default_factory=list)  # subscribers marked bounced now
    soft: int = 0


def _reports(source: str) -> Iterator[tuple[str, bytes, Path | None]]:
    """(where, bytes, maildir file to move once handled) for every message of the source."""
    kind, _, location = source.partition(":")
    path = Path(location)
    if kind == "maildir":
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise DigestError(
                f"email.bounces_source: {path} is not a maildir (no new/ and cur/); "
                "point it at the folder holding new/, cur/ and tmp/"
            )
        # Listed first: a handled message moves from new/ to cur/ while this runs.
        files = [
            (sub, f)
            for sub in ("new", "cur")
            for f in sorted((path / sub).iterdir())
            if f.is_file() and not f.name.startswith(".")
        ]
        for sub, f in files:
            yield f"{path}/{sub}/{f.name}", f.read_bytes(), f if sub == "new" else None
        return
    if not path.is_file():
        raise DigestError(f"email.bounces_source: no mbox file at {path}; check the path")
    box = mailbox.mbox(path, create=False)
    try:
        for i, key in enumerate(box.keys()):
            yield f"{path} message {i + 1}", box.get_bytes(key), None
    finally:
        box.close()


def _to_cur(f: Path) -> None:
    # Maildir: a message read moves to cur/ with an info part; "S" = seen.
    target = f.parent.parent / "cur" / (f.name.split(":2,")[0] + ":2,S")
    os.replace(f, target)


def process(config: Config, store: Store, now: datetime) -> Summary:
    """Handles every report of ``email.bounces_source`` once; see the module docstring."""
    from digest import bounces
    from digest.store import bounces as store_bounces
    from digest.store.subscribers import Subscribers
    from digest.subscribers import normalise

    source = config.email.bounces_source
    if not source:
        raise DigestError(
            'email.bounces_source is not set; write e.g. bounces_source = "maildir:/var/mail/bounces"'
        )
    subs = Subscribers(store)
    limit = config.email.soft_bounce_limit
    out = Summary()
    for where, raw, new_file in _reports(source):
        sha = hashlib.sha256(raw).hexdigest()
        if store_bounces.handled(store, sha):
            out.skipped += 1
            if new_file is not None:
                _to_cur(new_file)
            continue
        out.read += 1
        report = bounces.parse_report(raw, config.email.bounce_address)
        delivery = bounces.delivery_of(report.token) if report.token else None
        verp_rcpt = store_bounces.recipient_of(store, delivery) if delivery is not None else None
        events: dict[str, tuple[str, str]] = {}
        if verp_rcpt is not None and report.failures:
            # The envelope names the recipient; the report's own address may be a forward.
            worst = min(report.failures, key=lambda f: f.kind != "hard")
            events[normalise(verp_rcpt)] = (worst.kind, worst.status)
        else:
            for f in report.failures:
                events.setdefault(normalise(f.address), (f.kind, f.status))
        known = {key: sub for key in events if (sub := subs.get(key)) is not None}
        if not known:
            why = "not a delivery report" if not report.failures else "names no subscriber"
            out.kept.append(where)
            log.warning("%s: %s; left in place", where, why)
            continue
        store_bounces.record(
            store,
            sha,
            [(key, kind, status) for key, (kind, status) in events.items() if key in known],
            outcome=", ".join(f"{k} {kind}" for k, (kind, _) in sorted(events.items()) if k in known),
            now=now,
        )
        for key, sub in sorted(known.items()):
            kind, status = events[key]
            since = max(now - store_bounces.SOFT_WINDOW, sub.confirmed or sub.created)
            counts = store_bounces.counts_since(store, key, since)
            out.soft += kind == "soft"
            if sub.status != "active":
                continue
            if counts["hard"] or counts["soft"] >= limit:
                reason = (
                    f"hard bounce {status}".strip()
                    if counts["hard"]
                    else f"{counts['soft']} soft bounces within 7 days"
                )
                subs.set_status(sub.id, "bounced", now, reason)
                out.bounced.append(sub.address)
                log.info("%s marked bounced: %s", sub.address, reason)
        if new_file is not None:
            _to_cur(new_file)
    return out


def cmd_bounces(args: argparse.Namespace, config: Config) -> int:
    from digest.store import Store

    with Store.open(config.state.url) as store:
        s = process(config, store, datetime.now(UTC))
    print(
        f"{s.read} reports read, {s.skipped} handled before, {len(s.kept)} kept unread; "
        f"{len(s.bounced)} marked bounced" + (f": {', '.join(s.bounced)}" if s.bounced else "")
    )
    return 0


def add_parser(add: Any) -> None:
    p = add(
        "bounces",
        help="read delivery reports from email.bounces_source; mark bounced subscribers",
        description="Read the delivery reports in email.bounces_source (a maildir or an mbox); "
        "a hard bounce, or email.soft_bounce_limit soft ones within 7 days, marks the subscriber "
        "bounced (no more mail; 'digest subscribers set ADDRESS --status active' undoes it).",
    )
    p.set_defaults(func=cmd_bounces)
