"""Schema migration 6: paper keys drop format characters (Unicode category Cf).

Before it, :func:`digest.identity.paper_key` turned a soft hyphen, a zero-width space or
joiner, a word joiner or a BOM into a space, so "Atten\\u00adtion Is All You Need" was a
second paper. The key rule now drops them. A stored paper whose key changes keeps the
GUID and archive anchor it was published under: its old key moves to
``papers.guid_key``, which :attr:`digest.model.StoredPaper.ident` prefers. When the new
key is already another stored paper's (both were published, as two papers), the row is
left as it is: both keep their GUIDs, and a new dump now matches the first one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.identity import has_format_chars, paper_key

log = logging.getLogger(__name__)

_BATCH = 2000


def rekey_format_chars(conn: Connection, papers: sa.Table) -> int:
    """Adds ``papers.guid_key`` if missing and rekeys every paper whose title holds a
    format character; returns how many papers were rekeyed. One pass over the titles,
    streamed; only the (few) papers to change are held in memory."""
    if "guid_key" not in {c["name"] for c in sa.inspect(conn).get_columns("papers")}:
        conn.execute(sa.text("ALTER TABLE papers ADD COLUMN guid_key TEXT"))
    changes: list[tuple[int, str, str]] = []
    page = sa.select(papers.c.seq, papers.c.key, papers.c.title).order_by(papers.c.seq).limit(_BATCH)
    last = 0
    while rows := conn.execute(page.where(papers.c.seq > last)).all():  # pages by seq: any backend
        for seq, key, title in rows:
            if has_format_chars(title) and (new := paper_key(title)) != key:
                changes.append((seq, key, new))
        last = rows[-1][0]
    rekeyed = 0
    for seq, old, new in changes:
        if not new or conn.execute(sa.select(papers.c.seq).where(papers.c.key == new)).first():
            continue  # no key left, or already another paper: both stay as published
        conn.execute(sa.update(papers).where(papers.c.seq == seq).values(key=new, guid_key=old))
        rekeyed += 1
    if changes:
        log.info(
            "%d papers rekeyed without format characters (%d left as published)",
            rekeyed,
            len(changes) - rekeyed,
        )
    return rekeyed


def rekey_migration(papers: sa.Table) -> Callable[[Connection], None]:
    """The migration step for :data:`digest.store.schema.MIGRATIONS`."""

    def migrate(conn: Connection) -> None:
        rekey_format_chars(conn, papers)

    return migrate
