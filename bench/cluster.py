"""The cluster scenario (issue 17): one outbox of ``Sizes.cluster_messages`` messages sent
to one local SMTP sink by 1, 2 and 3 instances sharing one PostgreSQL state.

Each instance is its own process with its own config (``instance.name``), claiming
batches of outbox rows as ``digest serve`` does after a run (``outbox.deliver_pending``);
the sink is a process of its own (aiosmtpd) that counts Message-IDs, so a message sent
twice or lost fails the scenario. Rows: messages per second for 1, 2 and 3 instances
(the 2- and 3-instance rows give their ratio to the 1-instance one), and the database
round trips per message.

Round trips are counted in each instance by a bench-only hook on its engine
(:class:`RoundTrips`): every statement is one, and a transaction that is not in
autocommit adds its ``BEGIN`` and its ``COMMIT`` (psycopg sends each on its own). One
extra short run checks that count against libpq's own trace of the wire protocol
(``PQtrace``: every ``Query`` and ``Sync`` message the client sent ends a round trip).

The CPU is shared: the sink, the instances and PostgreSQL all run on this machine. Each
row's detail has the CPU seconds of the sink and the instances and the cores they used
on average (CPU seconds / wall seconds), what the machine allowed.

    python -m bench --only cluster --repeat 3
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Result, Sizes, _load, free_port, pending_digest, write_config

SERVER = os.environ.get("DIGEST_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parent.parent
INSTANCES = (1, 2, 3)
TRACE_MESSAGES = 300  # the traced run that checks the round-trip count
FLOOR_MESSAGES = 2_000  # the bare smtplib loop: its messages are held in memory at once


# --- the database -------------------------------------------------------------------------


def _admin() -> Any:
    import psycopg

    return psycopg.connect(SERVER, autocommit=True, connect_timeout=3)


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new empty database on the server, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"digest_bench_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _config(folder: Path, url: str, name: str, port: int, recipients: list[str]) -> Path:
    return write_config(
        folder,
        state=url,
        instance={"name": name},
        transport="smtp",
        to=recipients,
        smtp={"host": "127.0.0.1", "port": port, "security": "none"},
    )


def _outbox(config_path: Path, papers: int) -> int:
    """One digest of ``papers`` papers with a pending row per ``email.to`` address."""
    from digest.store import Store

    config = _load(config_path)
    with Store.open(config.state.url) as store:
        pending_digest(config, store, papers)
        return len(store.deliveries("pending"))


# --- the instances' hook --------------------------------------------------------------------


class RoundTrips:
    """Counts what one engine sends: statements, and the BEGIN and COMMIT psycopg adds
    around a transaction that is not in autocommit (a rollback of a connection with no
    transaction open costs nothing). A bench-only listener on the engine's events."""

    def __init__(self, engine: Any) -> None:
        import sqlalchemy as sa

        self.counts: Counter[str] = Counter()
        self._open: set[int] = set()  # connections with a transaction open on the server
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine, "commit", self._end)
        sa.event.listen(engine, "rollback", self._end)

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.counts["statements"] += 1
        dbapi = conn.connection.dbapi_connection
        if not dbapi.autocommit and id(dbapi) not in self._open:
            self._open.add(id(dbapi))
            self.counts["begin"] += 1
        if dbapi.autocommit:
            self.counts["autocommit"] += 1

    def _end(self, conn: Any) -> None:
        dbapi = conn.connection.dbapi_connection
        if id(dbapi) in self._open:
            self._open.discard(id(dbapi))
            self.counts["commit"] += 1

    @property
    def total(self) -> int:
        return self.counts["statements"] + self.counts["begin"] + self.counts["commit"]


def _trace_round_trips(path: Path) -> int:
    """Round trips in a libpq trace: every Query (simple protocol) and Sync (extended
    protocol) message the client sent ends one request and waits for its answer."""
    pattern = re.compile(r"(?:^|\t)F\t\d+\t(Query|Sync)\b")
    with path.open(encoding="utf-8", errors="replace") as fh:
        return sum(1 for line in fh if pattern.search(line))


