"""The monitor's ``/metrics``: a custom collector over the monitor's live state.

Layer: adapter (the exporter), over the monitor. Nothing is probed at scrape time: each
scrape asks the monitor's event loop for a snapshot of what it knows
(:func:`check_grpc_health.monitor.snapshot.take_snapshot`, run in the loop) and renders
it. Every line gives the one metric set of its last outcome, as the one-shot fleet's
would; the monitor adds what only a resident process knows: each service's count of
status changes (a NOT_SERVING blip between two scrapes still counts), whether a Watch
stream follows it, when the line last changed and when its last heartbeat ended, and the
monitor's own figures (streams, connections, reconnects, deliveries per sink).

This departs from Prometheus' advice that scrapes be synchronous, on purpose: the state
is pushed by the servers the moment it changes (gRPC Watch) and renewed by a heartbeat
Check every ``--interval``; no timer polls on the scrape's behalf. Staleness shows in
``grpc_health_last_heartbeat_timestamp_seconds`` (per line) and
``grpc_health_last_run_timestamp_seconds`` (the oldest of them); an event loop that does
not answer within :data:`SNAPSHOT_WITHIN` makes the scrape fail (503), so ``up`` is 0.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING

from check_grpc_health.exporter.metrics import LINES, MONITOR, MetricSet, add_lines

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.metrics_core import Metric

    from check_grpc_health.monitor.monitor import Monitor
    from check_grpc_health.monitor.snapshot import MonitorSnapshot

#: How long a scrape waits for the event loop's snapshot.
SNAPSHOT_WITHIN = 5.0


class SnapshotUnavailable(Exception):
    """The monitor's event loop did not hand over its state (stuck, or stopping)."""


def snapshot_reader(
    loop: asyncio.AbstractEventLoop, monitor: Monitor, within: float = SNAPSHOT_WITHIN
) -> Callable[[], MonitorSnapshot]:
    """A function for any thread that returns a snapshot taken in ``loop``."""
    from check_grpc_health.monitor.snapshot import take_snapshot

    async def take() -> MonitorSnapshot:
        return take_snapshot(monitor)

    def read() -> MonitorSnapshot:
        coroutine = take()
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        except RuntimeError:  # the loop is closed: the monitor is stopping
            coroutine.close()
            raise SnapshotUnavailable("the monitor is stopping") from None
        try:
            return future.result(within)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SnapshotUnavailable(
                f"the monitor's event loop did not answer within {within:g}s"
            ) from None
        except concurrent.futures.CancelledError:
            raise SnapshotUnavailable("the monitor is stopping") from None

    return read


class MonitorCollector:
    """``prometheus_client`` collector of the monitor's snapshot (see the module docstring)."""

    def __init__(self, read: Callable[[], MonitorSnapshot], interval: float) -> None:
        self.read = read
        self.interval = interval

    def collect(self) -> Iterator[Metric]:
        """The families of one snapshot; :class:`SnapshotUnavailable` when there is none."""
        return monitor_metrics(self.read(), self.interval).collect()


def monitor_metrics(snapshot: MonitorSnapshot, interval: float) -> MetricSet:
    """One snapshot as the one metric set plus the monitor's families."""
    metrics = MetricSet(LINES, MONITOR)
    names = add_lines(metrics, [line.outcome for line in snapshot.lines])
    beats = []
    for line, labels in zip(snapshot.lines, names, strict=True):
        for view in line.services:
            service = {"name": labels["name"], "target": view.target, "service": view.service}
            metrics.add("grpc_health_status_changes", service, view.changes)
            metrics.add("grpc_health_watched", service, 1 if view.method == "watch" else 0)
        metrics.add("grpc_health_last_change_timestamp_seconds", labels, line.changed_at)
        if line.heartbeat_at is not None:
            beats.append(line.heartbeat_at)
            metrics.add("grpc_health_last_heartbeat_timestamp_seconds", labels, line.heartbeat_at)
    if beats:
        metrics.add("grpc_health_last_run_timestamp_seconds", {}, min(beats))
    metrics.add("grpc_health_monitor_heartbeat_interval_seconds", {}, interval)
    metrics.add("grpc_health_monitor_start_time_seconds", {}, snapshot.started_at)
    metrics.add("grpc_health_monitor_lines", {}, len(snapshot.lines))
    metrics.add("grpc_health_monitor_watch_streams", {}, snapshot.streams)
    metrics.add("grpc_health_monitor_connections", {}, snapshot.connections)
    metrics.add("grpc_health_monitor_reconnects", {}, snapshot.reconnects)
    for sink, counters in snapshot.sinks:
        labels = {"sink": sink}
        metrics.add("grpc_health_monitor_deliveries_pending", labels, counters.pending)
        metrics.add("grpc_health_monitor_deliveries", labels, counters.delivered)
        metrics.add("grpc_health_monitor_deliveries_refused", labels, counters.refused)
        metrics.add("grpc_health_monitor_delivery_faults", labels, counters.faults)
    return metrics
