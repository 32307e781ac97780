"""Edge: what a subscriber with a profile receives (issue 15): their own email, from the
state.

A subscriber has a profile for a digest when their preferences hold interests, keywords
or excluded keywords, or they voted before the digest was made; anyone else gets the
digest's shared email (:mod:`digest.outbox`). For each digest a delivery run meets,
:class:`PersonalMail` keeps, once:

- every subscriber's votes cast up to the digest's time (``store.rank.votes_as_of``) and
  the profiles they make with the preferences;
- the digest's corpus as of its time fitted once (:class:`digest.personal.DigestRanking`,
  the ranking of ``digest rank`` and of the personal feeds), which ranks the digest's
  pending profiled recipients ``RANK_CHUNK`` at a time (one transform for many readers);
- the digest's papers prepared for rendering (:class:`PersonalDigest`).

A retried delivery renders the same bytes: the papers, the corpus (bounded by the
digest, plus the papers voted on up to its time) and the votes (up to the digest's time)
are those of the first attempt. What
the subscriber changed since in their preferences (interests, keywords, exclusions,
max papers, only-top) is read as it is now, like their address and links.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING

from digest import audience, identity
from digest.config import Config
from digest.model import Digest
from digest.render.email import Personal, Wire
from digest.render.email_personal import Choice, PersonalDigest, Reader
from digest.render.view import digest_paper_views, digest_view
from digest.store import Store
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


class _Digest:
    """One digest's profiles, and once a profiled reader asks: its ranker, the rankings
    waiting to be used and the papers prepared for rendering."""

    def __init__(self, mail: PersonalMail, digest: Digest) -> None:
        from digest.store.rank import votes_as_of

        self.votes = votes_as_of(mail.store, digest.created)
        self.profiled = {
            s.id for s in mail.known.values() if has_profile(s.preferences, self.votes.get(s.id, ()))
        }
        self.mail, self.digest = mail, digest
        self.waiting: dict[int, list[Pick]] = {}
        self._queue: list[int] | None = None
        self._ready: tuple[DigestRanking, PersonalDigest, dict[int, Profile]] | None = None

    def ready(self) -> tuple[DigestRanking, PersonalDigest, dict[int, Profile]]:
        """The ranker, the prepared papers and the profiles (made on first use: they load
        scikit-learn and fit the corpus)."""
        if self._ready is None:
            from digest.personal import DigestRanking, profile_of

            config, digest = self.mail.config, self.digest
            by_id = {s.id: s for s in self.mail.known.values()}
            profiles = {i: profile_of(by_id[i].preferences, self.votes.get(i, ())) for i in self.profiled}
            ranking = DigestRanking(self.mail.store, digest, until=digest.created)
            base = config.digest.base_url
            views = digest_paper_views(digest, ranking.stored, base, config.archive.page_size)
            view = digest_view(digest, base, config.tz)
            render = PersonalDigest(self.mail.settings, config.email.personal_subject, view, views)
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
            ranked = ranking.rank([profiles[i] for i in chunk], explain)
            self.waiting.update(zip(chunk, ranked, strict=True))
            taken = set(chunk)
            self._queue = [i for i in self._pending() if i not in taken]
        return self.waiting.pop(sub.id)

    def _pending(self) -> list[int]:
        """Profiled daily subscribers with a pending row for this digest, in outbox order."""
        if self._queue is None:
            known = self.mail.known
            rows = self.mail.store.deliveries("pending")
            subs = [known.get(normalise(r.recipient)) for r in rows if r.digest_id == self.digest.id]
            daily = [s for s in subs if s is not None and s.preferences.weekday is None]
            self._queue = list(dict.fromkeys(s.id for s in daily if s.id in self.profiled))
        return self._queue


class PersonalMail:
    """Each profiled subscriber's own email, digest by digest, for one delivery run (or
    one preview); None for anyone else, who gets the shared email."""

    def __init__(self, config: Config, store: Store, signer: Tokens | None = None) -> None:
        from digest.outbox import email_settings

        self.config, self.store = config, store
        self.settings = email_settings(config)
        self.known = {s.key: s for s in Subscribers(store).all()}
        self._signer = signer if signer is not None or not self.known else audience.tokens(config, store)
        self._digests: dict[int, _Digest] = {}

    def _digest(self, digest: Digest) -> _Digest:
        if digest.id not in self._digests:
            self._digests[digest.id] = _Digest(self, digest)
        return self._digests[digest.id]

    def reader(
        self, digest: Digest, recipient: str, message_id: str, links: Personal | None
    ) -> Reader | None:
        """What ``recipient``'s email for ``digest`` holds; None without a profile."""
        sub = self.known.get(normalise(recipient))
        if sub is None or links is None or self._signer is None:
            return None
        state = self._digest(digest)
        if sub.id not in state.profiled:
            return None
        prefs = sub.preferences
        ranked = state.picks(sub)
        kept = [p for p in ranked if not p.ranked.excluded]
        picks = tuple(Choice(p.ranked.index, p.ranked.reasons) for p in kept[: prefs.max_papers])
        also: tuple[Choice, ...] = ()
        if not prefs.only_top:
            sunk = [p for p in ranked if p.ranked.excluded]
            also = tuple(Choice(p.ranked.index, p.ranked.reasons) for p in (*kept[prefs.max_papers :], *sunk))
        served = audience.served(self.config)
        base = self.config.digest.base_url
        signer = self._signer
        page = identity.site_url(base, signer.personal_dir(sub) + "/") if served else None
        votes: Callable[[str], tuple[str, str]] | None = None
        if served:

            def votes(key: str) -> tuple[str, str]:
                return vote_urls(signer, sub, key, base_url=base)

        return Reader(recipient, message_id, links, picks, also, page, votes)

    def wire(self, digest: Digest, recipient: str, message_id: str, links: Personal | None) -> Wire | None:
        """``recipient``'s own email as sent; None when they get the shared one."""
        reader = self.reader(digest, recipient, message_id, links)
        return None if reader is None else self._digest(digest).ready()[1].wire(reader)

    def message(
        self, digest: Digest, recipient: str, message_id: str, links: Personal | None
    ) -> EmailMessage | None:
        """:meth:`wire` built by the email package (``digest preview``, the reference)."""
        reader = self.reader(digest, recipient, message_id, links)
        return None if reader is None else self._digest(digest).ready()[1].message(reader)
