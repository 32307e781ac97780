"""Edge: fetches the dumps listed in ``sources.urls`` into the inbox, politely and safely.

For each URL, in config order:

- a conditional GET (``If-None-Match`` / ``If-Modified-Since`` from the last answer,
  remembered in the state's ``fetch_state`` table); a 304 writes nothing;
- a timeout (``sources.fetch_timeout``: connecting, and waiting for the next bytes; a
  whole download is abandoned after ``DOWNLOAD_TIMEOUTS`` times that), a size limit
  (``sources.fetch_max_bytes``: the body is streamed and abandoned as soon as it is
  larger; nothing is written), and ``sources.fetch_retries`` retries with doubling
  backoff (``sources.fetch_backoff``) after a 5xx or 429 answer, a timeout or a
  connection error;
- at most once per ``sources.fetch_interval`` per URL in a run or service poll
  (``digest fetch`` by hand always fetches);
- redirects on the same host are followed; to another host only with
  ``sources.follow_redirects = true``; from https to http never;
- a body that differs from the last one (by sha256) and is not a dump the state already
  knows is written atomically into the inbox as ``fetched-<UTC time>-<sha8>.txt``
  (``.json`` when the content is the daily-papers JSON). The inbox scan treats such
  names as dumps whatever ``sources.pattern`` says, and they flow like any other dump.

A failing URL is logged and recorded (``digest status``, :meth:`Store.fetch_failures`);
it never stops the other URLs or the run. ``now`` and the httpx client come from the
caller, so tests use a real local server and a fixed clock.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from digest import __version__
from digest.atomic import write_atomic
from digest.config import Config
from digest.errors import DigestError, FetchError
from digest.fetch_body import ACCEPT_ENCODING, BodyError, codings, decoded, html_type, markup_start
from digest.model import FetchState
from digest.parse_json import looks_like_json
from digest.sources import FETCHED_PREFIX
from digest.store import Store

log = logging.getLogger(__name__)

USER_AGENT = f"paper-digest/{__version__} (+https://github.com/paper-digest/paper-digest)"
ACCEPT = "text/plain, application/json;q=0.9, text/*;q=0.8, */*;q=0.1"
MAX_REDIRECTS = 5
DOWNLOAD_TIMEOUTS = 10  # a whole download may take this many fetch_timeouts
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is left for the next run
_TEMPORARY_STATUS = frozenset({408, 425, 429})


FetchOutcome = Literal["written", "unchanged", "not-modified", "not-due", "failed"]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What fetching one URL did. ``outcome`` is ``"written"`` (a new dump file),
    ``"unchanged"`` (same body as before, nothing written), ``"not-modified"`` (304),
    ``"not-due"`` (fetched less than ``sources.fetch_interval`` ago; no request made)
    or ``"failed"`` (``error`` says why)."""

    url: str
    outcome: FetchOutcome
    file: str | None = None
    error: str | None = None
    status: int | None = None


@dataclass(slots=True)
class FetchReport:
    results: list[FetchResult] = field(default_factory=list)

    @property
    def written(self) -> int:
        return sum(r.outcome == "written" for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.outcome == "failed" for r in self.results)

    @property
    def errors(self) -> list[str]:
        """``"URL: reason"`` for every failed URL."""
        return [f"{r.url}: {r.error}" for r in self.results if r.outcome == "failed"]

    @property
    def not_due(self) -> int:
        return sum(r.outcome == "not-due" for r in self.results)

    def summary(self) -> str:
        fetched = len(self.results) - self.not_due
        later = f", {self.not_due} not due yet" if self.not_due else ""
        return f"{fetched} URLs fetched, {self.written} new dumps, {self.failed} failed{later}"


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int  # 200 or 304
    body: bytes
    etag: str | None
    last_modified: str | None


