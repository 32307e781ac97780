"""Edge: ``/vote`` of the built-in server, the more/less-like-this links (issue 15;
docs/DESIGN.md, invariant 10).

    GET  /vote?t=…   a page with one button ("More like this: <title>?"); records nothing,
                     since mail scanners and link previewers open every link
    POST /vote       the form (``t`` and the CSRF token): records the vote (+1 or -1,
                     replacing the subscriber's earlier vote on that paper)

The signed ``t`` (:func:`digest.tokens.vote_urls`) names the subscriber (id and a
fingerprint of their secret), the paper and the value. A forged token, one for another
purpose or install, or one made before the subscriber's secret was renewed is refused
with 403, as is a POST without the CSRF cookie and its signed copy (double submit).
The vote is read by the next ranking (the email's top picks, the reader's own page and
feeds on the next run, ``digest rank``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest import identity, text
from digest.tokens import BadToken, Claim, link

if TYPE_CHECKING:
    from digest.subscribers import Subscriber
    from digest.web_subscribe import SubscriberPages

FORM = "vote"


class VotePage:
    """``/vote``, sharing the subscriber pages' config, store, signer and page helpers."""

    def __init__(self, pages: SubscriberPages) -> None:
        self.pages = pages

    def route(self) -> Route:
        return Route("/vote", self.vote, methods=["GET", "HEAD", "POST"])

    def _claimed(self, token: str) -> tuple[Claim, Subscriber, str, int | None] | None:
        """The claim, its subscriber, the paper's title and their earlier vote on it;
        None when the token is not valid for a subscriber that exists now."""
        try:
            claim = self.pages.tokens.read("vote", token)
        except BadToken:
            return None
        subs = self.pages.subs
        sub = subs.by_id(claim.subscriber_id)
        if sub is None or not claim.matches(sub) or claim.paper_key is None:
            return None
        title = text.display(subs.titles([claim.paper_key]).get(claim.paper_key, claim.paper_key))
        earlier = next((v.value for v in subs.votes(sub.id) if v.paper_key == claim.paper_key), None)
        return claim, sub, title, earlier

    def _record(self, sub: Subscriber, claim: Claim) -> None:
        assert claim.paper_key is not None and claim.value is not None
        self.pages.subs.vote(sub.id, claim.paper_key, claim.value, self.pages.clock())

    def _invalid(self, request: Request) -> Response:
        return self.page(request, "Link not valid", 403, state="invalid", token="", title="", value=0)

    def page(self, request: Request, heading: str, status: int = 200, **context: Any) -> Response:
        return self.pages._page(request, "vote.html", heading, status, form_name=FORM, **context)

    async def vote(self, request: Request) -> Response:
        if request.method != "POST":
            token = request.query_params.get("t", "")
            found = await run_in_threadpool(self._claimed, token)
            if found is None:
                return self._invalid(request)
            claim, _, title, earlier = found
            heading = "More like this?" if (claim.value or 0) > 0 else "Less like this?"
            return self.page(
                request, heading, state="ask", token=token, title=title, value=claim.value, previous=earlier
            )
        from digest.web_subscribe import _read_form

        form = await _read_form(request)
        if form is None:
            return self.pages._refused(request, 413, "That was too much text.")
        if not self.pages._csrf_ok(request, form, FORM):
            return self.pages._csrf_refused(request)
        found = await run_in_threadpool(self._claimed, form.get("t", ""))
        if found is None:
            return self._invalid(request)
        claim, sub, title, _ = found
        await run_in_threadpool(self._record, sub, claim)
        base = self.pages.config.digest.base_url
        tokens = self.pages.tokens
        return self.page(
            request,
            "Thank you",
            state="done",
            token="",
            title=title,
            value=claim.value,
            # Their page exists once the next run has written it, for a subscriber who gets mail.
            personal_url=identity.site_url(base, tokens.personal_dir(sub) + "/")
            if sub.status == "active"
            else None,
            preferences_url=link(base, "preferences", tokens.make("preferences", sub)),
        )
