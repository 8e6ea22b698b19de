# Generated from check_grpc_health/core/probe.py by tools/sync_module_utils.py.
# Do not edit: change the core, then run `python tools/sync_module_utils.py`.
"""One probe: open a channel, connect, Check every service, close.

Layer: core. Imports only the standard library, ``grpc`` and ``grpc_health.v1``.
It never prints, exits, reads argv or installs signal handlers; adapters do that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .channel import HealthChannel
from .results import ProbeResult
from .tls import fetch_peer_certificate

if TYPE_CHECKING:
    from .options import ProbeOptions


def probe(options: ProbeOptions, channel: HealthChannel | None = None) -> ProbeResult:
    """Probe the target once on a fresh channel: connect, Check, close.

    Returns per-service results (an unhealthy status or an RPC error per service is a
    result). Raises :class:`InvalidArgument` for unusable options or files, and
    :class:`ConnectFailure` when no connection could be made.

    With ``channel`` (open on the same target with the same transport settings, e.g.
    shared by many checks), the probe runs on it for ``options.services`` and leaves
    it open; its connect time is then only the wait for the ready connection.
    """
    if channel is not None:
        result = channel.probe(options.services)
    else:
        with HealthChannel(options) as own:
            result = own.probe()
    if options.certificate_facts and result.certificate is None:
        result = with_certificate(options, result)
    return result


def with_certificate(options: ProbeOptions, result: ProbeResult) -> ProbeResult:
    """``result`` with the facts of the server's certificate, fetched in one handshake."""
    if options.tls is None:
        return result
    _unused, info = fetch_peer_certificate(
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
