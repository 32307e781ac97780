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


def first_titles(store: Store, chosen: Sequence[Digest], limit: int) -> dict[int, list[tuple[int, str, str]]]:
    """(seq, key, title) of the first ``limit`` papers of each digest, by digest id: one
    small query per digest on the seq primary key, in one read transaction. ``key`` is
    the one the paper's anchor derives from (its ``guid_key`` when it has one, as
    :attr:`~digest.model.StoredPaper.ident`)."""
    out: dict[int, list[tuple[int, str, str]]] = {}
    with store.transaction(read=True) as conn:
        for d in chosen:
            query = (
                sa.select(
                    papers.c.seq,
                    sa.func.coalesce(papers.c.guid_key, papers.c.key).label("key"),
                    papers.c.title,
                )
                .where(papers.c.seq.between(d.first_seq, d.last_seq))
                .order_by(papers.c.seq)
                .limit(limit)
            )
            out[d.id] = [(r.seq, r.key, r.title) for r in conn.execute(query)]
    return out
