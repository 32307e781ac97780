"""Hostile and broken dumps, end to end through ``digest run`` and ``digest status``.

Every case sits in the inbox beside a good dump: the bad one either parses sensibly or
becomes a failed dump whose ``file:line: reason`` shows in ``digest status``, and the
good one is ingested all the same. A failed dump is read again only by
``digest run --retry-failed``; new bytes under the same name are a new dump.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from digest.cli import main
from digest.config import load_config
from digest.errors import DumpError
from digest.parse import MAX_LINE_BYTES, parse_dump
from digest.store import Store
from tests import bigdump
from tests.helpers import write_toml

HEADER = "new\nGet trending papers in your email inbox!\nSubscribe\nDaily Papers\nbyAK and the research community\nAug 8\n"


def abstract(seed: str) -> str:
    return (
        f"We study {seed} and show that it works on many benchmarks. " * 6 + "Code: https://github.com/a/b."
    )


def spaced(*titles: str) -> str:
    return HEADER + "".join(f"{t}\n\n{abstract(t)}\n\n" for t in titles)


GOOD = spaced("A Good Paper That Always Parses", "Another Good Paper")

Run = Callable[..., dict[str, Any]]


@pytest.fixture
def config_file(tmp_path: Path, inbox: Path) -> Path:
    return write_toml(tmp_path / "digest.toml", {"sources": {"inbox": str(inbox)}, "email": {"to": []}})


@pytest.fixture
def run(config_file: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """``digest run [args]`` then ``digest status`` (text and JSON); returns the JSON status
    with the text status under ``"text"``."""

    def go(*args: str, config: Path = config_file) -> dict[str, Any]:
        code = main(["-c", str(config), "run", "--no-send", *args])
        assert code == 0
        capsys.readouterr()
        assert main(["-c", str(config), "status"]) == 0
        text = capsys.readouterr().out
        assert main(["-c", str(config), "status", "--json"]) == 0
        status: dict[str, Any] = json.loads(capsys.readouterr().out)
        status["text"] = text
        return status

    return go


def titles_in(config_file: Path) -> set[str]:
    config = load_config(config_file, {})
    store = Store.open(config.state.url)
    try:
        return {p.paper.title for d in store.digests() for p in store.digest_papers(d)}
    finally:
        store.close()


def failures(status: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["error"] for f in status["failed_dumps"]}


def assert_failed(status: dict[str, Any], name: str, where: str, reason: str) -> None:
    """``name`` is a failed dump whose error starts with ``where`` (file or file:line) and
    names ``reason``, in the JSON and the text status alike."""
    error = failures(status)[name]
    assert error.startswith(f"{where}: "), error
    assert reason in error
    assert f"failed dump {name}: {error}" in status["text"]


PAGE_WITH_E = spaced("Caf\u00e9 Models for Na\u00efve Agents", "World Models")

# name, bytes, expected: ("failed", where, reason) or ("ok", titles)
CASES: list[tuple[str, bytes, tuple[Any, ...]]] = [
    ("empty.txt", b"", ("failed", "empty.txt", "empty file")),
    (
        "furniture.txt",
        HEADER.encode() + b"\n\nSubscribe\n",
        ("failed", "furniture.txt", "only page furniture"),
    ),
    (
        "garbage.txt",
        bytes(random.Random(6).randrange(1, 256) for _ in range(4096)),
        ("failed", "garbage.txt:1", "not UTF-8"),
    ),
    (
        "nul.txt",
        spaced("Fine Title", "Title With\x00A NUL").encode(),
        ("failed", "nul.txt:11", "NUL byte"),
    ),
    ("latin1.txt", PAGE_WITH_E.encode("latin-1"), ("failed", "latin1.txt:7", "byte 0xe9 at column 4")),
    (
        "utf16le.txt",
        PAGE_WITH_E.encode("utf-16"),
        ("ok", {"Caf\u00e9 Models for Na\u00efve Agents", "World Models"}),
    ),
    (
        "utf16be.txt",
        codecs_bom_be := b"\xfe\xff" + spaced("Big Endian \u00e9t\u00e9 Paper").encode("utf-16-be"),
        ("ok", {"Big Endian \u00e9t\u00e9 Paper"}),
    ),
    (
        "bom8.txt",
        b"\xef\xbb\xbf" + spaced("Behind A UTF-8 BOM").encode(),
        ("ok", {"Behind A UTF-8 BOM"}),
    ),
    (
        "crlf.txt",
        spaced("CRLF Paper One", "CRLF Paper Two").replace("\n", "\r\n").encode(),
        ("ok", {"CRLF Paper One", "CRLF Paper Two"}),
    ),
    (
        "cr.txt",
        spaced("Old Mac Paper One", "Old Mac Paper Two").replace("\n", "\r").encode(),
        ("ok", {"Old Mac Paper One", "Old Mac Paper Two"}),
    ),
    (
        "dangling.txt",
        (spaced("Complete Paper Before The End") + "Title Without Its Abstract\n").encode(),
        ("failed", "dangling.txt:11", "has no abstract: the file ends here"),
    ),
    (
        "twotitles.txt",
        (
            HEADER
            + f"Paper With An Abstract\n\n{abstract('x')}\n\nOrphan Title\n\nNext Paper\n\n{abstract('y')}\n"
        ).encode(),
        ("ok", {"Paper With An Abstract", "Orphan Title", "Next Paper"}),
    ),
    (
        # At the top of a page a short line followed by a title is taken for furniture the
        # parser does not know (a new banner, say): skipped with a warning, not a failure.
        "twotop.txt",
        (HEADER + f"Unknown Banner Line\nFirst Real Paper\n\n{abstract('z')}\n").encode(),
        ("ok", {"First Real Paper"}),
    ),
    (
        "onemb.txt",
        (HEADER + "A Paper With A Huge Abstract\n\n" + "longword " * 120_000 + "\n").encode(),
        ("ok", {"A Paper With A Huge Abstract"}),
    ),
]
del codecs_bom_be


@pytest.mark.parametrize(("name", "data", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hostile_dump_beside_a_good_one(
    name: str, data: bytes, expected: tuple[Any, ...], inbox: Path, config_file: Path, run: Run
) -> None:
    (inbox / "good.txt").write_text(GOOD, encoding="utf-8")
    (inbox / name).write_bytes(data)
    status = run()
    good = {"A Good Paper That Always Parses", "Another Good Paper"}
    if expected[0] == "failed":
        assert status["dumps"] == {"ingested": 1, "failed": 1}
        assert_failed(status, name, expected[1], expected[2])
        assert titles_in(config_file) == good
    else:
        assert status["dumps"] == {"ingested": 2, "failed": 0}, status["failed_dumps"]
        assert titles_in(config_file) == good | expected[1]
    assert (inbox / name).read_bytes() == data  # input is never changed


def test_two_titles_in_a_row_keep_the_orphan_with_an_empty_abstract(
    config_file: Path, inbox: Path, run: Run
) -> None:
    (inbox / "two.txt").write_bytes(CASES[11][1])
    run()
    config = load_config(config_file, {})
    store = Store.open(config.state.url)
    papers = {p.paper.title: p.paper.abstract for d in store.digests() for p in store.digest_papers(d)}
    store.close()
    assert papers["Orphan Title"] == ""
    assert papers["Next Paper"] == abstract("y")


def test_one_megabyte_abstract_is_kept_whole(config_file: Path, inbox: Path, run: Run) -> None:
    (inbox / "big.txt").write_bytes(CASES[13][1])
    run()
    config = load_config(config_file, {})
    store = Store.open(config.state.url)
    [paper] = [p.paper for d in store.digests() for p in store.digest_papers(d)]
    store.close()
    assert len(paper.abstract) == len("longword " * 120_000) - 1


def test_a_line_longer_than_the_limit_is_refused_without_reading_it_whole() -> None:
    data = (HEADER + "Title\n\n").encode() + b"x" * (MAX_LINE_BYTES + 10) + b"\n"
    with pytest.raises(DumpError, match=r"^long\.txt:9: a line longer than"):
        parse_dump(data, "long.txt")


def test_symlink_out_of_the_inbox_is_refused_and_recorded(inbox: Path, tmp_path: Path, run: Run) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(spaced("Private Paper Outside The Inbox"), encoding="utf-8")
    (inbox / "good.txt").write_text(GOOD, encoding="utf-8")
    (inbox / "link.txt").symlink_to(secret)
    (inbox / "inside.txt").symlink_to(inbox / "good.txt")  # a link inside the inbox is fine
    status = run()
    assert_failed(status, "link.txt", "link.txt", "outside the inbox")
    assert "Private Paper" not in json.dumps(status)
    assert status["dumps"] == {"ingested": 1, "failed": 1}


def test_fifo_and_folder_matching_the_pattern_are_recorded_not_opened(inbox: Path, run: Run) -> None:
    # Opening a FIFO for reading would block the run for ever: it must never be opened.
    (inbox / "good.txt").write_text(GOOD, encoding="utf-8")
    os.mkfifo(inbox / "pipe.txt")
    (inbox / "folder.txt").mkdir()
    status = run()
    assert_failed(status, "pipe.txt", "pipe.txt", "not a regular file")
    assert_failed(status, "folder.txt", "folder.txt", "not a regular file")
    assert status["dumps"] == {"ingested": 1, "failed": 2}


_AS_NOBODY = """
import json, os, sqlite3, sys
from datetime import UTC, datetime
from pathlib import Path
import sqlalchemy.dialects.sqlite.pysqlite
from digest.config import load_config
from digest.transports import FileTransport
from digest.pipeline import RunOptions, run_once
from digest.store import Store
import importlib, pkgutil, digest
for module in pkgutil.walk_packages(digest.__path__, "digest."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)  # including what a run imports lazily
config = load_config(Path(sys.argv[1]), {})
# Everything is imported while still root (the interpreter lives under /root); then the
# run itself happens as nobody, for whom a mode-000 file really is unreadable.
os.setgid(65534)
os.setuid(65534)
store = Store.open(config.state.url)
report = run_once(config, store, FileTransport(config.email.outbox), datetime.now(UTC),
                  RunOptions(build_digest=False))
