"""What every benchmark scenario shares: the sizes it runs at, the row it returns, the
config it writes for its state, and a free port for a local sink."""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import gen

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Sizes:
    ingest_papers: int = 100_000
    ingest_dumps: int = 500
    ingest_runs: int = 3  # each timing is the best of this many, on a fresh database
    growth_big: int = 1_000_000
    growth_small: int = 1_000
    growth_dump: int = 200
    growth_runs: int = 5
    render_papers: int = 500
    feed_items: int = 100
    render_repeats: int = 5  # each side: the best of this many timings ...
    render_min_seconds: float = 0.1  # ... each of enough calls in a row for this much work
    delivery_recipients: int = 2_000
    delivery_papers: int = 30
    memory_bytes: int = 200 * MIB
    startup_runs: int = 15
    status_digests: int = 100  # x status_recipients delivery rows for `digest status` and /healthz
    status_recipients: int = 10_000
    rank_papers: int = 200
    rank_subscribers: int = 10_000
    rank_runs: int = 5
    json_items: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    cluster_messages: int = 10_000  # one outbox sent by 1, 2 and 3 instances (bench/cluster.py)


QUICK = Sizes(
    ingest_papers=400,
    ingest_dumps=4,
    ingest_runs=1,
    growth_big=2_000,
    growth_small=200,
    growth_dump=20,
    growth_runs=1,
    render_papers=20,
    feed_items=10,
    render_repeats=1,
    render_min_seconds=0.0,
    delivery_recipients=5,
    delivery_papers=3,
    memory_bytes=MIB,
    startup_runs=1,
    status_digests=2,
    status_recipients=5,
    rank_papers=20,
    rank_subscribers=50,
    rank_runs=1,
    json_items=(200, 2_000),
    cluster_messages=40,
)


@dataclass(slots=True)
class Result:
    """One row of the table. ``ratio`` is measured against ``floor``; ``ok`` is None for n/a."""

    scenario: str
    measured: str
    value: float | None
    floor: float | None
    unit: str
    ratio: float | None
    target: str
    ok: bool | None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio_ok(ratio: float | None, op: str, limit: float) -> bool | None:
    if ratio is None:
        return None
    return ratio >= limit if op == ">=" else ratio < limit if op == "<" else ratio <= limit


def write_config(
    folder: Path,
    *,
    state: str = "sqlite:///state/digest.db",
    instance: dict[str, Any] | None = None,
    **email: Any,
) -> Path:
    """A digest.toml for an inbox and site inside ``folder`` and the state at ``state``
    (by default a SQLite file inside it too); ``instance`` names a cluster member."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inbox").mkdir(exist_ok=True)
    mail: dict[str, Any] = {
        "outbox": "outbox",
        "from": "Paper Digest <digest@example.org>",
        "to": ["reader@example.org"],
    }
    mail.update(email)
    smtp = mail.pop("smtp", None)
    lines = [
        "[digest]",
        'title = "Bench Digest"',
        'base_url = "https://example.org/digest/"',
        "[sources]",
        'inbox = "inbox"',
        "[state]",
        f"url = {json.dumps(state)}",
        *(["[instance]", *(f"{k} = {json.dumps(v)}" for k, v in instance.items())] if instance else []),
        "[feed]",
        'output_dir = "site"',
        "[email]",
        *(f"{k} = {json.dumps(v)}" for k, v in mail.items()),
    ]
    if smtp:
        lines += ["[email.smtp]", *(f"{k} = {json.dumps(v)}" for k, v in smtp.items())]
    path = folder / "digest.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _load(path: Path) -> Any:
    from digest.config import load_config

    return load_config(path, {})


def pending_digest(config: Any, store: Any, papers: int, recipients: list[str] | None = None) -> Any:
    """Ingests one generated dump of ``papers`` papers and makes a digest of them with a
    pending delivery per recipient (by default the daily audience a run syncs from
    ``email.to``; deliver_pending cancels rows to others)."""
    from digest import audience
    from digest.identity import message_ids
    from digest.ingest import ingest_inbox

    gen.write_dumps(config.sources.inbox, n_dumps=1, per_dump=papers)
    ingest_inbox(config, store, NOW)
    audience.sync(config, store, NOW)
    digest = store.create_digest(
        now=NOW,
        day=NOW.date(),
        recipients=audience.daily_recipients(config, store) if recipients is None else recipients,
        message_id=message_ids(config.email.domain, store.install_id()),
    )
    assert digest is not None
    return digest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"
