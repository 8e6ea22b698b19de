"""What a failed RPC says: its code, its details, and the core's wording of it.

Layer: core. Imports only the standard library and ``grpc``. Shared by the channel,
the Watch-based waiting and discovery, so every failure reads the same.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from check_grpc_health.core.results import HealthStatus, RpcFailure

if TYPE_CHECKING:
    import grpc


def rpc_code(error: grpc.RpcError) -> grpc.StatusCode:
    """The status code of a failed call (grpcio's errors are also ``grpc.Call``s)."""
    code: grpc.StatusCode = error.code()
    return code


def rpc_details(error: grpc.RpcError) -> str:
    """The status message of a failed call, or an empty string."""
    details: str | None = error.details()
    return details or ""


def health_status(value: int) -> HealthStatus:
    """A status number this client does not know (a newer server) reads as UNKNOWN."""
    try:
        return HealthStatus(value)
    except ValueError:
        return HealthStatus.UNKNOWN


_GRPC_PREFIXES = re.compile(
    r"^(failed to connect to all addresses; last error: )?"
    r"([A-Z_]+: )?"
    r"((ipv4|ipv6|unix|unix-abstract):\S+: )?"
    r"(Failed to connect to remote host: )?"
)


# grpcio makes ALTS credentials only on a Google Cloud machine (it reads the machine's
# DMI product name); elsewhere the channel has none, and every call fails with this.
NO_CREDENTIALS = "No credentials provided"
ALTS_UNAVAILABLE = (
    "ALTS is unavailable: grpcio offers ALTS only on Google Cloud machines, and this is not one"
)


def connect_reason(detail: str) -> str:
    """grpcio's connection error without its boilerplate: ``Connection refused``.

    grpcio says e.g. ``failed to connect to all addresses; last error: UNKNOWN:
    ipv4:127.0.0.1:1: Failed to connect to remote host: Connection refused``; the
    message already names the target, so only the reason at the end is kept.
    """
    if detail.endswith(NO_CREDENTIALS):
        return ALTS_UNAVAILABLE
    return _GRPC_PREFIXES.sub("", detail, count=1) or detail


def rpc_failure(service: str, error: grpc.RpcError) -> RpcFailure:
    code = rpc_code(error)
    details = rpc_details(error)
    name = code.name
    label = f"service {service!r}" if service else "the server's overall health"
    if name == "UNIMPLEMENTED":
        text = "the server does not implement the grpc.health.v1.Health service"
    elif name == "NOT_FOUND":
        text = f"unknown service {service!r}"
    elif name == "DEADLINE_EXCEEDED":
        text = f"health RPC for {label} did not complete in time"
    else:
        text = f"health RPC for {label} failed: {name}: {details}"
    return RpcFailure(text, service=service, code=code, details=details)


def seconds_text(value: float) -> str:
    return f"{value:g}s"
