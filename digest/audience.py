"""Edge: who receives what, from the subscriber tables and the config.

- :func:`sync` makes ``email.to`` active subscribers (each run).
- :func:`daily_recipients` / :func:`create_weekly`: the outbox rows of a run.
- :func:`token_key` / :func:`personal`: the signed links in each subscriber's email.
- :func:`weekly_papers` / :func:`weekly_views`: what a weekly row (a seq range) holds.

Everything a subscriber's email depends on comes from the state and the config, so
rebuilding it gives the same bytes (docs/DESIGN.md, invariant 12).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from digest.config import Config
from digest.identity import page_of
from digest.model import Digest, StoredPaper
from digest.render import templates
from digest.render.email import Personal, one_line
from digest.render.view import DigestView, PaperView, digest_view, paper_view
from digest.store import Store
from digest.store import weekly as store_weekly
from digest.store.subscribers import Subscribers
from digest.subscribers import Subscriber, normalise
from digest.tokens import Tokens, link, unsubscribe_urls
from digest.transports import make_transport

log = logging.getLogger(__name__)


def sync(config: Config, store: Store, now: datetime) -> int:
    """Every address of ``email.to`` an active subscriber; returns how many changed."""
    if not config.email.to:
        return 0
    return Subscribers(store).sync_config(config.email.to, now)


def recipients(config: Config, store: Store) -> list[Subscriber]:
    """Who gets mail now (nobody while ``email.enabled`` is false): ``email.to`` in its
    order first, then the other active subscribers by address."""
    if not config.email.enabled:
        return []
    order = {normalise(a): i for i, a in enumerate(config.email.to)}
    found = Subscribers(store).recipients(config.email.to)
    return sorted(found, key=lambda s: (order.get(s.key, len(order)), s.key))


def daily_recipients(config: Config, store: Store) -> tuple[str, ...]:
    """The addresses that get every digest as it is made."""
    return tuple(s.address for s in recipients(config, store) if s.preferences.weekday is None)


def create_weekly(config: Config, store: Store, now: datetime) -> int:
    """The weekly subscribers' rows due today (see :meth:`Subscribers.create_weekly`)."""
    weekly = [s for s in recipients(config, store) if s.preferences.weekday is not None]
    if not weekly:
        return 0
    return store_weekly.create_weekly(store, weekly, now, config.tz, config.email.domain)


def token_key(config: Config, store: Store) -> str:
    """``DIGEST_SECRET_KEY``, else the key generated once into the state."""
    return config.subscribe.secret_key or Subscribers(store).secret_key()


def tokens(config: Config, store: Store) -> Tokens:
    return Tokens(token_key(config, store))


def served(config: Config) -> bool:
    """Whether the built-in server answers the subscriber pages (``http.listen`` set)."""
    return bool(config.http.listen)


def mailbox(config: Config) -> str:
    """Where ``mailto:`` unsubscribe requests go: the configured mailto address, else
    the sender."""
    for url in config.email.unsubscribe:
        if url.startswith("mailto:"):
            return url[len("mailto:") :].partition("?")[0]
    return parseaddr(config.email.from_)[1]


def personal(config: Config, signer: Tokens, subscriber: Subscriber) -> Personal:
    """The subscriber's own links: List-Unsubscribe (https one-click when the pages are
    served, else the https URLs of ``email.unsubscribe``; and a mailto: carrying the
    token) and the preferences page (when served)."""
    base = config.digest.base_url
    urls = unsubscribe_urls(signer, subscriber, base_url=base, served=served(config), mailbox=mailbox(config))
    if not served(config):
        # Without the built-in pages, an https target the operator runs (email.unsubscribe)
        # stays, shared as before, ahead of the personal mailto:.
        urls = tuple(u for u in config.email.unsubscribe if u.startswith("https:")) + urls
    prefs = link(base, "preferences", signer.make("preferences", subscriber)) if served(config) else None
    return Personal(urls, prefs)


def weekly_papers(store: Store, first_seq: int, last_seq: int) -> list[tuple[StoredPaper, Digest]]:
    """The digested papers with ``first_seq <= seq <= last_seq``, oldest first, each with
    the digest that carried it; none of a backfilled digest (history, never mailed)."""
    found = store.recent_papers(last_seq - first_seq + 1, last_seq)
    return [(p, d) for p, d in reversed(found) if p.seq >= first_seq and not d.backfilled]


def weekly_views(
    config: Config, store: Store, digest: Digest, span: tuple[int, int]
) -> tuple[DigestView, list[PaperView], list[StoredPaper]]:
    """What a weekly row shows: the carrying ``digest``'s view counting the papers of
    ``span`` (first and last seq) and linking to the archive's index (the email's
    "view in a browser" and "On the web:"; the week spans several digests, the carrying
    one holds only the newest), those papers oldest first, each linked to its own
    digest's page, and the same papers as stored (what a personal email ranks)."""
    base, size = config.digest.base_url, config.archive.page_size
    held = weekly_papers(store, *span)
    views = [paper_view(p, d.slug, base, page_of(p.seq, d.first_seq, size)) for p, d in held]
    view = replace(digest_view(digest, base, config.tz), count=len(views), url=base)
    return view, views, [p for p, _ in held]


def valid_for(seconds: float) -> str:
    """``3 days``, ``12 hours``, ``30 minutes``: how long a confirmation link lives."""
    days, hours = seconds / 86400, seconds / 3600
    if days >= 1 and days == int(days):
        return f"{int(days)} day{'' if days == 1 else 's'}"
    if hours >= 1 and hours == int(hours):
        return f"{int(hours)} hour{'' if hours == 1 else 's'}"
    return f"{max(1, int(seconds // 60))} minutes"


def confirmation_message(
    config: Config, signer: Tokens, sub: Subscriber, now: datetime, asked: Mapping[str, str] | None = None
) -> EmailMessage:
    """The email a sign-up sends: a confirmation link (valid ``subscribe.confirm_for``,
    carrying ``asked``, what the form chose, applied on confirming), or, for an address
    already active, a note with its preferences link."""
    base, title = config.digest.base_url, config.digest.title
    body = templates.render(
        "confirm_email.txt",
        state=sub.status,
        address=sub.address,
        title=title,
        valid_for=valid_for(config.subscribe.confirm_for),
        confirm_url=link(base, "confirm", signer.make("confirm", sub, now=now, asked=asked)),
        preferences_url=link(base, "preferences", signer.make("preferences", sub)),
    )
    msg = EmailMessage()
    msg["From"] = config.email.from_
    msg["To"] = sub.address
    active = sub.status == "active"
    msg["Subject"] = one_line(
        f"You already receive {title}" if active else f"Confirm your subscription to {title}"
    )
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("subscribe", config.email.domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return msg


def send_confirmation(
    config: Config, signer: Tokens, sub: Subscriber, now: datetime, asked: Mapping[str, str] | None = None
) -> None:
    """Sends :func:`confirmation_message` through ``email.transport`` at once."""
    transport = make_transport(config)
    with transport:
        transport.send(confirmation_message(config, signer, sub, now, asked), sub.address)
    log.info("sent a %s email", "preferences" if sub.status == "active" else "confirmation")
