"""One probe: open a channel, connect, Check every service, close.

Layer: core. Imports only the standard library, ``grpc`` and ``grpc_health.v1``.
It never prints, exits, reads argv or installs signal handlers; adapters do that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from check_grpc_health.core.channel import HealthChannel
from check_grpc_health.core.results import HealthCheckError, ProbeResult
from check_grpc_health.core.tls import fetch_peer_certificate

if TYPE_CHECKING:
    from check_grpc_health.core.options import ProbeOptions


def probe(
    options: ProbeOptions,
    channel: HealthChannel | None = None,
    *,
    diagnose_within: float | None = None,
) -> ProbeResult:
    """Probe the target once on a fresh channel: connect, Check, close.

    Returns per-service results (an unhealthy status or an RPC error per service is a
    result). Raises :class:`InvalidArgument` for unusable options or files, and
    :class:`ConnectFailure` when no connection could be made.

    With ``channel`` (open on the same target with the same transport settings, e.g.
    shared by many checks), the probe runs on it for ``options.services`` and leaves
    it open; its connect time is then only the wait for the ready connection.

    With ``diagnose_within`` (seconds), a failure gets a ``diagnosis`` found within
    that time after it (see :mod:`check_grpc_health.core.diagnosis`); a healthy probe
    never loads the diagnosis.
    """
    try:
        if channel is not None:
            result = channel.probe(options.services)
        else:
            with HealthChannel(options, snapshot_sockets=diagnose_within is not None) as own:
                result = own.probe()
    except HealthCheckError as error:
        if diagnose_within is not None:
            explain(error, options, diagnose_within)
        raise
    if options.certificate_facts and result.certificate is None:
        result = with_certificate(options, result)
    if diagnose_within is not None:
        explain_services(result, options, diagnose_within)
    return result


def explain(error: HealthCheckError, options: ProbeOptions, within: float) -> None:
    """Attach a diagnosis of ``error``, found within ``within`` seconds."""
    from check_grpc_health.core.diagnosis import attach

    attach(error, options, within)


def explain_services(result: ProbeResult, options: ProbeOptions, within: float) -> None:
    """Attach a diagnosis to each service's RPC error (from the text alone: no waiting)."""
    for outcome in result.services:
        if outcome.error is not None:
            explain(outcome.error, options, within)


def with_certificate(options: ProbeOptions, result: ProbeResult) -> ProbeResult:
    """``result`` with the facts of the server's certificate, fetched in one handshake."""
    if options.tls is None:
        return result
    _, info = fetch_peer_certificate(
        options.target, options.tls.server_name, options.connect_timeout
    )
    return ProbeResult(
        target=result.target,
        services=result.services,
        connect_time=result.connect_time,
        rpc_time=result.rpc_time,
        time=result.time,
        certificate=info,
    )
