"""Waiting for health: follow Watch streams until every service reports a wanted status.

Layer: core. Imports only the standard library, ``grpc`` and ``grpc_health.v1``.
It never prints, exits, reads argv or installs signal handlers; adapters do that.
Where a server answers Watch with UNIMPLEMENTED, it polls Check instead. An adapter
that shows each change as it happens passes an ``observer``.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import grpc

from check_grpc_health.core.channel import HealthChannel
from check_grpc_health.core.options import capped
from check_grpc_health.core.probe import explain
from check_grpc_health.core.results import (
    ConnectFailure,
    HealthCheckError,
    HealthStatus,
    ProbeResult,
    RpcFailure,
    ServiceResult,
    WatchEvent,
    WatchResult,
)
from check_grpc_health.core.rpc import health_status, rpc_code, rpc_failure

if TYPE_CHECKING:
    from collections.abc import Callable

    from check_grpc_health.core.channel import StreamCall
    from check_grpc_health.core.options import ProbeOptions

    Observer = Callable[[WatchEvent], None]

# A broken stream, not an answer about the service: the connection went away.
_BROKEN = ("UNAVAILABLE", "CANCELLED")


def watch(
    options: ProbeOptions,
    *,
    wanted: HealthStatus | None = HealthStatus.SERVING,
    timeout: float,
    interval: float = 1.0,
    observer: Observer | None = None,
    diagnose_within: float | None = None,
) -> WatchResult:
    """Wait until every service reports ``wanted``, for at most ``timeout`` seconds.

    Checks once first. Then it follows each service's Watch stream and returns the
    moment the server pushes the wanted status. Where the server answers Watch with
    UNIMPLEMENTED it polls Check every ``interval`` seconds instead. A broken stream or
    a connection that is not up yet is retried every ``interval`` until the deadline.

    With ``wanted=None`` nothing is waited for: it follows the streams until they end
    or the deadline passes. ``observer`` is called, from the core's threads and one
    call at a time, with each status and each error as it is learnt.
    Raises only :class:`InvalidArgument`; every other problem ends in the result.
    With ``diagnose_within`` (seconds), the result's ``last_error`` gets a diagnosis.
    """
    waiter = _Waiter(options, wanted, capped(timeout), capped(interval), observer)
    try:
        result = waiter.run()
    except HealthCheckError as error:
        if diagnose_within is not None:
            explain(error, options, diagnose_within)
        raise
    if diagnose_within is not None and result.last_error is not None:
        explain(result.last_error, options, diagnose_within)
    return result


def _checked_in(previous: ServiceResult | None) -> float:
    """The RPC time for an answer a Watch stream pushed: the service's last Check's.

    A stream has no time of its own for each answer (it stays open while the server
    waits to push one); the last Check of the same service timed a real round trip.
    """
    return previous.rpc_time if previous is not None else 0.0


class _Waiter:
    """State of one :func:`watch` call: per-service status, attempts and threads."""

    def __init__(
        self,
        options: ProbeOptions,
        wanted: HealthStatus | None,
        timeout: float,
        interval: float,
        observer: Observer | None,
    ) -> None:
        self.options = options
        self.wanted = wanted
        self.interval = interval
        self.observer = observer
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.statuses: dict[str, HealthStatus | None] = dict.fromkeys(options.services)
        self.outcomes: dict[str, ServiceResult | None] = dict.fromkeys(options.services)
        self.ended: set[str] = set()
        self.attempts = 0
        self.method = "check"
        self.last_probe: ProbeResult | None = None
        self.last_error: HealthCheckError | None = None
        self.connect_failure: ConnectFailure | None = None
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.calls: list[StreamCall] = []

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def reached(self) -> bool:
        return self.wanted is not None and all(
            status is self.wanted for status in self.statuses.values()
        )

    def settled(self) -> bool:
        """Reached, or (with nothing wanted) every stream has ended."""
        return self.reached() or len(self.ended) == len(self.statuses)

    def run(self) -> WatchResult:
        with HealthChannel(self.options, reconnect_backoff=self.interval) as channel:
            self._check(channel)
            if not self.reached() and self.remaining() > 0:
                self._follow(channel)
                if self.reached():
                    self._check(channel, final=True)
            if not self.reached():
                self._classify(channel)
        reached = self.reached()
        return WatchResult(
            wanted=self.wanted,
            reached=reached,
            statuses=dict(self.statuses),
            elapsed=time.monotonic() - self.started,
            attempts=self.attempts,
            method=self.method,
            last_probe=self.last_probe,
            last_error=None if reached else self.last_error,
            connect_time=channel.connected_in,
            outcomes=tuple(item for item in self.outcomes.values() if item is not None),
            connect_failure=None if reached else self.connect_failure,
        )

    def _tell(
        self, service: str | None, status: HealthStatus | None, error: HealthCheckError | None
    ) -> None:
        """Call the observer; the caller holds ``self.changed``."""
        if self.observer is not None:
            self.observer(WatchEvent(service, status, error, time.time()))

    def _connect_failed(self, failure: ConnectFailure) -> None:
        with self.changed:
            self.last_error = self.connect_failure = failure
            self._tell(None, None, failure)

    def _check(self, channel: HealthChannel, *, final: bool = False) -> None:
        """One Check round; records statuses, timings and errors.

        While waiting, a round ends by the deadline; the ``final`` round after the wanted
        status arrived keeps the full RPC timeout, so its answer is a real one.
        """
        self.attempts += 1
        try:
            result = channel.probe(within=None if final else self.remaining())
        except ConnectFailure as failure:
            self._connect_failed(failure)
            return
        self.last_probe = result
        with self.changed:
            self.connect_failure = None
            for service_result in result.services:
                self._outcome(service_result)
            self.changed.notify_all()

    def _outcome(self, result: ServiceResult) -> None:
        """Record one Check answer; the caller holds ``self.changed``."""
        self.outcomes[result.service] = result
        if result.error is not None:
            self.last_error = result.error
        else:
            self.statuses[result.service] = result.status
        self._tell(result.service, result.status, result.error)

    def _classify(self, channel: HealthChannel) -> None:
        """The wait failed: is the connection down right now? Then that is the answer."""
        failure = channel.connection_problem()
        if failure is None:
            return
        if failure.timed_out and self.connect_failure is not None:
            failure = self.connect_failure  # a retry in flight: keep the last real reason
        self._connect_failed(failure)

    def _follow(self, channel: HealthChannel) -> None:
        self.method = "watch"
        threads = [
            threading.Thread(
                target=self._watch_service,
                args=(channel, service),
                name=f"grpc-health-watch-{index}",
                daemon=True,
            )
            for index, service in enumerate(self.options.services)
        ]
        for thread in threads:
            thread.start()
        with self.changed:
            while not self.settled():
                remaining = self.remaining()
                if remaining <= 0:
                    break
                self.changed.wait(remaining)
        self.stopping.set()
        with self.changed:
            for call in self.calls:
                call.cancel()
        for thread in threads:
            thread.join(timeout=max(self.options.rpc_timeout, 1.0))

    def _record(self, service: str, status: HealthStatus) -> None:
        with self.changed:
            self.connect_failure = None
            self.statuses[service] = status
            # An answer supersedes an earlier failure to connect, or of this service's RPC.
            stale = self.last_error
            if isinstance(stale, ConnectFailure) or (
                isinstance(stale, RpcFailure) and stale.service == service
            ):
                self.last_error = None
            previous = self.outcomes[service]
            # Watch says SERVICE_UNKNOWN where Check says NOT_FOUND: keep Check's answer.
            not_found = (
                status is HealthStatus.SERVICE_UNKNOWN
                and previous is not None
                and previous.error is not None
                and previous.error.code_name == "NOT_FOUND"
            )
            if not not_found:
                self.outcomes[service] = ServiceResult(service, status, _checked_in(previous))
            self._tell(service, status, None)
            self.changed.notify_all()

    def _stream_failed(self, service: str, failure: RpcFailure) -> None:
        with self.changed:
            self.last_error = failure
            if failure.code_name not in _BROKEN:
                previous = self.outcomes[service]
                self.outcomes[service] = ServiceResult(
                    service, None, _checked_in(previous), failure
                )
            self._tell(service, None, failure)

    def _end(self, service: str) -> None:
        with self.changed:
            self.ended.add(service)
            self.changed.notify_all()

    def _pause(self) -> None:
        self.stopping.wait(max(0.0, min(self.interval, self.remaining())))

    def _watch_service(self, channel: HealthChannel, service: str) -> None:
        while not self.stopping.is_set() and self.remaining() > 0:
            with self.changed:
                self.attempts += 1
                stream = channel.watch_stream(service, self.remaining())
                self.calls.append(stream)
            try:
                for response in stream:
                    self._record(service, health_status(response.status))
            except grpc.RpcError as error:
                code = rpc_code(error)
                if code is grpc.StatusCode.UNIMPLEMENTED:
                    self._poll_service(channel, service)
                    return
                if code is grpc.StatusCode.CANCELLED and self.stopping.is_set():
                    return
                if code is not grpc.StatusCode.DEADLINE_EXCEEDED:
                    self._stream_failed(service, rpc_failure(service, error))
                    self._pause()
            else:
                if self.wanted is None:
                    self._end(service)  # the server ended the stream: nothing more to follow
                    return
                self._pause()

    def _poll_service(self, channel: HealthChannel, service: str) -> None:
        """Watch is UNIMPLEMENTED: Check this service every ``interval``."""
        self.method = "poll"
        while not self.stopping.is_set() and self.remaining() > 0:
            with self.changed:
                self.attempts += 1
            budget = min(self.options.connect_timeout, self.remaining())
            try:
                channel.connect(budget)
            except ConnectFailure as failure:
                if failure.timed_out and budget < self.options.connect_timeout:
                    return  # cut short by the wait's own deadline
                self._connect_failed(failure)
            else:
                within = min(self.options.rpc_timeout, self.remaining())
                if within <= 0:
                    return
                result = channel.check_one(service, within)
                error = result.error
                if error is not None and error.timed_out and within < self.options.rpc_timeout:
                    return  # cut short by the wait's own deadline: not the server's answer
                with self.changed:
                    self.connect_failure = None
                    self._outcome(result)
                    self.changed.notify_all()
                if result.status is not None and result.status is self.wanted:
                    return
            self._pause()
