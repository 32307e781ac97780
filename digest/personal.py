"""Edge: a digest ranked for one reader, from the state (``digest rank``, the email's
"Top picks for you").

The ranking itself is pure (:mod:`digest.rank`); this module reads what it needs: the
digest's papers in listing order, the corpus up to the digest (so an old digest ranks the
same way later) and the reader's liked and disliked papers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from digest.identity import paper_guid
from digest.model import Digest, StoredPaper
from digest.store import Store

if TYPE_CHECKING:
    from digest.rank.model import Doc, Profile, Ranked, Ranker


@dataclass(frozen=True, slots=True)
class Pick:
    """One paper of a digest in a reader's order."""

    paper: StoredPaper
    ranked: Ranked

    def as_json(self, rank: int) -> dict[str, Any]:
        return {
            "rank": rank,
            "title": self.paper.title,
            "guid": paper_guid(self.paper.ident),
            "score": self.ranked.score,
            "reasons": list(self.ranked.reasons),
            "excluded": self.ranked.excluded,
        }


def rank_digests(
    store: Store, digest: Digest, profiles: Sequence[Profile], explain: int | None = None
) -> list[list[Pick]]:
    """The digest's papers best first for each of ``profiles`` (one corpus fit for all).
    A profile with nothing to rank by keeps the listing order with score 0."""
    from digest.rank.model import Doc, Ranked, Ranker
    from digest.store import rank as store_rank

    stored = store.digest_papers(digest)
    docs = [Doc(p.key, p.title, p.paper.abstract) for p in stored]
    out: list[list[Pick]] = [[] for _ in profiles]
    personal = [i for i, p in enumerate(profiles) if p.personal or p.exclude]
    for i in range(len(profiles)):
        if i not in personal:
            out[i] = [Pick(s, Ranked(n, s.key, 0.0, ())) for n, s in enumerate(stored)]
    if personal and docs:
        voted = {k for i in personal for k in (*profiles[i].likes, *profiles[i].dislikes)}
        ranker = Ranker(store_rank.corpus(store, digest.last_seq, voted))
        ranked = ranker.rank_many(docs, [profiles[i] for i in personal], explain)
        for i, order in zip(personal, ranked, strict=True):
            out[i] = [Pick(stored[r.index], r) for r in order]
    return out


def rank_digest(store: Store, digest: Digest, profile: Profile, explain: int | None = None) -> list[Pick]:
    """:func:`rank_digests` for one reader."""
    return rank_digests(store, digest, [profile], explain)[0]


class DigestRanking:
    """One digest ranked for many readers, batch after batch (the personal feeds,
    :mod:`digest.personal_site`): its papers are read once and the corpus fitted once.

    Each reader's order is exactly :func:`rank_digest`'s for them alone: the corpus is the
    newest papers up to the digest plus *that reader's* voted papers older than those, so
    readers whose votes all fall inside it (nearly all) share one fit, and one whose votes
    reach further back gets a fit of their own. Nobody's order depends on another's votes."""

    def __init__(self, store: Store, digest: Digest) -> None:
        self.store = store
        self.digest = digest
        self.stored = store.digest_papers(digest)
        self._base: list[Doc] | None = None
        self._rankers: dict[frozenset[str], Ranker] = {}

    def _ranker(self, profile: Profile) -> Ranker:
        from digest.rank.model import Ranker
        from digest.store import rank as store_rank

        if self._base is None:
            self._base = store_rank.corpus(self.store, self.digest.last_seq)
        have = {d.key for d in self._base}
        extra = frozenset({*profile.likes, *profile.dislikes} - have)
        if extra not in self._rankers:
            docs = self._base if not extra else store_rank.corpus(self.store, self.digest.last_seq, extra)
            self._rankers[extra] = Ranker(docs)
        return self._rankers[extra]

    def rank(self, profiles: Sequence[Profile], explain: int | None = None) -> list[list[Pick]]:
        """The digest's papers best first for each of ``profiles``."""
        from digest.rank.model import Doc, Ranked

        stored = self.stored
        docs = [Doc(p.key, p.title, p.paper.abstract) for p in stored]
        out: list[list[Pick]] = [
            [Pick(s, Ranked(n, s.key, 0.0, ())) for n, s in enumerate(stored)] for _ in profiles
        ]
        groups: dict[int, tuple[Ranker, list[int]]] = {}
        for i, profile in enumerate(profiles):
            if docs and (profile.personal or profile.exclude):
                ranker = self._ranker(profile)
                groups.setdefault(id(ranker), (ranker, []))[1].append(i)
        for ranker, members in groups.values():
            ranked = ranker.rank_many(docs, [profiles[i] for i in members], explain)
            for i, order in zip(members, ranked, strict=True):
                out[i] = [Pick(stored[r.index], r) for r in order]
        return out


class _Prefs(Protocol):  # read-only members: digest.subscribers' frozen dataclasses fit
    @property
    def interests(self) -> str: ...
    @property
    def keywords(self) -> tuple[str, ...]: ...
    @property
    def exclude(self) -> tuple[str, ...]: ...


class _Vote(Protocol):
    @property
    def paper_key(self) -> str: ...
    @property
    def value(self) -> int: ...


def profile_of(prefs: _Prefs, votes: Iterable[_Vote]) -> Profile:
    """A subscriber's ranking profile: their interests, keywords and exclusions, and their
    votes (+1 a like, -1 a dislike) in paper-key order (the order votes were cast in does
    not change the ranking)."""
    from digest.rank.model import Profile

    cast = sorted((v.paper_key, v.value) for v in votes)
    return Profile(
        interests=prefs.interests,
        keywords=tuple(prefs.keywords),
        exclude=tuple(prefs.exclude),
        likes=tuple(k for k, v in cast if v > 0),
        dislikes=tuple(k for k, v in cast if v < 0),
    )


def find_digest(store: Store, which: str) -> Digest:
    """The digest named by its slug (``2026-11-22``, ``2026-11-22-2``) or ``latest``."""
    from digest.errors import DigestError

    known = store.digests()
    if not known:
        raise DigestError("the state holds no digest yet; run `digest run` first")
    if which == "latest":
        return known[0]
    for d in known:
        if d.slug == which:
            return d
    recent = ", ".join(d.slug for d in known[:5])
    raise DigestError(f"no digest {which!r}; --digest takes a slug ({recent}) or latest")
