"""The one metric set: every name, help text and label, and a line's samples.

Layer: adapter (Prometheus). The fleet's textfile and ``--format prometheus``, the
exporter's ``/probe`` and the monitor's ``/metrics`` all describe a line with
:func:`add_lines`, from the one-shot fleet's :class:`~check_grpc_health.fleet.run.Outcome`
and its ``--json`` document, into a :class:`MetricSet` that ``prometheus_client``
renders. Only the monitor adds its live figures (:data:`MONITOR`) and only ``/probe``
adds blackbox_exporter's ``probe_success`` and ``probe_duration_seconds`` (:data:`PROBE`).

Every series of a line carries ``name`` (its ``HOST!SERVICE`` label, or the fleet
table's TARGET text when it has none, so that every line's series are distinct) and
``target`` (the address). Values are in base units: seconds, Unix times, 0/1.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import nagiosplugin
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from check_grpc_health.fleet.sinks.table import target_column

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from prometheus_client.metrics_core import Metric

    from check_grpc_health.fleet.run import Outcome

STATUSES = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")
#: gRPC's status codes by name, for ``grpc_health_rpc_status_code`` (as
#: blackbox_exporter's ``probe_grpc_status_code``), without importing grpc here.
STATUS_CODES = {
    name: number
    for number, name in enumerate(
        (
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        )
    )
}
LINE = ("name", "target")


class Family(NamedTuple):
    """One metric family: its name (a counter's without ``_total``), type, labels, help."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str

    def new(self) -> Metric:
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.help, labels=self.labels)
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)


def _gauge(name: str, labels: tuple[str, ...], text: str) -> Family:
    return Family(name, "gauge", labels, text)


def _counter(name: str, labels: tuple[str, ...], text: str) -> Family:
    return Family(name, "counter", labels, text)


#: What every output says of a line (the textfile, --format prometheus, /probe, /metrics).
LINES = (
    _gauge(
        "grpc_health_check_success",
        LINE,
        "1 when the check reached a verdict on the health (every health RPC answered), else 0",
    ),
    _gauge(
        "grpc_health_serving_status",
        (*LINE, "service", "status"),
        "Health status per service: 1 for the status the server answered, 0 for the others",
    ),
    _gauge(
        "grpc_health_rpc_status_code",
        (*LINE, "service"),
        "gRPC status code of the service's health RPC: 0 when it answered",
    ),
    _gauge(
        "grpc_health_nagios_state", LINE, "Plugin state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"
    ),
    _gauge(
        "grpc_health_duration_seconds",
        (*LINE, "phase"),
        "Time the check took, by phase: connect, rpc, total",
    ),
    _gauge(
        "grpc_health_tls_certificate_expiry_timestamp_seconds",
        LINE,
        "When the server's TLS certificate expires (Unix time)",
    ),
    _gauge(
        "grpc_health_tls_version_info",
        (*LINE, "version"),
        "TLS version of the handshake that fetched the server's certificate, as a label",
    ),
    _gauge(
        "grpc_health_backends_healthy", LINE, "Healthy backends behind the name (--all-addresses)"
    ),
    _gauge("grpc_health_backends", LINE, "Backends behind the name (--all-addresses)"),
    _gauge(
        "grpc_health_last_run_timestamp_seconds",
        (),
        "When every line's result was last renewed (Unix time): the fleet's run, or the "
        "monitor's oldest heartbeat",
    ),
)
#: What only the monitor knows: live changes, heartbeats and its own figures.
MONITOR = (
    _counter(
        "grpc_health_status_changes",
        (*LINE, "service"),
        "Times the service's health status changed since the monitor started (pushed by Watch "
        "or found by a heartbeat), including changes between two scrapes",
    ),
    _gauge(
        "grpc_health_watched",
        (*LINE, "service"),
        "1 while a Watch stream follows the service, 0 where only heartbeat Checks do",
    ),
    _gauge(
        "grpc_health_last_change_timestamp_seconds",
        LINE,
        "When the line's state or output last changed (Unix time)",
    ),
    _gauge(
        "grpc_health_last_heartbeat_timestamp_seconds",
        LINE,
        "When the line's last heartbeat Check ended (Unix time)",
    ),
    _gauge(
        "grpc_health_monitor_heartbeat_interval_seconds",
        (),
        "Seconds between two heartbeat Checks of a line (--interval)",
    ),
    _gauge("grpc_health_monitor_start_time_seconds", (), "When the monitor started (Unix time)"),
    _gauge("grpc_health_monitor_lines", (), "Lines of the fleet file under watch"),
    _gauge("grpc_health_monitor_watch_streams", (), "Watch streams open"),
    _gauge("grpc_health_monitor_connections", (), "gRPC connections open"),
    _counter(
        "grpc_health_monitor_reconnects",
        (),
        "Watch streams that broke and were opened again",
    ),
    _gauge(
        "grpc_health_monitor_deliveries_pending",
        ("sink",),
        "Results waiting for the sink (the latest per service)",
    ),
    _counter("grpc_health_monitor_deliveries", ("sink",), "Results the sink took"),
    _counter(
        "grpc_health_monitor_deliveries_refused",
        ("sink",),
        "Results the sink refused (dropped: sending them again cannot help)",
    ),
    _counter(
        "grpc_health_monitor_delivery_faults",
        ("sink",),
        "Delivery attempts that failed because the sink was down or did not answer",
    ),
)
#: What only /probe says, with blackbox_exporter's names and meanings.
PROBE = (
    _gauge(
        "probe_success",
        (),
        "1 when every service checked answered SERVING, as blackbox_exporter's gRPC prober",
    ),
    _gauge("probe_duration_seconds", (), "How long the probe took"),
)


