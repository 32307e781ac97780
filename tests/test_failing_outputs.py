"""Outputs that cannot be written: a clear error, nothing claimed published, and the next
run publishes. The email waits for the site (its links point into the archive) and goes
out exactly once when the site is written."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from digest.cli import main
from digest.config import load_config
from digest.model import Digest
from digest.store import Store
from tests.helpers import DUMP_000, drop, write_toml


def config_file(tmp_path: Path, inbox: Path, output_dir: Path) -> Path:
    return write_toml(
        tmp_path / "digest.toml",
        {
            "sources": {"inbox": str(inbox)},
            "feed": {"output_dir": str(output_dir)},
            "email": {"outbox": "outbox", "to": ["reader@example.org"]},
        },
    )


def state(config: Path) -> tuple[list[Digest], dict[str, int]]:
    cfg = load_config(config, {})
    store = Store.open(cfg.state.url)
    try:
        counts = store.counts()
        return store.digests(), counts["deliveries"]
    finally:
        store.close()


def assert_published_whole(site: Path, papers: int) -> None:
    feed = feedparser.parse((site / "feed.xml").read_bytes())
    assert feed.bozo == 0 and len(feed.entries) == papers
    assert not list(site.rglob("*.tmp")), "a temp file was left behind"


def test_output_folder_that_cannot_be_created(
    tmp_path: Path, inbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Root ignores permission bits, so "not writable" is made real: the output folder
    # would have to live under a regular file.
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    config = config_file(tmp_path, inbox, blocker / "site")
    drop(inbox, DUMP_000)

    assert main(["-c", str(config), "run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("digest: error: cannot write ")
    assert "Not a directory; check that feed.output_dir is writable" in err
    [digest], deliveries = state(config)
    assert digest.published is None  # not claimed published
    assert deliveries["pending"] == 1 and deliveries["sent"] == 0

    assert main(["-c", str(config), "run"]) == 1  # still blocked: still unpublished, nothing lost
    assert state(config)[0][0].published is None

    blocker.unlink()
    assert main(["-c", str(config), "run"]) == 0
    [digest], deliveries = state(config)
    assert digest.published is not None
    assert deliveries == {"pending": 0, "sent": 1, "failed": 0, "cancelled": 0}
    assert_published_whole(blocker / "site", 81)
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 1


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real full disk. Skipped where mounting is not allowed."""
    point = tmp_path / "tiny"
    point.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(point)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=False)


def test_full_disk(tmp_path: Path, inbox: Path, tiny_fs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tiny_fs / "site"
    config = config_file(tmp_path, inbox, site)
    drop(inbox, DUMP_000)  # 81 papers: the pages and feeds need far more than 64 KiB

    assert main(["-c", str(config), "run"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("digest: error: cannot write ")
    assert "No space left on device; check that feed.output_dir is writable" in err
    [digest], deliveries = state(config)
    assert digest.published is None
    assert deliveries["pending"] == 1
    # Whatever did get written is whole (atomic writes); no temp file fills the disk.
    assert not list(site.rglob("*.tmp"))
    for page in site.rglob("*"):
        if page.is_file() and page.suffix == ".json":
            json.loads(page.read_text(encoding="utf-8"))

    # Space is freed (the disk grown); the next run publishes and delivers once.
    subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_fs)], check=True)
    assert main(["-c", str(config), "run"]) == 0
    [digest], deliveries = state(config)
    assert digest.published is not None
    assert deliveries["sent"] == 1 and deliveries["pending"] == 0
    assert_published_whole(site, 81)
    assert main(["-c", str(config), "run"]) == 0  # and nothing is published or sent twice
    assert state(config)[1]["sent"] == 1
