"""The state: one database (a SQLite file by default) behind SQLAlchemy Core.

:class:`Store` is every read and write of it, composed of one mixin per group of tables
(:mod:`.dumps`, :mod:`.papers`, :mod:`.digests`, :mod:`.outbox`, :mod:`.jobs`) on
:class:`~digest.store.base.StoreBase` (units of work, dry runs, commit groups: :mod:`.group`). The
schema and its migrations are in :mod:`.schema`, SQLite tuning in :mod:`.sqlite`, the
bulk insert in :mod:`.bulk`. See docs/DESIGN.md, "State".
"""

from __future__ import annotations

from digest.store.base import create_engine
from digest.store.digests import DigestsMixin
from digest.store.dumps import DumpsMixin
from digest.store.group import CommitGroup
from digest.store.jobs import JobsMixin
from digest.store.outbox import OutboxMixin
from digest.store.papers import IngestResult, PapersMixin
from digest.store.schema import MIGRATIONS, SCHEMA_VERSION, migrate

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "CommitGroup", "IngestResult", "Store", "create_engine", "migrate"]


class Store(DumpsMixin, PapersMixin, DigestsMixin, OutboxMixin, JobsMixin):
    """All reads and writes of the state. Create with :meth:`open`; a context manager
    (``with Store.open(url) as store:``) closes it."""
