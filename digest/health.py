"""Edge: dump-health alerts, run by the service after every poll and digest job.

:func:`check` reads what the decider needs in one read transaction, lets
:func:`digest.alerts.decide` say which incidents open and close, records that, then
mails ``alerts.to`` once per incident opened and once per incident resolved. An email
counts as sent only when the transport accepted it for every address; one that failed is
retried on the next poll, and one that went out is never sent again (no storms).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from digest.alerts import Decision, Rules, decide
from digest.config import Config
from digest.errors import DeliveryError
from digest.store import Store
from digest.store import incidents as store_incidents
from digest.store.incidents import StoredIncident
from digest.transports import Transport

log = logging.getLogger(__name__)


def rules(config: Config) -> Rules:
    s = config.sources
    return Rules(
        expect=s.expect,
        expect_grace=timedelta(seconds=s.expect_grace),
        alert_after=s.alert_after,
        tz=config.tz,
        urls=s.urls,
    )


def message(config: Config, incident: StoredIncident, *, resolved: bool, now: datetime) -> EmailMessage:
    """The alert (or its resolution) as one email to ``alerts.to``. Its Message-ID is
    the same on every retry of the same email."""
    what = "resolved" if resolved else "alert"
    msg = EmailMessage(policy=SMTP)
    msg["From"] = config.email.from_
    msg["To"] = ", ".join(config.alerts.to)
    msg["Subject"] = f"[{config.digest.title}] {what}: {incident.kind} {incident.key}"
    msg["Date"] = format_datetime(now)
    stamp = hashlib.sha256(f"{incident.id}\n{incident.opened.isoformat()}".encode()).hexdigest()[:16]
    msg["Message-ID"] = f"<alert.{incident.id}.{what}.{stamp}@{config.email.domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    opened = f"{incident.opened:%Y-%m-%d %H:%M} UTC"
    if resolved and incident.resolved is not None:
        body = (
            f"Resolved at {incident.resolved:%Y-%m-%d %H:%M} UTC (open since {opened}):\n\n"
            f"  {incident.reason}\n"
        )
    else:
        body = (
            f"{incident.reason}\n\nOpen since {opened}. You get one more email when it clears; "
            "`digest status` and /healthz show it until then.\n"
        )
    msg.set_content(body + f"\n-- \npaper-digest, {config.digest.base_url}\n")
    return msg


def check(config: Config, store: Store, transport: Transport | None, now: datetime) -> Decision:
    """Decides, records and mails; returns what was decided. ``transport`` None (or an
    empty ``alerts.to``) records the incidents without mailing them."""
    with store.transaction(read=True) as conn:
        observed = store_incidents.observe(conn, now)
    decision = decide(observed, rules(config))
    if decision.open or decision.close:
        with store.transaction() as conn:
            store_incidents.apply(conn, decision.open, decision.close, now)
        for inc in decision.open:
            log.warning("alert: %s %s: %s", inc.kind, inc.key, inc.reason)
        for kind, key in decision.close:
            log.info("alert resolved: %s %s", kind, key)
    if transport is not None and config.alerts.to:
        _mail(config, store, transport, now)
    return decision


def _mail(config: Config, store: Store, transport: Transport, now: datetime) -> None:
    with store.transaction(read=True) as conn:
        pending = store_incidents.unsent(conn)
    if not pending:
        return
    with transport:
        for incident in pending:
            for resolved in (False, True):
                sent_at = incident.resolved_notified if resolved else incident.notified
                if sent_at is not None or (resolved and incident.resolved is None):
                    continue
                msg = message(config, incident, resolved=resolved, now=now)
                try:
                    for address in config.alerts.to:
                        transport.send(msg, address)
                except DeliveryError as err:
                    log.warning("alert email about %s %s not sent: %s", incident.kind, incident.key, err)
                    return  # the next poll tries again
                with store.transaction() as conn:
                    store_incidents.mark_notified(conn, incident.id, now, resolved=resolved)
