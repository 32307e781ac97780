"""A served install for the subscriber tests: the real Starlette app (site, /healthz and
the subscriber pages) under uvicorn on 127.0.0.1, mailing through a real aiosmtpd sink."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from digest.config import Config
from digest.pipeline import RunOptions, RunReport, run_once
from digest.store import Store
from digest.store.subscribers import Subscribers
from digest.transports import make_transport
from digest.web import WebServer, make_app
from digest.web_subscribe import SubscriberPages
from tests.helpers import MakeConfig
from tests.smtpsink import Recorder, StartServer, free_port

HEADER = "new\nGet trending papers in your email inbox!\nSubscribe\nDaily Papers\nbyAK and the research community\nAug 8\n"
_LINK = re.compile(r"https?://\S+?\?t=[A-Za-z0-9_.%-]+")


def write_dump(inbox: Path, name: str, titles: list[str]) -> None:
    body = "".join(
        f"\n{t}\n\nWe study {t.lower()} with a simple method and report results.\n" for t in titles
    )
    (inbox / name).write_text(HEADER + body, encoding="utf-8")


@dataclass
class Site:
    config: Config
    store: Store
    subs: Subscribers  # over ``store``
    pages: SubscriberPages
    sink: Recorder
    base: str
    inbox: Path

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=10, follow_redirects=False, **kw)  # type: ignore[arg-type]

    def mails_to(self, address: str, count: int = 1, timeout: float = 10) -> list[EmailMessage]:
        """Waits for ``count`` messages to ``address`` to reach the sink."""
        deadline = time.monotonic() + timeout
        while True:
            self.pages.worker.join()
            got = [r.message for r in self.sink.to(address)]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def run(self, now: datetime, **options: object) -> RunReport:
        return run_once(self.config, self.store, make_transport(self.config), now, RunOptions(**options))  # type: ignore[arg-type]


def link_in(message: EmailMessage, page: str) -> str:
    """The first ``<page>?t=…`` link in the message's text."""
    body = message.get_body(("plain",))
    assert body is not None
    for url in _LINK.findall(str(body.get_content())):
        if f"/{page}?t=" in url:
            return str(url)
    raise AssertionError(f"no {page} link in the message")


@pytest.fixture
def site(make_config: MakeConfig, start_server: StartServer, tmp_path: Path, inbox: Path) -> Iterator[Site]:
    sink = Recorder()
    smtp = start_server(sink)
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    config = make_config(
        digest={"title": "Test Digest", "base_url": base},
        email={"to": [], "transport": "smtp"},
        email__smtp={"host": "127.0.0.1", "port": smtp.port, "security": "none", "timeout": "5s"},
        http={"listen": f"127.0.0.1:{port}"},
        sources={"settle_seconds": 0},
    )
    store = Store.open(config.state.url)
    pages = SubscriberPages(config, store)
    (config.feed.output_dir).mkdir(parents=True, exist_ok=True)
    server = WebServer(
        make_app(config.feed.output_dir, lambda: (200, {}), routes=pages.routes()), "127.0.0.1", port
    )
    server.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(base + "healthz", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield Site(config, store, Subscribers(store), pages, sink, base, inbox)
    server.stop()
    pages.stop()
    store.close()


NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # a Monday
