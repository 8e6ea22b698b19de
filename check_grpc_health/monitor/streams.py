"""One Watch stream per service: every status the server pushes, the moment it does.

Layer: adapter (the monitor). A :class:`ServiceStream` is an asyncio task that opens a
Watch call on a shared connection, reports each status, and opens it again with
back-off when it breaks (:mod:`~check_grpc_health.monitor.backoff`). The call waits for
the connection (``wait_for_ready``), so a server that is down costs nothing until it is
back. What it learns goes to a :class:`StreamListener`; nothing in here judges or
delivers.

Three things end the watching of a service for good, with a reason for the listener:
Watch answered UNIMPLEMENTED, a stream the server ended in order after at most one
message (some servers answer Watch like Check), or :meth:`ServiceStream.stop`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol

import grpc

from check_grpc_health.core.aio_channel import pushed_status
from check_grpc_health.core.results import HealthCheckError, RpcFailure
from check_grpc_health.core.rpc import rpc_code, rpc_details, rpc_failure
from check_grpc_health.monitor.backoff import Backoff

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from grpc_health.v1.health_pb2 import HealthCheckResponse

    from check_grpc_health.core.aio_channel import WatchCall
    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import HealthStatus
    from check_grpc_health.monitor.connections import Connection, Connections

#: A stream that lived this long before it broke was working: its back-off starts over.
_WORKED = 10.0
#: Refusals in a row taken for a full connection; after that, for a failure.
_REFUSALS = 3


class StreamListener(Protocol):
    """What the streams tell the monitor."""

    def pushed(self, stream: ServiceStream, status: HealthStatus) -> None:
        """The server pushed ``status`` (the first message is the current one)."""

    def broke(self, stream: ServiceStream, failure: HealthCheckError, retry_in: float) -> None:
        """The stream ended or failed; it opens again after ``retry_in`` seconds."""

    def polls(self, stream: ServiceStream, reason: str) -> None:
        """The server does not stream this service: its heartbeat polls Check instead."""

    def note(self, text: str) -> None:
        """Something worth a ``-v`` line."""


class ServiceStream:
    """The Watch stream of one service on one target, kept open until stopped."""

    __slots__ = (
        "answered",
        "backend",
        "call",
        "connection",
        "connections",
        "line",
        "listener",
        "moving",
        "options",
        "service",
        "stopping",
        "task",
    )

    def __init__(
        self,
        connections: Connections,
        options: ProbeOptions,
        service: str,
        listener: StreamListener,
        *,
        line: object,
        backend: str,
    ) -> None:
        self.connections = connections
        self.options = options
        self.service = service
        self.listener = listener
        #: Which line and backend the stream belongs to (the monitor's keys).
        self.line = line
        self.backend = backend
        self.call: WatchCall | None = None
        self.connection: Connection | None = None
        #: True once the current call has delivered a message.
        self.answered = False
        #: True while the call is cancelled to open it on another connection.
        self.moving = False
        self.stopping = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start following the service, in the running event loop."""
        self.task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        """Stop following the service; its call is cancelled."""
        self.stopping = True
        if self.task is not None:
            self.task.cancel()
        if self.call is not None:
            self.call.cancel()

    def move(self) -> None:
        """Open the stream again on another connection (this one is full)."""
        self.moving = True
        if self.call is not None:
            self.call.cancel()

    async def _run(self) -> None:
        backoff = Backoff()
        refused = 0
        while True:
            started = time.monotonic()
            try:
                messages = await self._follow()
            except grpc.RpcError as error:
                if rpc_code(error) is grpc.StatusCode.UNIMPLEMENTED:
                    self.listener.polls(self, "Watch is UNIMPLEMENTED")
                    return
                refused = refused + 1 if _refused(error) else 0
                if 0 < refused <= _REFUSALS and self._full():
                    continue  # the connection is full: open it again on another one
                failure: HealthCheckError = rpc_failure(self.service, error)
            except HealthCheckError as error:  # the channel could not be planned
                failure = error
            else:
                if messages == _MOVED:
                    continue
                if messages <= 1:
                    self.listener.polls(self, "the server ends Watch after its first message")
                    return
                failure = _ended(self.service)
            if time.monotonic() - started >= _WORKED:
                backoff.reset()
            delay = backoff.delay()
            self.listener.broke(self, failure, delay)
            await asyncio.sleep(delay)

    async def _follow(self) -> int:
        """One Watch call to its end: how many messages it brought, or :data:`_MOVED`."""
        connection = await self.connections.for_stream(self.options, self)
        self.connection = connection
        self.answered = self.moving = False
        call = self.call = connection.channel.watch(self.service)
        messages = 0
        try:
            responses = call.__aiter__()
            first = await self._first(responses, connection)
            if first is None:
                return _MOVED
            self.answered = True
            messages = 1
            self.listener.pushed(self, pushed_status(first))
            async for response in responses:
                messages += 1
                self.listener.pushed(self, pushed_status(response))
        except grpc.RpcError as error:
            if self.moving and rpc_code(error) is grpc.StatusCode.CANCELLED:
                return _MOVED
            raise
        except asyncio.CancelledError:
            # grpc.aio ends a read of a call cancelled here with CancelledError, as it
            # ends the read of a task that is cancelled.
            if self.moving and not self.stopping:
                return _MOVED
            raise
        finally:
            self.connections.release(connection, self)
            self.call = None
            call.cancel()
        return messages

    async def _first(
        self, responses: AsyncIterator[HealthCheckResponse], connection: Connection
    ) -> HealthCheckResponse | None:
        """The first message; None when the connection is ready yet it never comes.

        A ready connection that does not start the stream has run out of concurrent
        streams: grpcio queues the call in silence. The server's cap is then what the
        connection carries already; the streams past it move elsewhere.
        """
        wait = self.options.connect_timeout + self.options.rpc_timeout
        reading = asyncio.ensure_future(responses.__anext__())
        try:
            while True:
                done, _ = await asyncio.wait({reading}, timeout=wait)
                if done:
                    return reading.result()
                if connection.channel.ready and self._full():
                    return None
        finally:
            if not reading.done():
                reading.cancel()

    def _full(self) -> bool:
        """This stream did not get through its connection: the server's cap is what
        got through. Lowers the cap and moves the streams past it; False when no other
        stream got through either (then it is not the cap)."""
        connection = self.connection
        if connection is None:
            return False
        answered = sum(1 for stream in connection.streams if stream.answered)
        if answered == 0:
            return False
        cap, overflow = self.connections.lower_cap(connection, answered)
        if cap is not None:
            self.listener.note(
                f"{self.options.target.display} lets {answered} streams through one "
                f"connection: at most {cap} per connection from now on"
            )
        for stream in overflow:
            if stream is not self:
                stream.move()
        return True


def _refused(error: grpc.RpcError) -> bool:
    """The server refused to start the stream (HTTP/2 ``REFUSED_STREAM``, code 7): it has
    more streams open on the connection than it allows. Safe to open again elsewhere."""
    return rpc_code(
        error
    ) is grpc.StatusCode.UNAVAILABLE and "RST_STREAM with error code 7" in rpc_details(error)


#: What :meth:`ServiceStream._follow` returns for a call given up to open it elsewhere.
_MOVED = -1


def _ended(service: str) -> RpcFailure:
    """A stream the server ended in order: the server stopped watching."""
    code = grpc.StatusCode.UNAVAILABLE
    label = f"service {service!r}" if service else "the server's overall health"
    return RpcFailure(
        f"the server ended the Watch stream for {label}",
        service=service,
        code=code,
        details="stream ended",
    )
