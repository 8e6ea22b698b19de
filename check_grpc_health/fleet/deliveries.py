"""The fleet's deliveries: each sink fed as the checks end, all of them by the deadline.

Layer: adapter (the fleet), between the run and its sinks. The command pipe and the
Icinga 2 API start before the checks, and each result goes to them the moment its check
ends, so that it reaches the monitoring system seconds sooner than the fleet's last
check would allow; Icinga 2 drops a result whose check started before its own last one
(see docs/fleet.md). Each sink works in threads of its own, so a stalled one holds up
neither the checks nor the others. The textfile needs every result and is written at the
end. Every problem is one line on standard error.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.fleet.sinks.delivery import Deliverer
    from check_grpc_health.fleet.sinks.icinga2_settings import Icinga2Api

PROGRAM = "check_grpc_health_fleet"


def line_printer() -> Callable[[str], None]:
    """A function that prints one ``check_grpc_health_fleet: ...`` line to standard error,
    whole even when threads print at once."""
    lock = threading.Lock()

    def say(message: str) -> None:
        line = f"{PROGRAM}: {clean_text(message)}\n"
        with lock:
            sys.stderr.write(line)
            sys.stderr.flush()

    return say


class Deliveries:
    """The delivering sinks of one run, started before its checks."""

    def __init__(
        self,
        args: argparse.Namespace,
        api: Icinga2Api | None,
        deadline: float,
        say: Callable[[str], None],
    ) -> None:
        self.textfile: str | None = args.textfile
        self.say = say
        self.trace = say if args.verbose else None
        self.sinks: list[Deliverer] = []
        if args.command_file is not None:
            from check_grpc_health.fleet.sinks.command_file import CommandFileDelivery

            self.sinks.append(CommandFileDelivery(args.command_file, deadline))
        if api is not None:
            from check_grpc_health.fleet.sinks.icinga2_api import Icinga2Delivery

            self.sinks.append(Icinga2Delivery(api, deadline, self.trace))

    def offer(self, outcome: Outcome) -> None:
        """Hand one outcome to every delivering sink (they work in their own threads)."""
        for sink in self.sinks:
            sink.offer(outcome)

    def finish(self, outcomes: Sequence[Outcome]) -> bool:
        """Write the textfile, let the sinks end, and print each problem; True when any."""
        problems: list[str] = []
        if self.textfile is not None:
            from check_grpc_health.fleet.sinks.prometheus import write_textfile

            problem = write_textfile(self.textfile, outcomes, time.time())
            problems.extend([] if problem is None else [problem])
        # Each sink ends by the same deadline, so waiting for them in turn costs no more.
        deliveries = [sink.finish() for sink in self.sinks]
        for delivery in deliveries:
            problems.extend(delivery.problems)
        for problem in problems:
            self.say(problem)
        if self.trace is not None:
            for delivery in deliveries:
                self.trace(f"{delivery.sink}: {delivery.delivered} results delivered")
        return bool(problems)