class MetricSet:
    """Families filled sample by sample; a ``prometheus_client`` collector of them."""

    def __init__(self, *families: Iterable[Family]) -> None:
        self._families = {family.name: family for group in families for family in group}
        self._metrics = {name: family.new() for name, family in self._families.items()}

    def add(self, name: str, labels: Mapping[str, str], value: float) -> None:
        """One sample of family ``name``; ``labels`` holds at least the family's labels."""
        family = self._families[name]
        self._metrics[name].add_metric([labels[key] for key in family.labels], value)  # type: ignore[attr-defined]

    def collect(self) -> Iterator[Metric]:
        """The families that have samples, in the order they were declared."""
        return (metric for metric in self._metrics.values() if metric.samples)


def line_names(outcomes: Sequence[Outcome]) -> list[dict[str, str]]:
    """Each outcome's ``name`` and ``target`` labels."""
    labels = []
    for outcome, name in zip(outcomes, target_column(outcomes), strict=True):
        options = outcome.entry.options
        target = "" if options is None else options.probe.target.display
        labels.append({"name": name, "target": target})
    return labels


def add_lines(metrics: MetricSet, outcomes: Sequence[Outcome]) -> list[dict[str, str]]:
    """Every outcome's samples; returns each one's line labels, for what a caller adds."""
    names = line_names(outcomes)
    for outcome, line in zip(outcomes, names, strict=True):
        add_line(metrics, outcome, line)
    return names


def add_line(metrics: MetricSet, outcome: Outcome, line: dict[str, str]) -> None:
    """One outcome's samples, from its ``--json`` document."""
    document = outcome.document
    services: list[dict[str, Any]] = document.get("services") or []
    metrics.add("grpc_health_check_success", line, 1 if answered(outcome) else 0)
    for item in services:
        service = dict(line, service=item.get("service", ""))
        for status in STATUSES:
            labels = dict(service, status=status)
            value = 1 if item.get("status") == status else 0
            metrics.add("grpc_health_serving_status", labels, value)
        error = item.get("error")
        code = 0 if error is None else STATUS_CODES.get(error.get("code") or "", 2)
        metrics.add("grpc_health_rpc_status_code", service, code)
    metrics.add("grpc_health_nagios_state", line, outcome.state.code)
    for phase, key in (("connect", "connect_time"), ("rpc", "rpc_time"), ("total", "time")):
        if document.get(key) is not None:
            metrics.add("grpc_health_duration_seconds", dict(line, phase=phase), document[key])
    certificate = document.get("certificate")
    if certificate and certificate.get("not_after"):
        expiry = datetime.datetime.fromisoformat(certificate["not_after"])
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=datetime.timezone.utc)
        expires = expiry.timestamp()
        metrics.add("grpc_health_tls_certificate_expiry_timestamp_seconds", line, expires)
    if certificate and certificate.get("tls_version"):
        version = dict(line, version=certificate["tls_version"])
        metrics.add("grpc_health_tls_version_info", version, 1)
    if document.get("total") is not None:
        metrics.add("grpc_health_backends_healthy", line, document.get("healthy") or 0)
        metrics.add("grpc_health_backends", line, document["total"])


def answered(outcome: Outcome) -> bool:
    """Whether the check reached a verdict: every health RPC answered (a backend did, with
    ``--all-addresses``)."""
    document = outcome.document
    services = document.get("services") or []
    # Only an --all-addresses document counts backends; elsewhere "total" is null.
    if document.get("total") is not None:
        return outcome.state != nagiosplugin.Unknown and document["total"] > 0
    return bool(services) and all(item.get("status") for item in services)


def serving(outcome: Outcome) -> bool:
    """blackbox_exporter's success: every service answered SERVING (every backend's, with
    ``--all-addresses``)."""
    document = outcome.document
    if document.get("total") is not None:
        return answered(outcome) and document.get("healthy") == document["total"]
    services = document.get("services") or []
    return bool(services) and all(item.get("status") == "SERVING" for item in services)
