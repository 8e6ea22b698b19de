"""The monitor: streams, heartbeats, state and sinks put together, in one event loop.

Layer: adapter (the monitor). Events flow one way. A stream's push, a broken stream or a
heartbeat's findings update the line's :class:`~.state.LineState`; the line is judged by
the plugin's own check; a changed state or output (and every heartbeat, so that
Icinga 2's ``ttl`` stays true) goes to the sinks. Nothing in a sink reaches back.

A broken stream makes its line checked again at once on a fresh channel, so a killed
server reads CRITICAL, with the one-shot fleet's diagnosis, within milliseconds; lines
on the same connection share that one check. A line whose heartbeat failed (no
connection, no answer in time) is checked again with back-off until it answers,
because a server that froze and thawed pushes nothing.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, NamedTuple

import nagiosplugin

from check_grpc_health.monitor.backoff import Backoff
from check_grpc_health.monitor.connections import Connections
from check_grpc_health.monitor.heartbeat import Heartbeat
from check_grpc_health.monitor.schedule import Schedule
from check_grpc_health.monitor.state import POLL, BackendView, LineState, ServiceView
from check_grpc_health.monitor.streams import ServiceStream

if TYPE_CHECKING:
    from collections.abc import Hashable, Sequence
    from concurrent.futures import Executor

    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import HealthCheckError, HealthStatus
    from check_grpc_health.fleet.file import Entry
    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.monitor.delivery import SinkWorker
    from check_grpc_health.monitor.events import Events
    from check_grpc_health.monitor.heartbeat import Learnt

#: Heartbeats in flight at once (the start and a reload check every line at once).
_BEATS_AT_ONCE = 256


class Settings(NamedTuple):
    """How the monitor runs: the heartbeat interval, and whether outputs need documents."""

    interval: float
    documents: bool


def line_keys(entries: Sequence[Entry]) -> list[str]:
    """A key per line that survives a reload while the line's text does not change."""
    seen: dict[str, int] = {}
    keys = []
    for entry in entries:
        count = seen[entry.text] = seen.get(entry.text, 0) + 1
        keys.append(entry.text if count == 1 else f"{entry.text} #{count}")
    return keys


