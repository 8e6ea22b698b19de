"""The monitor's connections: asyncio channels per target, never more streams than fit.

Layer: adapter (the monitor). Lines with the same target and transport settings share
connections (:func:`~check_grpc_health.fleet.channels.transport_key`, as the one-shot
fleet shares its channels). Every Watch stream holds one of the server's concurrent
streams for as long as it lives. A server caps them per connection (HTTP/2
``MAX_CONCURRENT_STREAMS``: .NET Kestrel allows 100) and grpcio queues the streams
past the cap on the client, in silence, or refuses them (``REFUSED_STREAM``). So a
connection carries at most :data:`STREAMS_PER_CONNECTION` streams, more go on another
connection of their own, and a stream that is refused, or gets no first message on a
ready connection, tells of a lower cap (:meth:`lower_cap`). The heartbeat's Checks go on
a connection of their own, which no stream fills.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from check_grpc_health.core.aio_channel import AsyncHealthChannel, plan_needs_io
from check_grpc_health.core.channel import channel_plan
from check_grpc_health.fleet.channels import transport_key
from check_grpc_health.monitor.backoff import channel_arguments

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from check_grpc_health.core.options import ProbeOptions

#: Streams one connection carries by default: Kestrel's cap.
STREAMS_PER_CONNECTION = 100


class Connection:
    """One channel (one HTTP/2 connection) and the streams it carries."""

    __slots__ = ("channel", "index", "key", "streams")

    def __init__(self, key: tuple[object, ...], index: int, channel: AsyncHealthChannel) -> None:
        self.key = key
        self.index = index
        self.channel = channel
        self.streams: list[Any] = []


class _Target:
    """The connections to one target, and how many streams each may carry."""

    __slots__ = ("cap", "checks", "connections", "opening")

    def __init__(self) -> None:
        self.connections: list[Connection] = []
        #: The connection the heartbeat's Checks use; it carries no stream.
        self.checks: Connection | None = None
        self.cap = STREAMS_PER_CONNECTION
        self.opening: asyncio.Lock = asyncio.Lock()


class Connections:
    """Channels by transport settings, opened as streams need them."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._targets: dict[tuple[object, ...], _Target] = {}

    def _target(self, options: ProbeOptions) -> _Target:
        key = transport_key(options)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _Target()
        return target

    async def _open(self, options: ProbeOptions, index: int) -> Connection:
        # Each channel gets a connection of its own: grpcio would otherwise share one
        # subchannel (one connection) between channels with the same settings.
        extra = (*channel_arguments(), ("grpc.use_local_subchannel_pool", 1))
        if plan_needs_io(options):
            loop = asyncio.get_running_loop()
            plan = await loop.run_in_executor(self.executor, channel_plan, options, None, extra)
        else:
            plan = channel_plan(options, extra=extra)
        channel = AsyncHealthChannel(options, plan=plan)
        return Connection(transport_key(options), index, channel)

    async def for_stream(self, options: ProbeOptions, stream: object) -> Connection:
        """A connection with room for one more stream, which is counted on it.

        Raises what planning the channel raises (an unusable TLS file, a certificate
        that could not be fetched for the no-verify mode).
        """
        target = self._target(options)
        async with target.opening:
            for connection in target.connections:
                if len(connection.streams) < target.cap:
                    break
            else:
                connection = await self._open(options, len(target.connections))
                target.connections.append(connection)
            connection.streams.append(stream)
            return connection

    async def for_check(self, options: ProbeOptions) -> Connection:
        """The connection of the heartbeat's Checks, which carries no stream."""
        target = self._target(options)
        if target.checks is not None:
            return target.checks
        async with target.opening:
            if target.checks is None:
                target.checks = await self._open(options, -1)
            return target.checks

    def release(self, connection: Connection, stream: object) -> None:
        """``stream`` has ended: its place on ``connection`` is free."""
        if stream in connection.streams:
            connection.streams.remove(stream)

    def lower_cap(self, connection: Connection, answered: int) -> tuple[int | None, list[Any]]:
        """The server let only ``answered`` streams through: carry no more than that.

        Returns the new cap (None when it stays as it was) and the streams past it on
        ``connection``, which the caller moves to another connection.
        """
        target = self._targets.get(connection.key)
        if target is None:
            return None, []
        cap = max(1, min(target.cap, answered))
        lowered = cap if cap != target.cap else None
        target.cap = cap
        through = [stream for stream in connection.streams if stream.answered]
        waiting = [stream for stream in connection.streams if not stream.answered]
        return lowered, waiting + through[cap:]

    async def close_unused(self, keys: set[tuple[object, ...]]) -> None:
        """Close connections that carry no stream, and the Check connections of targets
        not in ``keys`` (after a reload removed lines)."""
        for key, target in list(self._targets.items()):
            if key not in keys and target.checks is not None:
                await target.checks.channel.close()
                target.checks = None
            kept = []
            for connection in target.connections:
                if connection.streams:
                    kept.append(connection)
                else:
                    await connection.channel.close()
            target.connections = kept
            for index, connection in enumerate(kept):
                connection.index = index
            if not kept and target.checks is None:
                del self._targets[key]

    async def close(self) -> None:
        """Close every channel, cancelling every call on it."""
        for target in self._targets.values():
            for connection in target.connections:
                await connection.channel.close()
            if target.checks is not None:
                await target.checks.channel.close()
        self._targets.clear()

    def count(self) -> int:
        """How many connections are open."""
        return sum(
            len(target.connections) + (target.checks is not None)
            for target in self._targets.values()
        )
