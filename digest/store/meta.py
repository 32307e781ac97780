"""The state's facts about itself (table ``meta``): the install id.

The install id is made at random when the state is created (or upgraded to the schema
that has it) and never changes. Message-IDs include it, so two installs, or one whose
state was deleted and made anew, never reuse a Message-ID for different mail (Gmail
drops a message whose Message-ID it has seen), while every retry of one delivery keeps
the Message-ID stored on its row (docs/DESIGN.md, "Identity").
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.errors import StoreError

meta_t = sa.Table(
    "meta",
    sa.MetaData(),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

INSTALL_ID = "install_id"


def new_install_id() -> str:
    """16 random hex digits: a dot-atom, so it fits a Message-ID's left side."""
    return secrets.token_hex(8)


def migrate(conn: Connection) -> None:
    """The migration that adds ``meta`` with a fresh install id."""
    meta_t.create(conn, checkfirst=True)
    if get(conn, INSTALL_ID) is None:
        conn.execute(sa.insert(meta_t).values(name=INSTALL_ID, value=new_install_id()))


def get(conn: Connection, name: str) -> str | None:
    return conn.execute(sa.select(meta_t.c.value).where(meta_t.c.name == name)).scalar_one_or_none()


def install_id(conn: Connection) -> str:
    """This state's install id (made by :func:`migrate`)."""
    value = get(conn, INSTALL_ID)
    if value is None:
        raise StoreError("the state has no install id; open it with this paper-digest to migrate it")
    return value
