"""Prometheus metrics, in a registry of their own (no import-time global state)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .gc_freeze import GcFreezer


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.reconciles = Counter(
            "tgbot_operator_reconciles",
            "Actions taken by the reconciler, by action and outcome.",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.telegram_calls = Counter(
            "tgbot_operator_telegram_calls",
            "Bot API calls, by method and outcome (ok or the error class).",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.telegram_latency = Histogram(
            "tgbot_operator_telegram_call_duration_seconds",
            "Bot API call latency, by method.",
            ["method"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        self.status_writes = Counter(
            "tgbot_operator_status_writes",
            "Status PATCHes, by the top-level fields they change (joined by +) and outcome.",
            ["fields", "outcome"],
            registry=self.registry,
        )
        self.rate_limit_wait = Counter(
            "tgbot_operator_telegram_rate_limit_wait_seconds",
            "Seconds Bot API calls waited for --bot-api-rate-limit (all servers).",
            registry=self.registry,
        )
        self.bots = Gauge(
            "tgbot_operator_bots", "TelegramBots handled by this operator process.", registry=self.registry
        )
        self.ready = Gauge(
            "tgbot_operator_bots_ready", "TelegramBots whose Ready condition is True.", registry=self.registry
        )
        self.failing = Gauge(
            "tgbot_operator_bots_failing",
            "TelegramBots whose last pass failed (a step, the Kubernetes reads or the status write) "
            "and that retry with backoff; back to 0 once every bot converged after an outage.",
            registry=self.registry,
        )

        self.secret_reads = Counter(
            "tgbot_operator_secret_reads",
            "Secret reads of the workers, by how they were answered: cache, or the reason for a GET "
            "(unsynced, unseen, unread, changed; poll with --secret-reads poll).",
            ["how"],
            registry=self.registry,
        )
        self.kube_in_flight = Gauge(
            "tgbot_operator_kube_requests_in_flight",
            "The operator's Kubernetes API calls sent and not answered yet, those waiting for one of "
            "its connections included (watches not counted): it stays above the connection limit "
            "(32) while calls queue behind a slow API server.",
            registry=self.registry,
        )

    def secret_read(self, how: str) -> None:
        self.secret_reads.labels(how=how).inc()

    def observe_call(self, method: str, outcome: str, seconds: float) -> None:
        self.telegram_calls.labels(method=method, outcome=outcome).inc()
        self.telegram_latency.labels(method=method).observe(seconds)

    def watch_gc(self, freezer: GcFreezer) -> None:
        """Expose the collector's pauses and frozen objects (read from ``freezer`` when scraped)."""
        self.registry.register(GcCollector(freezer))

    def serve(self, host: str, port: int) -> None:
        """Serve /metrics in a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)


class GcCollector(Collector):
    """:class:`~tgbot_operator.gc_freeze.GcFreezer`'s plain counters as metrics, at scrape time
    (the freezer's callback runs inside the garbage collector, where it must not take a lock)."""

    def __init__(self, freezer: GcFreezer) -> None:
        self.freezer = freezer

    def collect(self) -> Iterator[Metric]:
        pauses = HistogramMetricFamily(
            "tgbot_operator_gc_pause_seconds",
            "How long CPython's cycle collections stopped the process, by generation (2: full).",
            labels=["generation"],
        )
        for generation, p in self.freezer.pauses.items():
            pauses.add_metric([str(generation)], p.cumulative(), sum_value=p.total_s)
        yield pauses
        yield GaugeMetricFamily(
            "tgbot_operator_gc_frozen_objects",
            "Objects a full collection found alive, frozen so the next one walks only newer ones.",
            value=gc.get_freeze_count(),
        )
        yield CounterMetricFamily(
            "tgbot_operator_gc_sweeps",
            "Full collections given every object back: the frozen ones had grown by a quarter.",
            value=self.freezer.sweeps,
        )
