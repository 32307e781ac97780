"""Signed links: which subscriber, for what (docs/DESIGN.md, invariants 10 and 11).

Tokens are itsdangerous signatures under the install's key (``DIGEST_SECRET_KEY``, else
one generated once into the state). Each purpose has its own salt, so a token made for
one purpose (or by another install, or for another list) never passes for another.
The payload names the subscriber by id and by a fingerprint of their secret token:
giving a subscriber a new secret revokes every link issued before.

- ``confirm`` carries a timestamp and expires after ``subscribe.confirm_for``, and what
  the sign-up form asked for (cadence, interests when given), applied on confirming: an
  address signing up again (unsubscribed, bounced, or still pending) gets what this form
  said, and a link forged to ask for something else fails its signature.
- ``unsubscribe``, ``preferences`` and ``vote`` carry none: the same state gives the same
  link, so a subscriber's email is the same bytes when rebuilt (invariant 12).

``csrf`` tokens bind a form to a random value kept in a cookie (double submit) and
expire after a few hours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from digest.identity import site_url
from digest.subscribers import Subscriber

Purpose = Literal["confirm", "unsubscribe", "preferences", "vote"]
SECRET_ENV = "DIGEST_SECRET_KEY"
CSRF_MAX_AGE = 4 * 3600


ASKED = ("cadence", "interests")  # what a confirmation link may carry from its sign-up form


class BadToken(Exception):
    """A token that is forged, truncated, for another purpose or install, or expired.
    ``expired`` is the claim (the subscriber id, what the form asked for) when only its
    age is wrong."""

    def __init__(self, reason: str, *, expired: Claim | None = None) -> None:
        super().__init__(reason)
        self.expired = expired

    @property
    def expired_id(self) -> int | None:
        return self.expired.subscriber_id if self.expired is not None else None


def fingerprint(subscriber_token: str) -> str:
    """A short, one-way stand-in for a subscriber's secret inside a signed payload."""
    return hashlib.sha256(subscriber_token.encode()).hexdigest()[:10]


@dataclass(frozen=True, slots=True)
class Claim:
    """What a valid token says: the subscriber's id and secret fingerprint; for a vote
    the paper key and value; for a confirmation what its sign-up form asked for
    (``asked``: (name, value) pairs of :data:`ASKED`, none in a link made before)."""

    subscriber_id: int
    fingerprint: str
    paper_key: str | None = None
    value: int | None = None
    asked: tuple[tuple[str, str], ...] = ()

    def matches(self, subscriber: Subscriber | None) -> bool:
        """Whether ``subscriber`` is the one named, with the secret the link was made with."""
        return (
            subscriber is not None
            and subscriber.id == self.subscriber_id
            and hmac.compare_digest(fingerprint(subscriber.token), self.fingerprint)
        )


def _clocked_signer(now: datetime) -> type[TimestampSigner]:
    stamp = int(now.timestamp())

    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return stamp

    return Signer


