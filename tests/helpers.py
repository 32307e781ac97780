"""Shared test helpers: sample dumps, the fixed clock, writing TOML, dropping dumps.

Fixtures live in ``conftest.py``; everything a test imports lives here.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digest.config import Config
from digest.render.email import EmailSettings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "dumps"
DUMP_000 = EXAMPLES / "000_1837666521755300.txt"
DUMP_002 = EXAMPLES / "002_2330d60cc52b9a08.txt"
NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)

EMAIL_SETTINGS = EmailSettings(
    title="Test Digest",
    base_url="https://example.org/digest/",
    sender="Paper Digest <digest@example.org>",
    subject="{count} new paper{s} · {date}",
    language="en",
)
"""The settings the rendering tests build emails with, without a config (the title,
base URL and sender of ``make_config()``)."""

MakeConfig = Callable[..., Config]
"""The ``make_config`` fixture: ``make_config(env=None, section={...}, email__smtp={...})``."""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def write_toml(path: Path, data: dict[str, dict[str, Any]]) -> Path:
    """Writes nested dicts as TOML tables ({"email.smtp": {...}} for sub-tables)."""
    lines: list[str] = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def ingest_numbered(url: str, count: int, *, recipients: Sequence[str] = ()) -> None:
    """Stores ``count`` papers titled "Paper 0", "Paper 1", ... from one dump at NOW, and
    with ``recipients`` makes the digest of them, a pending delivery to each."""
    from digest.identity import message_ids, paper_key
    from digest.model import Paper
    from digest.store import Store

    titles = [f"Paper {i}" for i in range(count)]
    papers = [Paper(key=paper_key(t), title=t, abstract="An abstract.") for t in titles]
    with Store.open(url) as store:
        store.ingest(
            name="d.txt",
            sha256="0" * 64,
            size=1,
            mtime_ns=0,
            papers_in=papers,
            layout=lambda: "spaced",
            now=NOW,
        )
        if recipients:
            ids = message_ids("example.org", store.install_id())
            digest = store.create_digest(now=NOW, day=NOW.date(), recipients=list(recipients), message_id=ids)
            assert digest is not None


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float = 30.0,
    *,
    poll: float = 0.1,
    each: Callable[[], object] = lambda: None,
) -> Any:
    """Polls ``check`` until it returns something truthy (a refused connection counts as
    not yet); fails naming ``what``. ``each`` runs before every try: an assertion in it
    (a service that exited) fails at once."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        each()
        try:
            result = check()
        except (httpx.TransportError, OSError):
            result = None
        if result:
            return result
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def drop(inbox: Path, *dumps: Path) -> None:
    """Copies dumps into the inbox (the way a user saves them there)."""
    for dump in dumps:
        shutil.copyfile(dump, inbox / dump.name)


GOLDEN = ROOT / "tests" / "golden"


def check_golden(actual: bytes | str, golden: Path) -> None:
    """The one golden-file check: ``actual`` (text is UTF-8 encoded) must equal the file
    ``golden`` byte for byte; with ``UPDATE_GOLDEN=1`` in the environment the file is
    rewritten instead (review the diff before committing it)."""
    data = actual.encode("utf-8") if isinstance(actual, str) else actual
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(data)
    assert golden.is_file(), f"missing golden {golden}; run UPDATE_GOLDEN=1 python -m pytest"
    assert data == golden.read_bytes(), (
        f"{golden.relative_to(GOLDEN)} differs from its golden; UPDATE_GOLDEN=1 rewrites it (review the diff)"
    )
