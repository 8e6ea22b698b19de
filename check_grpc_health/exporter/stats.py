"""The exporter's own figures, for ``/metrics`` (never ``/probe``, as Prometheus' guide to
writing exporters asks): probes by module and result, their durations, refused requests.

Layer: adapter (the exporter). Counted from the request threads under one lock; a
``prometheus_client`` collector renders them on each scrape.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.metrics_core import Metric

#: Why a request got no probe, the ``reason`` label of the refused requests.
REASONS = (
    "bad_request",
    "unknown_module",
    "target_not_allowed",
    "unauthorized",
    "not_found",
    "method_not_allowed",
    "unavailable",
)


class ExporterStats:
    """Counters of the HTTP endpoints, safe to update from any thread."""

    def __init__(self, modules: int = 0) -> None:
        self._lock = threading.Lock()
        self._probes: dict[tuple[str, str], int] = {}
        self._durations: dict[str, tuple[int, float]] = {}
        self._refused = dict.fromkeys(REASONS, 0)
        self._modules = modules

    def modules_loaded(self, count: int) -> None:
        with self._lock:
            self._modules = count

    def probed(self, module: str, success: bool, seconds: float) -> None:
        """A probe ran: its module, whether it succeeded (probe_success), how long it took."""
        with self._lock:
            key = (module, "success" if success else "failure")
            self._probes[key] = self._probes.get(key, 0) + 1
            count, total = self._durations.get(module, (0, 0.0))
            self._durations[module] = (count + 1, total + seconds)

    def refused(self, reason: str) -> None:
        """A request answered with a 4xx or 503 instead of a probe or the metrics."""
        with self._lock:
            self._refused[reason] = self._refused.get(reason, 0) + 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            probes = dict(self._probes)
            durations = dict(self._durations)
            refused = dict(self._refused)
            modules = self._modules
        total = CounterMetricFamily(
            "grpc_health_exporter_probes",
            "Probes run through /probe, by module and result (probe_success 1 or 0)",
            labels=("module", "result"),
        )
        for (module, result), count in sorted(probes.items()):
            total.add_metric([module, result], count)
        yield total
        took = SummaryMetricFamily(
            "grpc_health_exporter_probe_duration_seconds",
            "Time /probe requests took, by module",
            labels=("module",),
        )
        for module, (count, seconds) in sorted(durations.items()):
            took.add_metric([module], count, seconds)
        yield took
        rejected = CounterMetricFamily(
            "grpc_health_exporter_requests_refused",
            "Requests answered with an error instead of a probe or metrics, by reason",
            labels=("reason",),
        )
        for reason, count in refused.items():
            rejected.add_metric([reason], count)
        yield rejected
        yield GaugeMetricFamily(
            "grpc_health_exporter_modules", "Modules read from the modules file", value=modules
        )
