"""Edge: the subscriber pages of the built-in server (issue 14; docs/DESIGN.md, invariant 10).

    GET/POST /subscribe     form; POST makes a pending subscriber and mails a confirmation
    GET/POST /confirm       ?t= a page with one button; POST activates
    GET/POST /unsubscribe   ?t= a page with one button; POST unsubscribes at once (RFC 8058)
    GET/POST /preferences   ?t= cadence, top picks, interests, keywords; see and undo votes;
                            subscribe again (digest/web_preferences.py)
    GET/POST /vote          ?t= more/less like this: a page with one button; POST records
                            (digest/web_vote.py)

A GET never changes state. Every form but the one-click unsubscribe carries a CSRF
token: a random value in a ``SameSite=Strict`` cookie and its signed copy in the form
(double submit). The one-click POST needs no cookie by design: its signed ``t`` is the
capability, and it answers 200, never a redirect.

``POST /subscribe`` answers the same page whatever the address's state (no
enumeration), and does its work (the store, the email) on a worker thread after the
answer, so the answer takes the same time too. Per-client and per-address limits bound
abuse; a hidden ``website`` field catches form-filling robots. The confirmation link
carries what the form asked for (cadence, interests when given): confirming applies it
to an address that was not active (new, pending, unsubscribed or bounced), never to an
active one.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from digest import audience, identity
from digest.config import Config
from digest.errors import DigestError
from digest.mailaddr import ascii_address
from digest.render import templates
from digest.store import Store
from digest.store.subscribers import Subscribers
from digest.subscribers import (
    WEEKDAYS,
    Preferences,
    Subscriber,
    cadence_weekday,
    parse_cadence,
    preferences_from,
)
from digest.tokens import BadToken, Tokens, link
from digest.web_preferences import PreferencesPage
from digest.web_vote import VotePage

log = logging.getLogger(__name__)

CSRF_COOKIE = "digest_csrf"
MAX_FORM_BYTES = 64 * 1024
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
Clock = Callable[[], datetime]
SECURITY_HEADERS = {
    "cache-control": "no-store",
    # Tokens ride in the URL: never hand them to another site in a Referer.
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    # One-button pages must not be framed (clickjacking); no scripts at all.
    "x-frame-options": "DENY",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RateLimit:
    """At most ``limit`` events per key in any ``window`` seconds (a sliding window kept
    in memory; ``max_keys`` bounds it under a flood of distinct keys)."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Counts an event for ``key``; False (and not counted) when over the limit."""
        at = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= self.max_keys:
                    self._prune(at)
                events = self._events[key] = deque()
            while events and events[0] <= at - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(at)
            return True

    def _prune(self, at: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= at - self.window]:
            del self._events[key]
        if len(self._events) >= self.max_keys:  # all recent: forget the oldest half
            for key in list(self._events)[: self.max_keys // 2]:
                del self._events[key]


class Worker:
    """One thread doing sign-up work (the store, the confirmation email) in order, after
    the answer went out. A failing job is logged (never with its link) and dropped."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._run, name="subscribe-worker", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> bool:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    def join(self) -> None:
        """Waits until every job submitted so far is done (tests, shutdown)."""
        self._jobs.join()

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                job()
            except DigestError as err:
                log.warning("sign-up work failed: %s", err)
            except Exception as err:  # the message might quote a link: only the type
                log.warning("sign-up work failed: %s", type(err).__name__)
            finally:
                self._jobs.task_done()


async def _read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded body's fields (the first value of each); None when it is too large."""
    size = request.headers.get("content-length")
    if size is not None and (not size.isdigit() or int(size) > MAX_FORM_BYTES):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=50)
    return {k: v[0] for k, v in fields.items()}


