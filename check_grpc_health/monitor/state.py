"""What the monitor knows of each line, judged by the plugin's own check.

Layer: adapter (the monitor). A :class:`LineState` holds, per backend (the line's target,
or each address behind the name with ``--all-addresses``) and per service, the last
status a stream pushed or a heartbeat's Check answered, and the last heartbeat's
timings and certificate. :meth:`LineState.judge` hands exactly that to the plugin's
check (:func:`~check_grpc_health.fleet.run.judge_entry` with a prober that returns it),
so ``--map-status``, the states and ``-w/-c`` on the last measured latency apply as in
``check_grpc_health``. :meth:`LineState.record` keeps the outcome and tells whether it
differs from the last one delivered (a state or output change).
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

from check_grpc_health.core.results import ProbeResult, ServiceResult
from check_grpc_health.fleet.run import judge_entry

if TYPE_CHECKING:
    from nagiosplugin.state import ServiceState

    from check_grpc_health.core.discovery import BackendResult
    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import HealthCheckError, HealthStatus, RpcFailure
    from check_grpc_health.fleet.file import Entry
    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.monitor.streams import ServiceStream
    from check_grpc_health.plugin.options import PluginOptions

WATCH = "watch"
POLL = "poll"


class ServiceView:
    """One service on one backend: its last status or RPC error, and how it is followed."""

    __slots__ = (
        "changed_at",
        "changes",
        "error",
        "method",
        "pushed_at",
        "rpc_time",
        "status",
        "stream",
    )

    def __init__(self) -> None:
        self.status: HealthStatus | None = None
        #: How many times the status changed since the monitor learnt the first one, and
        #: when it last did (Unix time): a blip between two scrapes still counts.
        self.changes = 0
        self.changed_at: float | None = None
        self.error: RpcFailure | None = None
        self.rpc_time = 0.0
        #: When a stream last pushed a status (monotonic seconds), 0 before any.
        self.pushed_at = 0.0
        #: ``watch`` while a stream follows the service, ``poll`` when only Checks do.
        self.method = WATCH
        self.stream: ServiceStream | None = None

    def set_status(self, status: HealthStatus | None) -> None:
        """A status learnt (pushed or checked); a different one counts as a change."""
        if status is not None and self.status is not None and status != self.status:
            self.changes += 1
            self.changed_at = time.time()
        if status is not None:
            self.status = status


class BackendView:
    """One target a line checks: its services, last heartbeat, and connection loss."""

    __slots__ = ("failure", "heartbeat", "options", "services")

    def __init__(self, options: ProbeOptions, services: tuple[str, ...]) -> None:
        self.options = options
        self.services: dict[str, ServiceView] = {name: ServiceView() for name in services}
        #: The last heartbeat's probe (timings, certificate), once there was one.
        self.heartbeat: ProbeResult | None = None
        #: Why the backend cannot be reached right now (with its diagnosis), if it cannot.
        self.failure: HealthCheckError | None = None

    def result(self) -> ProbeResult:
        """What a Check of every service would most likely find now."""
        last = self.heartbeat
        services = tuple(
            ServiceResult(name, view.status, view.rpc_time, view.error)
            for name, view in self.services.items()
        )
        if last is None:
            return ProbeResult(self.options.target.display, services, 0.0, 0.0, 0.0)
        return last._replace(services=services)

    def learn(self, result: ProbeResult, since: float) -> None:
        """A heartbeat's probe that started at ``since`` (monotonic): the timings, the
        certificate, and each service's answer, unless a stream pushed a newer one."""
        self.heartbeat = result
        self.failure = None
        for outcome in result.services:
            view = self.services.get(outcome.service)
            if view is None:
                continue
            view.rpc_time = outcome.rpc_time
            if view.pushed_at <= since:
                view.set_status(outcome.status)
                view.error = outcome.error
                if outcome.status is None:
                    view.status = None


class Delivered(NamedTuple):
    """What was last judged for a line: its state, and its output less the timings.

    Two outcomes that differ only in measured durations (``in 0.0042s``) are the same
    finding; the heartbeat delivers the new timings anyway.
    """

    state: ServiceState
    text: str


_DURATION = re.compile(r"\b\d+(?:\.\d+)?s\b")


def finding(outcome: Outcome) -> Delivered:
    """What an outcome found, for telling a change from a new measurement."""
    text = "\n".join([outcome.summary, *outcome.details])
    return Delivered(outcome.state, _DURATION.sub("#s", text))


class LineState:
    """One fleet line under watch."""

    __slots__ = (
        "backends",
        "changed_at",
        "delivered",
        "entry",
        "failure",
        "heartbeat_at",
        "judged_options",
        "key",
        "outcome",
        "ready",
    )

    def __init__(self, key: str, entry: Entry) -> None:
        self.key = key
        self.entry = entry
        self.backends: dict[str, BackendView] = {}
        options = entry.options
        if options is not None and not options.all_addresses and not options.all_services:
            self.backends[options.probe.target.display] = BackendView(
                options.probe, options.probe.services
            )
        #: The options the check judges (``--all-services``: the listed services).
        self.judged_options: PluginOptions | None = options
        #: The name behind ``--all-addresses`` does not resolve, or discovery failed.
        self.failure: HealthCheckError | None = None
        #: False until the first heartbeat: nothing is delivered before it.
        self.ready = False
        self.outcome: Outcome | None = None
        self.delivered: Delivered | None = None
        #: When the line's state or output last changed (Unix time).
        self.changed_at = time.time()
        #: When the last heartbeat ended (Unix time), None before the first.
        self.heartbeat_at: float | None = None

    @property
    def options(self) -> PluginOptions | None:
        return self.entry.options

    def method(self) -> str:
        """``watch`` when every service is streamed, ``poll`` when any is only checked."""
        views = [view for backend in self.backends.values() for view in backend.services.values()]
        return POLL if any(view.method == POLL for view in views) else WATCH

    def services_listed(self, services: tuple[str, ...]) -> PluginOptions:
        """``--all-services``: judge the services the server lists now (overall first)."""
        options = self.options
        assert options is not None
        judged = replace(
            options, all_services=False, probe=replace(options.probe, services=services)
        )
        self.judged_options = judged
        return judged

    def judge(self, *, documents: bool) -> Outcome:
        """The plugin's check on what the monitor knows now."""
        if self.entry.options is None:
            return judge_entry(self.entry, documents=documents)
        entry = self.entry
        if self.judged_options is not entry.options:
            entry = entry._replace(options=self.judged_options)
        return judge_entry(entry, self._probe, self._probe_backends, documents=documents)

    def _probe(self, options: ProbeOptions, within: float) -> ProbeResult:
        if self.failure is not None:
            raise self.failure
        backend = next(iter(self.backends.values()))
        if backend.failure is not None:
            raise backend.failure
        return backend.result()

    def _probe_backends(self, options: ProbeOptions, family: int) -> tuple[BackendResult, ...]:
        from check_grpc_health.core.discovery import BackendResult

        if self.failure is not None:
            raise self.failure
        return tuple(
            BackendResult(
                backend.options.target,
                None if backend.failure is not None else backend.result(),
                backend.failure,
            )
            for backend in self.backends.values()
        )

    def record(self, outcome: Outcome) -> tuple[bool, Delivered | None]:
        """Keep ``outcome``: whether it changes the state or output, and what was before.

        The first outcome of a line is a change from nothing (None).
        """
        self.outcome = outcome
        now = finding(outcome)
        before, self.delivered = self.delivered, now
        if before == now:
            return False, before
        self.changed_at = outcome.finished or time.time()
        return True, before
