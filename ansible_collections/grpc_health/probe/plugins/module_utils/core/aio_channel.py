# Generated from check_grpc_health/core/aio_channel.py by tools/sync_module_utils.py.
# Do not edit: change the core, then run `python tools/sync_module_utils.py`.
"""One open asyncio channel to a target: Check on many services, and Watch streams.

Layer: core. Imports only the standard library, ``grpc`` and ``grpc_health.v1``; loaded
only by a resident process (the fleet's ``--watch`` mode), never by the one-shot tools.
It never prints, exits, reads argv or installs signal handlers; adapters do that.

Why asyncio: grpcio's synchronous streaming iterators hold a thread each, and each of
those threads wakes about ten times a second while it waits, so 1,000 idle Watch streams
cost 40% of a core. On ``grpc.aio`` 10,000 idle streams share one event loop and cost
next to nothing (docs/performance.md has the figures). The channel is opened exactly as
the synchronous :class:`~check_grpc_health.core.channel.HealthChannel` opens its own
(:func:`~check_grpc_health.core.channel.channel_plan`): same target forms, TLS, ALTS,
metadata, proxy and address-family settings.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Protocol

try:
    import grpc
    import grpc.aio
    from grpc_health.v1 import health_pb2, health_pb2_grpc
except ImportError:
    import traceback

    GRPC_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    GRPC_IMPORT_ERROR = None

from .channel import channel_plan
from .results import ConnectFailure, ProbeResult, ServiceResult
from .rpc import (
    connect_reason,
    health_status,
    rpc_code,
    rpc_details,
    rpc_failure,
    seconds_text,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .channel import ChannelPlan
    from .options import ProbeOptions
    from .results import CertificateInfo, HealthStatus


class AsyncHealthChannel:
    """An open ``grpc.aio`` channel to one target, for many Checks and Watch streams.

    ``extra`` adds grpcio channel arguments (a caller that wants a connection of its own
    sets ``grpc.use_local_subchannel_pool``). ``plan`` is a
    :func:`~check_grpc_health.core.channel.channel_plan` made beforehand: planning may
    fetch a certificate or resolve a name, which a caller runs outside the event loop.
    Create the channel inside the running event loop; :meth:`close` it there too.
    """

    def __init__(
        self,
        options: ProbeOptions,
        *,
        plan: ChannelPlan | None = None,
        extra: tuple[tuple[str, Any], ...] = (),
    ) -> None:
        self.options = options
        if plan is None:
            plan = channel_plan(options, extra=extra)
        self.certificate: CertificateInfo | None = plan.certificate
        if plan.credentials is not None:
            self._channel = grpc.aio.secure_channel(
                plan.target, plan.credentials, plan.options, compression=plan.compression
            )
        else:
            self._channel = grpc.aio.insecure_channel(
                plan.target, plan.options, compression=plan.compression
            )
        self._stub = health_pb2_grpc.HealthStub(self._channel)
        self._metadata = options.metadata or None

    @property
    def ready(self) -> bool:
        """True while the connection is up."""
        return self._channel.get_state(try_to_connect=False) is grpc.ChannelConnectivity.READY

    async def connect(self, timeout: float) -> float:
        """Wait until the channel is ready; return the seconds it took.

        Raises :class:`ConnectFailure` at once when the connection fails (with grpcio's
        reason from one fail-fast RPC), or with ``timed_out`` when ``timeout`` runs out.
        """
        started = time.monotonic()
        deadline = started + timeout
        state = self._channel.get_state(try_to_connect=True)
        while state is not grpc.ChannelConnectivity.READY:
            if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                await self._raise_connect_failure()
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(self._channel.wait_for_state_change(state), remaining)
            except asyncio.TimeoutError:
                display = self.options.target.display
                raise ConnectFailure(
                    f"timed out connecting to {display} after {seconds_text(timeout)}",
                    target=display,
                    timed_out=True,
                ) from None
            state = self._channel.get_state(try_to_connect=True)
        return time.monotonic() - started

    async def _raise_connect_failure(self) -> None:
        """One fail-fast RPC fetches grpcio's reason for the failed connection."""
        display = self.options.target.display
        try:
            await self._stub.Check(
                health_pb2.HealthCheckRequest(service=self.options.services[0]),
                timeout=self.options.connect_timeout,
                metadata=self._metadata,
                wait_for_ready=False,
            )
        except grpc.RpcError as error:
            raise ConnectFailure(
                f"failed to connect to {display}: {connect_reason(rpc_details(error))}",
                target=display,
                timed_out=rpc_code(error) is grpc.StatusCode.DEADLINE_EXCEEDED,
                detail=rpc_details(error),
            ) from None

    async def check_one(self, service: str, timeout: float) -> ServiceResult:
        """Check one service; an RPC error is part of the result."""
        started = time.monotonic()
        try:
            response = await self._stub.Check(
                health_pb2.HealthCheckRequest(service=service),
                timeout=timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as error:
            return ServiceResult(
                service, None, time.monotonic() - started, rpc_failure(service, error)
            )
        return ServiceResult(service, health_status(response.status), time.monotonic() - started)

    async def probe(
        self, services: tuple[str, ...] | None = None, *, within: float | None = None
    ) -> ProbeResult:
        """Connect if needed, then Check every service concurrently, as the sync probe does.

        ``within`` caps the connect and the RPC deadline. Raises :class:`ConnectFailure`.
        """
        options = self.options
        names = services or options.services
        connect_timeout, rpc_timeout = options.connect_timeout, options.rpc_timeout
        if within is not None:
            connect_timeout = min(connect_timeout, max(within, 0.001))
            rpc_timeout = min(rpc_timeout, max(within, 0.001))
        started = time.monotonic()
        connect_time = await self.connect(connect_timeout)
        rpc_started = time.monotonic()
        if len(names) == 1:
            outcomes: tuple[ServiceResult, ...] = (await self.check_one(names[0], rpc_timeout),)
        else:
            checks = [self.check_one(name, rpc_timeout) for name in names]
            outcomes = tuple(await asyncio.gather(*checks))
        finished = time.monotonic()
        return ProbeResult(
            target=options.target.display,
            services=outcomes,
            connect_time=connect_time,
            rpc_time=finished - rpc_started,
            time=finished - started,
            certificate=self.certificate,
        )

    def watch(self, service: str) -> WatchCall:
        """A Watch stream that waits for the connection and has no deadline."""
        call: WatchCall = self._stub.Watch(
            health_pb2.HealthCheckRequest(service=service),
            metadata=self._metadata,
            wait_for_ready=True,
        )
        return call

    async def close(self) -> None:
        """Close the channel, cancelling every call still on it."""
        await self._channel.close(None)


class WatchCall(Protocol):
    """What :meth:`AsyncHealthChannel.watch` returns (a ``grpc.aio`` stream call)."""

    def __aiter__(self) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        """The responses, as the server sends them."""

    def cancel(self) -> bool:
        """End the call; False when it had already ended."""


def pushed_status(response: health_pb2.HealthCheckResponse) -> HealthStatus:
    """The status a Watch message carries."""
    return health_status(response.status)


def plan_needs_io(options: ProbeOptions) -> bool:
    """True when planning the channel goes on the network (a TLS pin, a name resolved)."""
    return bool(options.family) or (options.tls is not None and not options.tls.verify)