def worker(config_path: Path, trace: Path | None) -> None:
    """One instance: opens the state, says ``ready``, waits for ``go`` on stdin, delivers
    the outbox in its claims, prints what it did as JSON."""
    import sqlalchemy as sa

    from digest.config import load_config
    from digest.outbox import deliver_pending
    from digest.store import Store
    from digest.transports import make_transport

    config = load_config(config_path, {})
    store = Store.open(config.state.url)
    store.engine.dispose()  # the migration's connections: the counted ones start now
    trips = RoundTrips(store.engine)
    traced: list[Any] = []  # libpq connections writing their protocol trace
    fd = os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if trace is not None else -1
    if trace is not None:

        def start_trace(dbapi: Any, record: Any) -> None:
            dbapi.pgconn.trace(fd)
            traced.append(dbapi.pgconn)

        sa.event.listen(store.engine, "connect", start_trace)
    transport = make_transport(config)
    print("ready", flush=True)
    sys.stdin.readline()
    cpu, started = time.process_time(), time.perf_counter()
    report = deliver_pending(config, store, transport, datetime.now(UTC))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    for pgconn in traced:
        pgconn.untrace()  # flushes libpq's buffer into the file
    store.close()
    if fd >= 0:
        os.close(fd)
    out = {"sent": report.sent, "pending": report.pending, "failed": report.failed, "seconds": seconds}
    out |= {"cpu": cpu, "round_trips": trips.total, **trips.counts}
    print(json.dumps(out), flush=True)


# --- the sink --------------------------------------------------------------------------------

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


