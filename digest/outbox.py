"""Edge: delivers the outbox. A row becomes ``sent`` only after the transport accepted
the message (DESIGN.md invariant 4); a temporary failure stays pending for the next
run, a permanent one is marked failed without holding back the other recipients.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from digest.config import Config
from digest.crashpoints import crash_point
from digest.deliver import Transport
from digest.errors import DeliveryError
from digest.model import Delivery, Digest
from digest.render import email
from digest.render.view import PaperView, digest_view, paper_view
from digest.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    pending: int = 0  # attempted, failed temporarily, will be retried
    failed: int = 0  # attempted, failed for good
    errors: tuple[str, ...] = ()


def email_settings(config: Config) -> email.EmailSettings:
    return email.EmailSettings(
        title=config.digest.title,
        base_url=config.digest.base_url,
        sender=config.email.from_,
        subject=config.email.subject,
        language=config.digest.language,
    )


def renderer(config: Config, store: Store) -> Callable[[Digest, str, str], EmailMessage]:
    """A function (digest, recipient, message_id) → message, caching each digest's papers."""
    settings = email_settings(config)
    cache: dict[int, list[PaperView]] = {}

    def build(digest: Digest, recipient: str, message_id: str) -> EmailMessage:
        if digest.id not in cache:
            base = config.digest.base_url
            cache[digest.id] = [paper_view(p, digest.slug, base) for p in store.digest_papers(digest)]
        view = digest_view(digest, config.digest.base_url, config.tz)
        return email.message(settings, view, cache[digest.id], recipient, message_id)

    return build


def deliver_pending(config: Config, store: Store, transport: Transport, now: datetime) -> DeliveryReport:
    """Tries every pending delivery once, oldest digest first."""
    pending: list[Delivery] = store.deliveries("pending")
    if not pending:
        return DeliveryReport()
    build = renderer(config, store)
    digests: dict[int, Digest] = {}
    sent = retry = failed = 0
    errors: list[str] = []
    with transport:
        for row in pending:
            digest = digests.setdefault(row.digest_id, store.digest(row.digest_id))
            message = build(digest, row.recipient, row.message_id)
            try:
                transport.send(message, row.recipient)
            except DeliveryError as err:
                store.mark_attempt_failed(row.id, str(err), now, permanent=not err.temporary)
                errors.append(f"{row.recipient}: {err}")
                if err.temporary:
                    retry += 1
                else:
                    failed += 1
                log.warning("delivery of digest %s to %s failed: %s", row.digest_id, row.recipient, err)
                continue
            crash_point("outbox.accepted")
            store.mark_sent(row.id, now)
            crash_point("outbox.marked_sent")
            sent += 1
    return DeliveryReport(sent=sent, pending=retry, failed=failed, errors=tuple(errors))
