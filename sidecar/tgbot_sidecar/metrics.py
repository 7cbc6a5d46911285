"""Prometheus metrics kept as plain integers and exported by a custom collector.

prometheus-client's own Counter/Histogram take a lock and resolve label children on every
call - several microseconds per update on a path whose whole budget is a few tens. Here the
request path only does ``dict[key] += 1`` and a ``bisect``; the cost moves to the scrape.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# (outcome, reason) label pairs; every request lands in exactly one.
FORWARDED = ("forwarded", "")
DUPLICATE = ("duplicate", "")
OVERLOADED = ("overloaded", "max_in_flight")
OVERLOADED_CONNECTIONS = ("overloaded", "max_connections")
REJECT_NOT_FOUND = ("rejected", "not_found")
REJECT_METHOD = ("rejected", "method")
REJECT_ADDRESS = ("rejected", "address")
REJECT_TOKEN = ("rejected", "token")
REJECT_TOO_LARGE = ("rejected", "too_large")
REJECT_SHAPE = ("rejected", "shape")
REJECT_MALFORMED = ("rejected", "malformed_http")
REJECT_TIMEOUT = ("rejected", "timeout")
UPSTREAM_UNAVAILABLE = ("upstream_error", "unavailable")
UPSTREAM_TIMEOUT = ("upstream_error", "timeout")
UPSTREAM_RESET = ("upstream_error", "reset")
UPSTREAM_4XX = ("upstream_error", "status_4xx")
UPSTREAM_5XX = ("upstream_error", "status_5xx")
UPSTREAM_OTHER = ("upstream_error", "status_other")

ALL_OUTCOMES = (
    FORWARDED, DUPLICATE, OVERLOADED, OVERLOADED_CONNECTIONS, REJECT_NOT_FOUND, REJECT_METHOD,
    REJECT_ADDRESS, REJECT_TOKEN, REJECT_TOO_LARGE, REJECT_SHAPE, REJECT_MALFORMED, REJECT_TIMEOUT,
    UPSTREAM_UNAVAILABLE, UPSTREAM_TIMEOUT, UPSTREAM_RESET, UPSTREAM_4XX, UPSTREAM_5XX, UPSTREAM_OTHER,
)  # fmt: skip

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SidecarMetrics(Collector):
    """Counters, the forward latency histogram and the in-flight gauge of one sidecar."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = dict.fromkeys(ALL_OUTCOMES, 0)
        self._bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self.in_flight = 0
        self.dead_letters = 0
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def observe_forward(self, seconds: float) -> None:
        self._bucket_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._latency_sum += seconds

    def add_gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """Export a value computed at scrape time (token and TLS reload counts, readiness...)."""
        self.gauges[name] = (documentation, read)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "tgbot_sidecar_requests",
            "Webhook requests by outcome (forwarded, duplicate, overloaded, rejected, upstream_error) "
            "and reason",
            labels=("outcome", "reason"),
        )
        for (outcome, why), value in self.requests.items():
            requests.add_metric((outcome, why), value)
        yield requests
        cumulative, buckets = 0, []
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self._bucket_counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily(
            "tgbot_sidecar_forward_duration_seconds",
            "Time from forwarding an update to the dispatcher's complete answer (or failure)",
            buckets=buckets,
            sum_value=self._latency_sum,
        )
        yield CounterMetricFamily(
            "tgbot_sidecar_dead_letters",
            "Updates given up after --max-delivery-attempts failed attempts (answered 200)",
            value=self.dead_letters,
        )
        yield GaugeMetricFamily(
            "tgbot_sidecar_in_flight", "Updates being forwarded right now", value=self.in_flight
        )
        for name, (documentation, read) in self.gauges.items():
            yield GaugeMetricFamily(name, documentation, value=read())


def new_registry(metrics: SidecarMetrics) -> CollectorRegistry:
    """A registry of our own, so nothing else in the process leaks into /metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    return registry
