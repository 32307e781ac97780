"""Edge: the archive's and the feeds' read queries over digests (neighbours, first
titles). Functions over a :class:`~digest.store.Store`, kept apart from ``store.py`` so
they can move into the store package as they are."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from digest.model import Digest
from digest.store import Store, _digest, digests, papers


def next_digest(store: Store, digest_id: int) -> Digest | None:
    """The digest created just after ``digest_id`` (the page's "next" link)."""
    query = sa.select(digests).where(digests.c.id > digest_id).order_by(digests.c.id).limit(1)
    with store.transaction(read=True) as conn:
        row = conn.execute(query).one_or_none()
    return None if row is None else _digest(row)


# The key a paper's anchor and GUID derive from: its guid_key when it has one.
_ANCHOR_KEY = sa.func.coalesce(papers.c.guid_key, papers.c.key).label("key")


def first_titles(store: Store, chosen: Sequence[Digest], limit: int) -> dict[int, list[tuple[int, str, str]]]:
    """(seq, key, title) of the first ``limit`` papers of each digest, by digest id.

    One query for all of them (the index lists a year of digests on every run): each
    digest's first ``limit`` seqs and a few more, a range on the seq primary key. A
    digest whose seqs have gaps there (a PostgreSQL sequence skips the seqs of a rolled
    back ingest) is read once more on its own. ``key`` is the one the paper's anchor
    derives from (its ``guid_key`` when it has one, as
    :attr:`~digest.model.StoredPaper.ident`)."""
    if not chosen or limit <= 0:
        return {}
    span = limit + 8
    first, last = digests.c.first_seq, digests.c.last_seq
    end = sa.case((last < first + span, last), else_=first + span)
    query = (
        sa.select(digests.c.id, papers.c.seq, _ANCHOR_KEY, papers.c.title)
        .select_from(digests.join(papers, sa.and_(papers.c.seq >= first, papers.c.seq <= end)))
        .where(digests.c.id.in_([d.id for d in chosen]))
        .order_by(digests.c.id, papers.c.seq)
    )
    out: dict[int, list[tuple[int, str, str]]] = {d.id: [] for d in chosen}
    with store.transaction(read=True) as conn:
        for r in conn.execute(query):
            listed = out[r.id]
            if len(listed) < limit:
                listed.append((r.seq, r.key, r.title))
        for d in chosen:
            if len(out[d.id]) < min(limit, d.paper_count):
                rest = (
                    sa.select(papers.c.seq, _ANCHOR_KEY, papers.c.title)
                    .where(papers.c.seq.between(d.first_seq, d.last_seq))
                    .order_by(papers.c.seq)
                    .limit(limit)
                )
                out[d.id] = [(r.seq, r.key, r.title) for r in conn.execute(rest)]
    return out
