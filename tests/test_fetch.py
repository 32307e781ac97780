"""Remote sources against a real HTTP server on 127.0.0.1: conditional GET, timeout,
retries, size limit, cut-short bodies, redirects, and the fetch step of run_once."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.cli import main
from digest.config import Config
from digest.errors import ConfigError
from digest.fetch import USER_AGENT, fetch_all
from digest.ingest import ingest_inbox
from digest.pipeline import RunOptions, run_once
from digest.store import Store
from digest.transports import FileTransport
from tests.helpers import DUMP_000, DUMP_002, NOW, MakeConfig, drop, write_toml

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Server:
    """A real HTTP server in a thread; ``routes`` maps a path to what it answers."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(p == path for p, _ in self.requests)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, dict(self.headers)))
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            route(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    state.release.set()  # lets a hanging handler finish
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # trust_env=False: a proxy set in the environment must not intercept 127.0.0.1.
    with httpx.Client(trust_env=False) as c:
        yield c


def send(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    h.send_response(status)
    for name, value in headers.items():
        h.send_header(name.replace("_", "-"), value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


@dataclass
class Versioned:
    """A dump that answers 304 to a request carrying its current ETag."""

    body: bytes
    etag: str
    last_modified: str = "Sun, 22 Nov 2026 06:00:00 GMT"

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("If-None-Match") == self.etag:
            send(h, 304, ETag=self.etag)
            return
        send(h, 200, self.body, ETag=self.etag, Last_Modified=self.last_modified, Content_Type="text/plain")


def fetched(inbox: Path) -> list[str]:
    return sorted(p.name for p in inbox.iterdir())


def fetch_config(make_config: MakeConfig, *urls: str, **sources: Any) -> Config:
    return make_config(
        sources={
            "urls": list(urls),
            "fetch_timeout": 0.5,
            "fetch_retries": 0,
            "fetch_backoff": 0.01,
            **sources,
        }
    )


def test_dump_then_304_then_changed_dump_gives_two_files_and_two_digests(
    make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client
) -> None:
    dump = Versioned(DUMP_000.read_bytes(), '"v1"')
    server.routes["/daily.txt"] = dump
    config = fetch_config(make_config, server.url("/daily.txt"))
    store = Store.open(config.state.url)
    transport = FileTransport(config.email.outbox)

    first = run_once(config, store, transport, NOW, client=client)
    [name] = fetched(inbox)
    assert name.startswith("fetched-20261122T070000Z-") and name.endswith(".txt")
    assert (inbox / name).read_bytes() == DUMP_000.read_bytes()
    assert first.digest is not None and first.digest.paper_count == 81
    assert first.summary().startswith("1 URLs fetched, 1 new dumps, 0 failed; ")

    second = run_once(config, store, transport, NOW + timedelta(hours=1), client=client)
    _, headers = server.requests[-1]
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == dump.last_modified
    assert headers["User-Agent"] == USER_AGENT and "paper-digest" in USER_AGENT
    assert second.fetch is not None and second.fetch.results[0].outcome == "not-modified"
    assert second.digest is None and fetched(inbox) == [name]

    server.routes["/daily.txt"] = Versioned(DUMP_002.read_bytes(), '"v2"')
    third = run_once(config, store, transport, NOW + timedelta(days=1), client=client)
    assert len(fetched(inbox)) == 2
    assert third.digest is not None and third.digest.paper_count == 216
    assert len(store.digests()) == 2
    state = store.fetch_state(server.url("/daily.txt"))
    assert state is not None and (state.etag, state.last_error, state.failures) == ('"v2"', None, 0)
    assert state.last_file == fetched(inbox)[1]
    store.close()


def test_same_body_without_validators_writes_nothing(
    make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client, store: Store
) -> None:
    server.routes["/plain.txt"] = lambda h: send(h, 200, DUMP_000.read_bytes())
    config = fetch_config(make_config, server.url("/plain.txt"))
    assert fetch_all(config, store, client, NOW).written == 1
    again = fetch_all(config, store, client, NOW + timedelta(hours=1))
    assert again.results[0].outcome == "unchanged"
    assert len(fetched(inbox)) == 1
    assert "If-None-Match" not in server.requests[-1][1]


def test_hanging_server_times_out_and_the_other_urls_still_fetch(
    make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client, store: Store
) -> None:
    def hanging(h: BaseHTTPRequestHandler) -> None:
        server.release.wait(10)

    server.routes["/hang"] = hanging
    server.routes["/ok.txt"] = lambda h: send(h, 200, DUMP_000.read_bytes())
    config = fetch_config(make_config, server.url("/hang"), server.url("/ok.txt"))
    report = fetch_all(config, store, client, NOW)
    hang, ok = report.results
    assert hang.outcome == "failed"
    assert hang.error == (
        "timed out waiting for the answer (sources.fetch_timeout = 0.5s); raise it if the server is just slow"
    )
    assert ok.outcome == "written" and fetched(inbox) == [ok.file]
    [failure] = store.fetch_failures(config.sources.urls)
    assert failure.url == server.url("/hang") and failure.failures == 1 and failure.last_status is None


def test_500_is_retried_then_reported_and_the_run_goes_on(
    make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client, store: Store
) -> None:
    server.routes["/broken"] = lambda h: send(h, 500, b"oops")
    config = fetch_config(make_config, server.url("/broken"), fetch_retries=2)
    drop(inbox, DUMP_000)
    report = run_once(config, store, FileTransport(config.email.outbox), NOW, client=client)
    assert server.hits("/broken") == 3
    assert report.fetch is not None
    assert report.fetch.errors == [
        f"{server.url('/broken')}: HTTP 500 Internal Server Error (after 3 attempts)"
    ]
    # The failing URL did not stop the run: the dropped dump became a digest.
    assert report.digest is not None and report.digest.paper_count == 81
    [failure] = store.fetch_failures()
    assert (failure.last_status, failure.failures) == (500, 1)
    run_once(config, store, FileTransport(config.email.outbox), NOW + timedelta(hours=1), client=client)
    [failure] = store.fetch_failures()
    assert failure.failures == 2 and failure.last_ok_at is None


def test_a_retry_recovers_from_a_passing_503(
    make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client, store: Store
) -> None:
    answers = iter([503, 503, 200])
    server.routes["/flaky.txt"] = lambda h: send(h, next(answers), DUMP_000.read_bytes())
    config = fetch_config(make_config, server.url("/flaky.txt"), fetch_retries=2)
    report = fetch_all(config, store, client, NOW)
    assert report.results[0].outcome == "written" and server.hits("/flaky.txt") == 3
    assert store.fetch_failures() == []


def cut_short(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", "900")
    h.end_headers()
    h.wfile.write(DUMP_000.read_bytes()[:400])
    h.wfile.flush()
    h.close_connection = True  # the server closes the socket 500 bytes early


def undeclared(size: int) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)  # HTTP/1.0, no Content-Length: the body ends when the socket closes
        h.end_headers()
        h.wfile.write(b"x" * size)

    return route


def test_body_cut_short_or_too_large_writes_nothing(
    make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client, store: Store
) -> None:
    server.routes["/cut"] = cut_short
    server.routes["/declared-big"] = lambda h: send(h, 200, b"y" * 5000)
    server.routes["/streamed-big"] = undeclared(5000)
    server.routes["/small.txt"] = undeclared(800)
    urls = [server.url(p) for p in ("/cut", "/declared-big", "/streamed-big")]
    config = fetch_config(make_config, *urls, fetch_retries=1, fetch_max_bytes=1000)
    report = fetch_all(config, store, client, NOW)
    cut, declared, streamed = report.results
    assert cut.outcome == "failed" and cut.error is not None
    assert cut.error.startswith("the body was cut short (RemoteProtocolError: ")
    assert server.hits("/cut") == 2  # a cut-short body is retried
    assert declared.error == (
        "the body is 5000 bytes, larger than sources.fetch_max_bytes (1000 bytes); nothing written "
        "(raise sources.fetch_max_bytes if this source is genuine)"
    )
    assert streamed.error is not None and streamed.error.startswith(
        "the body is larger than sources.fetch_max_bytes"
    )
    assert server.hits("/declared-big") == server.hits("/streamed-big") == 1  # too large is not retried
    assert fetched(inbox) == []  # no file, no temp file
    assert len(store.fetch_failures()) == 3
    # Just under the limit, without a Content-Length, is a whole body.
    small = fetch_config(make_config, server.url("/small.txt"), fetch_max_bytes=1000)
    assert fetch_all(small, store, client, NOW).results[0].outcome == "written"


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "followed"])
def test_redirect_to_another_host_only_when_allowed(
    allowed: bool, make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client, store: Store
) -> None:
    # 127.0.0.1 and localhost are two hosts, even on the same port.
    server.routes["/moved"] = lambda h: send(h, 302, Location=server.url("/daily.txt", host="localhost"))
    server.routes["/daily.txt"] = lambda h: send(h, 200, DUMP_000.read_bytes())
    config = fetch_config(make_config, server.url("/moved"), follow_redirects=allowed)
    [result] = fetch_all(config, store, client, NOW).results
    if allowed:
        assert result.outcome == "written" and len(fetched(inbox)) == 1
        assert server.requests[-1][1]["Host"] == f"localhost:{server.port}"
    else:
        assert result.outcome == "failed" and result.status == 302
        assert result.error == (
            f"HTTP 302 redirect to another host ({server.url('/daily.txt', host='localhost')}) not followed; "
            "set sources.follow_redirects = true to follow it, or put that URL in sources.urls"
        )
        assert server.hits("/daily.txt") == 0 and fetched(inbox) == []


def test_redirect_on_the_same_host_is_followed(
    make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client, store: Store
) -> None:
    server.routes["/old"] = lambda h: send(h, 301, Location="/daily.txt")
    server.routes["/daily.txt"] = lambda h: send(h, 200, DUMP_000.read_bytes())
    config = fetch_config(make_config, server.url("/old"))
    assert fetch_all(config, store, client, NOW).results[0].outcome == "written"


def test_404_is_reported_without_retry(
    make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client, store: Store
) -> None:
    config = fetch_config(make_config, server.url("/missing"), fetch_retries=3)
    [result] = fetch_all(config, store, client, NOW).results
    assert result.error == "HTTP 404 Not Found; check the URL in sources.urls"
    assert server.hits("/missing") == 1


HF_JSON = [
    {
        "paper": {
            "id": "2308.04444",
            "title": "Perturbation Analysis of\n  Neural Collapse",  # the API wraps long titles
            "summary": "Training deep neural networks for classification often includes minimizing\nthe loss.",
            "authors": [{"name": "Tom Tirer", "hidden": False}, {"name": "Haoxiang Huang"}],
            "upvotes": 7,
        },
        "publishedAt": "2023-08-08T10:00:00.000Z",
    },
    {
        "paper": {
            "id": "2308.05555",
            "title": "A Paper Only the API Lists",
            "summary": "It is new. Code: https://github.com/example/only-api.",
            "authors": [{"name": "Ada Lovelace"}],
            "upvotes": 3,
        },
        "publishedAt": "2023-08-08T10:00:00.000Z",
    },
]


def test_fetched_json_is_named_json_and_ingested(
    make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client, store: Store
) -> None:
    server.routes["/api/daily_papers"] = lambda h: send(
        h, 200, json.dumps(HF_JSON).encode(), Content_Type="application/json"
    )
    config = fetch_config(make_config, server.url("/api/daily_papers"))  # sources.pattern stays *.txt
    report = run_once(config, store, FileTransport(config.email.outbox), NOW, client=client)
    [name] = fetched(inbox)
    assert name.endswith(".json")
    assert report.ingest.papers_new == 2
    assert [d.name for d in store.dump_records("ingested")] == [name]


def test_the_same_paper_as_text_and_as_json_is_stored_once_and_the_json_fields_reach_the_outputs(
    config: Config, store: Store, inbox: Path
) -> None:
    drop(inbox, DUMP_000)  # lists "Perturbation Analysis of Neural Collapse" without id or authors
    (inbox / "001_hf_daily_papers.txt").write_text(json.dumps(HF_JSON, indent=2), encoding="utf-8")
    report = run_once(config, store, FileTransport(config.email.outbox), NOW)
    assert report.ingest.papers_new == 82  # 81 from the text dump + the one only the API lists
    assert report.ingest.papers_enriched == 1
    assert report.digest is not None
    papers = {p.title: p for p in store.digest_papers(report.digest)}
    shared = papers["Perturbation Analysis of Neural Collapse"]
    assert shared.seq == 1 and shared.dump_name == DUMP_000.name and shared.first_seen == NOW
    assert shared.paper.abstract.startswith("Training deep neural networks")  # the text dump's abstract stays
    assert shared.paper.arxiv_id == "2308.04444"
    assert shared.paper.authors == ("Tom Tirer", "Haoxiang Huang")
    assert shared.paper.upvotes == 7

    page = (config.feed.output_dir / "digests" / "2026-11-22.html").read_text(encoding="utf-8")
    assert "https://arxiv.org/abs/2308.04444" in page and "https://arxiv.org/abs/2308.05555" in page
    [eml] = config.email.outbox.glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "arXiv: https://arxiv.org/abs/2308.04444" in text
    assert "   Tom Tirer, Haoxiang Huang · ▲ 7 upvotes" in text.splitlines()
    assert "https://arxiv.org/abs/2308.04444" in html  # 2308.05555 is past email.max_papers: title only
    feed = (config.feed.output_dir / "feed.xml").read_text(encoding="utf-8")
    assert "A Paper Only the API Lists" in feed and "https://github.com/example/only-api" in feed
    assert "https://arxiv.org/abs/2308.04444" in feed and "<dc:creator>Tom Tirer</dc:creator>" in feed


def test_a_later_json_sighting_never_changes_what_is_already_known(
    config: Config, store: Store, inbox: Path
) -> None:
    rich = [dict(HF_JSON[0], paper=dict(HF_JSON[0]["paper"], authors=[{"name": "Someone Else"}]))]  # type: ignore[arg-type]
    (inbox / "001_first.txt").write_text(json.dumps(HF_JSON[:1]), encoding="utf-8")
    run_once(config, store, FileTransport(config.email.outbox), NOW)
    drop(inbox, DUMP_000)
    (inbox / "003_later.txt").write_text(json.dumps(rich), encoding="utf-8")
    later = run_once(config, store, FileTransport(config.email.outbox), NOW + timedelta(days=1))
    assert later.ingest.papers_new == 80 and later.ingest.papers_enriched == 0
    [first] = store.digest_papers(store.digests()[-1])
    assert first.paper.authors == ("Tom Tirer", "Haoxiang Huang") and first.dump_name == "001_first.txt"


def test_dry_run_fetches_nothing(
    make_config: MakeConfig, inbox: Path, server: Server, tmp_path: Path
) -> None:
    server.routes["/daily.txt"] = lambda h: send(h, 200, DUMP_000.read_bytes())
    config = fetch_config(make_config, server.url("/daily.txt"))
    store = Store.open(config.state.url)
    report = run_once(
        config, store, FileTransport(config.email.outbox), NOW, RunOptions(dry_run_dir=tmp_path / "preview")
    )
    store.close()
    assert report.fetch is None and report.notes == ("sources.urls not fetched in a dry run",)
    assert server.requests == [] and fetched(inbox) == []


def test_cli_fetch_and_status(
    tmp_path: Path, inbox: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/daily.txt"] = lambda h: send(h, 200, DUMP_000.read_bytes())
    server.routes["/broken"] = lambda h: send(h, 500)
    urls = [server.url("/daily.txt"), server.url("/broken")]
    config_file = write_toml(
        tmp_path / "digest.toml",
        {"sources": {"inbox": str(inbox), "urls": urls, "fetch_retries": 0, "fetch_timeout": "2s"}},
    )
    assert main(["-c", str(config_file), "fetch"]) == 1
    out, err = capsys.readouterr()
    [name] = fetched(inbox)
    assert f"written: {urls[0]} -> {inbox / name}" in out
    assert f"failed: {urls[1]}: HTTP 500 Internal Server Error" in out
    assert "digest: error: 1 of 2 URLs failed; they are retried on the next fetch" in err

    assert main(["-c", str(config_file), "status"]) == 0
    out = capsys.readouterr().out
    assert "sources: 2 URLs, 1 failing" in out
    assert f"  failed fetch {urls[1]} (1 in a row, never succeeded): HTTP 500 Internal Server Error" in out
    assert main(["-c", str(config_file), "status", "--json"]) == 0
    [failure] = json.loads(capsys.readouterr().out)["fetch_failures"]
    assert (failure["url"], failure["status"], failure["failures"]) == (urls[1], 500, 1)


def test_cli_fetch_without_urls_is_a_config_error(
    tmp_path: Path, inbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = write_toml(tmp_path / "digest.toml", {"sources": {"inbox": str(inbox)}})
    assert main(["-c", str(config_file), "fetch"]) == 1
    assert "digest: error: config key 'sources.urls': is empty: nothing to fetch" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (
            {"urls": ["https://ok.example/a", "ftp://x/y"]},
            "config key 'sources.urls[1]': 'ftp://x/y' is not an http(s) URL",
        ),
        ({"urls": "https://x"}, None),
        ({"fetch_timeout": 0}, "config key 'sources.fetch_timeout': must be longer than 0 seconds"),
        ({"fetch_retries": -1}, "config key 'sources.fetch_retries': expected a whole number of at least 0"),
        ({"follow_redirects": "yes"}, "config key 'sources.follow_redirects': expected true or false"),
    ],
)
def test_fetch_config_keys(make_config: MakeConfig, sources: dict[str, Any], message: str | None) -> None:
    if message is None:
        assert make_config(sources=sources).sources.urls == ("https://x",)
        return
    with pytest.raises(ConfigError) as err:
        make_config(sources=sources)
    assert str(err.value).startswith(message)


def test_a_fetched_dump_is_settled_at_once_for_the_service_poll(
    make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client, store: Store
) -> None:
    # write_atomic renames the whole file into place, so the settle rule need not wait for it.
    server.routes["/daily.txt"] = lambda h: send(h, 200, DUMP_000.read_bytes())
    config = fetch_config(make_config, server.url("/daily.txt"))
    drop(inbox, DUMP_002)  # copied just now: still "being written" for a 1-day settle rule
    fetch_all(config, store, client, NOW)
    report = ingest_inbox(config, store, datetime.now(UTC), settle_seconds=86400)
    assert (report.ingested, report.unsettled) == (1, 1)
    assert [d.name for d in store.dump_records()] == fetched(inbox)[1:]


def test_a_url_is_fetched_at_most_once_per_interval_unless_forced(
    make_config: MakeConfig, inbox: Path, server: Server, client: httpx.Client, store: Store
) -> None:
    server.routes["/daily.txt"] = Versioned(DUMP_000.read_bytes(), '"v1"')
    server.routes["/broken"] = lambda h: send(h, 503)
    urls = [server.url("/daily.txt"), server.url("/broken")]
    config = fetch_config(make_config, *urls, fetch_interval="10m")
    fetch_all(config, store, client, NOW)
    soon = fetch_all(config, store, client, NOW + timedelta(minutes=9))
    assert [r.outcome for r in soon.results] == ["not-due", "not-due"]  # a failure waits too
    assert soon.summary() == "0 URLs fetched, 0 new dumps, 0 failed, 2 not due yet"
    assert len(server.requests) == 2
    forced = fetch_all(config, store, client, NOW + timedelta(minutes=9), force=True)
    assert [r.outcome for r in forced.results] == ["not-modified", "failed"]
    later = fetch_all(config, store, client, NOW + timedelta(minutes=19))
    assert [r.outcome for r in later.results] == ["not-modified", "failed"]
    assert len(server.requests) == 6 and len(fetched(inbox)) == 1