print(json.dumps(report.ingest.errors))
"""


def test_unreadable_file_is_recorded_and_the_others_go_on(capsys: pytest.CaptureFixture[str]) -> None:
    """Root reads a mode-000 file anyway, so when the suite runs as root the run happens
    in a subprocess that has dropped to ``nobody``; otherwise chmod alone is enough."""
    folder = Path(tempfile.mkdtemp(prefix="digest-unreadable-"))  # outside root's 0700 tmp
    try:
        folder.chmod(0o755)
        (folder / "inbox").mkdir()
        (folder / "var").mkdir()
        (folder / "inbox" / "good.txt").write_text(GOOD, encoding="utf-8")
        secret = folder / "inbox" / "secret.txt"
        secret.write_text(spaced("Nobody May Read This"), encoding="utf-8")
        secret.chmod(0)
        config = write_toml(folder / "digest.toml", {"sources": {"inbox": "inbox"}, "email": {"to": []}})
        if os.geteuid() == 0:
            os.chown(folder / "var", 65534, 65534)
            proc = subprocess.run(
                [sys.executable, "-c", _AS_NOBODY, str(config)], capture_output=True, text=True, timeout=60
            )
            assert proc.returncode == 0, proc.stderr
            assert json.loads(proc.stdout.splitlines()[-1]) == [
                "secret.txt: cannot read (Permission denied); check its permissions"
            ]
        else:
            assert main(["-c", str(config), "run", "--no-send"]) == 0
        capsys.readouterr()
        assert main(["-c", str(config), "status", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["dumps"] == {"ingested": 1, "failed": 1}
        assert failures(status) == {
            "secret.txt": "secret.txt: cannot read (Permission denied); check its permissions"
        }
    finally:
        shutil.rmtree(folder)


def test_same_bytes_under_two_names_is_one_dump(inbox: Path, config_file: Path, run: Run) -> None:
    (inbox / "a.txt").write_text(GOOD, encoding="utf-8")
    (inbox / "b.txt").write_text(GOOD, encoding="utf-8")
    status = run()
    assert status["dumps"] == {"ingested": 1, "failed": 0}
    assert status["papers"] == 2
    (inbox / "c.txt").write_text(GOOD, encoding="utf-8")  # a later copy, too
    status = run()
    assert (status["dumps"], status["papers"], status["digests"]) == ({"ingested": 1, "failed": 0}, 2, 1)


def test_same_name_with_new_bytes_is_a_new_dump(inbox: Path, config_file: Path, run: Run) -> None:
    page = inbox / "today.txt"
    page.write_text(spaced("First Paper"), encoding="utf-8")
    run()
    page.write_text(spaced("First Paper", "Second Paper"), encoding="utf-8")
    os.utime(page, ns=(1, 2))  # a different mtime, as a rewrite gives
    status = run()
    assert status["dumps"] == {"ingested": 2, "failed": 0}
    assert (status["papers"], status["digests"]) == (2, 2)
    assert titles_in(config_file) == {"First Paper", "Second Paper"}


def test_file_still_being_written_fails_then_its_completed_bytes_are_ingested(
    inbox: Path, config_file: Path, run: Run
) -> None:
    page = inbox / "saving.txt"
    page.write_text(spaced("Already Saved") + "Half Saved Paper\n", encoding="utf-8")
    status = run()
    assert_failed(status, "saving.txt", "saving.txt:11", "has no abstract")
    page.write_text(spaced("Already Saved", "Half Saved Paper"), encoding="utf-8")
    os.utime(page, ns=(1, 2))
    status = run()  # new bytes: a new dump, no --retry-failed needed
    assert titles_in(config_file) == {"Already Saved", "Half Saved Paper"}
    assert status["dumps"] == {"ingested": 1, "failed": 0}  # the failure is superseded


def test_refused_above_max_bytes_and_retried_only_with_retry_failed(
    tmp_path: Path, inbox: Path, run: Run
) -> None:
    small = write_toml(
        tmp_path / "small.toml", {"sources": {"inbox": str(inbox), "max_bytes": 4096}, "email": {"to": []}}
    )
    large = write_toml(tmp_path / "large.toml", {"sources": {"inbox": str(inbox)}, "email": {"to": []}})
    bigdump.write_dump(inbox / "big.txt", 50_000)
    (inbox / "good.txt").write_text(GOOD, encoding="utf-8")
    status = run(config=small)
    assert_failed(status, "big.txt", "big.txt", "larger than sources.max_bytes (4096 bytes)")
    assert status["dumps"] == {"ingested": 1, "failed": 1}
    # Raising the limit (as after an upgrade) is not enough: a failed dump waits for --retry-failed.
    status = run(config=large)
    assert status["dumps"] == {"ingested": 1, "failed": 1}
    status = run("--retry-failed", config=large)
    assert status["dumps"] == {"ingested": 2, "failed": 0}
    assert status["papers"] == 2 + 1_000


@pytest.mark.slow
def test_big_dump_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    """Peak RSS of an ingest run in a subprocess, over an empty inbox and over a big dump.
    The suite uses 8 MiB; ``DIGEST_BIG_DUMP_MB=200`` opts into the 200 MB case."""
    megabytes = int(os.environ.get("DIGEST_BIG_DUMP_MB", "8"))
    config = bigdump.config_for(tmp_path)
    baseline = bigdump.run_measured(config)["maxrss_kib"]
    papers = bigdump.write_dump(tmp_path / "inbox" / "big.txt", megabytes * 2**20)
    result = bigdump.run_measured(config)
    assert (result["ingested"], result["failed"], result["papers"]) == (1, 0, papers)
    # Streamed: the growth over an empty run is a fraction of the dump's size (what grows is
    # the set of titles seen, for the in-dump duplicate check: ~150 bytes a paper). Holding
    # the dump in memory would take several times its size.
    growth_mib = (result["maxrss_kib"] - baseline) / 1024
    assert growth_mib < max(24, megabytes * 3 / 4), (
        f"peak RSS grew {growth_mib:.0f} MiB for a {megabytes} MiB dump"
    )
