"""Edge: bounces applied to subscribers (issue 19): the delivery reports of
``email.bounces_source`` (:func:`process`, behind ``digest bounces`` and every poll of
``digest serve``) and a recipient refused at ``RCPT TO`` (:func:`refused`, from the outbox);
and the unsubscribe requests mailed to the same mailbox.

A subscriber is marked ``bounced`` after one hard (5.x.x) bounce, or after
``email.soft_bounce_limit`` soft (4.x.x) ones within 7 days; only events since they last
became active count, so ``digest subscribers set ADDRESS --status active`` brings one
back for good.

Each report is known by its hash; a hash handled before is never counted again (an mbox
is read whole every time, an IMAP message may be fetched again after a crash). A message
that is not a delivery report, or names nobody we know, is kept in the mailbox and
logged once: its hash is remembered as kept, so later runs pass it by quietly.

An unsubscribe request (the ``mailto:`` of ``List-Unsubscribe``: Subject ``unsubscribe
<token>``, :mod:`digest.unsubscribe_mail`) whose token is valid for the purpose
"unsubscribe" unsubscribes the subscriber it names, as the web one-click POST does,
whoever sent it: the signed token is the capability. One without a valid token (a bare
"unsubscribe", a token cut short, forged or revoked by ``--new-token``) changes nothing
and is kept for a human like other mail: a From header is trivially forged, so it never
decides whom to unsubscribe.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import TYPE_CHECKING

from digest import audience, bounces, unsubscribe_mail
from digest.mailboxes import Item, open_source
from digest.store import bounces as store_bounces
from digest.store.subscribers import Subscribers
from digest.subscribers import normalise
from digest.tokens import BadToken

if TYPE_CHECKING:
    from digest.config import Config
    from digest.store import Store
    from digest.subscribers import Subscriber
    from digest.tokens import Tokens

log = logging.getLogger(__name__)

KEPT = "kept: "  # the outcome of a report left for a human starts with it
NO_TOKEN = "an unsubscribe request without a valid link"


@dataclass
class Summary:
    read: int = 0
    skipped: int = 0  # handled (or kept) before
    kept: list[str] = field(default_factory=list)  # not a report / nobody known: left in place
    bounced: list[str] = field(default_factory=list)  # subscribers marked bounced now
    soft: int = 0
    unsubscribed: list[str] = field(default_factory=list)  # by a valid emailed request, now
    no_token: int = 0  # unsubscribe requests without a valid token (also in ``kept``)

    def line(self) -> str:
        text = (
            f"{self.read} reports read, {self.skipped} handled before, {len(self.kept)} kept unread; "
            f"{len(self.bounced)} marked bounced" + (f": {', '.join(self.bounced)}" if self.bounced else "")
        )
        if self.unsubscribed:
            text += f"; {len(self.unsubscribed)} unsubscribed by email: {', '.join(self.unsubscribed)}"
        if self.no_token:
            s = "s" if self.no_token > 1 else ""
            text += f"; {self.no_token} unsubscribe request{s} without a valid link kept"
        return text


def process(config: Config, store: Store, now: datetime) -> Summary:
    """Handles every report of ``email.bounces_source`` once; see the module docstring."""
    out = Summary()
    signer: list[Tokens] = []  # made on the first request: reading bounces needs no key
    with open_source(config) as items:
        for item in items:
            sha = hashlib.sha256(item.raw).hexdigest()
            before = store_bounces.outcome_of(store, sha)
            if before is not None:
                out.skipped += 1
                (item.keep if before.startswith(KEPT) else item.done)()
                continue
            out.read += 1
            asked = unsubscribe_mail.request_tokens(item.raw)
            if asked is not None:
                if not signer:
                    signer.append(audience.tokens(config, store))
                _unsubscribe(store, signer[0], item, sha, asked, now, out)
                continue
            events = _events(config, store, item.raw)
            known = {key for key in events if Subscribers(store).get(key) is not None}
            if not known:
                why = "names no subscriber" if events else "not a delivery report"
                store_bounces.record(store, sha, [], outcome=KEPT + why, now=now)
                item.keep()
                out.kept.append(item.where)
                log.warning("%s: %s; left in the mailbox", item.where, why)
                continue
            kept = {key: events[key] for key in known}
            newly = apply(config, store, sha, kept, now)
            out.bounced.extend(newly)
            out.soft += sum(kind == "soft" for kind, _ in kept.values())
            item.done()
    return out


def _unsubscribe(
    store: Store, signer: Tokens, item: Item, sha: str, tokens: tuple[str, ...], now: datetime, out: Summary
) -> None:
    """One emailed unsubscribe request: the subscriber its valid token names is
    unsubscribed (then the request is recorded, so a crash in between only repeats a
    harmless step); without one it is kept for a human and logged once."""
    sub = _named(store, signer, tokens)
    if sub is None:
        store_bounces.record(store, sha, [], outcome=KEPT + NO_TOKEN, now=now)
        item.keep()
        out.kept.append(item.where)
        out.no_token += 1
        sender = parseaddr(unsubscribe_mail.header_of(item.raw, "From"))[1]
        log.warning(
            "%s: %s (From: %r, which proves nothing); left in the mailbox: check it and run "
            "'digest unsubscribe ADDRESS' if it is genuine",
            item.where,
            NO_TOKEN,
            sender,
        )
        return
    subs = Subscribers(store)
    if sub.status != "unsubscribed":
        subs.set_status(sub.id, "unsubscribed", now, "unsubscribed by email")
        out.unsubscribed.append(sub.address)
        log.info("%s unsubscribed by email", sub.address)
    store_bounces.record(store, sha, [], outcome=f"unsubscribed {sub.key}", now=now)
    item.done()


def _named(store: Store, signer: Tokens, tokens: tuple[str, ...]) -> Subscriber | None:
    """The subscriber the first valid unsubscribe token of ``tokens`` names, with the
    secret it was made with (a renewed secret revokes it); None when none is."""
    for token in tokens:
        try:
            claim = signer.read("unsubscribe", token)
        except BadToken:
            continue
        sub = Subscribers(store).by_id(claim.subscriber_id)
        if claim.matches(sub):
            return sub
    return None


def _events(config: Config, store: Store, raw: bytes) -> dict[str, tuple[str, str]]:
    """address key → (kind, status) of the failures one report names."""
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
    return events


def apply(
    config: Config,
    store: Store,
    sha: str,
    events: dict[str, tuple[str, str]],
    now: datetime,
    via: str = "",
) -> list[str]:
    """Records one report's events ``address key → (kind, status)`` (each a subscriber)
    under ``sha`` and marks who crossed the line ``bounced`` (``via`` is added to the
    reason); returns their addresses."""
    subs = Subscribers(store)
    outcome = ", ".join(f"{key} {kind}" for key, (kind, _) in sorted(events.items()))
    rows = [(key, kind, status) for key, (kind, status) in events.items()]
    if not store_bounces.record(store, sha, rows, outcome, now):
        return []  # another reader handled this report at the same moment
    out: list[str] = []
    for key, (kind, status) in sorted(events.items()):
        sub = subs.get(key)
        if sub is None or sub.status != "active":
            continue
        since = max(now - store_bounces.SOFT_WINDOW, sub.confirmed or sub.created)
        counts = store_bounces.counts_since(store, key, since)
        if counts["hard"] or counts["soft"] >= config.email.soft_bounce_limit:
            reason = (
                f"hard bounce {status if kind == 'hard' else ''}".strip()
                if counts["hard"]
                else f"{counts['soft']} soft bounces within 7 days"
            ) + (f" ({via})" if via else "")
            subs.set_status(sub.id, "bounced", now, reason)
            out.append(sub.address)
            log.info("%s marked bounced: %s", sub.address, reason)
    return out


def refused(
    config: Config, store: Store, delivery_id: int, recipient: str, reply: tuple[int, str], now: datetime
) -> bool:
    """The SMTP server refused ``recipient`` at ``RCPT TO`` with ``reply`` while sending
    outbox row ``delivery_id``: a synchronous bounce. When the reply says the address is
    bad (:func:`digest.bounces.refusal`) and the recipient is a subscriber, it counts as
    a hard bounce, recorded once per outbox row. True when they were marked bounced now."""
    code, text = reply
    verdict = bounces.refusal(code, text)
    key = normalise(recipient)
    if verdict is None or Subscribers(store).get(key) is None:
        return False
    sha = hashlib.sha256(f"smtp refusal of delivery {delivery_id}".encode()).hexdigest()
    if store_bounces.outcome_of(store, sha) is not None:
        return False
    kind, status = verdict
    via = f"refused at RCPT TO: {code} {text}".strip()
    return bool(apply(config, store, sha, {key: (kind, status or str(code))}, now, via))
