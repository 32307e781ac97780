"""Message-IDs (docs/DESIGN.md, "Identity"; invariant 4): unique per install and state, the
same on every retry of one delivery. Gmail drops a message whose Message-ID it has
already seen, so two installs mailing one reader must never share one."""

from __future__ import annotations

import email
import email.policy
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from digest.config import Config
from digest.model import Delivery
from digest.pipeline import run_once
from digest.store import MIGRATIONS, Store, meta
from digest.transports import FileTransport, make_transport
from tests.helpers import DUMP_000, NOW, MakeConfig, drop
from tests.smtpsink import Recorder, SinkConfig

READER = "reader@example.org"


def sent_ids(outbox: Path) -> list[str]:
    ids = []
    for path in sorted(outbox.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        ids.append(str(msg["Message-ID"]))
    return ids


def install(make_config: MakeConfig, name: str, **email_keys: Any) -> Config:
    return make_config(
        state={"url": f"sqlite:///{name}/digest.db"},
        feed={"output_dir": f"{name}/site"},
        email={"outbox": f"{name}/outbox", "to": [READER], **email_keys},
    )


def test_two_fresh_installs_on_the_same_dumps_and_recipient_use_different_message_ids(
    make_config: MakeConfig, inbox: Path, tmp_path: Path
) -> None:
    drop(inbox, DUMP_000)
    ids: list[str] = []
    for name in ("one", "two"):
        config = install(make_config, name)
        with_store = Store.open(config.state.url)
        run_once(config, with_store, FileTransport(config.email.outbox), NOW)
        with_store.close()
        [mid] = sent_ids(tmp_path / name / "outbox")
        ids.append(mid)
    assert ids[0] != ids[1], ids
    # The same install after its state was deleted is a new install too.
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / "one" / f"digest.db{suffix}").unlink(missing_ok=True)
    shutil.rmtree(tmp_path / "one" / "outbox")
    config = install(make_config, "one")
    again = Store.open(config.state.url)
    run_once(config, again, FileTransport(config.email.outbox), NOW)
    again.close()
    [fresh] = sent_ids(tmp_path / "one" / "outbox")
    assert fresh not in ids
    for mid in [*ids, fresh]:
        assert mid.startswith("<digest-1.") and mid.endswith("@example.org>")


def test_the_install_id_is_made_once_and_kept(config: Config) -> None:
    first = Store.open(config.state.url)
    made = first.install_id()
    first.close()
    reopened = Store.open(config.state.url)
    assert reopened.install_id() == made
    assert len(made) == 16 and int(made, 16) >= 0
    reopened.close()


def _refused_once(sink_config: SinkConfig) -> tuple[Recorder, Config, Delivery, str]:
    """A run whose one delivery the sink refuses with a 451: (the sink, the config, the
    pending row, the install id then)."""
    handler = Recorder(data_replies=["451 4.3.0 try again later"])
    config = sink_config(handler)
    with Store.open(config.state.url) as store:
        run_once(config, store, make_transport(config), NOW)
        [row] = store.deliveries()
        assert row.status == "pending" and handler.offered == [row.message_id]
        return handler, config, row, store.install_id()


def _retried(config: Config, handler: Recorder, old_install: str) -> Delivery:
    """The next run, under a new install id: its one delivery goes out; the row sent."""
    with Store.open(config.state.url) as store:
        assert store.install_id() != old_install
        run_once(config, store, make_transport(config), NOW)
        [sent] = store.deliveries()
    [got] = handler.accepted
    assert sent.status == "sent" and got.message["Message-ID"] == sent.message_id
    return sent


def test_a_retried_delivery_keeps_its_message_id_even_when_made_before_the_install_id(
    sink_config: SinkConfig, tmp_path: Path
) -> None:
    handler, config, row, old_install = _refused_once(sink_config)
    first_offer = row.message_id
    assert old_install in row.message_id
    # As if the row had been made before the upgrade that added the install id (the old
    # Message-ID form) and the install id were made since: the retry still goes out
    # under the Message-ID stored on the row.
    old_form = "<digest-1.0a1b2c3d4e5f6a7b@example.org>"
    db = sqlite3.connect(tmp_path / "var" / "digest.db")
    with db:
        db.execute("UPDATE deliveries SET message_id = ?", (old_form,))
        db.execute("UPDATE meta SET value = 'feedfacefeedface' WHERE name = 'install_id'")
    db.close()
    assert _retried(config, handler, old_install).message_id == old_form
    assert handler.offered == [first_offer, old_form]


def test_a_retried_delivery_keeps_its_message_id_even_across_the_upgrade_that_adds_the_install_id(
    sink_config: SinkConfig, tmp_path: Path
) -> None:
    handler, config, row, old_install = _refused_once(sink_config)
    # An older state: no meta table yet, at the schema version that precedes the
    # install-id migration (not "the last minus one": later migrations, e.g. subscribers,
    # come after it and re-run harmlessly). Opening it migrates and makes a new install
    # id; the pending delivery still goes out under the Message-ID it was first tried with.
    db = sqlite3.connect(tmp_path / "var" / "digest.db")
    with db:
        db.execute("DROP TABLE meta")
        db.execute("UPDATE schema_version SET version = ?", (MIGRATIONS.index(meta.migrate),))
    db.close()
    assert _retried(config, handler, old_install).message_id == row.message_id
    assert handler.offered == [row.message_id, row.message_id]
