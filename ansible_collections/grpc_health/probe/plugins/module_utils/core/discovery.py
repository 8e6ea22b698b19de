# Generated from check_grpc_health/core/discovery.py by tools/sync_module_utils.py.
# Do not edit: change the core, then run `python tools/sync_module_utils.py`.
"""Discovery for the core: the services a server offers, and the addresses behind a name.

Layer: core. Service listing speaks gRPC server reflection. Its message classes come
from ``grpcio-reflection`` and are imported only when a listing is asked for, so a
plain check never pays for them. Address resolution uses the system resolver.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

try:
    import grpc
except ImportError:
    import traceback

    GRPC_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    GRPC_IMPORT_ERROR = None

from .channel import HealthChannel
from .results import (
    ConnectFailure,
    HealthCheckError,
    InvalidArgument,
    ProbeResult,
)
from .rpc import rpc_code, rpc_details
from .targets import Target, parse_target

if TYPE_CHECKING:
    from .options import ProbeOptions

# v1 and v1alpha carry the same messages under two names; servers offer one or both.
_REFLECTION_METHODS = (
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)
# Infrastructure services that are not worth a health check of their own.
SKIPPED_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }
)


class ReflectionUnavailable(HealthCheckError):
    """The server does not offer gRPC server reflection, so its services cannot be listed."""


def list_services(options: ProbeOptions) -> tuple[str, ...]:
    """Return the services the server lists through reflection, less health and reflection.

    Raises :class:`ReflectionUnavailable` when the server has no reflection service,
    :class:`ConnectFailure` when it cannot be reached, and :class:`InvalidArgument` for
    bad options.
    """
    with HealthChannel(options) as channel:
        return list_services_on(channel)


def list_services_on(channel: HealthChannel) -> tuple[str, ...]:
    """:func:`list_services` on an open channel, which stays open for health checks."""
    try:
        from grpc_reflection.v1alpha import reflection_pb2
    except ImportError:
        raise InvalidArgument(
            "listing services needs the grpcio-reflection package (pip install grpcio-reflection)"
        ) from None
    options = channel.options
    channel.connect(options.connect_timeout)
    for method in _REFLECTION_METHODS:
        call = channel.grpc_channel.stream_stream(
            method,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        try:
            responses: Any = call(
                iter((request,)), timeout=options.rpc_timeout, metadata=options.metadata or None
            )
            names = [
                service.name
                for response in responses
                for service in response.list_services_response.service
            ]
        except grpc.RpcError as error:
            code = rpc_code(error)
            if code is grpc.StatusCode.UNIMPLEMENTED:
                continue
            raise ConnectFailure(
                f"listing services on {options.target.display} failed: "
                f"{code.name}: {rpc_details(error)}",
                target=options.target.display,
                timed_out=code is grpc.StatusCode.DEADLINE_EXCEEDED,
                detail=rpc_details(error),
            ) from None
        return tuple(sorted(set(names) - SKIPPED_SERVICES))
    raise ReflectionUnavailable(
        f"{options.target.display} does not offer gRPC server reflection, "
        "so its services cannot be listed"
    )


def resolve_addresses(target: Target, family: int = socket.AF_UNSPEC) -> tuple[Target, ...]:
    """Resolve a host:port target to one target per address (A and AAAA records).

    An ``ipv4:``/``ipv6:`` target that lists addresses yields one target per entry.

    ``family`` is ``socket.AF_INET``, ``socket.AF_INET6`` or ``AF_UNSPEC`` for both.
    Each returned target dials one IP literal; its ``display`` names the address.
    Unix targets cannot be resolved and raise :class:`InvalidArgument`.
    """
    if target.host is None or target.port is None:
        raise InvalidArgument(f"{target.display} is not a host name that can be resolved")
    scheme, _unused, listed = target.grpc_target.partition(":")
    if scheme in ("ipv4", "ipv6"):
        # A static list of addresses: each entry is one backend.
        return tuple(parse_target(entry) for entry in listed.removeprefix("//").split(","))
    try:
        infos = socket.getaddrinfo(target.host, target.port, family, socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ConnectFailure(
            f"cannot resolve {target.host}: {error.strerror}",
            target=target.display,
            timed_out=False,
            detail=str(error.strerror),
        ) from None
    addresses = dict.fromkeys(str(info[4][0]) for info in infos)
    backends = (parse_target(address, target.port) for address in addresses)
    return tuple(backend._replace(display=backend.grpc_target) for backend in backends)


class BackendResult(NamedTuple):
    """The probe of one address behind a name: a result, or why there is none."""

    target: Target
    result: ProbeResult | None
    failure: HealthCheckError | None

    @property
    def healthy(self) -> bool:
        """True when the backend answered and every service is SERVING."""
        return self.result is not None and self.result.serving


def probe_addresses(
    options: ProbeOptions, family: int = socket.AF_UNSPEC
) -> tuple[BackendResult, ...]:
    """Resolve the target's name and probe every address concurrently, one channel each.

    Each address is asked what a client of the name would ask (:func:`address_options`).
    Raises :class:`ConnectFailure` when the name does not resolve; a backend's own
    failure is in its :class:`BackendResult`.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .probe import probe

    backends = address_options(options, resolve_addresses(options.target, family))

    def probe_one(one: ProbeOptions) -> BackendResult:
        try:
            return BackendResult(one.target, probe(one), None)
        except HealthCheckError as error:
            return BackendResult(one.target, None, error)

    with ThreadPoolExecutor(max_workers=min(len(backends), 32)) as pool:
        return tuple(pool.map(probe_one, backends))


def address_options(
    options: ProbeOptions, addresses: tuple[Target, ...]
) -> tuple[ProbeOptions, ...]:
    """The options that probe each of ``addresses`` as a client of the name would.

    TLS verification and SNI still use the name (unless a server name is set), and so
    does the ``:authority`` header.
    """
    name = options.target
    tls = options.tls
    if tls is not None and not tls.server_name and not name.is_ip_literal:
        tls = tls._replace(server_name=name.host)
    authority = options.authority or f"{name.host}:{name.port}"
    return tuple(
        replace(options, target=target, tls=tls, authority=authority) for target in addresses
    )


def probe_all_services(
    options: ProbeOptions, *, diagnose_within: float | None = None
) -> ProbeResult:
    """Probe the overall health and every service the server lists, on one channel.

    Raises what :func:`list_services_on` raises; RPC errors are per service, as with
    :func:`check_grpc_health.core.probe.probe`, and so is ``diagnose_within``.
    """
    from .probe import explain, explain_services

    try:
        with HealthChannel(options, snapshot_sockets=diagnose_within is not None) as channel:
            listed = list_services_on(channel)
            result = channel.probe(("", *listed))
    except HealthCheckError as error:
        if diagnose_within is not None:
            explain(error, options, diagnose_within)
        raise
    if diagnose_within is not None:
        explain_services(result, options, diagnose_within)
    return result
