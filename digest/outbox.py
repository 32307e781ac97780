"""Edge: delivers the outbox. A row becomes ``sent`` only after the transport accepted
the message (docs/DESIGN.md invariant 4); a temporary failure stays pending for the next
run, a permanent one is marked failed without holding back the other recipients.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from digest import audience, bounces, bouncing, identity
from digest.config import Config
from digest.crashpoints import crash_point
from digest.errors import DeliveryError
from digest.model import Delivery, Digest, Paper, StoredPaper
from digest.render import email
from digest.render.view import PaperView, digest_paper_views, digest_view, paper_view
from digest.store import Store
from digest.store import weekly as store_weekly
from digest.store.subscribers import Subscribers
from digest.subscribers import normalise
from digest.transports import Transport

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
        abstract_chars=config.email.abstract_chars,
        max_papers=config.email.max_papers,
        max_bytes=config.email.max_bytes,
        unsubscribe=config.email.unsubscribe,
    )


def personal_links(config: Config, store: Store) -> Callable[[str], email.Personal | None]:
    """address → that subscriber's own links (None for an address that is no subscriber)."""
    known = {s.key: s for s in Subscribers(store).all()}
    signer = audience.tokens(config, store) if known else None

    def lookup(address: str) -> email.Personal | None:
        sub = known.get(normalise(address))
        return audience.personal(config, signer, sub) if sub is not None and signer is not None else None

    return lookup


def renderer(config: Config, store: Store) -> Callable[[Digest, str, str], EmailMessage]:
    """A function (digest, recipient, message_id) → message, caching each digest's papers;
    what :func:`deliver_pending` sends for a row holding one digest (a subscriber with a
    profile gets their own email, :mod:`digest.personal_mail`)."""
    from digest.personal_mail import PersonalMail

    settings = email_settings(config)
    cache: dict[int, list[PaperView]] = {}
    links = personal_links(config, store)
    mine = PersonalMail(config, store)

    def build(digest: Digest, recipient: str, message_id: str) -> EmailMessage:
        own = mine.message(digest, recipient, message_id, links(recipient))
        if own is not None:
            return own
        if digest.id not in cache:
            base = config.digest.base_url
            cache[digest.id] = digest_paper_views(
                digest, store.digest_papers(digest), base, config.archive.page_size
            )
        view = digest_view(digest, config.digest.base_url, config.tz)
        return email.message(settings, view, cache[digest.id], recipient, message_id, links(recipient))

    return build


def wire_renderer(
    config: Config, store: Store
) -> Callable[[Digest, str, str, email.Personal | None], email.Wire]:
    """Like :func:`renderer`, serialised for sending: each digest is rendered once per
    shape of personal links (:class:`email.Prepared`) and each recipient's message is
    cut from it."""
    settings = email_settings(config)
    prepared: dict[tuple[int, object], email.Prepared] = {}
    papers: dict[int, list[PaperView]] = {}

    def build(digest: Digest, recipient: str, message_id: str, personal: email.Personal | None) -> email.Wire:
        base = config.digest.base_url
        if digest.id not in papers:
            papers[digest.id] = digest_paper_views(
                digest, store.digest_papers(digest), base, config.archive.page_size
            )
        shape = personal.shape if personal is not None else None
        if (digest.id, shape) not in prepared:
            view = digest_view(digest, base, config.tz)
            prepared[digest.id, shape] = email.Prepared(settings, view, papers[digest.id], personal)
        return prepared[digest.id, shape].wire(recipient, message_id, personal)

    return build


def weekly_message(
    config: Config,
    store: Store,
    digest: Digest,
    span: tuple[int, int],
    recipient: str,
    message_id: str,
    personal: email.Personal | None,
) -> email.Wire:
    """A weekly subscriber's email: every paper of ``span`` (first and last seq), each
    linked to its own digest's page, dated and identified by the carrying ``digest``."""
    view, views, _ = audience.weekly_views(config, store, digest, span)
    msg = email.message(email_settings(config), view, views, recipient, message_id, personal)
    return email.Wire.of(msg)


