"""A consistent copy of what the monitor knows, for readers outside its event loop.

Layer: adapter (the monitor). The HTTP endpoints (``/metrics``) run in threads of their
own; they never read the live state, which the event loop changes. They ask the loop for
a :class:`MonitorSnapshot` (:func:`take_snapshot`, run in the loop) and read that: plain,
immutable data, taken in one go.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.monitor.delivery import Counters
    from check_grpc_health.monitor.monitor import Monitor


class ServiceSnapshot(NamedTuple):
    """One service on one backend: its status, and how often it changed."""

    target: str
    service: str
    status: str | None
    changes: int
    changed_at: float | None
    method: str


class LineSnapshot(NamedTuple):
    """One line: its last outcome (the one-shot fleet's, for the same metric set), when
    its state last changed and its heartbeat last ran (Unix times), and its services."""

    outcome: Outcome
    changed_at: float
    heartbeat_at: float | None
    services: tuple[ServiceSnapshot, ...]


class MonitorSnapshot(NamedTuple):
    """Every judged line, and the monitor's own figures."""

    taken_at: float
    started_at: float
    lines: tuple[LineSnapshot, ...]
    streams: int
    connections: int
    reconnects: int
    sinks: tuple[tuple[str, Counters], ...]


def take_snapshot(monitor: Monitor) -> MonitorSnapshot:
    """Copy the monitor's state; call it in the monitor's event loop."""
    lines = []
    streams = 0
    for line in monitor.lines.values():
        services = []
        for display, backend in line.backends.items():
            for name, view in backend.services.items():
                streams += view.stream is not None
                services.append(
                    ServiceSnapshot(
                        display,
                        name,
                        None if view.status is None else view.status.name,
                        view.changes,
                        view.changed_at,
                        view.method,
                    )
                )
        if line.outcome is not None:
            lines.append(
                LineSnapshot(line.outcome, line.changed_at, line.heartbeat_at, tuple(services))
            )
    return MonitorSnapshot(
        time.time(),
        monitor.started_at,
        tuple(lines),
        streams,
        monitor.connections.count(),
        monitor.reconnects,
        tuple((sink.name, sink.counters()) for sink in monitor.sinks),
    )
