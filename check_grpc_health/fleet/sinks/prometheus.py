"""The fleet for Prometheus: the text exposition format, printed or written as a textfile.

Layer: adapter (a fleet sink): a function from outcomes to text (``--format
prometheus``), and an atomic write of that text (``--textfile PATH``) for
node_exporter's textfile collector: a temporary file in the same folder, then a rename,
so the collector never reads half a file.

Every series of a line carries ``name`` (the line's label, or the table's TARGET text
when it has none, so that every line's series are distinct) and ``target`` (the address).
All values are gauges in base units:

- ``grpc_health_check_success``: 1 when the check reached a verdict on the health (every
  health RPC answered), 0 when it could not find out (no connection, an RPC error, an
  unusable line, the fleet's deadline);
- ``grpc_health_serving_status{service,status}``: one series per health status, 1 for
  the status the service answered and 0 for the others (an enum);
- ``grpc_health_nagios_state``: the plugin's state, 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN;
- ``grpc_health_duration_seconds{phase}``: ``connect``, ``rpc`` and ``total``;
- ``grpc_health_tls_certificate_expiry_timestamp_seconds``: when the server's certificate
  expires, where the check learnt it (``--cert-warning``/``--cert-critical``, ``--insecure``);
- ``grpc_health_tls_version_info{version}``: 1, with the TLS version (``TLS 1.3``) the
  handshake that fetched the certificate agreed on, where the check learnt it;
- ``grpc_health_backends_healthy`` and ``grpc_health_backends``: with ``--all-addresses``;
- ``grpc_health_last_run_timestamp_seconds``: when the fleet ran, for staleness alerts.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import nagiosplugin

from check_grpc_health.fleet.sinks.table import target_column

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from check_grpc_health.fleet.run import Outcome

STATUSES = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")
FAMILIES = (
    (
        "grpc_health_check_success",
        "1 when the check reached a verdict on the health (every health RPC answered), else 0",
    ),
    (
        "grpc_health_serving_status",
        "Health status per service: 1 for the status the server answered, 0 for the others",
    ),
    ("grpc_health_nagios_state", "Plugin state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"),
    ("grpc_health_duration_seconds", "Time the check took, by phase: connect, rpc, total"),
    (
        "grpc_health_tls_certificate_expiry_timestamp_seconds",
        "When the server's TLS certificate expires (Unix time)",
    ),
    (
        "grpc_health_tls_version_info",
        "TLS version of the handshake that fetched the server's certificate, as a label",
    ),
    ("grpc_health_backends_healthy", "Healthy backends behind the name (--all-addresses)"),
    ("grpc_health_backends", "Backends behind the name (--all-addresses)"),
    ("grpc_health_last_run_timestamp_seconds", "When the fleet ran (Unix time)"),
)


def render_prometheus(outcomes: Sequence[Outcome], now: float) -> str:
    """The outcomes in the Prometheus text exposition format (version 0.0.4)."""
    samples: dict[str, list[str]] = {name: [] for name, _ in FAMILIES}
    for outcome, name in zip(outcomes, target_column(outcomes), strict=True):
        options = outcome.entry.options
        target = "" if options is None else options.probe.target.display
        line_labels = {"name": name, "target": target}
        for family, labels, value in _line_samples(outcome, line_labels):
            samples[family].append(f"{family}{_labels(labels)} {_number(value)}")
    samples["grpc_health_last_run_timestamp_seconds"].append(
        f"grpc_health_last_run_timestamp_seconds {_number(now)}"
    )
    lines = []
    for family, help_text in FAMILIES:
        if samples[family]:
            lines.append(f"# HELP {family} {help_text}")
            lines.append(f"# TYPE {family} gauge")
            lines.extend(samples[family])
    return "\n".join(lines) + "\n"


def _line_samples(
    outcome: Outcome, line: dict[str, str]
) -> Iterable[tuple[str, dict[str, str], float]]:
    document = outcome.document
    services: list[dict[str, Any]] = document.get("services") or []
    answered = bool(services) and all(item.get("status") for item in services)
    # Only an --all-addresses document counts backends; elsewhere "total" is null.
    if document.get("total") is not None:
        answered = outcome.state != nagiosplugin.Unknown and document["total"] > 0
    yield "grpc_health_check_success", line, 1 if answered else 0
    for item in services:
        for status in STATUSES:
            labels = dict(line, service=item.get("service", ""), status=status)
            yield "grpc_health_serving_status", labels, 1 if item.get("status") == status else 0
    yield "grpc_health_nagios_state", line, outcome.state.code
    for phase, key in (("connect", "connect_time"), ("rpc", "rpc_time"), ("total", "time")):
        if document.get(key) is not None:
            yield "grpc_health_duration_seconds", dict(line, phase=phase), document[key]
    certificate = document.get("certificate")
    if certificate and certificate.get("not_after"):
        expiry = datetime.datetime.fromisoformat(certificate["not_after"])
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=datetime.timezone.utc)
        yield "grpc_health_tls_certificate_expiry_timestamp_seconds", line, expiry.timestamp()
    if certificate and certificate.get("tls_version"):
        yield "grpc_health_tls_version_info", dict(line, version=certificate["tls_version"]), 1
    if document.get("total") is not None:
        yield "grpc_health_backends_healthy", line, document.get("healthy", 0)
        yield "grpc_health_backends", line, document["total"]


def _labels(labels: dict[str, str]) -> str:
    # Sorted by name, as Prometheus and node_exporter print them.
    pairs = sorted(labels.items())
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in pairs) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, bool | int):
        return str(int(value))
    return repr(float(value))


def write_textfile(path: str, text: str) -> str | None:
    """Write ``text`` to ``path`` atomically; None, or one line saying why it failed.

    The temporary file is in the same folder (a rename is atomic only within one file
    system) and does not end in ``.prom``, so the collector never reads it.
    """
    import contextlib
    import os
    import tempfile

    folder = os.path.dirname(path) or "."
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder
        )
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600; the collector may run as another user
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        reason = error.strerror or error.__class__.__name__
        return f"textfile: cannot write {path!r}: {reason}; no metrics were written"
    return None
