"""Edge: ``/preferences`` of the built-in server (issue 14; docs/DESIGN.md, invariant 10).

    GET  /preferences?t=…   the subscriber's status, the form (cadence, top picks,
                            only-top, interests, keywords, excluded keywords) and their
                            votes, each with an undo button; changes nothing
    POST /preferences?t=…   ``action``: ``save`` (the form), ``unvote`` (one paper) or
                            ``resubscribe`` (an unsubscribed or bounced subscriber gets
                            mail again)

The signed ``t`` (purpose ``preferences``) names the subscriber; every POST also carries
the CSRF token (double submit). A refused value saves nothing: the form comes back with
the reason and what was typed. The page says when the subscriber gets no mail
(unsubscribed, bounced, not confirmed yet) and, for the first two, offers "Subscribe
again": holding the link proves the mailbox is theirs, as the confirmation link does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.subscribers import Preferences, preferences_from
from digest.text import display
from digest.tokens import link

if TYPE_CHECKING:
    from digest.subscribers import Subscriber
    from digest.web_subscribe import SubscriberPages

FORM = "preferences"
RESUBSCRIBABLE = ("unsubscribed", "bounced")


class PreferencesPage:
    """``/preferences``, sharing the subscriber pages' config, store, signer and helpers."""

    def __init__(self, pages: SubscriberPages) -> None:
        self.pages = pages

    def route(self) -> Route:
        return Route("/preferences", self.preferences, methods=["GET", "HEAD", "POST"])

    async def preferences(self, request: Request) -> Response:
        pages = self.pages
        token = request.query_params.get("t", "")
        claimed = await run_in_threadpool(pages._claimed, "preferences", token)
        if claimed is None:
            return pages._page(
                request, "preferences.html", "Link not valid", 403, state="invalid", token="", address=""
            )
        sub: Subscriber = claimed
        notice = error = None
        prefs = sub.preferences
        shown = prefs_form(prefs)
        status = 200
        if request.method == "POST":
            from digest.web_subscribe import _read_form

            form = await _read_form(request)
            if form is None:
                return pages._refused(request, 413, "That was too much text.")
            if not pages._csrf_ok(request, form, FORM):
                return pages._csrf_refused(request)
            action = form.get("action")
            if action == "unvote":
                await run_in_threadpool(pages.subs.unvote, sub.id, form.get("paper", ""), pages.clock())
                notice = "Vote removed."
            elif action == "resubscribe":
                sub, notice = await run_in_threadpool(self._resubscribe, sub)
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
                    await run_in_threadpool(pages.subs.set_preferences, sub.id, prefs)
                    notice = "Saved."
                    shown = prefs_form(prefs)
        votes = await run_in_threadpool(self._votes, sub)
        base = pages.config.digest.base_url
        return pages._page(
            request,
            "preferences.html",
            "Your preferences",
            status,
            state="ask",
            token=token,
            address=sub.address,
            sub_status=sub.status,
            resubscribable=sub.status in RESUBSCRIBABLE,
            form=shown,
            votes=votes,
            notice=notice,
            error=error,
            unsubscribe_url=link(base, "unsubscribe", pages.tokens.make("unsubscribe", sub)),
        )

    def _resubscribe(self, sub: Subscriber) -> tuple[Subscriber, str]:
        """An unsubscribed or bounced subscriber active again (mail from the next digest
        on, nothing of the backlog); anyone else as they are. The notice says which."""
        if sub.status not in RESUBSCRIBABLE:
            return sub, ("You are subscribed." if sub.status == "active" else "Confirm the address first.")
        change = self.pages.subs.set_status(sub.id, "active", self.pages.clock())
        return change.subscriber, f"Subscribed again: {sub.address} gets the next digest."

    def _votes(self, sub: Subscriber) -> list[dict[str, Any]]:
        """The subscriber's votes, each titled as the other pages show a title (LaTeX
        leftovers as text; the template escapes it)."""
        subs = self.pages.subs
        votes = subs.votes(sub.id)
        titles = subs.titles([v.paper_key for v in votes]) if votes else {}
        return [
            {
                "paper_key": v.paper_key,
                "value": v.value,
                "title": display(titles.get(v.paper_key, v.paper_key)),
            }
            for v in votes
        ]


def prefs_form(prefs: Preferences) -> dict[str, Any]:
    """The preferences form's fields for ``prefs``: terms one per line."""
    return {
        **prefs.as_dict(),
        "keywords": "\n".join(prefs.keywords),
        "exclude": "\n".join(prefs.exclude),
    }
