# Generated from check_grpc_health/core/watch.py by tools/sync_module_utils.py.
# Do not edit: change the core, then run `python tools/sync_module_utils.py`.
"""Waiting for health: follow Watch streams until every service reports a wanted status.

Layer: core. Imports only the standard library, ``grpc`` and ``grpc_health.v1``.
It never prints, exits, reads argv or installs signal handlers; adapters do that.
Where a server answers Watch with UNIMPLEMENTED, it polls Check instead.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

try:
    import grpc
except ImportError:
    import traceback

    GRPC_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    GRPC_IMPORT_ERROR = None

from .channel import HealthChannel
from .options import capped
from .probe import explain
from .results import (
    ConnectFailure,
    HealthCheckError,
    HealthStatus,
    ProbeResult,
    RpcFailure,
    WatchResult,
)
from .rpc import health_status, rpc_code, rpc_failure

if TYPE_CHECKING:
    from .channel import StreamCall
    from .options import ProbeOptions


def watch(
    options: ProbeOptions,
    *,
    wanted: HealthStatus = HealthStatus.SERVING,
    timeout: float,
    interval: float = 1.0,
    diagnose_within: float | None = None,
) -> WatchResult:
    """Wait until every service reports ``wanted``, for at most ``timeout`` seconds.

    Checks once first. Then it follows each service's Watch stream and returns the
    moment the server pushes the wanted status. Where the server answers Watch with
    UNIMPLEMENTED it polls Check every ``interval`` seconds instead. A broken stream or
    a connection that is not up yet is retried every ``interval`` until the deadline.
    Raises only :class:`InvalidArgument`; every other problem ends in the result.
    With ``diagnose_within`` (seconds), the result's ``last_error`` gets a diagnosis.
    """
    waiter = _Waiter(options, wanted, capped(timeout), capped(interval))
    try:
        result = waiter.run()
    except HealthCheckError as error:
        if diagnose_within is not None:
            explain(error, options, diagnose_within)
        raise
    if diagnose_within is not None and result.last_error is not None:
        explain(result.last_error, options, diagnose_within)
    return result


class _Waiter:
    """State of one :func:`watch` call: per-service status, attempts and threads."""

    def __init__(
        self, options: ProbeOptions, wanted: HealthStatus, timeout: float, interval: float
    ) -> None:
        self.options = options
        self.wanted = wanted
        self.interval = interval
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.statuses: dict[str, HealthStatus | None] = dict.fromkeys(options.services)
        self.attempts = 0
        self.method = "check"
        self.last_probe: ProbeResult | None = None
        self.last_error: HealthCheckError | None = None
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.calls: list[StreamCall] = []

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def reached(self) -> bool:
        return all(status is self.wanted for status in self.statuses.values())

    def run(self) -> WatchResult:
        with HealthChannel(self.options, reconnect_backoff=self.interval) as channel:
            self._check(channel)
            if not self.reached() and self.remaining() > 0:
                self._follow(channel)
                if self.reached():
                    self._check(channel)
        return WatchResult(
            wanted=self.wanted,
            reached=self.reached(),
            statuses=dict(self.statuses),
            elapsed=time.monotonic() - self.started,
            attempts=self.attempts,
            method=self.method,
            last_probe=self.last_probe,
            last_error=None if self.reached() else self.last_error,
            connect_time=channel.connected_in,
        )

    def _check(self, channel: HealthChannel) -> None:
        """One Check round; records statuses, timings and errors."""
        self.attempts += 1
        try:
            result = channel.probe()
        except ConnectFailure as failure:
            self.last_error = failure
            return
        self.last_probe = result
        with self.changed:
            for service_result in result.services:
                if service_result.error is not None:
                    self.last_error = service_result.error
                else:
                    self.statuses[service_result.service] = service_result.status
            self.changed.notify_all()

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
            while not self.reached():
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
            self.statuses[service] = status
            # An answer supersedes an earlier failure to connect, or of this service's RPC.
            stale = self.last_error
            if isinstance(stale, ConnectFailure) or (
                isinstance(stale, RpcFailure) and stale.service == service
            ):
                self.last_error = None
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
                    self.last_error = rpc_failure(service, error)
                    self._pause()
            else:
                self._pause()

    def _poll_service(self, channel: HealthChannel, service: str) -> None:
        """Watch is UNIMPLEMENTED: Check this service every ``interval``."""
        self.method = "poll"
        while not self.stopping.is_set() and self.remaining() > 0:
            with self.changed:
                self.attempts += 1
            try:
                channel.connect(min(self.options.connect_timeout, self.remaining()))
            except ConnectFailure as failure:
                self.last_error = failure
            else:
                result = channel.check_one(service)
                if result.error is not None:
                    self.last_error = result.error
                else:
                    if result.status is None:
                        raise AssertionError('result.status is not None')
                    self._record(service, result.status)
                    if result.status is self.wanted:
                        return
            self._pause()
