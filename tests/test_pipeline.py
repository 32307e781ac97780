"""run_once as the CLI and the service use it: docs/DESIGN.md invariants 5, 6 and 8, dry runs, --no-send."""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.atomic import write_atomic
from digest.config import Config
from digest.errors import LockError
from digest.lock import run_lock
from digest.pipeline import RunOptions, run_once
from digest.store import Store
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, NOW, MakeConfig, drop


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
    }


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


_SIGNED = re.compile(rb"(t=|subject=unsubscribe%20)[A-Za-z0-9_.-]+")


def unsigned(outbox: dict[int, bytes]) -> dict[int, bytes]:
    """The emails with each subscriber's signed links masked: two independent states
    hold different secrets (the token key, each subscriber's token), so only those differ."""
    out = {}
    for name, data in outbox.items():
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        head = b"".join(f"{k}: {v}\n".encode() for k, v in msg.items() if k != "Content-Type")
        body = "".join(str(part.get_content()) for part in msg.walk() if not part.is_multipart()).encode()
        out[name] = _SIGNED.sub(rb"\1<signed>", head + body)
    return out


def test_input_files_are_never_changed_and_a_bad_dump_does_not_stop_the_run(
    config: Config, store: Store, inbox: Path
) -> None:
    """Invariant 5."""
    (inbox / "001_broken.txt").write_bytes(b"\x00\x01binary")
    drop(inbox, DUMP_000, DUMP_002)
    before = snapshot(inbox)
    report = run_once(config, store, FileTransport(config.email.outbox), NOW)
    assert snapshot(inbox) == before
    assert (report.ingest.ingested, report.ingest.failed, report.ingest.papers_new) == (2, 1, 297)
    [failed] = store.dump_records("failed")
    assert failed.error == "001_broken.txt:1: binary data (NUL byte); a dump must be the text of a page"
    # The failure is not retried on every run, only with --retry-failed.
    again = run_once(config, store, FileTransport(config.email.outbox), NOW)
    assert again.ingest.failed == 0
    retried = run_once(config, store, FileTransport(config.email.outbox), NOW, RunOptions(retry_failed=True))
    assert retried.ingest.failed == 1
    assert store.counts()["dumps"] == {"ingested": 2, "failed": 1}


def test_outputs_are_byte_identical_for_the_same_state_and_clock(
    make_config: MakeConfig, inbox: Path, tmp_path: Path
) -> None:
    """Invariant 8: two independent states fed the same dumps at the same clock. They
    differ only in their install ids (Message-IDs, tests/test_message_ids.py) and in
    the signed links each state's secrets make (invariant 12, rebuilding one subscriber's
    email from one state, is tests/test_subscribers_weekly.py's)."""
    drop(inbox, DUMP_000, DUMP_002)
    results = []
    for name in ("one", "two"):
        config = make_config(
            state={"url": f"sqlite:///{name}/digest.db"},
            feed={"output_dir": f"{name}/site"},
            email={"outbox": f"{name}/outbox", "to": ["a@example.org", "b@example.org"]},
        )
        store = Store.open(config.state.url)
        run_once(config, store, FileTransport(config.email.outbox), NOW)
        install = store.install_id()
        store.close()
        messages = without_install(tree(tmp_path / name / "outbox"), install)
        results.append((tree(tmp_path / name / "site"), unsigned(dict(enumerate(messages)))))
    assert results[0] == results[1]
    site, outbox = results[0]
    assert {"feed.xml", "index.html", "digests/2026-11-22.html"} <= set(site)
    assert len(outbox) == 2


def without_install(outbox: dict[str, bytes], install: str) -> list[bytes]:
    """The messages with what differs between two installs by design taken out: the
    install id in the Message-ID (and the file name and MIME boundary made from it)."""
    out = []
    for data in outbox.values():
        msg = email.message_from_bytes(data, policy=email.policy.default)
        mid = str(msg["Message-ID"])
        assert f".{install}@" in mid
        boundary = msg.get_boundary()
        assert boundary
        out.append(data.replace(mid.encode(), b"<mid>").replace(boundary.encode(), b"boundary"))
    return sorted(out)


def test_dry_run_writes_outputs_and_changes_no_state(
    config: Config, store: Store, inbox: Path, tmp_path: Path
) -> None:
    drop(inbox, DUMP_000)
    out = tmp_path / "preview"
    report = run_once(config, store, FileTransport(config.email.outbox), NOW, RunOptions(dry_run_dir=out))
    assert report.dry_run and report.digest is not None
    assert (out / "site" / "feed.xml").is_file()
    assert len(list((out / "outbox").glob("*.eml"))) == 1
    assert store.counts()["papers"] == 0 and store.counts()["digests"] == 0
    assert store.seen_files() == {}
    assert not config.feed.output_dir.exists() and not config.email.outbox.exists()
    # The real run afterwards still finds everything new.
    real = run_once(config, store, FileTransport(config.email.outbox), NOW)
    assert real.ingest.papers_new == 81 and real.delivery.sent == 1


def test_no_send_records_digest_without_mail(config: Config, store: Store, inbox: Path) -> None:
    drop(inbox, DUMP_000)
    report = run_once(config, store, FileTransport(config.email.outbox), NOW, RunOptions(send=False))
    assert report.digest is not None
    assert store.deliveries() == []
    assert not config.email.outbox.exists()
    assert (config.feed.output_dir / "feed.xml").is_file()
    drop(inbox, DUMP_002)
    later = run_once(config, store, FileTransport(config.email.outbox), NOW + timedelta(days=1))
    assert later.delivery.sent == 1 and later.digest is not None and later.digest.paper_count == 216


def test_the_log_says_one_paper_not_one_papers(
    config: Config, store: Store, inbox: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.subscribe_site import write_dump

    write_dump(inbox, "one.txt", ["Sparse attention at scale"])
    caplog.set_level("INFO")
    run_once(config, store, FileTransport(config.email.outbox), NOW, RunOptions(send=False))
    said = caplog.text
    assert "one.txt: 1 paper, 1 new" in said and "created with 1 paper\n" in said + "\n"
    assert "1 papers" not in said


def test_second_run_cannot_take_the_lock(config: Config, store: Store, inbox: Path) -> None:
    """Invariant 7 (in-process half; the service tests run real processes)."""
    drop(inbox, DUMP_000)
    with run_lock(config.lock_path), pytest.raises(LockError, match="another paper-digest run holds"):
        run_once(config, store, FileTransport(config.email.outbox), NOW)
    assert store.counts()["papers"] == 0


def test_write_atomic_replaces_whole_file_or_nothing(tmp_path: Path) -> None:
    """Invariant 6: a failed write leaves the old file and no temp file behind."""
    target = tmp_path / "out" / "feed.xml"
    write_atomic(target, b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    blocker = tmp_path / "out" / "dir.xml"
    blocker.mkdir()
    with pytest.raises(OSError):
        write_atomic(blocker, b"data")  # rename onto a directory fails after the temp file is written
    assert sorted(os.listdir(tmp_path / "out")) == ["dir.xml", "feed.xml"]
    assert target.read_bytes() == b"new"