def row_renderer(config: Config, store: Store) -> Callable[[Delivery, tuple[int, int] | None], email.Wire]:
    """A function (outbox row, the seq range it holds or None) → the message the row
    sends: what :func:`deliver_pending` sends, and what rebuilding a delivery gives
    (invariant 12). A subscriber with a profile gets their own email
    (:mod:`digest.personal_mail`): of the row's digest, or for a weekly row, of its
    range, ranked by the votes in force at the row's making
    (:class:`digest.personal_mail.Week`); anyone else the digest's shared email
    (:func:`wire_renderer`) or the weekly one (:func:`weekly_message`)."""
    from digest.personal_mail import PersonalMail, Week

    build = wire_renderer(config, store)
    digests: dict[int, Digest] = {}
    links = personal_links(config, store)
    mine = PersonalMail(config, store)

    def render(row: Delivery, span: tuple[int, int] | None) -> email.Wire:
        if row.digest_id not in digests:
            digests[row.digest_id] = store.digest(row.digest_id)
        digest = digests[row.digest_id]
        personal = links(row.recipient)
        week = None if span is None else Week(span, row.created or digest.created)
        own = mine.wire(digest, row.recipient, row.message_id, personal, week)
        if own is not None:
            return own
        if span is not None:
            return weekly_message(config, store, digest, span, row.recipient, row.message_id, personal)
        return build(digest, row.recipient, row.message_id, personal)

    return render


BACKOFF_FIRST = 300.0  # seconds to wait after the first failed attempt
BACKOFF_MAX = 4 * 3600.0


def backoff(attempts: int) -> timedelta:
    """How long the service waits after ``attempts`` failed attempts before trying again:
    5 minutes, doubling, at most 4 hours."""
    if attempts <= 0:
        return timedelta(0)
    return timedelta(seconds=min(BACKOFF_FIRST * 2 ** (attempts - 1), BACKOFF_MAX))


def due(row: Delivery, now: datetime) -> bool:
    """Whether the backoff after ``row``'s last failed attempt has run out."""
    return row.last_attempt is None or row.last_attempt + backoff(row.attempts) <= now


def cancel_unwanted(config: Config, store: Store, now: datetime) -> int:
    """Cancels pending deliveries to addresses that no longer receive mail: unsubscribed
    or bounced, or put there by ``email.to`` alone and no longer in it; returns how many."""
    wanted = {s.key for s in audience.recipients(config, store)} if config.email.enabled else set()
    suppressed = store.suppressed()
    removed: list[int] = []
    unsubscribed: list[int] = []
    for row in store.deliveries("pending"):
        addr = normalise(row.recipient)
        if addr in suppressed:
            unsubscribed.append(row.id)
        elif addr not in wanted:
            removed.append(row.id)
    n = store.cancel_deliveries(unsubscribed, "cancelled: the address unsubscribed", now)
    n += store.cancel_deliveries(removed, "cancelled: the address is no longer in email.to", now)
    if n:
        log.info("cancelled %d pending deliveries to addresses no longer receiving the digest", n)
    return n


BATCH = 50  # outbox rows one claim takes; a batch is sent well within the lease