class Monitor:
    """Every line of a fleet file under watch, until :meth:`stop`."""

    def __init__(
        self,
        settings: Settings,
        events: Events,
        sinks: Sequence[SinkWorker],
        executor: Executor,
    ) -> None:
        self.settings = settings
        self.events = events
        self.sinks = sinks
        self.connections = Connections(executor)
        self.heartbeat = Heartbeat(self.connections, executor)
        self.lines: dict[str, LineState] = {}
        self._beating: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._retries: dict[str, tuple[Backoff, asyncio.TimerHandle]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._schedule: Schedule | None = None
        self._slots = asyncio.Semaphore(_BEATS_AT_ONCE)
        #: Streams that broke and were opened again, since the start.
        self.reconnects = 0
        self.started_at = time.time()

    # The lines

    async def start(self, entries: Sequence[Entry]) -> None:
        """Watch ``entries``: each is checked at once, then streamed and heartbeaten."""
        self._loop = asyncio.get_running_loop()
        self._schedule = Schedule(self._loop, self.settings.interval, self._due)
        self._add(entries, line_keys(entries))

    def _add(self, entries: Sequence[Entry], keys: Sequence[str]) -> None:
        assert self._schedule is not None
        added = []
        for key, entry in zip(keys, entries, strict=True):
            if key in self.lines:
                continue
            line = self.lines[key] = LineState(key, entry)
            for display, backend in line.backends.items():
                self._start_streams(line, display, backend, tuple(backend.services))
            self._beat(key)
            added.append(key)
        self._schedule.add(list(added))

    def _remove(self, key: str) -> None:
        assert self._schedule is not None
        line = self.lines.pop(key)
        self._schedule.remove(key)
        task = self._beating.pop(key, None)
        if task is not None:
            task.cancel()
        self._again.discard(key)
        self._cancel_retry(key)
        for backend in line.backends.values():
            for view in backend.services.values():
                if view.stream is not None:
                    view.stream.stop()

    async def reload(self, entries: Sequence[Entry]) -> tuple[int, int, int]:
        """Watch ``entries`` instead: unchanged lines keep their streams and state.

        Returns how many lines were kept, started and stopped.
        """
        keys = line_keys(entries)
        wanted = set(keys)
        gone = [key for key in self.lines if key not in wanted]
        labels = {str(entry.destination) for entry in entries if entry.destination is not None}
        for key in gone:
            label = self.lines[key].entry.destination
            self._remove(key)
            if label is not None and str(label) not in labels:
                for sink in self.sinks:
                    sink.discard(str(label))
        kept = len(self.lines)
        self._add(entries, keys)
        from check_grpc_health.fleet.channels import transport_key

        await self.connections.close_unused(
            {
                transport_key(backend.options)
                for line in self.lines.values()
                for backend in line.backends.values()
            }
        )
        return kept, len(self.lines) - kept, len(gone)

    async def stop(self) -> None:
        """Stop every stream and heartbeat and close every connection."""
        if self._schedule is not None:
            self._schedule.clear()
        for key in list(self._retries):
            self._cancel_retry(key)
        tasks = list(self._beating.values())
        for line in self.lines.values():
            for backend in line.backends.values():
                for view in backend.services.values():
                    if view.stream is not None:
                        view.stream.stop()
                        tasks.extend([view.stream.task] if view.stream.task else [])
        for task in tasks:
            task.cancel()
        # Every task ends before its channel closes under it.
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.connections.close()

    # Streams

    def _start_streams(
        self, line: LineState, display: str, backend: BackendView, services: tuple[str, ...]
    ) -> None:
        for service in services:
            view = backend.services[service]
            view.stream = ServiceStream(
                self.connections, backend.options, service, self, line=line.key, backend=display
            )
            view.stream.start()

    def _view(self, stream: ServiceStream) -> tuple[LineState, BackendView, ServiceView] | None:
        """The line, backend and service a stream reports on, while it still belongs."""
        line = self.lines.get(stream.line)  # type: ignore[call-overload]
        if line is None:
            return None
        backend = line.backends.get(stream.backend)
        view = None if backend is None else backend.services.get(stream.service)
        if backend is None or view is None or view.stream is not stream:
            return None
        return line, backend, view

    def pushed(self, stream: ServiceStream, status: HealthStatus) -> None:
        found = self._view(stream)
        if found is None:
            return
        line, backend, view = found
        view.set_status(status)
        view.error, view.pushed_at = None, time.monotonic()
        backend.failure = None  # a message came: the connection is up
        if line.ready:
            self._judge(line, heartbeat=False)

    def broke(self, stream: ServiceStream, failure: HealthCheckError, retry_in: float) -> None:
        found = self._view(stream)
        if found is None:
            return
        line = found[0]
        self.reconnects += 1
        self.events.trace(
            f"{_name(line)}: the Watch stream of {_subject(stream.service)} on "
            f"{stream.options.target.display} broke ({failure}); opening it again in "
            f"{retry_in:.1f}s"
        )
        self._beat(line.key, fresh=True)

    def polls(self, stream: ServiceStream, reason: str) -> None:
        found = self._view(stream)
        if found is None:
            return
        line, _, view = found
        view.method, view.stream = POLL, None
        self.events.trace(
            f"{_name(line)}: {reason} for {_subject(stream.service)} on "
            f"{stream.options.target.display}: polling Check every "
            f"{self.settings.interval:g}s instead"
        )

    def note(self, text: str) -> None:
        self.events.trace(text)

    # Heartbeats

    def _due(self, key: Hashable) -> None:
        self._beat(str(key))

    def _beat(self, key: str, *, fresh: bool = False) -> None:
        """Check the line now; a check already running is followed by one more."""
        if key in self._beating:
            self._again.add(key)
            return
        assert self._loop is not None
        self._beating[key] = self._loop.create_task(self._run_beat(key, fresh=fresh))

    async def _run_beat(self, key: str, *, fresh: bool) -> None:
        try:
            while True:
                line = self.lines.get(key)
                if line is None:
                    return
                async with self._slots:
                    await self._heartbeat(line, fresh=fresh)
                if key not in self._again:
                    return
                self._again.discard(key)
        except Exception as error:  # a defect costs one line and this heartbeat, no more
            self.events.say(f"{key}: the heartbeat failed: {type(error).__name__}: {error}")
        finally:
            self._beating.pop(key, None)

    async def _heartbeat(self, line: LineState, *, fresh: bool) -> None:
        options = line.options
        if options is not None:
            started = time.monotonic()
            learnt = await self.heartbeat.beat(options, fresh=fresh)
            if self.lines.get(line.key) is not line:
                return  # removed by a reload meanwhile
            self._learn(line, learnt, started)
        line.ready = True
        line.heartbeat_at = time.time()
        outcome = self._judge(line, heartbeat=True)
        failing = outcome.state != nagiosplugin.Ok and _failed(line)
        if failing:
            self._retry(line.key)
        else:
            self._cancel_retry(line.key)

    def _learn(self, line: LineState, learnt: Learnt, started: float) -> None:
        """Apply a heartbeat's findings; discovery starts and stops streams."""
        line.failure = learnt.failure
        if learnt.failure is not None:
            return
        options = line.options
        assert options is not None
        if options.all_addresses:
            self._follow_addresses(line, learnt.options)
        elif learnt.services is not None:
            self._follow_services(line, learnt.services)
        for display, found in learnt.backends.items():
            backend = line.backends.get(display)
            if backend is None:
                continue
            if isinstance(found, Exception):
                backend.failure = found
            else:
                backend.learn(found, since=started)

    def _follow_addresses(self, line: LineState, found: dict[str, ProbeOptions]) -> None:
        for display in [display for display in line.backends if display not in found]:
            self._stop_backend(line, display)
        for display, options in found.items():
            if display not in line.backends:
                self.events.trace(f"{_name(line)}: following the new address {display}")
                backend = line.backends[display] = BackendView(options, options.services)
                self._start_streams(line, display, backend, options.services)

    def _follow_services(self, line: LineState, services: tuple[str, ...]) -> None:
        display = next(iter(line.backends), None)
        options = line.options
        assert options is not None
        if display is None:
            display = options.probe.target.display
            line.backends[display] = BackendView(options.probe, ())
        backend = line.backends[display]
        if tuple(backend.services) == services:
            return
        backend.options = line.services_listed(services).probe
        for service in [name for name in backend.services if name not in services]:
            view = backend.services.pop(service)
            if view.stream is not None:
                view.stream.stop()
        new = tuple(name for name in services if name not in backend.services)
        for service in new:
            backend.services[service] = ServiceView()
        # Keep the server's order: the judged services are listed in it.
        backend.services = {name: backend.services[name] for name in services}
        if new:
            self.events.trace(f"{_name(line)}: following {len(new)} more services")
        self._start_streams(line, display, backend, new)

    def _stop_backend(self, line: LineState, display: str) -> None:
        self.events.trace(f"{_name(line)}: {display} is no longer behind the name")
        backend = line.backends.pop(display)
        for view in backend.services.values():
            if view.stream is not None:
                view.stream.stop()

    def _retry(self, key: str) -> None:
        """Check a failing line again with back-off, up to the interval."""
        assert self._loop is not None
        backoff, timer = self._retries.get(key, (None, None))
        if timer is not None:
            timer.cancel()
        backoff = backoff or Backoff(cap=self.settings.interval)
        delay = min(backoff.delay(), self.settings.interval)
        self._retries[key] = (backoff, self._loop.call_later(delay, self._beat, key))

    def _cancel_retry(self, key: str) -> None:
        _, timer = self._retries.pop(key, (None, None))
        if timer is not None:
            timer.cancel()

    # Judging and delivering

    def _judge(self, line: LineState, *, heartbeat: bool) -> Outcome:
        outcome = line.judge(documents=self.settings.documents)
        changed, before = line.record(outcome)
        if changed:
            self.events.changed(_name(line), outcome, before, line.method(), line.changed_at)
        label = line.entry.destination  # None for a line that repeats another's label
        if label is not None and (changed or heartbeat):
            for sink in self.sinks:
                sink.offer(str(label), outcome)
        return outcome


def _failed(line: LineState) -> bool:
    """Whether the line could not learn something (as opposed to an unhealthy answer)."""
    if line.failure is not None:
        return True
    for backend in line.backends.values():
        if backend.failure is not None:
            return True
        if any(view.error is not None for view in backend.services.values()):
            return True
    return False


def _name(line: LineState) -> str:
    label = line.entry.label
    return str(label) if label is not None else f"line {line.entry.line}"


def _subject(service: str) -> str:
    return f"service {service!r}" if service else "the overall health"
