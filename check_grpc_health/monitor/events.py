"""What the monitor says: one line per event on standard error, a JSON line per change.

Layer: adapter (the monitor). Standard error gets problems always and, under ``-v``,
one line per event (a change, a stream that broke or falls back to polling, a reload),
each one line with no time stamp, for the journal. ``--format json`` prints one JSON
line per delivered change on standard output: the one-shot fleet's document of the
line, plus ``previous_state``, ``changed_at`` (Unix time) and ``method`` (``watch``, or
``poll`` where a server does not stream).

Both go out through a thread of their own with a bounded backlog: a reader that stops
reading (a stalled log shipper on the other end of a pipe) never stalls the watching.
Lines past the backlog are dropped and counted, and the count is said once it can be.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

from check_grpc_health.text import clean_text, state_name

if TYPE_CHECKING:
    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.monitor.state import Delivered

PROGRAM = "check_grpc_health_fleet"
#: Lines waiting for a stream that is not being read, at most.
BACKLOG = 10_000


class _Writer:
    """Lines to ``stream`` from a thread, never blocking the caller."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self.stream = stream
        self.name = name
        self._lines: collections.deque[str] = collections.deque()
        self._writing = False
        self._dropped = 0
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._write, name=f"write-{name}", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        with self._lock:
            if len(self._lines) >= BACKLOG:
                self._dropped += 1
                return
            self._lines.append(line)
            self._lock.notify()

    def _write(self) -> None:
        while True:
            with self._lock:
                self._writing = False
                self._lock.notify_all()
                while not self._lines:
                    self._lock.wait()
                lines = list(self._lines)
                self._lines.clear()
                self._writing = True
                dropped, self._dropped = self._dropped, 0
            if dropped:
                lines.insert(
                    0,
                    f"{PROGRAM}: {dropped} lines for {self.name} were dropped: "
                    "it was not being read\n",
                )
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):
                return  # the reader is gone for good

    def drain(self, deadline: float) -> None:
        """Wait until every line was written, or until ``deadline`` (monotonic)."""
        with self._lock:
            while self._lines or self._writing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._lock.wait(remaining)


class Events:
    """Where the monitor's words go."""

    def __init__(self, verbose: int, json: bool) -> None:
        self.verbose = verbose
        self.json = json
        self._stderr = _Writer(sys.stderr, "standard error")
        self._stdout = _Writer(sys.stdout, "standard output") if json else None

    def say(self, text: str) -> None:
        """A problem or a fact worth telling even without ``-v``: one line on stderr."""
        self._stderr.put(f"{PROGRAM}: {clean_text(text)}\n")

    def trace(self, text: str) -> None:
        """An event, under ``-v`` only."""
        if self.verbose:
            self.say(text)

    def changed(
        self, name: str, outcome: Outcome, before: Delivered | None, method: str, at: float
    ) -> None:
        """A line's state or output changed (or was first learnt)."""
        previous = None if before is None else state_name(before.state)
        if self.verbose:
            was = previous or "(start)"
            self.say(f"{name}: {was} -> {state_name(outcome.state)}: {outcome.summary}")
        if self._stdout is not None:
            from check_grpc_health.fleet.sinks.json_lines import json_line

            line = json_line(outcome, previous_state=previous, changed_at=at, method=method)
            self._stdout.put(line + "\n")

    def drain(self, deadline: float) -> None:
        """Write out what waits, until ``deadline`` (monotonic) at the latest."""
        for writer in (self._stdout, self._stderr):
            if writer is not None:
                writer.drain(deadline)
