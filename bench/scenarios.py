"""The benchmark scenarios. Each measures the real code path and a floor in the same run
and returns a :class:`Result`; timings are compared as ratios, never as absolute times."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2

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


def write_config(folder: Path, **email: Any) -> Path:
    """A digest.toml for a state, inbox and site inside ``folder``."""
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
        'url = "sqlite:///state/digest.db"',
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


# --- ingest ------------------------------------------------------------------------------


def _floor_ingest(files: list[Path], db: Path) -> int:
    """Read, split lines, hash titles, bare executemany: what any ingester must at least do."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE papers (key TEXT, title TEXT, abstract TEXT)")
    rows_total = 0
    for path in files:
        lines = [ln for ln in path.read_bytes().decode("utf-8").splitlines() if ln.strip()]
        first = next(i for i, ln in enumerate(lines) if len(ln) >= 300) - 1
        rows = [
            (hashlib.sha256(lines[i].encode()).hexdigest(), lines[i], lines[i + 1])
            for i in range(first, len(lines) - 1, 2)
        ]
        with conn:
            conn.executemany("INSERT INTO papers VALUES (?, ?, ?)", rows)
        rows_total += len(rows)
    conn.close()
    return rows_total


def timed_ingest(config: Any) -> tuple[Any, float]:
    """``digest run``'s ingest of the inbox into a new store: (its report, seconds)."""
    from digest.ingest import ingest_inbox
    from digest.store import Store

    started = time.perf_counter()
    with Store.open(config.state.url) as store:
        report = ingest_inbox(config, store, NOW)
    return report, time.perf_counter() - started


def ingest(work: Path, sizes: Sizes) -> Result:
    root = work / "ingest"
    config = _load(write_config(root))
    per_dump = sizes.ingest_papers // sizes.ingest_dumps
    files, listed = gen.write_dumps(root / "inbox", n_dumps=sizes.ingest_dumps, per_dump=per_dump)
    # Each timing starts with nothing left to write back: the inbox is on disk, as a real
    # one is, and no run pays for flushing another's database. Best of ingest_runs each.
    floor_s = real_s = float("inf")
    state = Path(config.state.url.removeprefix("sqlite:///")).parent
    for _ in range(sizes.ingest_runs):
        (root / "floor.db").unlink(missing_ok=True)
        shutil.rmtree(state, ignore_errors=True)
        os.sync()
        started = time.perf_counter()
        floor_rows = _floor_ingest(files, root / "floor.db")
        floor_s = min(floor_s, time.perf_counter() - started)

        os.sync()
        report, seconds = timed_ingest(config)
        real_s = min(real_s, seconds)
    if report.failed or report.papers_found != listed or floor_rows != listed:
        raise RuntimeError(f"ingest bench: {report} (expected {listed} papers found)")
    value, floor = listed / real_s, listed / floor_s
    ratio = value / floor
    return Result(
        "ingest",
        f"{listed:,} papers in {len(files)} dumps",
        value,
        floor,
        "papers/s",
        ratio,
        ">= 0.40",
        _ratio_ok(ratio, ">=", 0.40),
        {"seconds": real_s, "floor_seconds": floor_s, "new": report.papers_new},
    )


# --- growth ------------------------------------------------------------------------------

_TS = "2026-01-01 00:00:00.000000"


