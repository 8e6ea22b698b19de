"""The monitor's delivery workers: the latest result per service, in order, never lost.

These drive :class:`SinkWorker` with senders of the test's own, which hand results to a
list instead of a daemon and can hold a send back: the order in which connections finish
is then the test's to choose. The daemons themselves are in tests/daemons/test_monitor.py.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import nagiosplugin

from check_grpc_health.fleet.file import Entry
from check_grpc_health.fleet.run import Outcome
from check_grpc_health.monitor.delivery import Report, SinkWorker

if TYPE_CHECKING:
    from collections.abc import Sequence


def outcome(text: str) -> Outcome:
    return Outcome(Entry(1, "", None, None), nagiosplugin.Ok, text, {}, (), 0.0, 0.0)


class Held:
    """A sender whose sends wait until the test lets them go."""

    def __init__(self, taken: list[str]) -> None:
        self.taken = taken
        self.started = threading.Event()
        self.go = threading.Event()

    def send(self, batch: Sequence[tuple[str, Outcome]]) -> Report:
        self.started.set()
        assert self.go.wait(10)
        self.taken.extend(item.summary for _, item in batch)
        return Report([key for key, _ in batch])

    def close(self) -> None:
        pass


def test_a_services_next_result_waits_for_its_last_one_on_another_connection() -> None:
    taken: list[str] = []
    first, second = Held(taken), Held(taken)
    second.go.set()
    said: list[str] = []
    worker = SinkWorker("test", [first, second], said.append)
    worker.offer("web1!orders", outcome("older"))
    started = first.started.wait(5) or second.started.wait(5)
    assert started
    worker.offer("web1!orders", outcome("newer"))
    # The newer result must not overtake the older one still on its way.
    first.go.set()
    assert worker.flush(time.monotonic() + 10) == 0
    assert taken == ["older", "newer"]
    assert said == []


def test_only_the_latest_undelivered_result_per_service_waits() -> None:
    taken: list[str] = []
    sender = Held(taken)
    worker = SinkWorker("test", [sender], [].append)
    worker.offer("a!x", outcome("first"))
    assert sender.started.wait(5)
    for number in range(100):
        worker.offer("a!y", outcome(f"y{number}"))
    assert worker.counters().pending == 2  # "first" in flight, and the latest y
    sender.go.set()
    assert worker.flush(time.monotonic() + 10) == 0
    assert taken == ["first", "y99"]
