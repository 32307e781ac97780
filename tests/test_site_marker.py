"""Each site folder keeps its own marker, the newest digest id it shows (digest/site.py,
docs/DESIGN.md invariant 9): a folder another instance did not publish into is brought up
to date from the state on its next publish, byte for byte what the publishing instance
wrote; a site from before the marker keeps working; a dry run's folder gets none."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from digest.config import Config
from digest.identity import message_ids
from digest.ingest import ingest_inbox
from digest.pipeline import RunOptions, catch_up_site, run_once
from digest.site import MARKER, publish, shown_through
from digest.store import Store
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, NOW, drop


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _digest(config: Config, store: Store, hours: int) -> int:
    now = NOW + timedelta(hours=hours)
    ingest_inbox(config, store, now)
    made = store.create_digest(
        now=now, day=now.date(), recipients=(), message_id=message_ids("example.org", store.install_id())
    )
    assert made is not None
    return made.id


def test_a_folder_another_instance_did_not_publish_into_catches_up(
    config: Config, store: Store, inbox: Path, tmp_path: Path
) -> None:
    a, b = tmp_path / "site-a", tmp_path / "site-b"
    drop(inbox, DUMP_000)
    first = _digest(config, store, 0)
    made = publish(config, store, a)  # instance A makes and publishes the digest
    assert made.digests == (first,)
    store.mark_published(made.digests, NOW)
    assert shown_through(a) == first

    # B's folder is empty: rendered whole, nothing left to mark, the same bytes as A's.
    caught = publish(config, store, b)
    assert caught.digests == () and caught.files
    assert _files(b) == _files(a)

    drop(inbox, DUMP_002)
    second = _digest(config, store, 1)
    store.mark_published(publish(config, store, a).digests, NOW)
    assert shown_through(b) == first < second
    caught = publish(config, store, b)  # B: the new digest (and the one before's "next" link)
    assert caught.digests == ()
    written = {str(p.relative_to(b)) for p in caught.files}
    assert {"index.html", "feed.xml", "digests.json"} <= written
    assert sum(name.startswith("digests/") and name.endswith(".html") for name in written) == 2
    assert _files(b) == _files(a) and shown_through(b) == second

    assert publish(config, store, b) == publish(config, store, a)  # both up to date: nothing


def test_a_site_from_before_the_marker_shows_what_was_published(
    config: Config, store: Store, inbox: Path
) -> None:
    drop(inbox, DUMP_000)
    run_once(config, store, FileTransport(config.email.outbox), NOW)
    site = config.feed.output_dir
    (site / MARKER).unlink()
    before = _files(site)
    # No marker but an index: taken to show every published digest, so nothing is redone.
    assert publish(config, store, site).files == ()
    assert _files(site) == before
    drop(inbox, DUMP_002)
    report = run_once(config, store, FileTransport(config.email.outbox), NOW + timedelta(hours=1))
    assert report.digest is not None
    assert shown_through(site) == report.digest.id
    assert catch_up_site(config, store) is None  # SQLite: one instance, its runs publish


def test_a_dry_run_folder_gets_no_marker(config: Config, store: Store, inbox: Path, tmp_path: Path) -> None:
    drop(inbox, DUMP_000)
    out = tmp_path / "dry"
    run_once(config, store, FileTransport(config.email.outbox), NOW, RunOptions(dry_run_dir=out))
    assert (out / "site" / "index.html").is_file()
    assert not (out / "site" / MARKER).exists()
