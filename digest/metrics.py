"""``/metrics``: the service in Prometheus text format (prometheus-client).

Two sources, one registry of our own (never the process-wide default one):

- the state, read at every scrape from one status snapshot (:mod:`digest.status`), so
  the numbers are those of ``digest status --json``: dumps, papers, digests, deliveries
  and subscribers by status, bounces by kind (hard, soft), fetch failures per configured
  source, the newest digest and the last successful poll and digest job as Unix
  timestamps, open incidents;
- what this process measured: a histogram of how long the transport took to accept
  each message (``digest_send_seconds``) and a counter of send results.

Names follow Prometheus conventions: ``_total`` for counters, ``_seconds`` and
``_timestamp_seconds`` for times. An example alert rule is in the README.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from digest.errors import DeliveryError
from digest.status import Snapshot
from digest.wrapping import TransportWrapper

INCIDENT_KINDS = ("late", "fetch", "refused", "small")  # digest/alerts.py; 0 when none is open

if TYPE_CHECKING:
    from digest.transports import Outgoing, Transport

CONTENT_TYPE = CONTENT_TYPE_LATEST
# From a local relay (milliseconds) to a slow remote server (tens of seconds).
SEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _ts(value: Any) -> float:
    return float(value.timestamp()) if value is not None else 0.0


def families(snap: Snapshot, urls: Sequence[str]) -> Iterator[Metric]:
    """The state's metrics from one snapshot (pure). A time never seen is 0."""
    dumps = CounterMetricFamily("digest_dumps", "Dumps recorded in the state, by outcome", labels=["status"])
    dumps.add_metric(["ingested"], snap.dumps_ingested)
    dumps.add_metric(["failed"], snap.dumps_failed)
    yield dumps
    yield GaugeMetricFamily("digest_papers", "Papers stored", value=snap.papers)
    yield GaugeMetricFamily(
        "digest_papers_waiting", "Papers waiting for the next digest", value=snap.papers_waiting
    )
    yield CounterMetricFamily("digest_digests", "Digests built", value=snap.digests)
    deliveries = GaugeMetricFamily("digest_deliveries", "Outbox rows by status", labels=["status"])
    for status, n in snap.deliveries.items():
        deliveries.add_metric([status], n)
    yield deliveries
    if snap.subscribers is not None:
        subscribers = GaugeMetricFamily("digest_subscribers", "Subscribers by status", labels=["status"])
        for status, n in snap.subscribers.items():
            subscribers.add_metric([status], n)
        yield subscribers
    if snap.bounces is not None:
        bounces = CounterMetricFamily(
            "digest_bounces",
            "Bounces recorded: failed recipients of delivery reports and addresses refused at SMTP time",
            labels=["kind"],
        )
        for kind, n in snap.bounces.items():
            bounces.add_metric([kind], n)
        yield bounces
    failing = {f.url: f.failures for f in snap.fetch_failures}
    fetch = GaugeMetricFamily(
        "digest_fetch_failures", "Failed fetches in a row, per configured source URL", labels=["url"]
    )
    for url in urls:
        fetch.add_metric([url], failing.get(url, 0))
    yield fetch
    last = snap.last_digest
    yield GaugeMetricFamily(
        "digest_last_digest_timestamp_seconds",
        "When the newest digest was built (Unix time; 0: never)",
        value=_ts(last.created if last else None),
    )
    success = GaugeMetricFamily(
        "digest_last_success_timestamp_seconds",
        "When the newest successful run of each service job finished (Unix time; 0: never)",
        labels=["job"],
    )
    for job, at in snap.last_ok.items():
        success.add_metric([job], _ts(at))
    yield success
    incidents = GaugeMetricFamily(
        "digest_incidents_open", "Open dump-health incidents, by kind", labels=["kind"]
    )
    kinds = dict.fromkeys(INCIDENT_KINDS, 0)
    for kind, *_ in snap.incidents:
        kinds[kind] = kinds.get(kind, 0) + 1
    for kind, n in kinds.items():
        incidents.add_metric([kind], n)
    yield incidents


class _StateCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot], urls: Sequence[str]) -> None:
        self.snapshot, self.urls = snapshot, tuple(urls)

    def collect(self) -> Iterator[Metric]:
        return families(self.snapshot(), self.urls)


class Metrics:
    """The registry behind ``/metrics`` and the counters this process keeps."""

    def __init__(self, snapshot: Callable[[], Snapshot], urls: Sequence[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.send_seconds = Histogram(
            "digest_send_seconds",
            "Seconds the transport took to accept (or refuse) one message",
            buckets=SEND_BUCKETS,
            registry=self.registry,
        )
        self.sends = Counter(
            "digest_sends", "Messages handed to the transport, by result", ["result"], registry=self.registry
        )
        for result in ("accepted", "temporary", "permanent"):
            self.sends.labels(result)
        self.registry.register(_StateCollector(snapshot, urls))

    def render(self) -> bytes:
        """The text exposition format (one snapshot per call)."""
        return bytes(generate_latest(self.registry))

    def timed(self, transport: Transport) -> TimedTransport:
        return TimedTransport(transport, self)


class TimedTransport(TransportWrapper):
    """Wraps a transport: each send is timed into ``digest_send_seconds`` and counted."""

    def __init__(self, inner: Transport, metrics: Metrics) -> None:
        super().__init__(inner)
        self.metrics = metrics

    def send(self, message: Outgoing, recipient: str) -> None:
        started = time.perf_counter()
        result = "accepted"
        try:
            self.inner.send(message, recipient)
        except DeliveryError as err:
            result = "temporary" if err.temporary else "permanent"
            raise
        finally:
            self.metrics.send_seconds.observe(time.perf_counter() - started)
            self.metrics.sends.labels(result).inc()
