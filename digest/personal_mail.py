"""Edge: what a subscriber with a profile receives (issues 14, 15): their own email,
from the state.

A subscriber has a profile for an email when their preferences hold interests, keywords
or excluded keywords, or they voted before the email's moment; anyone else gets the
shared email (:mod:`digest.outbox`). An email shows one listing at one moment:

- a daily row: its digest's papers, at the digest's time;
- a weekly row (:class:`Week`): the papers of its seq range, from the week's digests,
  oldest digest first (ties keep that order), each linked to its own digest's page,
  ranked against the corpus of the digest carrying the row, at the row's making.

For each listing a delivery run meets, :class:`PersonalMail` keeps, once:

- every subscriber's votes in force at the moment (``store.rank.votes_as_of``, read once
  per moment: one cast, flipped or withdrawn later does not count) and the profiles
  they make with the preferences;
- the carrying digest's corpus as of the moment fitted once
  (:class:`digest.personal.DigestRanking`, the ranking of ``digest rank`` and of the
  personal feeds; shared by a digest's daily and weekly listings at one moment), which
  ranks the listing's pending profiled recipients ``RANK_CHUNK`` at a time (one transform
  for many readers);
- the listing's papers prepared for rendering (:class:`PersonalDigest`).

A retried delivery renders the same bytes: the papers, the corpus (bounded by the
digest, plus the papers with a vote in force at the moment) and the votes (those in
force at the moment) are those of the first attempt. What the subscriber changed since in their preferences
(interests, keywords, exclusions, max papers, only-top) is read as it is now, like their
address and links.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from digest import audience, identity
from digest.config import Config
from digest.model import Delivery, Digest, StoredPaper
from digest.render.email import Personal, Wire
from digest.render.email_personal import Choice, PersonalDigest, Reader
from digest.render.view import digest_paper_views, digest_view
from digest.store import Store
from digest.store import weekly as store_weekly
from digest.store.subscribers import Subscribers
from digest.subscribers import Preferences, Subscriber, Vote, normalise
from digest.tokens import Tokens, vote_urls

if TYPE_CHECKING:
    from digest.personal import DigestRanking, Pick
    from digest.rank.model import Profile

RANK_CHUNK = 500  # profiled recipients ranked at once: bounds what is held in memory


def has_profile(prefs: Preferences, votes: Sequence[Vote]) -> bool:
    """Whether there is anything to order a digest by for this reader: interests,
    keywords, excluded keywords or votes (``Profile.personal or Profile.exclude``, told
    without loading the ranker)."""
    return bool(prefs.interests.strip() or prefs.keywords or prefs.exclude or votes)


@dataclass(frozen=True, slots=True)
class Week:
    """What a weekly outbox row holds: the seq range of its papers (``store/weekly.py``)
    and when the row was made, the moment its email ranks at (the votes in force
    then), as a daily email ranks at its digest's time."""

    span: tuple[int, int]
    at: datetime


class _Listing:
    """What a set of rows shows, as one listing: a digest's papers (``week`` None) or a
    weekly row's range carried by the digest. Its profiles, and once a profiled reader
    asks: the ranker, the rankings waiting to be used and the papers prepared for
    rendering."""

    def __init__(self, mail: PersonalMail, digest: Digest, week: Week | None) -> None:
        self.until = digest.created if week is None else week.at
        self.votes, self.profiled = mail.votes(self.until), mail.profiled(self.until)
        self.mail, self.digest, self.week = mail, digest, week
        self.waiting: dict[int, list[Pick]] = {}
        self._queue: list[int] | None = None
        self._ready: tuple[DigestRanking, PersonalDigest, dict[int, Profile]] | None = None
        self._papers: Sequence[StoredPaper] | None = None  # a week's papers (None: the digest's)

    def ready(self) -> tuple[DigestRanking, PersonalDigest, dict[int, Profile]]:
        """The ranker, the prepared papers and the profiles (made on first use: they load
        scikit-learn and fit the corpus)."""
        if self._ready is None:
            from digest.personal import profile_of

            config, digest = self.mail.config, self.digest
            by_id = {s.id: s for s in self.mail.known.values()}
            profiles = {i: profile_of(by_id[i].preferences, self.votes.get(i, ())) for i in self.profiled}
            ranking = self.mail.ranking(digest, self.until)
            base = config.digest.base_url
            rest_url = None
            if self.week is None:
                views = digest_paper_views(digest, ranking.stored, base, config.archive.page_size)
                view = digest_view(digest, base, config.tz)
            else:
                store, span = self.mail.store, self.week.span
                view, views, self._papers = audience.weekly_views(config, store, digest, span)
                rest_url = view.url  # the archive's index: the rest come from the week's digests
            subject = config.email.personal_subject
            render = PersonalDigest(self.mail.settings, subject, view, views, rest_url=rest_url)
            self._ready = ranking, render, profiles
        return self._ready

    def picks(self, sub: Subscriber) -> list[Pick]:
        """``sub``'s ranking, made with the next chunk of pending profiled recipients."""
        if sub.id not in self.waiting:
            ranking, _, profiles = self.ready()
            ids = [sub.id, *(i for i in self._pending() if i != sub.id and i not in self.waiting)]
            chunk = ids[:RANK_CHUNK]
            by_id = {s.id: s for s in self.mail.known.values()}
            explain = max(by_id[i].preferences.max_papers for i in chunk)
            ranked = ranking.rank([profiles[i] for i in chunk], explain, self._papers)
            self.waiting.update(zip(chunk, ranked, strict=True))
            taken = set(chunk)
            self._queue = [i for i in self._pending() if i not in taken]
        return self.waiting.pop(sub.id)

    def _pending(self) -> list[int]:
        """Profiled subscribers with a pending row showing this listing, in outbox order:
        a row of the digest holding no range (daily), or this week's range made at its
        moment (weekly)."""
        if self._queue is None:
            known, digest = self.mail.known, self.digest
            rows = self.mail.pending(digest)
            mine = [r for r, span in rows if self._shows(span, r.created or digest.created)]
            subs = [known.get(normalise(r.recipient)) for r in mine]
            self._queue = list(dict.fromkeys(s.id for s in subs if s is not None and s.id in self.profiled))
        return self._queue

    def _shows(self, span: tuple[int, int] | None, made: datetime) -> bool:
        if self.week is None:
            return span is None
        return span == self.week.span and made == self.week.at