class SubscriberPages:
    """The routes and what they share: the config, the store, the token signer, the
    rate limits and the worker."""

    def __init__(self, config: Config, store: Store, clock: Clock = _utc_now) -> None:
        self.config = config
        self.store = store
        self.subs = Subscribers(store)
        self.tokens: Tokens = audience.tokens(config, store)
        self.clock = clock
        s = config.subscribe
        self.per_client = RateLimit(s.max_per_client, s.rate_window)
        self.per_address = RateLimit(s.max_per_address, s.rate_window)
        self.worker = Worker()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/subscribe", self.subscribe, methods=["GET", "HEAD", "POST"]),
            Route("/confirm", self.confirm, methods=["GET", "HEAD", "POST"]),
            Route("/unsubscribe", self.unsubscribe, methods=["GET", "HEAD", "POST"]),
            PreferencesPage(self).route(),
            VotePage(self).route(),
        ]

    def stop(self) -> None:
        self.worker.stop()

    # --- rendering -------------------------------------------------------------------------

    def _page(
        self,
        request: Request,
        name: str,
        heading: str,
        status: int = 200,
        *,
        form_name: str | None = None,
        csrf_cookie: bool = True,
        **context: Any,
    ) -> HTMLResponse:
        """The page ``name`` with its CSRF token; ``csrf_cookie`` False for a page with no
        CSRF form, which then sets no cookie (the unsubscribe page and its one-click answer:
        RFC 8058, README "no redirect, no cookie, no login")."""
        base = self.config.digest.base_url
        cookie, fresh = _csrf_cookie(request)
        html = templates.render(
            name,
            site={
                "title": self.config.digest.title,
                "description": self.config.digest.description,
                "language": self.config.digest.language,
            },
            canonical=identity.site_url(base, name.removesuffix(".html")),
            feeds=[],
            root=base,
            heading=heading,
            notice=context.pop("notice", None),
            error=context.pop("error", None),
            csrf=self.tokens.csrf(form_name or _form_of(name), cookie, self.clock()),
            weekdays=list(zip(WEEKDAYS, DAY_NAMES, strict=True)),
            valid_for=audience.valid_for(self.config.subscribe.confirm_for),
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
        if fresh and csrf_cookie:
            response.set_cookie(
                CSRF_COOKIE, cookie, httponly=True, samesite="strict", secure=request.url.scheme == "https"
            )
        return response

    def _csrf_ok(self, request: Request, form: dict[str, str], name: str) -> bool:
        return self.tokens.check_csrf(name, request.cookies.get(CSRF_COOKIE), form.get("csrf"), self.clock())

    def _refused(self, request: Request, status: int, message: str) -> HTMLResponse:
        return self._page(request, "message.html", "Not done", status, message=message, link=None)

    def _csrf_refused(self, request: Request) -> HTMLResponse:
        return self._refused(
            request,
            403,
            "This form expired or did not come from this site. Go back, reload the page and try again.",
        )

    # --- /subscribe ------------------------------------------------------------------------

    async def subscribe(self, request: Request) -> Response:
        blank = {"address": "", "cadence": "daily", "interests": ""}
        if request.method != "POST":
            return self._page(request, "subscribe.html", "Subscribe", form=blank)
        form = await _read_form(request)
        if form is None:
            return self._refused(request, 413, "That was too much text.")
        if not self._csrf_ok(request, form, "subscribe"):
            return self._csrf_refused(request)
        client = request.client.host if request.client else "?"
        if not self.per_client.allow(client):
            return self._refused(request, 429, "Too many sign-ups from here. Try again later.")
        shown = {k: form.get(k, blank[k]) for k in blank}  # as typed (the body is at most 64 KiB)
        try:
            address = ascii_address(form.get("address", ""))
        except ValueError as err:
            return self._page(
                request,
                "subscribe.html",
                "Subscribe",
                400,
                form=shown,
                error=f"That address will not work: {err}",
            )
        try:
            prefs = preferences_from(
                {"cadence": form.get("cadence") or "daily", "interests": form.get("interests")}
            )
        except ValueError as err:
            return self._page(request, "subscribe.html", "Subscribe", 400, form=shown, error=str(err))
        robot = bool(form.get("website"))
        if not robot and self.per_address.allow(address.lower()):
            asked = {"cadence": prefs.cadence, **({"interests": prefs.interests} if prefs.interests else {})}
            self.worker.submit(lambda: self._sign_up(address, prefs, asked))
        return self._page(request, "subscribe_sent.html", "Check your inbox", address=address)

    def _sign_up(self, address: str, prefs: Preferences, asked: dict[str, str]) -> None:
        """On the worker: a new address becomes a pending subscriber; anyone not active
        gets a confirmation link carrying ``asked`` (the form's choices, applied on
        confirming); an active one a note with their preferences link."""
        now = self.clock()
        sub = self.subs.get(address)
        if sub is None:
            try:
                sub = self.subs.add(address, now, status="pending", source="web", prefs=prefs)
            except DigestError:  # added meanwhile by another request
                sub = self.subs.get(address)
                if sub is None:
                    return
        audience.send_confirmation(self.config, self.tokens, sub, now, asked)

    # --- /confirm --------------------------------------------------------------------------

    def _confirm_claim(self, token: str) -> tuple[str, Subscriber | None, dict[str, str]]:
        """(``ask``, ``expired`` or ``invalid``; the subscriber; what the form asked for)."""
        try:
            claim = self.tokens.read(
                "confirm", token, now=self.clock(), max_age=self.config.subscribe.confirm_for
            )
        except BadToken as err:
            if err.expired is not None:
                return "expired", self.subs.by_id(err.expired.subscriber_id), dict(err.expired.asked)
            return "invalid", None, {}
        sub = self.subs.by_id(claim.subscriber_id)
        return ("ask", sub, dict(claim.asked)) if claim.matches(sub) else ("invalid", None, {})

    def _claim_page(
        self, request: Request, state: str, sub: Subscriber | None, token: str, asked: dict[str, str]
    ) -> Response:
        """The confirm page before the button: asking (with what confirming will set), or
        why the link does not work (an expired one offers a new link for the same choices)."""
        status, heading = {"ask": (200, "Confirm"), "expired": (410, "Link expired")}.get(
            state, (400, "Link not valid")
        )
        cadence, when = _when(asked.get("cadence", "daily"))
        return self._page(
            request,
            "confirm.html",
            heading,
            status,
            form_name="subscribe" if state == "expired" else "confirm",
            state=state,
            token=token,
            address=sub.address if sub is not None else "",
            asked_interests=asked.get("interests", ""),
            asked_cadence=cadence,
            # What confirming sets: only for an address not active yet (an active
            # subscriber's preferences change on their preferences page only).
            show_asked=bool(asked) and sub is not None and sub.status != "active",
            asked_when=when,
        )

    async def confirm(self, request: Request) -> Response:
        if request.method != "POST":
            token = request.query_params.get("t", "")
            state, sub, asked = await run_in_threadpool(self._confirm_claim, token)
            if state == "expired" and sub is None:
                state = "invalid"
            return self._claim_page(request, state, sub, token, asked)
        form = await _read_form(request)
        if form is None:
            return self._refused(request, 413, "That was too much text.")
        if not self._csrf_ok(request, form, "confirm"):
            return self._csrf_refused(request)
        token = form.get("t", "")
        state, sub, asked = await run_in_threadpool(self._confirm_claim, token)
        if state != "ask" or sub is None:
            return self._claim_page(request, state, sub, "", asked)
        await run_in_threadpool(self._activate, sub, asked)
        prefs = link(self.config.digest.base_url, "preferences", self.tokens.make("preferences", sub))
        return self._page(
            request,
            "confirm.html",
            "You are subscribed",
            state="done",
            address=sub.address,
            preferences_url=prefs,
        )

    def _activate(self, sub: Subscriber, asked: dict[str, str]) -> None:
        """Makes ``sub`` active with what its sign-up form ``asked`` for (on their other
        preferences); confirming an active subscriber again changes nothing."""
        if sub.status == "active":  # confirming twice is harmless
            return
        try:
            prefs = preferences_from(asked, sub.preferences)
        except ValueError as err:  # signed by us, but a limit may have changed since
            log.warning("a confirmation's choices not applied: %s", err)
            prefs = sub.preferences
        if prefs != sub.preferences:
            self.subs.set_preferences(sub.id, prefs)
        self.subs.set_status(sub.id, "active", self.clock())

    # --- /unsubscribe ----------------------------------------------------------------------

    def _claimed(self, purpose: str, token: str) -> Subscriber | None:
        try:
            claim = self.tokens.read(purpose, token)  # type: ignore[arg-type]
        except BadToken:
            return None
        sub = self.subs.by_id(claim.subscriber_id)
        return sub if claim.matches(sub) else None

    async def unsubscribe(self, request: Request) -> Response:
        token = request.query_params.get("t", "")
        if request.method == "POST" and not token:
            form = await _read_form(request)
            token = (form or {}).get("t", "")
        sub = await run_in_threadpool(self._claimed, "unsubscribe", token)

        def page(heading: str, status: int = 200, **context: Any) -> HTMLResponse:
            # Its one form is the one-click POST itself: no CSRF token, so no cookie either.
            return self._page(request, "unsubscribe.html", heading, status, csrf_cookie=False, **context)

        if sub is None:
            return page("Link not valid", 403, state="invalid", token="", address="")
        if request.method != "POST":
            return page("Unsubscribe", state="ask", token=token, address=sub.address)
        # RFC 8058 one-click: no cookie, no CSRF token, no redirect; 200 at once.
        await run_in_threadpool(self._leave, sub)
        return page("Unsubscribed", state="done", token="", address=sub.address)

    def _leave(self, sub: Subscriber) -> None:
        if sub.status != "unsubscribed":
            self.subs.set_status(sub.id, "unsubscribed", self.clock(), "unsubscribed by its link")


def _when(cadence: str) -> tuple[str, str]:
    """``cadence`` (daily when it does not parse) and in words: "every digest",
    "weekly, on Tuesday"."""
    try:
        cadence = parse_cadence(cadence)
    except ValueError:
        cadence = "daily"
    day = cadence_weekday(cadence)
    return cadence, "every digest" if day is None else f"weekly, on {DAY_NAMES[day]}"


def _csrf_cookie(request: Request) -> tuple[str, bool]:
    """The browser's CSRF cookie (double submit), or a new one when it has none that looks
    like ours; True when it is new and must be set on the response."""
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    if 16 <= len(cookie) <= 64 and cookie.replace("-", "").replace("_", "").isalnum():
        return cookie, False
    return secrets.token_urlsafe(24), True


def _form_of(template: str) -> str:
    """The CSRF scope of a page: the form it posts to (the expired-link page posts to
    /subscribe)."""
    name = template.removesuffix(".html")
    return {"subscribe_sent": "subscribe", "message": "none"}.get(name, name)
