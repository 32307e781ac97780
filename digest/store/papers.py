"""Papers: the ingest of a dump's papers (new ones stored, known ones enriched), and
the reads of a digest's papers and of the newest papers for the feed."""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.crashpoints import crash_point
from digest.model import Digest, Layout, Paper, StoredPaper
from digest.store.base import StoreBase
from digest.store.bulk import BulkInsert, json_strings, known_values
from digest.store.digests import digest_row
from digest.store.driver import run
from digest.store.dumps import DUMP_COUNTS, drop_failures, insert_dump, remember
from digest.store.schema import digests_t, dumps_t, papers_t

BATCH = 500  # papers per INSERT batch; also bounds memory while streaming a huge dump


@dataclass(frozen=True, slots=True)
class IngestResult:
    found: int
    new: int
    layout: Layout
    enriched: int = 0  # known papers given an arXiv id, authors or upvotes they lacked
    raced: bool = False  # another instance ingested these bytes first: nothing was stored


def _batched(items: Iterable[Paper], size: int) -> Iterator[list[Paper]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _paper(row: Any) -> StoredPaper:
    return StoredPaper(
        seq=row.seq,
        paper=Paper(
            key=row.key,
            title=row.title,
            abstract=row.abstract,
            links=tuple(json.loads(row.links)),
            listing_date=row.listing_date,
            arxiv_id=row.arxiv_id,
            authors=tuple(json.loads(row.authors)),
            upvotes=row.upvotes,
        ),
        first_seen=row.first_seen,
        dump_name=row.dump_name,
        guid_key=row.guid_key,
    )


_PAPER_COLUMNS = [*papers_t.c, dumps_t.c.name.label("dump_name")]


def _rich(p: Paper) -> bool:
    """Whether ``p`` carries what a known paper may lack (see :func:`_enrich`)."""
    return bool(p.arxiv_id or p.authors or p.upvotes is not None)


def _paper_row(p: Paper) -> tuple[Any, ...]:
    """``p`` as a row of :data:`_PAPER_INSERT`."""
    return (
        p.key,
        p.title,
        p.abstract,
        json_strings(p.links),  # a JSON list
        p.listing_date,
        p.arxiv_id,
        json_strings(p.authors),
        p.upvotes,
    )


def _enrich(conn: Connection, sightings: Sequence[Paper]) -> int:
    """Fills in the arXiv id, authors and upvotes a known paper lacks (a paper first seen
    in a text dump, later in a JSON one). Never overwrites a value, and never touches
    seq, key, title, abstract or first_seen: only missing data is added."""
    rich = {p.key: p for p in sightings if _rich(p)}
    if not rich:
        return 0
    rows = conn.execute(
        sa.select(papers_t.c.key, papers_t.c.arxiv_id, papers_t.c.authors, papers_t.c.upvotes).where(
            papers_t.c.key.in_(list(rich))
        )
    ).all()
    changed = 0
    for row in rows:
        p = rich[row.key]
        values: dict[str, Any] = {}
        if row.arxiv_id is None and p.arxiv_id:
            values["arxiv_id"] = p.arxiv_id
        if row.authors == "[]" and p.authors:
            values["authors"] = json.dumps(list(p.authors))
        if row.upvotes is None and p.upvotes is not None:
            values["upvotes"] = p.upvotes
        if values:
            conn.execute(sa.update(papers_t).where(papers_t.c.key == row.key).values(**values))
            changed += 1
    return changed


_PAPER_INSERT = ("key", "title", "abstract", "links", "listing_date", "arxiv_id", "authors", "upvotes")


class PapersMixin(StoreBase):
    """The ``papers`` table (and a dump's record, which its papers' ingest writes)."""

    def ingest(
        self,
        *,
        name: str,
        sha256: str,
        size: int,
        mtime_ns: int,
        papers_in: Iterable[Paper],
        layout: Callable[[], Layout],
        now: datetime,
    ) -> IngestResult:
        """Stores one dump and its new papers in one transaction: all of them or none.

        ``papers_in`` may be a generator (a streamed parse): it is consumed in batches
        inside the transaction, so a parse error midway rolls the whole dump back.
        """
        found = new = enriched = 0
        with self.transaction() as conn:
            # A retried failure replaces its record; an ingested dump is never replaced.
            drop_failures(conn, name, sha256)
            dump_id = insert_dump(
                conn, {"sha256": sha256, "name": name, "size": size, "seen_at": now, "status": "ingested"}
            )
            if dump_id is None:  # another instance ingested these bytes first: a no-op
                remember(conn, name, size, mtime_ns, sha256)
                layout_of = sa.select(dumps_t.c.layout).where(dumps_t.c.sha256 == sha256)
                return IngestResult(found=0, new=0, layout=conn.execute(layout_of).scalar_one(), raced=True)
            insert = BulkInsert(conn, papers_t, _PAPER_INSERT, unique="key", first_seen=now, dump_id=dump_id)
            for batch in _batched(papers_in, BATCH):
                found += len(batch)
                if insert.skips_existing and not any(_rich(p) for p in batch):
                    # Most dumps: nothing to add to known papers, so the unique index
                    # itself tells new from known, in the one statement that inserts.
                    new += insert.new_only([_paper_row(p) for p in batch])
                else:
                    known = known_values(conn, papers_t.c.key, [p.key for p in batch])
                    if known:
                        enriched += _enrich(conn, [p for p in batch if p.key in known])
                    rows = [_paper_row(p) for p in batch if p.key not in known]
                    if rows:
                        insert(rows)
                        new += len(rows)
                crash_point("ingest.batch")
            found_layout = layout()
            run(
                conn,
                DUMP_COUNTS,
                {"dump_id": dump_id, "found": found, "new": new, "found_layout": found_layout},
            )
            remember(conn, name, size, mtime_ns, sha256)
        return IngestResult(found=found, new=new, layout=found_layout, enriched=enriched)

    def digest_papers(self, digest: Digest) -> tuple[StoredPaper, ...]:
        """The digest's papers in the order they were first seen."""
        query = (
            sa.select(*_PAPER_COLUMNS)
            .join(dumps_t, dumps_t.c.id == papers_t.c.dump_id)
            .where(papers_t.c.seq.between(digest.first_seq, digest.last_seq))
            .order_by(papers_t.c.seq)
        )
        with self.transaction(read=True) as conn:
            return tuple(_paper(r) for r in conn.execute(query))

    def recent_papers(self, limit: int, up_to_seq: int) -> list[tuple[StoredPaper, Digest]]:
        """The ``limit`` newest digested papers (seq ≤ ``up_to_seq``), newest first,
        each with the digest that carried it."""
        # Two queries, not a join on the seq range: no index serves ``seq BETWEEN
        # first_seq AND last_seq``, so the join scanned every digest for every paper
        # and a feed run slowed down as the history grew (bench/, growth).
        query = (
            sa.select(*_PAPER_COLUMNS)
            .join(dumps_t, dumps_t.c.id == papers_t.c.dump_id)
            .where(papers_t.c.seq <= up_to_seq)
            .order_by(papers_t.c.seq.desc())
            .limit(limit)
        )
        with self.transaction(read=True) as conn:
            stored = [_paper(r) for r in conn.execute(query)]
            if not stored:
                return []
            carriers = [
                digest_row(r)
                for r in conn.execute(
                    sa.select(digests_t)
                    .where(digests_t.c.last_seq >= stored[-1].seq, digests_t.c.first_seq <= stored[0].seq)
                    .order_by(digests_t.c.first_seq)
                )
            ]
        firsts = [d.first_seq for d in carriers]
        out: list[tuple[StoredPaper, Digest]] = []
        for paper in stored:
            i = bisect_right(firsts, paper.seq) - 1
            if i >= 0 and carriers[i].last_seq >= paper.seq:
                out.append((paper, carriers[i]))
        return out
