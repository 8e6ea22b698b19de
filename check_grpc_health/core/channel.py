"""One open channel to a target: connecting, Check on many services, and Watch streams.

Layer: core. Imports only the standard library, ``grpc`` and ``grpc_health.v1``.
It never prints, exits, reads argv or installs signal handlers; adapters do that.
Waiting for the connection is :mod:`check_grpc_health.core.connectivity`'s: it reacts
the moment grpcio reports a change, so a refusal fails at once and closing is instant.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from check_grpc_health.core.connectivity import (
    CONNECTING,
    IDLE,
    READY,
    TRANSIENT_FAILURE,
    RawChannel,
    await_connectivity,
    await_with_subscribe,
)
from check_grpc_health.core.results import (
    ConnectFailure,
    InvalidArgument,
    ProbeResult,
    RpcFailure,
    ServiceResult,
)
from check_grpc_health.core.rpc import (
    connect_reason,
    health_status,
    rpc_code,
    rpc_details,
    rpc_failure,
    seconds_text,
)
from check_grpc_health.core.tls import build_security

if TYPE_CHECKING:
    from collections.abc import Iterator

    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import CertificateInfo

# grpcio's own attempt deadline runs this long past the connect timeout: equal, the
# two race, and a silent peer often reads as a failed attempt ("tcp handshaker
# shutdown") instead of a time-out, and its socket is gone before it can be read.
_ATTEMPT_MARGIN = 0.5
# grpcio's words for its own attempt deadline, when it fires first anyway.
_TIMEOUT_WORDS = ("timed out", "handshaker shutdown")


class StreamCall(Protocol):
    """A server-streaming call: an iterator of responses that can be cancelled."""

    def __iter__(self) -> Iterator[health_pb2.HealthCheckResponse]:
        """The responses, as the server sends them."""

    def cancel(self) -> bool:
        """End the call; False when it had already ended."""


class HealthChannel:
    """An open channel to one target, reusable for many probes.

    Use as a context manager, or call :meth:`close`. Closing ends the connection in
    order (TCP FIN, no stream reset); grpcio's client sends no HTTP/2 GOAWAY. A closed
    channel raises :class:`InvalidArgument` (grpcio's own ``ValueError`` is no error of ours).
    """

    def __init__(
        self,
        options: ProbeOptions,
        *,
        reconnect_backoff: float | None = None,
        snapshot_sockets: bool = False,
    ) -> None:
        self.options = options
        # At a connect time-out, read the state of the channel's sockets (for a diagnosis).
        self.snapshot_sockets = snapshot_sockets
        self.certificate: CertificateInfo | None = None
        #: Seconds the last connection :meth:`connect` saw being made took (set-up
        #: included for the first one); None until it has seen one. A connection made
        #: meanwhile by a Watch stream waiting for the server is not timed.
        self.connected_in: float | None = None
        started = time.monotonic()
        self._metadata = options.metadata or None
        self._closed = False
        self._channel = self._open(reconnect_backoff)
        self._stub = health_pb2_grpc.HealthStub(self._channel)
        # Channel set-up (the no-verify TLS pin included) counts towards the first probe.
        self._setup_time = time.monotonic() - started
        self._open_time = self._setup_time

    def _open(self, reconnect_backoff: float | None) -> grpc.Channel:
        plan = channel_plan(self.options, reconnect_backoff)
        self.certificate = plan.certificate
        if plan.credentials is not None:
            return grpc.secure_channel(
                plan.target, plan.credentials, plan.options, compression=plan.compression
            )
        return grpc.insecure_channel(plan.target, plan.options, compression=plan.compression)

    @property
    def grpc_channel(self) -> grpc.Channel:
        """The underlying grpcio channel, for RPCs other than health (e.g. reflection)."""
        return self._channel

    def __enter__(self) -> HealthChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel and cancel anything still in flight."""
        self._closed = True
        self._channel.close()

    def _usable(self) -> None:
        if self._closed:
            raise InvalidArgument(f"the channel to {self.options.target.display} is closed")

    def connect(self, timeout: float) -> float:
        """Wait until the channel is ready; return the seconds it took.

        Raises :class:`ConnectFailure` at once when the connection fails (refused, TLS
        error, unresolvable name), or with ``timed_out`` when ``timeout`` runs out.
        """
        self._usable()
        started = time.monotonic()
        raw: RawChannel | None = getattr(self._channel, "_channel", None)
        if raw is None or not hasattr(raw, "watch_connectivity_state"):
            fresh = self.connected_in is None
            state = await_with_subscribe(self._channel, timeout)
        else:
            fresh = raw.check_connectivity_state(False) != READY
            state = await_connectivity(raw, timeout)
        if state == READY:
            took = time.monotonic() - started
            if fresh:
                self.connected_in = took + (self._open_time if self.connected_in is None else 0)
            return took
        if state in (IDLE, CONNECTING):
            raise ConnectFailure(
                f"timed out connecting to {self.options.target.display} "
                f"after {seconds_text(timeout)}",
                target=self.options.target.display,
                timed_out=True,
                socket_states=self._socket_states(),
            )
        self._raise_connect_failure()
        return time.monotonic() - started

    def _socket_states(self) -> tuple[str, ...]:
        """The kernel's state of this channel's TCP sockets, when a diagnosis wants it.

        Through an HTTP proxy, grpcio's socket goes to the proxy's port.
        """
        port = self.options.target.port
        if not self.snapshot_sockets or port is None:
            return ()
        from check_grpc_health.core.peek import connection_states
        from check_grpc_health.core.proxy import proxy_for

        route = proxy_for(self.options.target, enabled=self.options.use_proxy).route
        return connection_states(port if route is None else route.port)

    def _raise_connect_failure(self) -> None:
        """The channel is in TRANSIENT_FAILURE: one fail-fast RPC fetches grpcio's reason."""
        try:
            self._stub.Check(
                health_pb2.HealthCheckRequest(service=self.options.services[0]),
                timeout=self.options.connect_timeout,
                metadata=self._metadata,
                wait_for_ready=False,
            )
        except grpc.RpcError as error:
            detail = rpc_details(error)
            display = self.options.target.display
            # grpc's own attempt deadline may still expire just before ours (see
            # _ATTEMPT_MARGIN): "connection attempt timed out before receiving SETTINGS
            # frame" or "tcp handshaker shutdown" is the same timeout, and reads the same.
            timed_out = rpc_code(error) is grpc.StatusCode.DEADLINE_EXCEEDED or any(
                words in detail.lower() for words in _TIMEOUT_WORDS
            )
            timeout = seconds_text(self.options.connect_timeout)
            message = (
                f"timed out connecting to {display} after {timeout}"
                if timed_out
                else f"failed to connect to {display}: {connect_reason(detail)}"
            )
            raise ConnectFailure(
                message, target=display, timed_out=timed_out, detail=detail
            ) from None

    def probe(
        self, services: tuple[str, ...] | None = None, *, within: float | None = None
    ) -> ProbeResult:
        """Connect if needed, then Check every service concurrently on this channel.

        ``services`` replaces the options' services for this probe (e.g. the ones
        discovered through reflection on the same channel). ``within`` caps both the
        connect and the RPC deadline, for a caller that must end by a deadline of its own.
        """
        options = self.options
        names = services or options.services
        connect_timeout, rpc_timeout = options.connect_timeout, options.rpc_timeout
        if within is not None:
            connect_timeout = min(connect_timeout, max(within, 0.001))
            rpc_timeout = min(rpc_timeout, max(within, 0.001))
        started = time.monotonic()
        connect_time = self.connect(connect_timeout)
        rpc_started = time.monotonic()
        if len(names) == 1:
            outcomes: tuple[ServiceResult, ...] = (self.check_one(names[0], rpc_timeout),)
        else:
            outcomes = self._check_many(names, rpc_timeout)
        finished = time.monotonic()
        setup_time, self._setup_time = self._setup_time, 0.0
        return ProbeResult(
            target=options.target.display,
            services=outcomes,
            connect_time=setup_time + connect_time,
            rpc_time=finished - rpc_started,
            time=setup_time + finished - started,
            certificate=self.certificate,
        )

    def _request(self, service: str) -> health_pb2.HealthCheckRequest:
        return health_pb2.HealthCheckRequest(service=service)

    def check_one(self, service: str, timeout: float | None = None) -> ServiceResult:
        """Check one service on the connected channel, within ``timeout`` or the RPC timeout."""
        self._usable()
        started = time.monotonic()
        try:
            response = self._stub.Check(
                self._request(service),
                timeout=self.options.rpc_timeout if timeout is None else timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            return ServiceResult(
                service, None, time.monotonic() - started, rpc_failure(service, error)
            )
        return ServiceResult(service, health_status(response.status), time.monotonic() - started)

    def _check_many(self, services: tuple[str, ...], timeout: float) -> tuple[ServiceResult, ...]:
        finished: dict[str, float] = {}
        started = time.monotonic()
        calls = []
        for service in services:
            call = self._stub.Check.future(
                self._request(service),
                timeout=timeout,
                metadata=self._metadata,
            )
            call.add_done_callback(
                lambda _call, name=service: finished.__setitem__(name, time.monotonic())
            )
            calls.append((service, call))
        results = []
        for service, call in calls:
            try:
                response = call.result()
            except grpc.RpcError as error:
                failure: RpcFailure | None = rpc_failure(service, error)
                status = None
            else:
                failure, status = None, health_status(response.status)
            elapsed = finished.get(service, time.monotonic()) - started
            results.append(ServiceResult(service, status, elapsed, failure))
        return tuple(results)

    def connection_problem(self) -> ConnectFailure | None:
        """Why the channel is not connected right now, without waiting; None when it is.

        A channel in TRANSIENT_FAILURE gets grpcio's reason with one fail-fast RPC; one
        still CONNECTING (a silent peer) reads as a connect timeout.
        """
        self._usable()
        raw: RawChannel | None = getattr(self._channel, "_channel", None)
        if raw is None or not hasattr(raw, "check_connectivity_state"):
            return None
        state = raw.check_connectivity_state(False)
        if state == TRANSIENT_FAILURE:
            try:
                self._raise_connect_failure()
            except ConnectFailure as failure:
                return failure
            return None
        if state == CONNECTING:
            display = self.options.target.display
            return ConnectFailure(
                f"timed out connecting to {display} "
                f"after {seconds_text(self.options.connect_timeout)}",
                target=display,
                timed_out=True,
            )
        return None

    def watch_stream(self, service: str, timeout: float) -> StreamCall:
        """Open a Watch stream that waits for the connection (within ``timeout``)."""
        self._usable()
        call: StreamCall = self._stub.Watch(
            self._request(service),
            timeout=timeout,
            metadata=self._metadata,
            wait_for_ready=True,
        )
        return call


class ChannelPlan(NamedTuple):
    """How to open a grpcio channel for some options, sync or asyncio alike.

    ``credentials`` is None for plaintext. ``certificate`` is the server certificate
    the no-verify TLS mode pinned while planning, if it did.
    """

    target: str
    credentials: grpc.ChannelCredentials | None
    options: list[tuple[str, Any]]
    compression: grpc.Compression | None
    certificate: CertificateInfo | None = None


def channel_plan(
    options: ProbeOptions,
    reconnect_backoff: float | None = None,
    extra: tuple[tuple[str, Any], ...] = (),
) -> ChannelPlan:
    """The target, credentials and channel arguments for ``options``.

    ``reconnect_backoff`` (seconds) fixes grpcio's reconnect back-off; ``extra`` adds
    channel arguments (a resident monitor sets its own back-off and connection pool).
    May raise :class:`InvalidArgument` (unreadable TLS files) and, in the no-verify TLS
    mode, :class:`ConnectFailure` (the certificate could not be fetched).
    """
    channel_options: list[tuple[str, Any]] = [
        # A connection attempt to a silent peer otherwise outlives close() by up to
        # grpc's 20 s minimum connect timeout, holding a socket.
        (
            "grpc.min_reconnect_backoff_ms",
            _channel_ms(options.connect_timeout + _ATTEMPT_MARGIN),
        ),
    ]
    if options.user_agent:
        channel_options.append(("grpc.primary_user_agent", options.user_agent))
    target, tls, authority, use_proxy = (
        options.target,
        options.tls,
        options.authority,
        options.use_proxy,
    )
    if options.family:
        from check_grpc_health.core.family import family_route

        target, tls, authority, use_proxy = family_route(options)
    if authority:
        channel_options.append(("grpc.default_authority", authority))
    if not use_proxy:
        channel_options.append(("grpc.enable_http_proxy", 0))
        if os.environ.get("GRPC_ADDRESS_HTTP_PROXY"):
            # The address-level proxy ignores grpc.enable_http_proxy; an empty
            # setting turns it off (grpcio logs an error line about it).
            channel_options.append(("grpc.address_http_proxy", ""))
    if reconnect_backoff is not None:
        backoff_ms = max(int(reconnect_backoff * 1000), 10)
        channel_options.append(("grpc.initial_reconnect_backoff_ms", backoff_ms))
        channel_options.append(("grpc.max_reconnect_backoff_ms", backoff_ms))
    channel_options.extend(extra)
    compression = grpc.Compression.Gzip if options.gzip else None
    if tls is not None:
        security = build_security(tls, target, options.connect_timeout)
        channel_options.extend(security.options)
        return ChannelPlan(
            target.grpc_target,
            security.credentials,
            channel_options,
            compression,
            security.certificate,
        )
    if options.alts:
        credentials = grpc.alts_channel_credentials()
        return ChannelPlan(target.grpc_target, credentials, channel_options, compression)
    return ChannelPlan(target.grpc_target, None, channel_options, compression)


def _channel_ms(seconds: float) -> int:
    """Seconds as a grpc channel argument: whole milliseconds within a C int."""
    return min(max(int(seconds * 1000), 1), 2**31 - 1)
