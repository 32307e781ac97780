"""Commit groups: many units of work committed together (docs/DESIGN.md, "Commit groups").

:meth:`digest.store.base.StoreBase.commit_group` opens one and yields a :class:`CommitGroup`;
its plain reference is a commit per unit, which must leave the same state
(tests/test_store.py::test_an_ingest_committing_after_every_dump_gives_the_same_state)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Generic, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from digest.errors import StoreError
from digest.store.sqlite import Checkpointer

if TYPE_CHECKING:
    from digest.store.base import StoreBase


def reason(err: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's multi-line background note."""
    orig = getattr(err, "orig", None)
    return str(orig or err).splitlines()[0]


S = TypeVar("S", bound="StoreBase")


class CommitGroup(Generic[S]):
    """What :meth:`Store.commit_group` yields: ``store`` for the units of work, and
    :meth:`due` / :meth:`commit` for the caller to commit between units."""

    def __init__(
        self, store: S, conn: Connection | None, every: float, checkpointer: Checkpointer | None = None
    ) -> None:
        self.store = store
        self._conn = conn
        self._every = every
        self._since = time.monotonic()
        self._checkpointer = checkpointer

    def due(self) -> bool:
        """Whether ``every`` seconds have passed since the group last committed."""
        return self._conn is not None and time.monotonic() - self._since >= self._every

    def commit(self, *, checkpoint: bool = True) -> bool:
        """Commits the units done so far; False when there was nothing to commit.

        Then a checkpoint starts on its thread, unless ``checkpoint`` is False, as for a
        group's last commit: what is left in the WAL goes back at SQLite's next automatic
        checkpoint or on closing, so a short run pays for one checkpoint, not two."""
        self._since = time.monotonic()
        if self._conn is None or not self._conn.in_transaction():
            return False
        try:
            self._conn.commit()
        except SQLAlchemyError as err:
            raise StoreError(f"state database error: {reason(err)}") from err
        if checkpoint and self._checkpointer is not None:
            self._checkpointer.start()
        return True