class Tokens:
    """Makes and reads the tokens of one install (``key``)."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("an empty token key")
        self._key = key
        self._vote: _VoteSigner | None = None

    def _plain(self, purpose: str) -> URLSafeSerializer:
        return URLSafeSerializer(self._key, salt=f"paper-digest.{purpose}")

    def _timed(self, purpose: str, now: datetime) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._key, salt=f"paper-digest.{purpose}", signer=_clocked_signer(now))

    def make(
        self,
        purpose: Purpose,
        subscriber: Subscriber,
        *,
        now: datetime | None = None,
        asked: Mapping[str, str] | None = None,
    ) -> str:
        """A token for ``purpose``; a confirmation one is dated ``now`` and carries
        ``asked`` (the sign-up form's choices, keys of :data:`ASKED`) when given."""
        payload: list[Any] = [subscriber.id, fingerprint(subscriber.token)]
        if purpose == "confirm":
            if now is None:
                raise ValueError("a confirmation token needs the time it is made")
            if asked:
                payload.append({k: str(asked[k]) for k in ASKED if k in asked})
            return str(self._timed(purpose, now).dumps(payload))
        return str(self._plain(purpose).dumps(payload))

    def personal_dir(self, subscriber: Subscriber) -> str:
        """The folder (under ``feed.output_dir``) of the subscriber's personal page and
        feeds: ``for/<32 hex>``, a keyed hash of their secret, so it cannot be derived from
        the address or id, and moves when the secret is renewed."""
        mac = hmac.new(self._key.encode(), b"personal-dir:" + subscriber.token.encode(), hashlib.sha256)
        return "for/" + mac.hexdigest()[:32]

    def make_vote(self, subscriber: Subscriber, paper_key: str, value: int) -> str:
        if self._vote is None:
            self._vote = _VoteSigner(self._key, "paper-digest.vote")
        return self._vote.dumps([subscriber.id, fingerprint(subscriber.token), paper_key, value])

    def read(self, purpose: Purpose, token: str, *, now: datetime | None = None, max_age: float = 0) -> Claim:
        """The claim of a valid ``token``; BadToken otherwise."""
        try:
            if purpose == "confirm":
                if now is None:
                    raise ValueError("checking a confirmation token needs the time")
                serializer = self._timed(purpose, now)
                try:
                    payload = serializer.loads(token, max_age=int(max_age))
                except SignatureExpired as err:
                    # Genuine but old: say so, naming whom and what they asked for, so a
                    # new link can be offered for the same choices.
                    value = serializer.load_payload(err.payload) if err.payload is not None else None
                    try:
                        old: Claim | None = _claim(purpose, value)
                    except BadToken:
                        old = None
                    raise BadToken("this confirmation link has expired", expired=old) from err
            else:
                payload = self._plain(purpose).loads(token)
        except BadData as err:
            raise BadToken("this link is not valid") from err
        return _claim(purpose, payload)

    # --- CSRF (double submit: a random cookie and a signed copy in the form) ---------------

    def csrf(self, form: str, cookie: str, now: datetime) -> str:
        return str(self._timed("csrf." + form, now).dumps(cookie))

    def check_csrf(self, form: str, cookie: str | None, token: str | None, now: datetime) -> bool:
        if not cookie or not token:
            return False
        try:
            value = self._timed("csrf." + form, now).loads(token, max_age=CSRF_MAX_AGE)
        except BadData:
            return False
        return isinstance(value, str) and hmac.compare_digest(value, cookie)


class _VoteSigner:
    """Signs vote payloads as ``URLSafeSerializer(key, salt=salt)`` does (itsdangerous 2:
    compact JSON, URL-safe base64, then HMAC-SHA1 under the "django-concat" derived key),
    with the key's HMAC made once and without trying zlib: an email signs two votes for
    every paper it shows, and compressing took half of each (a title rarely shrinks by
    much). ``loads`` and :meth:`Tokens.read` take such a token as any other;
    ``tests/test_email_personal.py`` holds it to itsdangerous's own output."""

    def __init__(self, key: str, salt: str) -> None:
        derived = hashlib.sha1(salt.encode() + b"signer" + key.encode()).digest()
        self._mac = hmac.new(derived, digestmod=hashlib.sha1)

    def dumps(self, payload: list[Any]) -> str:
        body = _b64(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
        mac = self._mac.copy()
        mac.update(body)
        return (body + b"." + _b64(mac.digest())).decode("ascii")


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _claim(purpose: str, payload: Any) -> Claim:
    sizes = {"vote": (4,), "confirm": (2, 3)}.get(purpose, (2,))
    if not isinstance(payload, list) or len(payload) not in sizes:
        raise BadToken("this link is not valid")
    sub_id, fp = payload[0], payload[1]
    if not isinstance(sub_id, int) or not isinstance(fp, str):
        raise BadToken("this link is not valid")
    if purpose == "vote":
        key, value = payload[2], payload[3]
        if not isinstance(key, str) or value not in (1, -1):
            raise BadToken("this link is not valid")
        return Claim(sub_id, fp, key, value)
    if len(payload) == 3:  # a confirmation carrying its form's choices
        asked = payload[2]
        if not isinstance(asked, dict) or not all(
            k in ASKED and isinstance(v, str) for k, v in asked.items()
        ):
            raise BadToken("this link is not valid")
        return Claim(sub_id, fp, asked=tuple((k, asked[k]) for k in ASKED if k in asked))
    return Claim(sub_id, fp)


def link(base_url: str, page: str, token: str) -> str:
    """``<base_url><page>?t=<token>`` (tokens are URL-safe; quoted all the same)."""
    return f"{site_url(base_url, page)}?t={quote(token, safe='')}"


def vote_urls(tokens: Tokens, subscriber: Subscriber, paper_key: str, *, base_url: str) -> tuple[str, str]:
    """The "more like this" and "less like this" links of one paper for ``subscriber``:
    ``/vote?t=<token>``, each token signed for the subscriber, the paper and the vote. The
    link opens a page with one button (GET records nothing: mail scanners follow links)."""
    return (
        link(base_url, "vote", tokens.make_vote(subscriber, paper_key, 1)),
        link(base_url, "vote", tokens.make_vote(subscriber, paper_key, -1)),
    )


def unsubscribe_urls(
    tokens: Tokens, subscriber: Subscriber, *, base_url: str, served: bool, mailbox: str
) -> tuple[str, ...]:
    """The List-Unsubscribe targets of ``subscriber``: the one-click https page when the
    built-in server serves the pages (``served``), and a ``mailto:`` to ``mailbox`` whose
    subject carries the token (for a mailbox reader, or a person, to act on)."""
    token = tokens.make("unsubscribe", subscriber)
    urls: list[str] = []
    if served:
        urls.append(link(base_url, "unsubscribe", token))
    urls.append(f"mailto:{mailbox}?subject={quote('unsubscribe ' + token, safe='')}")
    return tuple(urls)