def sink(port: int, out: Path) -> None:
    """An aiosmtpd server counting the Message-IDs it accepted; on SIGTERM it writes
    ``{"accepted", "unique", "cpu"}`` to ``out`` and exits."""
    from aiosmtpd.controller import Controller

    ids: Counter[bytes] = Counter()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            found = _MESSAGE_ID.search(envelope.original_content or envelope.content)
            ids[found.group(1) if found else b""] += 1
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    stop = False

    def on_term(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    while not stop:
        time.sleep(0.05)
    controller.stop()
    twice = sum(n - 1 for n in ids.values() if n > 1)
    data = {"accepted": sum(ids.values()), "unique": len(ids), "twice": twice, "cpu": time.process_time()}
    out.write_text(json.dumps(data), encoding="utf-8")


# --- the floor ---------------------------------------------------------------------------------


def _floor(config_path: Path, port: int, messages: int) -> float:
    """Messages per second of a bare ``smtplib`` loop sending one real rendered message
    (its Message-ID changed each time, ``<floor-N@…>``, which the sink counts apart)
    over one connection to the same sink: what the sink and the machine allow at most."""
    import smtplib

    from digest.config import load_config
    from digest.outbox import renderer
    from digest.render.email import to_bytes
    from digest.store import Store

    config = load_config(config_path, {})
    with Store.open(config.state.url) as store:
        row = store.deliveries("pending")[0]
        digest = store.digest(row.digest_id)
        data = to_bytes(renderer(config, store)(digest, row.recipient, row.message_id))
    old_id = row.message_id.encode()
    bodies = [data.replace(old_id, f"<floor-{i}@example.org>".encode(), 1) for i in range(messages)]
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for body in bodies:
            smtp.sendmail("digest@example.org", [row.recipient], body)
    return messages / (time.perf_counter() - started)


# --- one measurement -------------------------------------------------------------------------


def _child(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cluster", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _expect_ready(proc: subprocess.Popen[str], what: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"cluster bench: {what} did not start (said {line!r})")


def measure(
    work: Path, messages: int, instances: int, *, trace: bool = False, floor: bool = False
) -> dict[str, Any]:
    """``messages`` pending rows on a fresh database, sent by ``instances`` processes at
    once to one sink process: wall seconds, what each instance and the sink reported;
    with ``floor`` first the bare-``smtplib`` rate to the same sink (:func:`_floor`)."""
    recipients = [f"reader{i:05}@example.org" for i in range(messages)]
    port = free_port()
    with fresh_database() as url:
        configs = [_config(work / f"node{i}", url, f"node{i}", port, recipients) for i in range(instances)]
        pending = _outbox(configs[0], papers=30)
        if pending != messages:
            raise RuntimeError(f"cluster bench: {pending} pending rows, not {messages}")
        sink_out = work / "sink.json"
        sink_proc = _child("sink", str(port), str(sink_out))
        procs: list[subprocess.Popen[str]] = []
        try:
            _expect_ready(sink_proc, "the sink")
            floor_rate = _floor(configs[0], port, min(messages, FLOOR_MESSAGES)) if floor else None
            traces = [work / f"trace{i}.txt" if trace else None for i in range(instances)]
            procs = [
                _child("worker", str(c), str(t) if t else "-") for c, t in zip(configs, traces, strict=True)
            ]
            for i, p in enumerate(procs):
                _expect_ready(p, f"instance node{i}")
            started = time.perf_counter()
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            reports = []
            for p in procs:
                out, _ = p.communicate(timeout=1800)
                if p.returncode != 0:
                    raise RuntimeError(f"cluster bench: an instance exited {p.returncode}")
                reports.append(json.loads(out.strip().splitlines()[-1]))
            wall = time.perf_counter() - started
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            sink_proc.send_signal(signal.SIGTERM)
            sink_proc.wait(timeout=60)
        got = json.loads(sink_out.read_text(encoding="utf-8"))
        with _status_conn(url.rsplit("/", 1)[1]) as conn:
            statuses = dict(
                conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall()
            )
    sent = sum(r["sent"] for r in reports)
    floor_sent = min(messages, FLOOR_MESSAGES) if floor else 0
    if statuses != {"sent": messages} or sent != messages or got["unique"] != messages + floor_sent:
        raise RuntimeError(f"cluster bench: statuses {statuses}, reported sent {sent}, sink {got}")
    result: dict[str, Any] = {
        "instances": instances,
        "wall": wall,
        "msg_per_s": messages / wall,
        "sink": got,
        "per_instance_sent": [r["sent"] for r in reports],
        "instance_cpu": sum(r["cpu"] for r in reports),
        "round_trips": sum(r["round_trips"] for r in reports),
        "statements": sum(r.get("statements", 0) for r in reports),
        "twice": got["twice"],
        "floor_msg_per_s": floor_rate,
    }
    result["cores_used"] = (result["instance_cpu"] + got["cpu"]) / wall
    result["round_trips_per_msg"] = result["round_trips"] / messages
    if trace:
        result["traced_round_trips"] = sum(_trace_round_trips(t) for t in traces if t is not None)
    return result


@contextmanager
def _status_conn(db: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(SERVER.rsplit("/", 1)[0] + "/" + db, autocommit=True) as conn:
        yield conn


# --- the scenario ----------------------------------------------------------------------------


def cluster(work: Path, sizes: Sizes) -> list[Result]:
    """Rows: 1, 2 and 3 instances (msg/s; the 1-instance row against the bare ``smtplib``
    floor to the same sink, the others against the 1-instance rate: their ratio is the
    k-to-1 speed-up) and the round trips per message against the floor of one (the
    statement that marks a row sent)."""
    n = sizes.cluster_messages
    what = [f"{n:,} msgs, {k} instance{'s' if k > 1 else ''}" for k in INSTANCES]
    trips = "DB round trips per message (floor: 1)"
    try:
        with _admin():
            pass
    except Exception as err:  # no server: the rows say why
        reason = {"n/a": f"no PostgreSQL at {SERVER}: {str(err).strip().splitlines()[0]}"}
        rows = [Result("cluster", w, None, None, "msg/s", None, "n/a", None, reason) for w in what]
        return [*rows, Result("cluster", trips, None, None, "trips/msg", None, "<= 3", None, reason)]
    runs = {k: measure(work / f"x{k}", n, k, floor=k == 1) for k in INSTANCES}
    one = runs[1]["msg_per_s"]
    rows = []
    for k, w in zip(INSTANCES, what, strict=True):
        r = runs[k]
        floor = r["floor_msg_per_s"] if k == 1 else one
        detail = {key: r[key] for key in ("wall", "cores_used", "instance_cpu", "per_instance_sent", "sink")}
        detail["round_trips_per_msg"] = r["round_trips_per_msg"]
        detail["floor"] = "bare smtplib to the sink" if k == 1 else "1 instance"
        rows.append(
            Result("cluster", w, r["msg_per_s"], floor, "msg/s", r["msg_per_s"] / floor, "n/a", None, detail)
        )
    check = measure(work / "trace", min(n, TRACE_MESSAGES), 1, trace=True)
    per_msg = runs[1]["round_trips_per_msg"]
    detail = {
        "per_instances": {k: runs[k]["round_trips_per_msg"] for k in INSTANCES},
        "statements_per_msg": runs[1]["statements"] / n,
        "traced_check": {
            "messages": min(n, TRACE_MESSAGES),
            "counted": check["round_trips"],
            "libpq_trace": check["traced_round_trips"],
        },
    }
    rows.append(Result("cluster", trips, per_msg, 1.0, "trips/msg", per_msg, "<= 3", per_msg <= 3, detail))
    return rows


def main(argv: list[str]) -> None:
    if argv[0] == "worker":
        worker(Path(argv[1]), None if argv[2] == "-" else Path(argv[2]))
    elif argv[0] == "sink":
        sink(int(argv[1]), Path(argv[2]))
    else:
        raise SystemExit(f"usage: python -m bench.cluster worker CONFIG TRACE|- | sink PORT OUT (got {argv})")


if __name__ == "__main__":
    main(sys.argv[1:])
