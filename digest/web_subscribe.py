"""Edge: the subscriber pages of the built-in server (issue 14; docs/DESIGN.md, invariant 10).

    GET/POST /subscribe     form; POST makes a pending subscriber and mails a confirmation
    GET/POST /confirm       ?t= a page with one button; POST activates
    GET/POST /unsubscribe   ?t= a page with one button; POST unsubscribes at once (RFC 8058)
    GET/POST /preferences   ?t= cadence, top picks, interests, keywords; see and undo votes
    GET/POST /vote          ?t= more/less like this: a page with one button; POST records
                            (digest/web_vote.py)

A GET never changes state. Every form but the one-click unsubscribe carries a CSRF
token: a random value in a ``SameSite=Strict`` cookie and its signed copy in the form
(double submit). The one-click POST needs no cookie by design: its signed ``t`` is the
capability, and it answers 200, never a redirect.

``POST /subscribe`` answers the same page whatever the address's state (no
enumeration), and does its work (the store, the email) on a worker thread after the
answer, so the answer takes the same time too. Per-client and per-address limits bound
abuse; a hidden ``website`` field catches form-filling robots.
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
from digest.subscribers import WEEKDAYS, Preferences, Subscriber, preferences_from
from digest.text import display
from digest.tokens import BadToken, Tokens, link
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
            Route("/preferences", self.preferences, methods=["GET", "HEAD", "POST"]),
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
        **context: Any,
    ) -> HTMLResponse:
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
        if fresh:
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
            self.worker.submit(lambda: self._sign_up(address, prefs))
        return self._page(request, "subscribe_sent.html", "Check your inbox", address=address)

    def _sign_up(self, address: str, prefs: Preferences) -> None:
        """On the worker: a new address becomes a pending subscriber; anyone not active
        gets a confirmation link; an active one a note with their preferences link."""
        now = self.clock()
        sub = self.subs.get(address)
        if sub is None:
            try:
                sub = self.subs.add(address, now, status="pending", source="web", prefs=prefs)
            except DigestError:  # added meanwhile by another request
                sub = self.subs.get(address)
                if sub is None:
                    return
        self._send_confirmation(sub, now)

    def _send_confirmation(self, sub: Subscriber, now: datetime) -> None:
        audience.send_confirmation(self.config, self.tokens, sub, now)

    # --- /confirm --------------------------------------------------------------------------

    def _confirm_claim(self, token: str) -> tuple[str, Subscriber | None]:
        try:
            claim = self.tokens.read(
                "confirm", token, now=self.clock(), max_age=self.config.subscribe.confirm_for
            )
        except BadToken as err:
            if err.expired_id is not None:
                return "expired", self.subs.by_id(err.expired_id)
            return "invalid", None
        sub = self.subs.by_id(claim.subscriber_id)
        return ("ask", sub) if claim.matches(sub) else ("invalid", None)

    def _claim_page(self, request: Request, state: str, sub: Subscriber | None, token: str) -> Response:
        """The confirm page before the button: asking, or why the link does not work."""
        status, heading = {"ask": (200, "Confirm"), "expired": (410, "Link expired")}.get(
            state, (400, "Link not valid")
        )
        return self._page(
            request,
            "confirm.html",
            heading,
            status,
            form_name="subscribe" if state == "expired" else "confirm",
            state=state,
            token=token,
            address=sub.address if sub is not None else "",
        )

    async def confirm(self, request: Request) -> Response:
        if request.method != "POST":
            token = request.query_params.get("t", "")
            state, sub = await run_in_threadpool(self._confirm_claim, token)
            if state == "expired" and sub is None:
                state = "invalid"
            return self._claim_page(request, state, sub, token)
        form = await _read_form(request)
        if form is None:
            return self._refused(request, 413, "That was too much text.")
        if not self._csrf_ok(request, form, "confirm"):
            return self._csrf_refused(request)
        token = form.get("t", "")
        state, sub = await run_in_threadpool(self._confirm_claim, token)
        if state != "ask" or sub is None:
            return self._claim_page(request, state, sub, "")
        await run_in_threadpool(self._activate, sub)
        prefs = link(self.config.digest.base_url, "preferences", self.tokens.make("preferences", sub))
        return self._page(
            request,
            "confirm.html",
            "You are subscribed",
            state="done",
            address=sub.address,
            preferences_url=prefs,
        )

    def _activate(self, sub: Subscriber) -> None:
        if sub.status != "active":  # confirming twice is harmless
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
        if sub is None:
            return self._page(
                request, "unsubscribe.html", "Link not valid", 403, state="invalid", token="", address=""
            )
        if request.method != "POST":
            return self._page(
                request, "unsubscribe.html", "Unsubscribe", state="ask", token=token, address=sub.address
            )
        # RFC 8058 one-click: no cookie, no CSRF token, no redirect; 200 at once.
        await run_in_threadpool(self._leave, sub)
        return self._page(
            request, "unsubscribe.html", "Unsubscribed", state="done", token="", address=sub.address
        )

    def _leave(self, sub: Subscriber) -> None:
        if sub.status != "unsubscribed":
            self.subs.set_status(sub.id, "unsubscribed", self.clock(), "unsubscribed by its link")

    # --- /preferences ----------------------------------------------------------------------

    async def preferences(self, request: Request) -> Response:
        token = request.query_params.get("t", "")
        sub = await run_in_threadpool(self._claimed, "preferences", token)
        if sub is None:
            return self._page(
                request, "preferences.html", "Link not valid", 403, state="invalid", token="", address=""
            )
        notice = error = None
        prefs = sub.preferences
        shown = _prefs_form(prefs)
        status = 200
        if request.method == "POST":
            form = await _read_form(request)
            if form is None:
                return self._refused(request, 413, "That was too much text.")
            if not self._csrf_ok(request, form, "preferences"):
                return self._csrf_refused(request)
            if form.get("action") == "unvote":
                await run_in_threadpool(self.subs.unvote, sub.id, form.get("paper", ""), self.clock())
                notice = "Vote removed."
            else:
                typed = {
                    "cadence": form.get("cadence") or prefs.cadence,
                    "max_papers": form.get("max_papers") or str(prefs.max_papers),
                    "only_top": form.get("only_top", ""),
                    "interests": form.get("interests", ""),
                    "keywords": form.get("keywords", ""),
                    "exclude": form.get("exclude", ""),
                }
                try:
                    prefs = preferences_from(typed, prefs)
                except ValueError as err:
                    # Nothing saved; the form shows what they typed, to mend and send again.
                    error, status = f"Not saved: {err}", 400
                    shown = {**typed, "only_top": bool(typed["only_top"])}
                else:
                    await run_in_threadpool(self.subs.set_preferences, sub.id, prefs)
                    notice = "Saved."
                    shown = _prefs_form(prefs)
        votes = await run_in_threadpool(self._votes, sub)
        base = self.config.digest.base_url
        return self._page(
            request,
            "preferences.html",
            "Your preferences",
            status,
            state="ask",
            token=token,
            address=sub.address,
            form=shown,
            votes=votes,
            notice=notice,
            error=error,
            unsubscribe_url=link(base, "unsubscribe", self.tokens.make("unsubscribe", sub)),
        )

    def _votes(self, sub: Subscriber) -> list[dict[str, Any]]:
        """The subscriber's votes, each titled as the other pages show a title (LaTeX
        leftovers as text; the template escapes it)."""
        votes = self.subs.votes(sub.id)
        titles = self.subs.titles([v.paper_key for v in votes]) if votes else {}
        return [
            {
                "paper_key": v.paper_key,
                "value": v.value,
                "title": display(titles.get(v.paper_key, v.paper_key)),
            }
            for v in votes
        ]


def _prefs_form(prefs: Preferences) -> dict[str, Any]:
    """The preferences form's fields for ``prefs``: terms one per line."""
    return {
        **prefs.as_dict(),
        "keywords": "\n".join(prefs.keywords),
        "exclude": "\n".join(prefs.exclude),
    }


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
