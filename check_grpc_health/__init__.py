"""check-grpc-health: check gRPC servers through the standard health checking protocol.

Layer: package root, the library's one public face::

    from check_grpc_health import ProbeOptions, parse_target, probe, watch

Names are loaded on first use (PEP 562), so importing a tool's argument parser, or
this package for its version, does not import grpc. The engine lives in
:mod:`check_grpc_health.core`; the adapters are :mod:`check_grpc_health.plugin`,
:mod:`check_grpc_health.fleet` and :mod:`check_grpc_health.probe_cli`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from check_grpc_health.core.channel import HealthChannel
    from check_grpc_health.core.discovery import (
        BackendResult,
        ReflectionUnavailable,
        list_services,
        probe_addresses,
        probe_all_services,
        resolve_addresses,
    )
    from check_grpc_health.core.options import ProbeOptions, parse_metadata
    from check_grpc_health.core.probe import probe
    from check_grpc_health.core.results import (
        CertificateInfo,
        ConnectFailure,
        Diagnosis,
        HealthCheckError,
        HealthStatus,
        InvalidArgument,
        ProbeResult,
        RpcFailure,
        ServiceResult,
        WatchResult,
    )
    from check_grpc_health.core.targets import Target, parse_target
    from check_grpc_health.core.tls import TlsOptions
    from check_grpc_health.core.watch import watch

# Public name -> the core module that defines it.
_PUBLIC = {
    "HealthChannel": "channel",
    "BackendResult": "discovery",
    "ReflectionUnavailable": "discovery",
    "list_services": "discovery",
    "probe_addresses": "discovery",
    "probe_all_services": "discovery",
    "resolve_addresses": "discovery",
    "ProbeOptions": "options",
    "parse_metadata": "options",
    "probe": "probe",
    "CertificateInfo": "results",
    "ConnectFailure": "results",
    "Diagnosis": "results",
    "HealthCheckError": "results",
    "HealthStatus": "results",
    "InvalidArgument": "results",
    "ProbeResult": "results",
    "RpcFailure": "results",
    "ServiceResult": "results",
    "WatchResult": "results",
    "Target": "targets",
    "parse_target": "targets",
    "TlsOptions": "tls",
    "watch": "watch",
}

__all__ = [
    "BackendResult",
    "CertificateInfo",
    "ConnectFailure",
    "Diagnosis",
    "HealthChannel",
    "HealthCheckError",
    "HealthStatus",
    "InvalidArgument",
    "ProbeOptions",
    "ProbeResult",
    "ReflectionUnavailable",
    "RpcFailure",
    "ServiceResult",
    "Target",
    "TlsOptions",
    "WatchResult",
    "__version__",
    "list_services",
    "parse_metadata",
    "parse_target",
    "probe",
    "probe_addresses",
    "probe_all_services",
    "resolve_addresses",
    "watch",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its core module the first time it is asked for."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"check_grpc_health.core.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