class PersonalMail:
    """Each profiled subscriber's own email, digest by digest (and weekly range by weekly
    range), for one delivery run (or one preview); None for anyone else, who gets the
    shared email."""

    def __init__(self, config: Config, store: Store, signer: Tokens | None = None) -> None:
        from digest.outbox import email_settings

        self.config, self.store = config, store
        self.settings = email_settings(config)
        self.known = {s.key: s for s in Subscribers(store).all()}
        self._signer = signer if signer is not None or not self.known else audience.tokens(config, store)
        self._listings: dict[tuple[int, Week | None], _Listing] = {}
        self._votes: dict[datetime, dict[int, list[Vote]]] = {}
        self._profiled: dict[datetime, set[int]] = {}
        self._pending: dict[int, list[tuple[Delivery, tuple[int, int] | None]]] = {}
        self._rankings: dict[tuple[int, datetime], DigestRanking] = {}

    def votes(self, until: datetime) -> dict[int, list[Vote]]:
        """Every subscriber's votes in force at ``until`` (read once per moment)."""
        if until not in self._votes:
            from digest.store.rank import votes_as_of

            self._votes[until] = votes_as_of(self.store, until)
        return self._votes[until]

    def profiled(self, until: datetime) -> set[int]:
        """The ids of the subscribers with a profile as of ``until``."""
        if until not in self._profiled:
            votes = self.votes(until)
            known = self.known.values()
            self._profiled[until] = {s.id for s in known if has_profile(s.preferences, votes.get(s.id, ()))}
        return self._profiled[until]

    def pending(self, digest: Digest) -> list[tuple[Delivery, tuple[int, int] | None]]:
        """The digest's pending rows in outbox order, each with the seq range it holds
        (None: a daily row), read once: what the listings of the digest rank ahead."""
        if digest.id not in self._pending:
            rows = [r for r in self.store.deliveries("pending") if r.digest_id == digest.id]
            spans = store_weekly.ranges(self.store, (r.id for r in rows))
            self._pending[digest.id] = [(r, spans.get(r.id)) for r in rows]
        return self._pending[digest.id]

    def ranking(self, digest: Digest, until: datetime) -> DigestRanking:
        """The digest's corpus as of ``until``, fitted once: a weekly range carried by a
        digest ranks on the fit its daily readers use when both rank at one moment."""
        if (digest.id, until) not in self._rankings:
            from digest.personal import DigestRanking

            self._rankings[digest.id, until] = DigestRanking(self.store, digest, until=until)
        return self._rankings[digest.id, until]

    def _listing(self, digest: Digest, week: Week | None) -> _Listing:
        if (digest.id, week) not in self._listings:
            self._listings[digest.id, week] = _Listing(self, digest, week)
        return self._listings[digest.id, week]

    def reader(
        self,
        digest: Digest,
        recipient: str,
        message_id: str,
        links: Personal | None,
        week: Week | None = None,
    ) -> Reader | None:
        """What ``recipient``'s email for ``digest`` (or for ``week``, a weekly row
        carried by it) holds; None without a profile."""
        sub = self.known.get(normalise(recipient))
        if sub is None or links is None or self._signer is None:
            return None
        state = self._listing(digest, week)
        if sub.id not in state.profiled:
            return None
        prefs = sub.preferences
        from digest.personal import top_picks

        ranked = state.picks(sub)
        top, rest = top_picks(ranked, prefs.max_papers)
        picks = tuple(Choice(p.ranked.index, p.ranked.reasons) for p in top)
        also: tuple[Choice, ...] = ()
        if not prefs.only_top:
            sunk = [p for p in ranked if p.ranked.excluded]
            also = tuple(Choice(p.ranked.index, p.ranked.reasons) for p in (*rest, *sunk))
        served = audience.served(self.config)
        base = self.config.digest.base_url
        signer = self._signer
        page = identity.site_url(base, signer.personal_dir(sub) + "/") if served else None
        votes: Callable[[str], tuple[str, str]] | None = None
        if served:

            def votes(key: str) -> tuple[str, str]:
                return vote_urls(signer, sub, key, base_url=base)

        return Reader(recipient, message_id, links, picks, also, page, votes)

    def wire(
        self,
        digest: Digest,
        recipient: str,
        message_id: str,
        links: Personal | None,
        week: Week | None = None,
    ) -> Wire | None:
        """``recipient``'s own email as sent; None when they get the shared one."""
        reader = self.reader(digest, recipient, message_id, links, week)
        return None if reader is None else self._listing(digest, week).ready()[1].wire(reader)

    def message(
        self,
        digest: Digest,
        recipient: str,
        message_id: str,
        links: Personal | None,
        week: Week | None = None,
    ) -> EmailMessage | None:
        """:meth:`wire` built by the email package (``digest preview``, the reference)."""
        reader = self.reader(digest, recipient, message_id, links, week)
        return None if reader is None else self._listing(digest, week).ready()[1].message(reader)
