"""The Go tool's last line for each outcome of a probe: connect failure, RPC error, status.

Layer: adapter (the drop-in probe). Pure wording, shared by the one-shot probe and by
``-wait``/``-watch``, so a wait that runs out ends with exactly the line (and exit code)
that one probe would have given at that moment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from check_grpc_health.probe_cli.durations import format_duration
from check_grpc_health.probe_cli.gotext import go_quote, go_status_error, hide_header_values
from check_grpc_health.probe_cli.process import Exit

if TYPE_CHECKING:
    from check_grpc_health.core.results import ConnectFailure, RpcFailure, ServiceResult
    from check_grpc_health.probe_cli.flags import Settings


def connect_failed(settings: Settings, failure: ConnectFailure, reason: str | None = None) -> str:
    """``timeout: failed to connect service ...`` or ``error: failed to connect ...``.

    ``reason`` is the diagnosed cause and fix of a fail-fast failure (Go never prints
    these lines: it waits out the connect timeout); without it, grpcio's own text.
    """
    if failure.timed_out:
        return (
            f"timeout: failed to connect service {go_quote(settings.addr)} "
            f"within {format_duration(settings.connect_timeout)}"
        )
    detail = reason or hide_header_values(failure.detail or str(failure), settings.rpc_headers)
    return f"error: failed to connect service at {go_quote(settings.addr)}: {detail}"


def rpc_failed(settings: Settings, failure: RpcFailure) -> str:
    """The line for a failed health RPC, by its gRPC code."""
    name = failure.code_name
    details = hide_header_values(failure.details, settings.rpc_headers)
    if name == "UNIMPLEMENTED":
        return (
            "error: this server does not implement the grpc health protocol "
            f"(grpc.health.v1.Health): {details}"
        )
    if name == "DEADLINE_EXCEEDED":
        within = format_duration(settings.rpc_timeout)
        return f"timeout: health rpc did not complete within {within}"
    return f"error: health rpc failed: {go_status_error(name, details)}"


def unhealthy(name: str) -> str:
    """An answer other than SERVING."""
    return f"service unhealthy (responded with {go_quote(name)})"


def service_verdict(settings: Settings, outcome: ServiceResult) -> tuple[int, str]:
    """The exit code and line for one service's answer."""
    if outcome.error is not None:
        return Exit.RPC_FAILURE, rpc_failed(settings, outcome.error)
    status = outcome.status
    name = status.name if status is not None else "UNKNOWN"
    if name == "SERVING":
        return Exit.SERVING, "status: SERVING"
    return Exit.UNHEALTHY, unhealthy(name)
