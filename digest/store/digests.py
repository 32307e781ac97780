"""Digests: creating one from the papers waiting (with its pending deliveries), and the
reads the site, the feed and the archive make."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime

import sqlalchemy as sa

from digest.errors import StoreError
from digest.model import Digest
from digest.store.base import StoreBase
from digest.store.rows import row_mapper
from digest.store.schema import deliveries_t, digests_t, papers_t

log = logging.getLogger(__name__)


def as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands an aggregate of a DATETIME back as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


digest_row = row_mapper(Digest, created="created_at", published="published_at")


# The key a paper's anchor and GUID derive from: its guid_key when it has one.
_ANCHOR_KEY = sa.func.coalesce(papers_t.c.guid_key, papers_t.c.key).label("key")


@contextmanager
def _unless_made_first_elsewhere() -> Iterator[None]:
    """Swallows the unique-constraint error of a digest another instance made first (the
    unique first_seq or slug): the papers are in its digest, so nothing is left to do."""
    try:
        yield
    except StoreError as err:
        if not isinstance(err.__cause__, sa.exc.IntegrityError):
            raise
        log.info("another instance created the digest first: %s", err)


class DigestsMixin(StoreBase):
    """The ``digests`` table."""

    def create_digest(
        self,
        *,
        now: datetime,
        day: date,
        recipients: Sequence[str],
        message_id: Callable[[int, str], str],
        backfilled: bool = False,
    ) -> Digest | None:
        """Gathers every paper first seen since the last digest into a new digest, with a
        pending delivery per recipient, in one transaction. None when nothing is new.
        ``backfilled`` marks a digest of history (``digest run --backfill``): no weekly
        email holds its papers (:mod:`digest.store.weekly`).

        ``message_id(digest_id, recipient)`` gives each delivery its Message-ID (see
        :func:`digest.identity.message_ids`): minted here, once, so every retry sends the
        same one.
        """
        with _unless_made_first_elsewhere():
            return self._insert_digest(now, day, recipients, message_id, backfilled)
        return None

    def _insert_digest(
        self,
        now: datetime,
        day: date,
        recipients: Sequence[str],
        message_id: Callable[[int, str], str],
        backfilled: bool,
    ) -> Digest | None:
        with self.transaction() as conn:
            last = conn.execute(sa.select(sa.func.max(papers_t.c.seq))).scalar() or 0
            done = conn.execute(sa.select(sa.func.max(digests_t.c.last_seq))).scalar() or 0
            if last <= done:
                return None
            count = conn.execute(
                sa.select(sa.func.count()).select_from(papers_t).where(papers_t.c.seq > done)
            ).scalar_one()
            base = day.isoformat()
            taken = set(
                conn.execute(sa.select(digests_t.c.slug).where(digests_t.c.slug.like(f"{base}%"))).scalars()
            )
            slug, n = base, 1
            while slug in taken:
                n += 1
                slug = f"{base}-{n}"
            digest_id = conn.execute(
                sa.insert(digests_t).values(
                    slug=slug,
                    created_at=now,
                    first_seq=done + 1,
                    last_seq=last,
                    paper_count=count,
                    backfilled=backfilled,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            from digest.store.subscribers import subscribers as subscribers_t  # built on this schema

            blocked = set(
                conn.execute(
                    sa.select(subscribers_t.c.address_key).where(
                        subscribers_t.c.status.in_(("unsubscribed", "bounced"))
                    )
                ).scalars()
            )
            recipients = [r for r in recipients if r.strip().lower() not in blocked]
            if recipients:
                conn.execute(
                    sa.insert(deliveries_t),
                    [
                        {
                            "digest_id": digest_id,
                            "recipient": r,
                            "status": "pending",
                            "attempts": 0,
                            "message_id": message_id(digest_id, r),
                            "created_at": now,
                        }
                        for r in recipients
                    ],
                )
            row = conn.execute(sa.select(digests_t).where(digests_t.c.id == digest_id)).one()
        return digest_row(row)

    def digests(
        self,
        *,
        unpublished: bool = False,
        limit: int | None = None,
        after: int | None = None,
        up_to: int | None = None,
    ) -> list[Digest]:
        """Digests, newest first; only those with an id above ``after`` and at most
        ``up_to`` when given (what one site has not shown yet, digest/site.py)."""
        query = sa.select(digests_t).order_by(digests_t.c.id.desc()).limit(limit)
        if unpublished:
            query = query.where(digests_t.c.published_at.is_(None))
        if after is not None:
            query = query.where(digests_t.c.id > after)
        if up_to is not None:
            query = query.where(digests_t.c.id <= up_to)
        with self.transaction(read=True) as conn:
            return [digest_row(r) for r in conn.execute(query)]

    def digests_between(self, start: datetime | None = None, end: datetime | None = None) -> list[Digest]:
        """Digests created at or after ``start`` and before ``end`` (either open when
        None), newest first. Served by an index on the creation time."""
        query = sa.select(digests_t).order_by(digests_t.c.id.desc())
        if start is not None:
            query = query.where(digests_t.c.created_at >= start)
        if end is not None:
            query = query.where(digests_t.c.created_at < end)
        with self.transaction(read=True) as conn:
            return [digest_row(r) for r in conn.execute(query)]

    def digest_totals(self, start: datetime | None = None, end: datetime | None = None) -> tuple[int, int]:
        """(digests, papers in them) created at or after ``start`` and before ``end``."""
        query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(digests_t.c.paper_count), 0))
        if start is not None:
            query = query.where(digests_t.c.created_at >= start)
        if end is not None:
            query = query.where(digests_t.c.created_at < end)
        with self.transaction(read=True) as conn:
            count, papers_in = conn.execute(query).one()
        return int(count), int(papers_in)

    def digest_totals_per_range(self, bounds: Sequence[datetime]) -> list[tuple[int, int]]:
        """(digests, papers in them) created in each range ``[bounds[i], bounds[i + 1])``,
        in one query (a year per range, for the archive's index)."""
        if len(bounds) < 2:
            return []
        created = digests_t.c.created_at
        bucket = sa.case(*[(created < end, i) for i, end in enumerate(bounds[1:])], else_=-1).label("bucket")
        query = (
            sa.select(bucket, sa.func.count(), sa.func.coalesce(sa.func.sum(digests_t.c.paper_count), 0))
            .where(created >= bounds[0], created < bounds[-1])
            .group_by(bucket)
        )
        totals = [(0, 0)] * (len(bounds) - 1)
        with self.transaction(read=True) as conn:
            for i, count, papers_in in conn.execute(query):
                totals[i] = (int(count), int(papers_in))
        return totals

    def digest_span(self) -> tuple[datetime, datetime] | None:
        """When the first and the last digest were created; None before the first."""
        with self.transaction(read=True) as conn:
            first = conn.execute(sa.select(sa.func.min(digests_t.c.created_at))).scalar()
            last = conn.execute(sa.select(sa.func.max(digests_t.c.created_at))).scalar()
        if first is None or last is None:
            return None
        # An aggregate's result skips the column's type on SQLite: make sure of both.
        return as_utc(first), as_utc(last)

    def previous_digest(self, digest_id: int) -> Digest | None:
        """The digest created just before ``digest_id`` (the page's "previous" link)."""
        query = (
            sa.select(digests_t).where(digests_t.c.id < digest_id).order_by(digests_t.c.id.desc()).limit(1)
        )
        with self.transaction(read=True) as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else digest_row(row)

    def digest(self, digest_id: int) -> Digest:
        with self.transaction(read=True) as conn:
            row = conn.execute(sa.select(digests_t).where(digests_t.c.id == digest_id)).one_or_none()
        if row is None:
            raise StoreError(f"no digest with id {digest_id}")
        return digest_row(row)

    def mark_published(self, digest_ids: Iterable[int], now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                sa.update(digests_t)
                .where(digests_t.c.id.in_(list(digest_ids)), digests_t.c.published_at.is_(None))
                .values(published_at=now)
            )

    def next_digest(self, digest_id: int) -> Digest | None:
        """The digest created just after ``digest_id`` (the page's "next" link)."""
        query = sa.select(digests_t).where(digests_t.c.id > digest_id).order_by(digests_t.c.id).limit(1)
        with self.transaction(read=True) as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else digest_row(row)

    def first_titles(self, chosen: Sequence[Digest], limit: int) -> dict[int, list[tuple[int, str, str]]]:
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
        first, last = digests_t.c.first_seq, digests_t.c.last_seq
        end = sa.case((last < first + span, last), else_=first + span)
        query = (
            sa.select(digests_t.c.id, papers_t.c.seq, _ANCHOR_KEY, papers_t.c.title)
            .select_from(digests_t.join(papers_t, sa.and_(papers_t.c.seq >= first, papers_t.c.seq <= end)))
            .where(digests_t.c.id.in_([d.id for d in chosen]))
            .order_by(digests_t.c.id, papers_t.c.seq)
        )
        out: dict[int, list[tuple[int, str, str]]] = {d.id: [] for d in chosen}
        with self.transaction(read=True) as conn:
            for r in conn.execute(query):
                listed = out[r.id]
                if len(listed) < limit:
                    listed.append((r.seq, r.key, r.title))
            for d in chosen:
                if len(out[d.id]) < min(limit, d.paper_count):
                    rest = (
                        sa.select(papers_t.c.seq, _ANCHOR_KEY, papers_t.c.title)
                        .where(papers_t.c.seq.between(d.first_seq, d.last_seq))
                        .order_by(papers_t.c.seq)
                        .limit(limit)
                    )
                    out[d.id] = [(r.seq, r.key, r.title) for r in conn.execute(rest)]
        return out