def make_client(config: Config) -> httpx.Client:
    """The client ``digest run`` and ``digest fetch`` use: no automatic redirects (the
    fetcher decides which to follow), the configured timeout, our User-Agent."""
    return httpx.Client(
        timeout=config.sources.fetch_timeout,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


@contextmanager
def client_for(config: Config, client: httpx.Client | None) -> Iterator[httpx.Client]:
    """``client`` when the caller gave one, else a new one closed afterwards."""
    if client is not None:
        yield client
        return
    with make_client(config) as own:
        yield own


def fetch_all(
    config: Config, store: Store, client: httpx.Client, now: datetime, *, force: bool = False
) -> FetchReport:
    """Fetches every URL of ``sources.urls`` once. Never raises for a failing URL.

    A URL fetched (successfully or not) less than ``sources.fetch_interval`` before
    ``now`` is left alone, so a service polling every minute stays polite; ``force``
    (``digest fetch``) fetches every URL regardless.
    """
    report = FetchReport()
    for url in config.sources.urls:
        if not force and not _due(config, store.fetch_state(url), now):
            report.results.append(FetchResult(url, "not-due"))
            log.debug("fetch %s: fetched less than sources.fetch_interval ago; not due", url)
            continue
        try:
            result = fetch_one(config, store, client, url, now)
        except DigestError:
            raise  # the state itself is broken: the run cannot go on either
        except Exception as err:  # a bug must not stop the other URLs or the run; keep the evidence
            log.exception("unexpected error while fetching %s", url)
            result = FetchResult(url, "failed", error=f"internal error ({type(err).__name__}: {err})")
        report.results.append(result)
        if result.outcome == "failed":
            log.error("fetch %s failed: %s", url, result.error)
        else:
            log.info("fetch %s: %s%s", url, result.outcome, f" -> {result.file}" if result.file else "")
    return report


def _due(config: Config, state: FetchState | None, now: datetime) -> bool:
    if state is None or state.last_fetch_at is None:
        return True
    since = (now - state.last_fetch_at).total_seconds()
    # A clock that went backwards must not silence a source: fetch then.
    return since < 0 or since >= config.sources.fetch_interval


def dump_name(now: datetime, sha256: str, body: bytes) -> str:
    """``fetched-20261122T070000Z-1a2b3c4d.txt`` (``.json`` for a JSON body)."""
    ext = "json" if looks_like_json(body[:4096]) else "txt"
    return f"{FETCHED_PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{sha256[:8]}.{ext}"


def fetch_one(config: Config, store: Store, client: httpx.Client, url: str, now: datetime) -> FetchResult:
    """Fetches ``url`` once (with retries), writes a changed body into the inbox and
    records the outcome in the state. A failure is returned, not raised."""
    before = store.fetch_state(url) or FetchState(url=url)
    failed = replace(before, last_fetch_at=now, failures=before.failures + 1)
    try:
        answer = _download(config, client, url, before)
    except FetchError as err:
        store.record_fetch(replace(failed, last_status=err.status, last_error=str(err)))
        return FetchResult(url, "failed", error=str(err), status=err.status)
    ok = replace(
        before, last_status=answer.status, last_error=None, last_fetch_at=now, last_ok_at=now, failures=0
    )
    if answer.status == 304:
        # A 304 may carry a fresher validator; otherwise the old ones stay valid.
        store.record_fetch(
            replace(
                ok,
                etag=answer.etag or before.etag,
                last_modified=answer.last_modified or before.last_modified,
            )
        )
        return FetchResult(url, "not-modified", status=304)
    sha = hashlib.sha256(answer.body).hexdigest()
    ok = replace(ok, etag=answer.etag, last_modified=answer.last_modified, last_sha256=sha)
    if sha == before.last_sha256 or store.dump_status(sha) is not None:
        store.record_fetch(ok)
        return FetchResult(url, "unchanged", status=answer.status)
    name = dump_name(now, sha, answer.body)
    path = config.sources.inbox / name
    try:
        if not path.exists():  # two URLs serving the same bytes at the same time
            write_atomic(path, answer.body)
    except OSError as err:
        error = f"cannot write {path} ({err.strerror}); check that sources.inbox is writable"
        store.record_fetch(replace(failed, last_status=answer.status, last_error=error))
        return FetchResult(url, "failed", error=error, status=answer.status)
    # Recorded only after the file is in place: the state never names a missing file.
    store.record_fetch(replace(ok, last_file=name))
    return FetchResult(url, "written", file=name, status=answer.status)


def _download(config: Config, client: httpx.Client, url: str, before: FetchState) -> _Answer:
    """The answer to a conditional GET, retrying temporary failures with backoff."""
    src = config.sources
    attempts = 1 + src.fetch_retries
    for attempt in range(1, attempts + 1):
        try:
            return _attempt(config, client, url, before)
        except _Retry as retry:
            err = retry.error
            if attempt == attempts:
                suffix = f" (after {attempts} attempts)" if attempts > 1 else ""
                raise FetchError(f"{err}{suffix}", temporary=True, status=err.status) from err
            if retry.after is not None and retry.after > MAX_RETRY_AFTER:
                # Not slept in the run (which holds the run lock): the next run tries again.
                raise FetchError(
                    f"{err}; the server asks to wait {retry.after:.0f}s (Retry-After), left for the next run",
                    temporary=True,
                    status=err.status,
                ) from err
            delay = src.fetch_backoff * 2 ** (attempt - 1)
            if retry.after is not None:
                delay = max(delay, retry.after)
            log.warning(
                "fetch %s: %s; retrying in %.2gs (attempt %d of %d)", url, err, delay, attempt, attempts
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


class _Retry(Exception):
    def __init__(self, error: FetchError, after: float | None = None) -> None:
        self.error = error
        self.after = after
        super().__init__(str(error))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds)


def _headers(before: FetchState) -> dict[str, str]:
    # Only the codings fetch_body undoes in bounded steps (httpx would add br and zstd).
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
    if before.etag:
        headers["If-None-Match"] = before.etag
    if before.last_modified:
        headers["If-Modified-Since"] = before.last_modified
    return headers


def _attempt(config: Config, client: httpx.Client, url: str, before: FetchState) -> _Answer:
    """One attempt, following allowed redirects. Raises _Retry for a temporary failure,
    FetchError for a permanent one."""
    src = config.sources
    origin = httpx.URL(url)
    current = origin
    deadline = time.monotonic() + src.fetch_timeout * DOWNLOAD_TIMEOUTS
    for _hop in range(MAX_REDIRECTS + 1):
        request = client.build_request("GET", current, headers=_headers(before), timeout=src.fetch_timeout)
        try:
            response = client.send(request, stream=True, follow_redirects=False)
        except httpx.UnsupportedProtocol as err:
            raise FetchError(f"unsupported URL ({err})", temporary=False) from err
        except httpx.TimeoutException as err:
            raise _Retry(FetchError(_timeout_message(config, err), temporary=True)) from err
        except httpx.RequestError as err:
            raise _Retry(FetchError(f"connection failed ({_describe(err)})", temporary=True)) from err
        try:
            if response.has_redirect_location:
                current = _redirect_target(config, origin, current, response)
                continue
            return _answer(config, response, deadline)
        finally:
            response.close()
    raise FetchError(f"more than {MAX_REDIRECTS} redirects; fix the URL in sources.urls", temporary=False)


def _redirect_target(
    config: Config, origin: httpx.URL, current: httpx.URL, response: httpx.Response
) -> httpx.URL:
    target = current.join(response.headers["Location"])
    status = response.status_code
    if target.scheme not in ("http", "https"):
        raise FetchError(f"HTTP {status} redirect to {target} is not http(s)", temporary=False, status=status)
    if current.scheme == "https" and target.scheme == "http":
        raise FetchError(
            f"HTTP {status} redirect from https to plain http ({target}) refused; "
            "put the final URL in sources.urls if you trust it",
            temporary=False,
            status=status,
        )
    if target.host != origin.host and not config.sources.follow_redirects:
        raise FetchError(
            f"HTTP {status} redirect to another host ({target}) not followed; "
            "set sources.follow_redirects = true to follow it, or put that URL in sources.urls",
            temporary=False,
            status=status,
        )
    log.debug("fetch %s: HTTP %d redirect to %s", origin, status, target)
    return target


def _answer(config: Config, response: httpx.Response, deadline: float) -> _Answer:
    status = response.status_code
    etag = response.headers.get("ETag")
    last_modified = response.headers.get("Last-Modified")
    if status == 304:
        return _Answer(304, b"", etag, last_modified)
    if status >= 500 or status in _TEMPORARY_STATUS:
        error = FetchError(f"HTTP {status} {response.reason_phrase}".rstrip(), temporary=True, status=status)
        raise _Retry(error, _retry_after(response.headers.get("Retry-After")))
    if status != 200:
        raise FetchError(
            f"HTTP {status} {response.reason_phrase}".rstrip() + "; check the URL in sources.urls",
            temporary=False,
            status=status,
        )
    content_type = response.headers.get("Content-Type")
    if html_type(content_type):
        raise FetchError(_not_a_dump(f"Content-Type: {content_type}"), temporary=False, status=status)
    body = _read_body(config, response, deadline)
    if not body.strip():
        raise FetchError("HTTP 200 with an empty body; nothing written", temporary=False, status=status)
    if (start := markup_start(body)) is not None:
        raise FetchError(_not_a_dump(f"the body starts {start!r}"), temporary=False, status=status)
    return _Answer(200, body, etag, last_modified)


def _not_a_dump(evidence: str) -> str:
    # A login wall, an error page or the listing page's HTML itself: its tags would
    # become "papers" and go out by mail and in the feed.
    return (
        f"HTTP 200 with an HTML page ({evidence}), not a dump; nothing written "
        "(point sources.urls at the page's text or the daily-papers JSON)"
    )


def _too_large(config: Config, size: str) -> FetchError:
    limit = config.sources.fetch_max_bytes
    return FetchError(
        f"the body is {size} than sources.fetch_max_bytes ({limit} bytes); nothing written "
        "(raise sources.fetch_max_bytes if this source is genuine)",
        temporary=False,
        status=200,
    )


def _read_body(config: Config, response: httpx.Response, deadline: float) -> bytes:
    """The decoded body, streamed; abandoned above the size limit or past the deadline."""
    limit = config.sources.fetch_max_bytes
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(config, f"{int(declared)} bytes, larger")
    body = bytearray()
    raw_size = 0

    def counted() -> Iterator[bytes]:
        nonlocal raw_size
        for chunk in response.iter_raw():
            raw_size += len(chunk)
            if raw_size > limit:
                raise _too_large(config, "larger")
            yield chunk

    try:
        # Decoded here, a step at a time, not by httpx (a whole chunk at once): the limit
        # applies to what would be written, and is checked before memory grows past it.
        for chunk in decoded(counted(), codings(response.headers.get("Content-Encoding"))):
            body += chunk
            if len(body) > limit:
                raise _too_large(config, "larger (decoded)")
            if time.monotonic() > deadline:
                raise _Retry(
                    FetchError(
                        f"the download took longer than {DOWNLOAD_TIMEOUTS} x sources.fetch_timeout "
                        f"({config.sources.fetch_timeout:g}s)",
                        temporary=True,
                        status=200,
                    )
                )
    except BodyError as err:
        raise FetchError(f"{err}; nothing written", temporary=False, status=200) from err
    except httpx.TimeoutException as err:
        raise _Retry(FetchError(_timeout_message(config, err), temporary=True, status=200)) from err
    except httpx.RequestError as err:
        # Typically the server closed the connection before Content-Length bytes came.
        raise _Retry(
            FetchError(
                f"the body was cut short ({_describe(err)}); nothing written", temporary=True, status=200
            )
        ) from err
    return bytes(body)


def _describe(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _timeout_message(config: Config, err: httpx.TimeoutException) -> str:
    what = {
        httpx.ConnectTimeout: "connecting",
        httpx.ReadTimeout: "waiting for the answer",
        httpx.WriteTimeout: "sending the request",
        httpx.PoolTimeout: "waiting for a connection",
    }.get(type(err), "waiting")
    return (
        f"timed out {what} (sources.fetch_timeout = {config.sources.fetch_timeout:g}s); "
        "raise it if the server is just slow"
    )
