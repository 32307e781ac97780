"""The delivery scenario: ``deliver_pending`` to a local aiosmtpd sink against bare
``smtplib`` sending the same messages."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

from bench.common import NOW, Result, Sizes, _load, _ratio_ok, _Sink, free_port, pending_digest, write_config


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

    store = Store.open(config.state.url)
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        digest = pending_digest(config, store, sizes.delivery_papers, recipients)
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