def deliver_pending(
    config: Config,
    store: Store,
    transport: Transport,
    now: datetime,
    *,
    respect_backoff: bool = False,
) -> DeliveryReport:
    """Tries every pending delivery once, oldest first, in batches claimed for this
    instance (``instance.name``) for ``instance.lease`` (:meth:`Store.claim_deliveries`):
    instances sharing one PostgreSQL state send at once without sending a row twice, and a
    row claimed by an instance that died is sent by another once its lease ran out.

    With ``respect_backoff`` (the service's polls) a row whose last failed attempt was
    less than :func:`backoff` ago is skipped; ``digest run`` retries everything at once.
    A row still failing temporarily ``email.retry_for`` after it was created is marked
    failed. A recipient the server refuses at ``RCPT TO`` because the address is bad is a
    hard bounce of that subscriber (:func:`digest.bouncing.refused`): marked ``bounced``,
    their other pending rows cancelled. Nothing is sent while ``email.enabled`` is false:
    rows wait.
    """
    if not config.email.enabled:
        return DeliveryReport()
    cancel_unwanted(config, store, now)
    me = config.instance.name
    lease = timedelta(seconds=config.instance.lease)

    def clock() -> datetime:
        # ``now`` is the run's instant (rows are stamped with it), taken before the run
        # waited for the lock; a lease is compared across instances, so it is wall time.
        return datetime.now(UTC)

    render = row_renderer(config, store)
    give_up = timedelta(seconds=config.email.retry_for)
    sent = retry = failed = 0
    errors: list[str] = []
    bounced: set[str] = set()
    after = 0
    with transport:
        while True:
            claimed = store.claim_deliveries(me, clock(), lease, BATCH, after=after)
            if not claimed:
                break
            after = claimed[-1].id
            batch = [row for row in claimed if due(row, now)] if respect_backoff else claimed
            if len(batch) < len(claimed):
                kept = {row.id for row in batch}
                store.release_deliveries((row.id for row in claimed if row.id not in kept), me)
            spans = store_weekly.ranges(store, (row.id for row in batch))
            until = clock() + lease
            for i, row in enumerate(batch):
                if normalise(row.recipient) in bounced:
                    continue  # marked bounced in this run: set_status cancelled the row
                if clock() + lease / 2 > until:  # a slow batch: renew the claim on its rest
                    until = clock() + lease
                    store.renew_claims((r.id for r in batch[i:]), me, until)
                message = render(row, spans.get(row.id))
                if config.email.bounce_address:  # VERP: a bounce names its outbox row
                    verp = bounces.verp_address(config.email.bounce_address, bounces.delivery_token(row.id))
                    message = bounces.with_envelope(
                        message, verp, return_path=config.email.transport == "file"
                    )
                try:
                    transport.send(message, row.recipient)
                except DeliveryError as err:
                    reason = str(err)
                    permanent = not err.temporary
                    if err.temporary and row.created is not None and now - row.created >= give_up:
                        permanent = True
                        reason = f"gave up after {row.attempts + 1} attempts over {now - row.created}: {err}"
                    store.mark_attempt_failed(row.id, reason, now, permanent=permanent)
                    refusal = err.refused_recipient if not err.temporary else None
                    # A synchronous bounce: the server said at RCPT TO that the address is bad.
                    if refusal is not None and bouncing.refused(
                        config, store, row.id, row.recipient, refusal, now
                    ):
                        bounced.add(normalise(row.recipient))
                        reason += " (a hard bounce: the subscriber is marked bounced)"
                    errors.append(f"{row.recipient}: {reason}")
                    if permanent:
                        failed += 1
                    else:
                        retry += 1
                    log.warning(
                        "delivery of digest %s to %s failed: %s", row.digest_id, row.recipient, reason
                    )
                    continue
                crash_point("outbox.accepted")
                store.mark_sent(row.id, now)
                crash_point("outbox.marked_sent")
                sent += 1
    return DeliveryReport(sent=sent, pending=retry, failed=failed, errors=tuple(errors))


SAMPLE = Paper(
    key=identity.paper_key("A sample paper to check the mail settings"),
    title="A sample paper to check the mail settings",
    abstract=(
        "This message was sent by digest send-test. If it reached you, the SMTP settings work: "
        "real digests will look like this, with each new paper's title, the start of its "
        "abstract, and links to the paper and its code, e.g. https://github.com/example/code."
    ),
    links=("https://github.com/example/code",),
)


def sample_message(config: Config, store: Store, address: str, now: datetime) -> EmailMessage:
    """A sample digest for ``address``: up to three papers of the latest digest (or a
    built-in sample) under a ``[test]`` subject, with a Message-ID of its own."""
    latest = store.digests(limit=1)
    base = config.digest.base_url
    if latest:
        digest = latest[0]
        papers = digest_paper_views(digest, store.digest_papers(digest)[:3], base, config.archive.page_size)
    else:
        digest = Digest(
            id=0,
            slug=now.astimezone(config.tz).date().isoformat(),
            created=now,
            first_seq=0,
            last_seq=0,
            paper_count=1,
        )
        papers = [
            paper_view(
                StoredPaper(seq=0, paper=SAMPLE, first_seen=now, dump_name="sample"), digest.slug, base
            )
        ]
    view = replace(digest_view(digest, base, config.tz), created=now, count=len(papers))
    settings = email_settings(config)
    settings = replace(settings, subject="[test] " + settings.subject)
    stamp = hashlib.sha256(f"{address}\n{now.isoformat()}".encode()).hexdigest()[:16]
    mid = f"<digest-test.{stamp}@{config.email.domain}>"
    return email.message(settings, view, papers, address, mid)
