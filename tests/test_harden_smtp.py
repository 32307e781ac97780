"""SMTP faults after the final ``.`` (issue 18), against a real aiosmtpd sink that
stalls or drops the connection instead of answering, and the smaller delivery items."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest

from digest.cli import main
from digest.config import SmtpSection
from digest.errors import DeliveryError
from digest.pipeline import RunOptions, run_once
from digest.render.email import Wire
from digest.store import Store
from digest.transports import SmtpTransport, make_transport
from tests.helpers import NOW
from tests.smtpsink import Recorder, SinkConfig, StartServer

READERS = ["ann@example.org", "bob@example.org"]
TIMEOUT = 1.5


@dataclass
class Faulty(Recorder):
    """Takes the message, then (for the first ``faults`` DATA commands) never answers
    the final ``.`` (``stall``) or closes the connection without a word (``drop``); a
    ``stall_rcpt`` address gets no answer to its RCPT command."""

    mode: str = "stall"
    faults: int = 1
    stall_rcpt: str = ""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address == self.stall_rcpt:
            await asyncio.sleep(TIMEOUT * 4)
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.faults > 0:
            self.faults -= 1
            self.offered.append("fault")
            if self.mode == "drop":
                server.transport.close()
            await asyncio.sleep(TIMEOUT * 4)
            return "451 too late"
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("mode", ["stall", "drop"])
def test_an_unanswered_message_is_left_pending_not_resent_in_the_same_run(
    mode: str, sink_config: SinkConfig, store: Store
) -> None:
    handler = Faulty(mode=mode)
    config = sink_config(handler, timeout=f"{TIMEOUT}s")
    report = run_once(config, store, make_transport(config), NOW)
    # The first message got no answer: not sent again in this run; the second went out.
    assert (report.delivery.sent, report.delivery.pending, report.delivery.failed) == (1, 1, 0)
    assert len(handler.offered) == 2
    [pending] = store.deliveries("pending")
    assert pending.attempts == 1
    assert "did not answer after the message was sent" in (pending.last_error or "")
    assert "not resent in this run" in (pending.last_error or "")
    # The service leaves it alone during its backoff...
    later = run_once(config, store, make_transport(config), NOW, RunOptions(respect_backoff=True))
    assert later.delivery.sent == 0 and len(handler.offered) == 2
    # ...and the next attempt sends it once more, with the same Message-ID.
    final = run_once(config, store, make_transport(config), NOW)
    assert final.delivery.sent == 1
    assert [r.status for r in store.deliveries()] == ["sent", "sent"]
    assert len(handler.to(pending.recipient)) == 1
    assert handler.offered[-1] == pending.message_id


def _wire() -> Wire:
    data = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\nMessage-ID: <x@example.org>\r\n\r\n.hi\r\n"
    return Wire(data, "<x@example.org>", "a@example.org")


def test_a_stalled_recipient_costs_one_timeout_not_two(start_server: StartServer) -> None:
    handler = Faulty(faults=0, stall_rcpt="slow@example.org")
    server = start_server(handler)
    transport = SmtpTransport(
        SmtpSection(host="127.0.0.1", port=server.port, security="none", timeout=TIMEOUT)
    )
    with transport:
        transport.send(_wire(), "fast@example.org")  # the connection is open and reused
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            transport.send(_wire(), "slow@example.org")
        elapsed = time.monotonic() - started
        assert caught.value.temporary
        assert elapsed < TIMEOUT * 1.8, f"{elapsed:.1f}s for a {TIMEOUT}s timeout"
        transport.send(_wire(), "fast@example.org")  # a fresh connection for the next one
    assert len(handler.to("fast@example.org")) == 2
    # Dot-stuffing, as smtplib does it: a line starting with "." arrives intact.
    assert handler.accepted[0].message.get_content().rstrip() == ".hi"


def test_an_idle_connection_dropped_by_the_server_is_still_reopened_once(start_server: StartServer) -> None:
    handler = Recorder()
    server = start_server(handler)
    transport = SmtpTransport(
        SmtpSection(host="127.0.0.1", port=server.port, security="none", timeout=TIMEOUT)
    )
    with transport:
        transport.send(_wire(), "a@example.org")
        assert transport._smtp is not None
        transport._smtp.sock.close()  # type: ignore[union-attr]  # as if the server had timed us out
        transport.send(_wire(), "b@example.org")
    assert [r.rcpt_tos for r in handler.accepted] == [("a@example.org",), ("b@example.org",)]


def test_after_a_permanent_550_the_run_does_not_say_it_will_be_retried(
    sink_config: SinkConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = Recorder(rcpt_replies={"bob@example.org": "550 5.1.1 no such user"})
    config = sink_config(handler, timeout=f"{TIMEOUT}s")
    assert main(["-c", str(config.path), "run"]) == 1
    err = capsys.readouterr().err
    assert "will be retried" not in err and "retried on the next run" not in err, err
    assert "1 delivery failed for good (see above); it is not retried" in err
