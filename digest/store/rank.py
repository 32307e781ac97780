"""Edge: what ranking reads from the state: the corpus a digest is ranked against, and
the papers a reader names as liked or disliked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from digest.identity import paper_key
from digest.rank import shown_title_key, unknown_paper
from digest.rank.text import arxiv_id
from digest.store import Store
from digest.store import votes as store_votes
from digest.store.schema import papers_t
from digest.subscribers import Vote

if TYPE_CHECKING:
    from digest.rank.model import Doc

# How many recent papers the TF-IDF statistics and the "everything else" of the likes
# model come from: enough for stable IDF, few enough that ranking stays quick however
# long the history grows.
CORPUS_PAPERS = 5000
# How many recent titles an unknown liked title is compared with for suggestions.
SUGGEST_FROM = 20000


def corpus(
    store: Store,
    up_to_seq: int,
    voted: Iterable[str] = (),
    limit: int = CORPUS_PAPERS,
    named: Iterable[str] = (),
) -> list[Doc]:
    """The ``limit`` newest papers with seq ≤ ``up_to_seq`` (oldest first), then the papers
    of ``voted`` that are older than those (listed up to the digest too: a vote on a
    newer paper leaves the digest's corpus, and every reader's order in it, as it was),
    then those of ``named`` (``digest rank``'s ad hoc likes) wherever they are listed.
    Bounded by the digest, so ranking an old digest again gives the same order whatever
    was ingested since."""
    from digest.rank.model import Doc

    cols = (papers_t.c.seq, papers_t.c.key, papers_t.c.title, papers_t.c.abstract)
    newest = sa.select(*cols).where(papers_t.c.seq <= up_to_seq).order_by(papers_t.c.seq.desc()).limit(limit)
    with store.transaction(read=True) as conn:
        rows = list(conn.execute(newest))[::-1]
        have = {r.key for r in rows}
        for keys, bound in ((voted, papers_t.c.seq <= up_to_seq), (named, sa.true())):
            wanted = sorted(set(keys) - have)
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                query = sa.select(*cols).where(papers_t.c.key.in_(chunk), bound).order_by(papers_t.c.seq)
                found = list(conn.execute(query))
                rows += found
                have.update(r.key for r in found)
    return [Doc(r.key, r.title, r.abstract) for r in rows]


def resolve(store: Store, names: Sequence[str]) -> tuple[str, ...]:
    """Keys of the stored papers named by ``names`` (titles or arXiv ids), in order.

    A title matches by its key, or, among the newest ``SUGGEST_FROM``, as it is shown
    (:func:`~digest.rank.shown_title_key`: LaTeX leftovers as text). Raises
    :func:`~digest.rank.unknown_paper`'s error (titles that contain the name and the
    closest ones, among the same newest) for the first name that matches no stored paper.
    """
    keys: list[str] = []
    with store.transaction(read=True) as conn:
        for name in names:
            ident = arxiv_id(name)
            where = papers_t.c.arxiv_id == ident if ident else papers_t.c.key == paper_key(name)
            key = conn.execute(sa.select(papers_t.c.key).where(where).limit(1)).scalar_one_or_none()
            if key is None:
                recent = conn.execute(
                    sa.select(papers_t.c.key, papers_t.c.title)
                    .order_by(papers_t.c.seq.desc())
                    .limit(SUGGEST_FROM)
                ).all()
                titles = {r.key: r.title for r in recent}
                # A title as the CLI showed it ("Fréchet" for Fr\'echet) names its paper too.
                key = None if ident else shown_title_key(name, titles)
                if key is None:
                    raise unknown_paper(name, titles)
            if key not in keys:
                keys.append(key)
    return tuple(keys)


def votes_as_of(store: Store, until: datetime) -> dict[int, list[Vote]]:
    """Every subscriber's votes in force at ``until`` (a digest's time), by subscriber id,
    in paper-key order: what a personal email for that digest ranks by. A vote cast,
    flipped or withdrawn later does not change it, so an email already made is made
    again to the same bytes (a retry, ``digest rank --as-emailed``)."""
    query = store_votes.in_force(until).order_by(
        store_votes.vote_events.c.subscriber_id, store_votes.vote_events.c.paper_key
    )
    with store.transaction(read=True) as conn:
        return store_votes.by_subscriber(store_votes.read(conn, query))


def voted_keys(store: Store, until: datetime | None = None) -> list[str]:
    """The keys of every paper someone has a vote on (in force at ``until`` when given,
    else now), sorted: what a digest's corpus adds to its newest papers
    (:class:`digest.personal.DigestRanking`), so that one fit serves every reader."""
    cast = store_votes.in_force(until).subquery()
    with store.transaction(read=True) as conn:
        return sorted({r.paper_key for r in conn.execute(sa.select(cast.c.paper_key).distinct())})
