"""The same store code against a real PostgreSQL server (state.url = postgresql+psycopg://…).

Skips with the reason when no server answers on 127.0.0.1:5432; .ci/run starts one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.config import Config
from digest.identity import message_ids
from digest.ingest import ingest_inbox
from digest.pipeline import run_once
from digest.store import Store
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, NOW, MakeConfig, drop

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[test]')")
SERVER = os.environ.get("DIGEST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin() -> psycopg.Connection:  # type: ignore[name-defined]
    try:
        return psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:
        pytest.skip(f"no PostgreSQL server at {SERVER} ({str(err).strip().splitlines()[0]})")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"digest_test_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_config(make_config: MakeConfig, pg_url: str) -> Config:
    return make_config(state={"url": pg_url}, email={"to": ["a@example.org", "b@example.org"]})


def test_sample_counts_and_digest_on_postgres(pg_config: Config, inbox: Path) -> None:
    store = Store.open(pg_config.state.url)
    try:
        drop(inbox, DUMP_000)
        assert ingest_inbox(pg_config, store, NOW).papers_new == 81
        drop(inbox, DUMP_002)
        second = ingest_inbox(pg_config, store, NOW)
        assert (second.papers_found, second.papers_new) == (231, 216)
        digest = store.create_digest(
            now=NOW,
            day=NOW.date(),
            recipients=["a@x.org"],
            message_id=message_ids("x.org", store.install_id()),
        )
        assert digest is not None and digest.paper_count == 297 and digest.created == NOW
        assert len(store.digest_papers(digest)) == 297
        assert store.counts()["deliveries"]["pending"] == 1
    finally:
        store.close()


def test_full_run_on_postgres_matches_sqlite(pg_config: Config, config: Config, inbox: Path) -> None:
    drop(inbox, DUMP_000, DUMP_002)
    outputs = []
    for cfg in (pg_config, config):
        store = Store.open(cfg.state.url)
        try:
            report = run_once(cfg, store, FileTransport(cfg.email.outbox), NOW)
            assert report.ingest.papers_new == 297
            assert run_once(cfg, store, FileTransport(cfg.email.outbox), NOW).digest is None
        finally:
            store.close()
        outputs.append((cfg.feed.output_dir / "feed.xml").read_bytes())
        # Both runs share tmp_path: move the site aside so the second run writes its own.
        cfg.feed.output_dir.rename(cfg.feed.output_dir.with_name(f"site-{len(outputs)}"))
    assert outputs[0] == outputs[1]
