"""Edge: ``digest preview``: an email a run would send, rendered for a look inside a dry
run (every change rolled back) by :func:`digest.outbox.row_renderer`, the one function
from an outbox row to the message it sends, so a preview is the bytes its row sends
(docs/DESIGN.md, invariant 12).

The digest is chosen as a run would reach it: the digest the papers waiting would make,
else the oldest pending delivery's, else the latest digest. Without an address the row
is that pending delivery, or a daily row of the digest for the first ``email.to``
address (else the sender). With one (``--to``), the row that subscriber has, or would
get, for it: a daily subscriber's daily row; a weekly subscriber's weekly row, carried
by the digest and holding every paper digested since their last email, as their
weekday's first run makes it (:func:`digest.store.weekly.create_row_now`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

from digest import audience, identity
from digest.config import Config
from digest.errors import DigestError, UsageError
from digest.model import Delivery, Digest
from digest.outbox import row_renderer
from digest.render import email
from digest.store import Store
from digest.store import weekly as store_weekly
from digest.store.subscribers import Subscribers
from digest.subscribers import Subscriber


@dataclass(frozen=True, slots=True)
class Rendered:
    """An email rendered for a look, not for sending: what ``digest preview`` writes."""

    digest: Digest
    recipient: str
    wire: email.Wire  # the bytes the row would send
    what: str  # "the next digest", "a pending delivery" or "the latest digest"

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.wire.data)

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        return str(part.get_content()) if part is not None else ""


def preview(config: Config, store: Store, now: datetime, to: str | None = None) -> Rendered | None:
    """The email ``digest run`` would send next (to ``to``'s subscriber when given),
    changing nothing. None when there is no paper at all. ``to`` not a subscriber:
    UsageError; a weekly subscriber sent every paper digested so far: DigestError."""
    with store.dry_run() as scratch:
        if to is not None:
            return _for_subscriber(config, scratch, now, to)
        digest, pending, what = _chosen(config, scratch, now, scratch.deliveries("pending"))
        if pending is not None:
            return _render(config, scratch, pending, what)
        if digest is None:
            return None
        default_to = config.email.to[0] if config.email.to else parseaddr(config.email.from_)[1]
        return _render(config, scratch, _daily_row(config, scratch, digest, default_to), what)


def _for_subscriber(config: Config, scratch: Store, now: datetime, address: str) -> Rendered | None:
    audience.sync(config, scratch, now)  # email.to's addresses are subscribers, as a run makes them
    sub = Subscribers(scratch).get(address)
    if sub is None:
        raise UsageError(f"{address!r} is not a subscriber; `digest subscribers list` shows who is")
    digest, row, what = _chosen(config, scratch, now, scratch.deliveries("pending", recipient=sub.address))
    if row is None:
        if digest is None:
            return None
        row = _row_of(config, scratch, sub, digest, now)
        if row is None:
            raise DigestError(
                f"nothing to preview for {sub.address}: no paper digested since their last weekly "
                "email (or since they subscribed) would be in one"
            )
    if sub.preferences.weekday is not None:  # the row is their week's, not one digest's
        what = f"the weekly email ({sub.preferences.cadence}) that {what} carries"
    if sub.status != "active":
        what += f" (they are {sub.status}: no email goes to them now)"
    return _render(config, scratch, row, what)


def _chosen(
    config: Config, scratch: Store, now: datetime, pending: list[Delivery]
) -> tuple[Digest | None, Delivery | None, str]:
    """(the digest the waiting papers make in ``scratch``, None), else (None, the oldest
    of ``pending``), else (the latest digest or None, None); and which it is, in words."""
    digest = scratch.create_digest(
        now=now,
        day=now.astimezone(config.tz).date(),
        recipients=(),
        message_id=identity.message_ids(config.email.domain, scratch.install_id()),
    )
    if digest is not None:
        return digest, None, "the next digest"
    if pending:
        return None, pending[0], "a pending delivery"
    latest = scratch.digests(limit=1)
    return (latest[0] if latest else None), None, "the latest digest"


def _row_of(
    config: Config, scratch: Store, sub: Subscriber, digest: Digest, now: datetime
) -> Delivery | None:
    """``sub``'s row of ``digest`` (any status: a sent one rebuilds as sent), else the row
    a run would make them: weekly, or daily. None: a weekly row would hold nothing."""
    theirs = [r for r in scratch.deliveries(recipient=sub.address) if r.digest_id == digest.id]
    if theirs:
        return theirs[0]
    if sub.preferences.weekday is None:
        return _daily_row(config, scratch, digest, sub.address)
    made = store_weekly.create_row_now(scratch, sub, now, config.email.domain)
    return next((r for r in scratch.deliveries(recipient=sub.address) if r.id == made), None)


def _daily_row(config: Config, scratch: Store, digest: Digest, recipient: str) -> Delivery:
    """The row a run gives ``recipient`` for ``digest`` (its Message-ID as minted then)."""
    mid = identity.message_id(digest.id, recipient, config.email.domain, scratch.install_id())
    return Delivery(
        id=0,
        digest_id=digest.id,
        recipient=recipient,
        status="pending",
        attempts=0,
        message_id=mid,
        created=digest.created,
    )


def _render(config: Config, scratch: Store, row: Delivery, what: str) -> Rendered:
    span = store_weekly.ranges(scratch, [row.id]).get(row.id)
    wire = row_renderer(config, scratch)(row, span)
    return Rendered(scratch.digest(row.digest_id), row.recipient, wire, what)