def build_history(config: Any, n_papers: int, per_dump: int) -> None:
    """A state holding ``n_papers`` papers in dumps of ``per_dump``, one digest per dump
    (published, delivered), and the dumps' files in the inbox with a matching stat cache.

    Rows go in with sqlite3 directly: building a big history through the pipeline would
    take hours. The files are sparse (their content is never read: the stat cache holds).
    """
    from digest.identity import message_id, paper_key
    from digest.store import Store

    store = Store.open(config.state.url)  # the real schema
    install = store.install_id()
    store.close()
    db = config.state.url.removeprefix("sqlite:///")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    pool = [gen.paper(99, i) for i in range(500)]
    inbox = config.sources.inbox
    n_dumps = max(1, n_papers // per_dump)
    seq = 0
    with conn:
        for d in range(n_dumps):
            name = f"history_{d:06d}.txt"
            path = inbox / name
            with path.open("wb") as fh:
                fh.truncate(per_dump * 1400)
            st = path.stat()
            sha = hashlib.sha256(name.encode()).hexdigest()
            conn.execute(
                "INSERT INTO dumps (id, sha256, name, size, seen_at, status, layout, papers_found, "
                "papers_new) VALUES (?, ?, ?, ?, ?, 'ingested', 'spaced', ?, ?)",
                (d + 1, sha, name, st.st_size, _TS, per_dump, per_dump),
            )
            conn.execute(
                "INSERT INTO seen_files VALUES (?, ?, ?, ?)", (name, st.st_size, st.st_mtime_ns, sha)
            )
            rows = []
            for _ in range(per_dump):
                p = pool[seq % len(pool)]
                title = f"{gen._name(seq + 10_000_000)}: {p.title.partition(': ')[2]}"
                seq += 1
                rows.append((seq, paper_key(title), title, p.abstract, "[]", "Aug 8", "[]", _TS, d + 1))
            conn.executemany(
                "INSERT INTO papers (seq, key, title, abstract, links, listing_date, authors, "
                "first_seen, dump_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            created = (datetime(2000, 1, 1) + timedelta(days=d)).strftime("%Y-%m-%d %H:%M:%S.%f")
            conn.execute(
                "INSERT INTO digests (id, slug, created_at, first_seq, last_seq, paper_count, "
                "published_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (d + 1, created[:10], created, seq - per_dump + 1, seq, per_dump, created),
            )
            recipient = config.email.to[0]
            conn.execute(
                "INSERT INTO deliveries (digest_id, recipient, status, attempts, message_id, "
                "created_at, sent_at) VALUES (?, ?, 'sent', 1, ?, ?, ?)",
                (
                    d + 1,
                    recipient,
                    message_id(d + 1, recipient, config.email.domain, install),
                    created,
                    created,
                ),
            )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    # The build wrote with synchronous=OFF: flush it now, or the first measured run's
    # checkpoint would pay for writing back the whole history.
    fd = os.open(db, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _timed_runs(config: Any, runs: int, per_dump: int, seed: int) -> list[float]:
    from digest.pipeline import run_once
    from digest.store import Store
    from digest.transports import FileTransport

    times = []
    for r in range(runs):
        papers = [gen.paper(seed, 20_000_000 + r * per_dump + i) for i in range(per_dump)]
        name = f"zz_new_{r:03d}.txt"
        (config.sources.inbox / name).write_text(gen.render(papers, "spaced", r), encoding="utf-8")
        now = NOW + timedelta(days=r + 1)
        started = time.perf_counter()
        store = Store.open(config.state.url)
        try:
            report = run_once(config, store, FileTransport(config.email.outbox), now)
        finally:
            store.close()
        times.append(time.perf_counter() - started)
        if report.ingest.papers_new != per_dump or report.digest is None or not report.ok:
            raise RuntimeError(f"growth bench: unexpected run: {report.summary()}")
    return times


def growth(work: Path, sizes: Sizes) -> Result:
    results: dict[str, dict[str, Any]] = {}
    for label, n in (("small", sizes.growth_small), ("big", sizes.growth_big)):
        root = work / f"growth_{label}"
        config = _load(write_config(root))
        started = time.perf_counter()
        build_history(config, n, sizes.growth_dump)
        build_s = time.perf_counter() - started
        times = _timed_runs(config, sizes.growth_runs, sizes.growth_dump, seed=5)
        results[label] = {"papers": n, "build_seconds": build_s, "runs": times}
        shutil.rmtree(root)
    small, big = min(results["small"]["runs"]), min(results["big"]["runs"])
    ratio = big / small
    return Result(
        "growth",
        f"run with a {sizes.growth_dump}-paper dump, {sizes.growth_big:,} vs {sizes.growth_small:,} stored",
        big,
        small,
        "s/run",
        ratio,
        "<= 1.5",
        _ratio_ok(ratio, "<=", 1.5),
        results,
    )


# --- render ------------------------------------------------------------------------------

_BARE = jinja2.Environment(autoescape=True).from_string(
    "<html><body><h1>{{ title }}</h1>{% for t, a in papers %}<article><h2>{{ t }}</h2><p>{{ a }}</p>"
    "</article>{% endfor %}</body></html>"
)


def sample_digest(n: int) -> tuple[Any, list[Any]]:
    """A digest of ``n`` generated papers and their stored form."""
    from digest.identity import paper_key
    from digest.model import Digest, Paper, StoredPaper
    from digest.text import links

    stored = []
    for i in range(n):
        p = gen.paper(3, i)
        paper = Paper(key=paper_key(p.title), title=p.title, abstract=p.abstract, links=links(p.abstract))
        stored.append(StoredPaper(seq=i + 1, paper=paper, first_seen=NOW, dump_name="bench.txt"))
    digest = Digest(id=1, slug="2026-11-22", created=NOW, first_seq=1, last_seq=n, paper_count=n)
    return digest, stored


def _feed_formats() -> dict[str, Callable[..., bytes]]:
    """The feed renderers this version has (RSS at least; Atom and JSON Feed when present)."""
    from digest.render import feed

    found = {}
    for label, names in (
        ("rss", ("rss",)),
        ("atom", ("atom",)),
        ("json", ("json_feed", "jsonfeed", "json")),
    ):
        for name in names:
            fn = getattr(feed, name, None)
            if callable(fn):
                found[label] = fn
                break
    return found


def render(work: Path, sizes: Sizes) -> list[Result]:
    from digest.render import archive, email, feed
    from digest.render.view import digest_view, paper_view

    config = _load(write_config(work / "render"))
    base = config.digest.base_url
    digest, stored = sample_digest(sizes.render_papers)
    dview = digest_view(digest, base, config.tz)
    views = [paper_view(p, digest.slug, base) for p in stored]
    items = [(v, dview) for v in views[: sizes.feed_items]]
    bare_all = [(v.title, v.abstract) for v in views]
    bare_feed = bare_all[: sizes.feed_items]
    from bench.repeat import paired  # imports this module: not at the top

    def floor_feed() -> object:
        return _BARE.render(title="t", papers=bare_feed)

    def floor_all() -> object:
        return _BARE.render(title="t", papers=bare_all)

    channel = feed.Channel(
        title="Bench Digest",
        description="bench",
        base_url=base,
        language="en",
        ttl=60,
        updated=NOW,
    )
    from digest.outbox import email_settings

    settings = email_settings(config)
    site = archive.Site(
        title="Bench Digest", description="bench", language="en", base_url=config.digest.base_url
    )
    cases: list[tuple[str, str, Callable[[], object], Callable[[], object]]] = [
        (f"feed-{label}", f"{len(items)} items", lambda fn=fn: fn(channel, items), floor_feed)  # type: ignore[misc]
        for label, fn in _feed_formats().items()
    ]
    cases.append(
        (
            "archive",
            f"{len(views)}-paper digest page",
            lambda: archive.digest_pages(site, dview, views, page_size=len(views))[0][1],
            floor_all,
        )
    )
    cases.append(
        (
            "email",
            f"{len(views)}-paper message",
            lambda: email.to_bytes(
                email.message(settings, dview, views, "reader@example.org", "<d-1.x@example.org>")
            ),
            floor_all,
        )
    )
    out = []
    for label, what, fn, floor_fn in cases:
        fn()  # templates compiled, caches warm: the steady state a service sees
        # Each side over loops of >= render_min_seconds of CPU time (one sub-millisecond
        # call moved by half its size between runs), the two sides timed in turns.
        t, floor, how = paired(fn, floor_fn, sizes.render_min_seconds, sizes.render_repeats)
        ratio = t / floor
        detail = {"timing": how}
        out.append(
            Result(f"render {label}", what, t, floor, "s", ratio, "< 10", _ratio_ok(ratio, "<", 10.0), detail)
        )
    return out


# --- delivery ----------------------------------------------------------------------------


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


def delivery(work: Path, sizes: Sizes) -> Result:
    from aiosmtpd.controller import Controller

    from digest.errors import ConfigError
    from digest.outbox import deliver_pending, renderer
    from digest.render.email import to_bytes
    from digest.store import Store
    from digest.transports import FileTransport, make_transport

    what = f"{sizes.delivery_recipients:,} recipients, local aiosmtpd sink"
    port = free_port()
    recipients = [f"reader{i}@example.org" for i in range(sizes.delivery_recipients)]
    root = work / "delivery"
    reason = "make_transport gives no SMTP transport for email.transport = 'smtp'"
    try:
        config = _load(
            write_config(
                root,
                transport="smtp",
                to=recipients,
                smtp={"host": "127.0.0.1", "port": port, "security": "none"},
            )
        )
        transport = make_transport(config)
    except ConfigError as err:
        transport, reason = None, str(err)
    if transport is None or isinstance(transport, FileTransport):
        return Result("delivery", what, None, None, "msg/s", None, ">= 0.50", None, {"n/a": reason})

    gen.write_dumps(config.sources.inbox, n_dumps=1, per_dump=sizes.delivery_papers)
    store = Store.open(config.state.url)
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        from digest import audience
        from digest.identity import message_ids
        from digest.ingest import ingest_inbox

        ingest_inbox(config, store, NOW)
        # email.to becomes subscribers as in a run; deliver_pending cancels rows to others.
        audience.sync(config, store, NOW)
        digest = store.create_digest(
            now=NOW,
            day=NOW.date(),
            recipients=recipients,
            message_id=message_ids("example.org", store.install_id()),
        )
        assert digest is not None
        build = renderer(config, store)
        rows = store.deliveries("pending")
        messages = [(r.recipient, to_bytes(build(digest, r.recipient, r.message_id))) for r in rows]
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for recipient, data in messages:
                smtp.sendmail(config.email.from_, [recipient], data)
        floor_s = time.perf_counter() - started
        started = time.perf_counter()
        report = deliver_pending(config, store, transport, NOW)
        real_s = time.perf_counter() - started
    finally:
        controller.stop()
        store.close()
    if report.sent != len(recipients):
        raise RuntimeError(f"delivery bench: {report}")
    value, floor = len(recipients) / real_s, len(recipients) / floor_s
    ratio = value / floor
    return Result("delivery", what, value, floor, "msg/s", ratio, ">= 0.50", _ratio_ok(ratio, ">=", 0.5), {})


# --- memory ------------------------------------------------------------------------------

_CHILD = """
import resource, sys
from datetime import UTC, datetime
from pathlib import Path
from digest.config import load_config
from digest.ingest import ingest_inbox
from digest.store import Store
config = load_config(Path(sys.argv[1]), {})
store = Store.open(config.state.url)
report = ingest_inbox(config, store, datetime(2026, 11, 22, tzinfo=UTC))
store.close()
assert report.ingested == 1 and not report.failed, report
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, report.papers_new)
"""


def _fresh(command: list[str]) -> list[str]:
    """``command`` started from a small intermediate interpreter: Linux carries a
    process's ru_maxrss across fork and exec, so a child of this (by now large) bench
    process would report the bench's own peak, not its own."""
    return [sys.executable, "-S", "-c", _SPAWN, *command]


_SPAWN = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def memory(work: Path, sizes: Sizes) -> Result:
    root = work / "memory"
    path = write_config(root)
    n = gen.write_big_dump(root / "inbox" / "big.txt", sizes.memory_bytes)
    size = (root / "inbox" / "big.txt").stat().st_size
    out = subprocess.run(
        _fresh([sys.executable, "-c", _CHILD, str(path)]), check=True, capture_output=True, text=True
    ).stdout.split()
    # The same interpreter doing nothing: how much of the peak is the program itself.
    idle = subprocess.run(
        _fresh(
            [
                sys.executable,
                "-c",
                "import resource, digest.ingest, digest.store; "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
            ]
        ),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    peak_mb = int(out[0]) / 1024
    return Result(
        "memory",
        f"one {size / MIB:,.0f} MiB dump ({n:,} papers)",
        peak_mb,
        int(idle) / 1024,
        "MiB peak RSS",
        None,
        "< 300 MiB",
        peak_mb < 300 if sizes.memory_bytes >= 100 * MIB else None,
        {"papers_new": int(out[1]), "floor_is": "RSS after importing the modules"},
    )


# --- start-up ----------------------------------------------------------------------------


def _digest_command() -> list[str]:
    script = Path(sys.executable).with_name("digest")
    if script.exists():
        return [str(script), "--help"]
    return [sys.executable, "-m", "digest.cli", "--help"]


def startup(work: Path, sizes: Sizes) -> Result:
    cmd = _digest_command()
    bare = [sys.executable, "-c", "import sys"]
    # Bytecode written and reused, as after `pip install`: any value of this variable, "0"
    # included, stops Python writing it (every start then compiled stale modules again).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, check=True, capture_output=True, env=env)  # bytecode compiled, files cached
    t_cmd: list[float] = []
    t_bare: list[float] = []
    for _ in range(sizes.startup_runs):
        for command, into in ((bare, t_bare), (cmd, t_cmd)):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            into.append(time.perf_counter() - started)
    value, floor = min(t_cmd), min(t_bare)
    ratio = value / floor
    return Result(
        "start-up",
        "digest --help",
        value,
        floor,
        "s",
        ratio,
        "< 3",
        _ratio_ok(ratio, "<", 3.0),
        {"median": statistics.median(t_cmd), "floor_median": statistics.median(t_bare)},
    )


def status(work: Path, sizes: Sizes) -> list[Result]:
    from bench import status as scenario

    return scenario.scenario(work, sizes.status_digests, sizes.status_recipients)  # type: ignore[return-value]


def ranking(work: Path, sizes: Sizes) -> Result:
    """Personal ranking (bench/rank_speed.py; imported here only, it loads scikit-learn)."""
    from bench.rank_speed import ranking as run

    result: Result = run(work, sizes)
    return result


SCENARIOS: dict[str, Callable[[Path, Sizes], Result | list[Result]]] = {
    "ingest": ingest,
    "growth": growth,
    "render": render,
    "delivery": delivery,
    "memory": memory,
    "start-up": startup,
    "status": status,
    "ranking": ranking,
}


def _json_scale(work: Path, sizes: Sizes) -> list[Result]:
    from bench.json_scale import json_scale  # imports this module: not at the top

    return json_scale(work, sizes)


SCENARIOS["json-scale"] = _json_scale


def _cluster(work: Path, sizes: Sizes) -> list[Result]:
    from bench.cluster import cluster  # imports this module: not at the top

    return cluster(work, sizes)


SCENARIOS["cluster"] = _cluster


def _personal_delivery(work: Path, sizes: Sizes) -> Result:
    from bench.personal_delivery import personal_delivery  # imports this module: not at the top

    return personal_delivery(work, sizes)


SCENARIOS["personal-delivery"] = _personal_delivery
