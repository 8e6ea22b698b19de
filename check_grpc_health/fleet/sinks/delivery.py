"""What a delivering sink reports, and the part every delivering sink shares.

Layer: adapter (the fleet's sinks). A sink that hands results to a monitoring system
(the Icinga 2 API, a command pipe) is a :class:`Deliverer`: it is offered each outcome
the moment its check ends, hands it over in threads of its own, and when the checks are
done reports a :class:`Delivery`. The fleet prints one line per problem to standard
error and exits UNKNOWN (3) when any result was not delivered, so that no result is
dropped in silence. Each sink works on its own: a slow or stalled one holds up neither
the checks nor another sink, and each ends by the fleet's deadline.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from check_grpc_health.fleet.run import Outcome

#: How many lines are named one by one before "and N more".
NAMED = 10
#: After the deadline, how long a sink's threads get to finish their bookkeeping (every
#: wait of theirs on a daemon ends at the deadline).
_SETTLE = 1.0


@dataclass
class Delivery:
    """The result of one delivering sink: counts, and one line per problem."""

    sink: str
    delivered: int = 0
    undelivered: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str, count: int) -> None:
        """``count`` results did not go in, for ``problem`` (one line, no secret)."""
        self.undelivered += count
        noun = "result" if count == 1 else "results"
        self.problems.append(f"{self.sink}: {problem} ({count} {noun} not delivered)")

    @property
    def failed(self) -> bool:
        return bool(self.problems)


def named(outcomes: Sequence[Outcome]) -> str:
    """``web1!a (line 3), web1!b (line 4) and 12 more``: the first few in file order."""
    ordered = sorted(outcomes, key=lambda outcome: outcome.entry.line)
    listed = ", ".join(f"{o.entry.label} (line {o.entry.line})" for o in ordered[:NAMED])
    more = len(ordered) - NAMED
    return listed + (f" and {more} more" if more > 0 else "")


def _lines(numbers: Sequence[int]) -> str:
    listed = ", ".join(str(number) for number in sorted(numbers)[:NAMED])
    more = f" and {len(numbers) - NAMED} more" if len(numbers) > NAMED else ""
    noun = "line" if len(numbers) == 1 else "lines"
    return f"{noun} {listed}{more}"


class Deliverer:
    """A delivering sink, fed each outcome as its check ends, from any thread.

    Subclasses start their threads in ``__init__``, take the labelled outcomes with
    :meth:`take`, and report in :meth:`report`. A line without a label names no
    service, and a line that repeats an earlier line's label must not overwrite that
    line's result: neither is handed over, and both are reported, never skipped in
    silence.
    """

    name = "sink"

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.delivery = Delivery(self.name)
        self.offered = 0
        self._queue: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._unnamed: list[int] = []
        self._repeats: list[int] = []
        self._threads: list[threading.Thread] = []

    def offer(self, outcome: Outcome) -> None:
        """Hand ``outcome`` over (in the sink's own threads) if it names a service."""
        entry = outcome.entry
        with self._lock:
            if entry.label is None:
                self._unnamed.append(entry.line)
            elif entry.repeats is not None:
                self._repeats.append(entry.line)
            else:
                self.offered += 1
                self._queue.put(outcome)

    def finish(self) -> Delivery:
        """Let the sink's threads end (by the deadline) once every outcome is offered."""
        self._queue.put(None)
        until = self.deadline + _SETTLE
        for thread in self._threads:
            thread.join(max(0.0, until - time.monotonic()))
        with self._lock:
            if self._unnamed:
                self.delivery.fail(
                    f"{_lines(self._unnamed)} without a HOST!SERVICE: label, so naming no service",
                    len(self._unnamed),
                )
            if self._repeats:
                one = len(self._repeats) == 1
                verb, whose = (
                    ("repeats", "its result is") if one else ("repeat", "their results are")
                )
                self.delivery.fail(
                    f"{_lines(self._repeats)} {verb} the label of an earlier line, so {whose} "
                    "not submitted",
                    len(self._repeats),
                )
            self.report()
        return self.delivery

    def start(self, count: int = 1) -> None:
        """Start ``count`` threads that run :meth:`work`."""
        for _ in range(count):
            thread = threading.Thread(target=self.work, name=self.name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def take(self) -> Outcome | None:
        """The next labelled outcome; None once all were taken, or at the deadline."""
        try:
            outcome = self._queue.get(timeout=max(0.0, self.deadline - time.monotonic()))
        except queue.Empty:
            return None
        if outcome is None:
            self._queue.put(None)  # the end, for the sink's other threads too
        return outcome

    def left(self) -> list[Outcome]:
        """The outcomes no thread took (they stopped, or the deadline came first)."""
        found: list[Outcome] = []
        while True:
            try:
                outcome = self._queue.get_nowait()
            except queue.Empty:
                return found
            if outcome is not None:
                found.append(outcome)

    def work(self) -> None:
        """A thread of the sink: take outcomes and hand them over."""
        raise NotImplementedError

    def report(self) -> None:
        """Add the counts and problems to :attr:`delivery` (under the lock)."""
        raise NotImplementedError
