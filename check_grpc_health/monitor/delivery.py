"""The sinks of a resident process: the latest result per service, delivered in the background.

Layer: adapter (the monitor). Each sink (the Icinga 2 API, a command pipe) has a
:class:`SinkWorker`: threads that take what is pending and hand it to the daemon, so a
sink that is slow or down never blocks the watching, nor another sink. What waits is
bounded: only the latest result per service (a newer one replaces an older one that was
not delivered yet). A sink that is down is retried with the reconnect policy's back-off
(:mod:`.backoff`), and says once on standard error what is pending and why; a result
counts as delivered only when the daemon took it (an API answer of 200 that says so; a
command the pipe's reader has read).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, NamedTuple, Protocol

from check_grpc_health.monitor.backoff import Backoff

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from check_grpc_health.fleet.run import Outcome


class Report(NamedTuple):
    """What one attempt did: keys taken, keys refused (with why), and a fault for the rest.

    A refused result is dropped (sending it again cannot help); the results neither
    taken nor refused stay pending when ``fault`` says the sink is down.
    """

    taken: Sequence[str]
    refused: Sequence[tuple[str, str]] = ()
    fault: str | None = None


class Sender(Protocol):
    """One connection's way of handing results to a daemon (blocking, in a worker)."""

    def send(self, batch: Sequence[tuple[str, Outcome]]) -> Report:
        """Hand over ``batch`` in order; never raises."""

    def close(self) -> None:
        """Let go of the connection."""


class Counters(NamedTuple):
    """A sink's figures for the monitor's own metrics."""

    pending: int
    delivered: int
    refused: int
    faults: int


class SinkWorker:
    """Threads that deliver the latest pending result per key through ``senders``."""

    def __init__(
        self,
        name: str,
        senders: Sequence[Sender],
        say: Callable[[str], None],
        trace: Callable[[str], None] | None = None,
        batch: int = 64,
    ) -> None:
        self.name = name
        self.say = say
        self.trace = trace
        self.batch = batch
        self._lock = threading.Condition()
        self._pending: dict[str, Outcome] = {}
        self._in_flight: dict[str, Outcome] = {}
        self._stopping = False
        self._last_try = False
        self._fault: str | None = None
        self._backoff = Backoff()
        self._retry_at = 0.0
        self.delivered = 0
        self.refused = 0
        self.faults = 0
        self._threads = [
            threading.Thread(target=self._work, args=(sender,), name=f"sink-{name}", daemon=True)
            for sender in senders
        ]
        for thread in self._threads:
            thread.start()

    def offer(self, key: str, outcome: Outcome) -> None:
        """Deliver ``outcome`` for ``key``; replaces an undelivered older one."""
        with self._lock:
            self._pending[key] = outcome
            self._lock.notify()

    def discard(self, key: str) -> None:
        """Forget what is pending for ``key`` (its line was removed)."""
        with self._lock:
            self._pending.pop(key, None)

    def counters(self) -> Counters:
        with self._lock:
            pending = len(self._pending) + len(self._in_flight)
            return Counters(pending, self.delivered, self.refused, self.faults)

    def _ready(self) -> list[str]:
        """Pending keys not in flight: a key's next result waits for its last one to
        settle, so that two connections never hand over one service's results out of
        order (the older one last)."""
        return [key for key in self._pending if key not in self._in_flight][: self.batch]

    def _take(self) -> list[tuple[str, Outcome]] | None:
        """The next batch, once there is one and no back-off is running; None to stop."""
        with self._lock:
            while True:
                keys = self._ready()
                if self._stopping:
                    if not self._pending or self._last_try:
                        return None
                    if keys:
                        # A sink that was down gets one more try at the stop, then no more.
                        self._last_try = self._fault is not None
                        break
                    self._lock.wait()
                    continue
                wait = self._retry_at - time.monotonic()
                if keys and wait <= 0:
                    break
                self._lock.wait(wait if keys and wait > 0 else None)
            batch = [(key, self._pending.pop(key)) for key in keys]
            self._in_flight.update(batch)
            return batch

    def _work(self, sender: Sender) -> None:
        try:
            while (batch := self._take()) is not None:
                report = sender.send(batch)
                self._settle(batch, report)
        finally:
            sender.close()

    def _settle(self, batch: list[tuple[str, Outcome]], report: Report) -> None:
        taken = set(report.taken)
        refused = dict(report.refused)
        with self._lock:
            for key, outcome in batch:
                self._in_flight.pop(key, None)
                if key in taken:
                    self.delivered += 1
                elif key in refused:
                    self.refused += 1
                elif key not in self._pending:
                    # Not taken: pending again, unless a newer result came meanwhile.
                    self._pending[key] = outcome
            if report.fault is None:
                if self._fault is not None:
                    self.say(f"{self.name}: delivering again ({len(self._pending)} pending)")
                self._fault = None
                self._backoff.reset()
                self._retry_at = 0.0
            else:
                self.faults += 1
                delay = self._backoff.delay()
                self._retry_at = time.monotonic() + delay
                if report.fault != self._fault:
                    self.say(
                        f"{self.name}: {report.fault}; {len(self._pending)} results pending, "
                        f"retrying with back-off"
                    )
                elif self.trace is not None:
                    self.trace(f"{self.name}: {len(self._pending)} pending; retry in {delay:.1f}s")
                self._fault = report.fault
            self._lock.notify_all()
        for key, reason in refused.items():
            self.say(f"{self.name}: {key} rejected: {reason}")

    def flush(self, deadline: float) -> int:
        """Deliver what is pending until ``deadline`` (monotonic); how many were left."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return len(self._pending) + len(self._in_flight)
