"""The monitor's command pipe sender: what the reader read is delivered, the rest pending.

The sender is driven directly, as its sink worker drives it, against a FIFO whose reader
is the test.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import nagiosplugin
from support.fleet import FifoReader

if TYPE_CHECKING:
    from pathlib import Path

    from check_grpc_health.fleet.run import Outcome


def results(tmp_path: Path, count: int) -> list[tuple[str, Outcome]]:
    from check_grpc_health.fleet.file import read_fleet
    from check_grpc_health.fleet.run import Outcome

    path = tmp_path / "fleet.txt"
    path.write_text("".join(f"web1!grpc-{n}: -H 127.0.0.1:1\n" for n in range(count)))
    return [
        (str(entry.label), Outcome(entry, nagiosplugin.Ok, f"ok {n}", {}, (), 1.0, 2.0))
        for n, entry in enumerate(read_fleet(str(path), {}, 10.0))
    ]


def test_only_what_the_reader_read_is_taken(tmp_path: Path) -> None:
    from check_grpc_health.fleet.sinks.command_file import command_line
    from check_grpc_health.monitor.sinks import PipeSender

    fifo = FifoReader(tmp_path / "icinga2.cmd")
    sender = PipeSender(str(fifo.path))
    batch = results(tmp_path, 3)
    first = command_line(batch[0][1])

    def read_one_and_leave() -> None:
        assert fifo.read(len(first)) == first
        fifo.close()

    try:
        threading.Timer(0.5, fifo.read).start()
        report = sender.send(batch)
        assert (list(report.taken), report.fault) == ([key for key, _ in batch], None)
        # The reader reads one command and goes away with the next one in the pipe: that
        # one stays pending (its worker sends it again once a reader is back).
        threading.Timer(0.5, read_one_and_leave).start()
        report = sender.send(batch[:2])
        assert (list(report.taken), report.fault) == (
            ["web1!grpc-0"],
            f"the reader of '{fifo.path}' went away",
        )
    finally:
        sender.close()
        fifo.close()
