"""Edge: a digest ranked for one reader, from the state (``digest rank``, the email's
"Top picks for you").

The ranking itself is pure (:mod:`digest.rank`); this module reads what it needs: the
digest's papers in listing order, the digest's corpus (bounded by the digest, so an old
digest ranks the same way later; see :class:`DigestRanking`) and the reader's votes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
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
            "pick": self.ranked.pick,
        }


def top_picks(order: Sequence[Pick], max_papers: int) -> tuple[list[Pick], list[Pick]]:
    """(the reader's top picks, the rest) of ``order`` (a reader's ranking), excluded
    papers left out of both.

    A pick is among the first ``max_papers`` and is a ranker's pick
    (:attr:`digest.rank.model.Ranked.pick`): it scores at least one spread above the
    typical paper, for a reason the reader gave (a keyword, their rarer words, a liked
    paper it is like, a better pick it is close to). In a small digest the papers that
    match nothing the reader said are no picks, however few others there are. A reader
    whose words and votes score nothing (exclusions alone) has the first ``max_papers``
    in listing order.
    """
    kept = [p for p in order if not p.ranked.excluded]
    if not any(p.ranked.score for p in kept):
        return kept[:max_papers], kept[max_papers:]
    chosen = [n < max_papers and p.ranked.pick for n, p in enumerate(kept)]
    return [p for p, c in zip(kept, chosen, strict=True) if c], [
        p for p, c in zip(kept, chosen, strict=True) if not c
    ]


class DigestRanking:
    """One digest ranked for any readers, against the digest's corpus at a moment: the
    one ranking path of ``digest rank``, the personal email (:mod:`digest.personal_mail`)
    and the personal page and feeds (:mod:`digest.personal_site`).

    The corpus is defined once, from the state alone: the ``CORPUS_PAPERS`` newest papers
    up to the digest, plus every paper up to the digest anyone has a vote on (the votes in
    force at ``until``; the current ones when None), plus ``extra`` (the ad hoc
    ``--like``/``--dislike`` of ``digest rank``, wherever listed). It does not depend on
    who asks, so one fit serves every reader, and a reader's order is the same whichever
    path ranks them at the same moment. A vote on a paper newer than the digest leaves its
    corpus, and so every other reader's order in it, as it was. The email
    ranks at the digest's time (a retry renders the same bytes); the feeds and ``digest
    rank`` at the current votes (a vote shows on the next run).

    The digest's papers are read once; the corpus is read and fitted on first use."""

    def __init__(
        self, store: Store, digest: Digest, until: datetime | None = None, extra: Iterable[str] = ()
    ) -> None:
        from digest.store import rank as store_rank

        self.store, self.digest, self.until = store, digest, until
        self.stored = store.digest_papers(digest)
        self.voted = sorted(store_rank.voted_keys(store, until))
        self.named = sorted(set(extra))
        self._corpus: list[Doc] | None = None
        self._hash: str | None = None
        self._ranker: Ranker | None = None

    def corpus(self) -> list[Doc]:
        """The digest's corpus (read once)."""
        if self._corpus is None:
            from digest.store import rank as store_rank

            self._corpus = store_rank.corpus(self.store, self.digest.last_seq, self.voted, named=self.named)
        return self._corpus

    def corpus_hash(self) -> str:
        """A hash of the corpus's papers: it changes when a vote on a paper older than the
        newest ``CORPUS_PAPERS`` widens it (everyone's order may then change), not with a
        vote on a paper inside it or newer than the digest."""
        if self._hash is None:
            keys = "\n".join(d.key for d in self.corpus())
            self._hash = hashlib.sha256(keys.encode()).hexdigest()
        return self._hash

    def ranker(self) -> Ranker:
        """The ranker fitted on the digest's corpus (once)."""
        if self._ranker is None:
            from digest.rank.model import Ranker

            self._ranker = Ranker(self.corpus())
        return self._ranker

    def rank(
        self,
        profiles: Sequence[Profile],
        explain: int | None = None,
        papers: Sequence[StoredPaper] | None = None,
    ) -> list[list[Pick]]:
        """The digest's papers best first for each of ``profiles`` (reasons for the first
        ``explain`` of each). A profile with nothing to rank by keeps the listing order
        with score 0 (and costs no fit).

        ``papers`` ranks another listing against the digest's corpus instead (a weekly
        email: the papers of the week's digests, oldest first, each no newer than the
        digest); ties keep its order, and a pick's index is its place there."""
        from digest.rank.model import Doc, Ranked

        stored = self.stored if papers is None else tuple(papers)
        members = [i for i, p in enumerate(profiles) if p.personal or p.exclude]
        listing = [Pick(s, Ranked(n, s.key, 0.0, ())) for n, s in enumerate(stored)]
        out: list[list[Pick]] = [listing[:] for _ in profiles]
        if members and stored:
            docs = [Doc(p.key, p.title, p.paper.abstract) for p in stored]
            ranked = self.ranker().rank_many(docs, [profiles[i] for i in members], explain)
            for i, order in zip(members, ranked, strict=True):
                out[i] = [Pick(stored[r.index], r) for r in order]
        return out


def rank_digests(
    store: Store,
    digest: Digest,
    profiles: Sequence[Profile],
    explain: int | None = None,
    until: datetime | None = None,
) -> list[list[Pick]]:
    """The digest's papers best first for each of ``profiles`` (:class:`DigestRanking`
    with the profiles' own votes added to the corpus, for ad hoc ones)."""
    keys = {k for p in profiles for k in (*p.likes, *p.dislikes)}
    return DigestRanking(store, digest, until, keys).rank(profiles, explain)


def rank_digest(
    store: Store,
    digest: Digest,
    profile: Profile,
    explain: int | None = None,
    until: datetime | None = None,
) -> list[Pick]:
    """:func:`rank_digests` for one reader."""
    return rank_digests(store, digest, [profile], explain, until)[0]


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
