"""What the monitor says: one line per event on standard error, a JSON line per change.

Layer: adapter (the monitor). Standard error gets problems always and, under ``-v``,
one line per event (a change, a stream that broke or falls back to polling, a reload),
each one line with no time stamp, for the journal. ``--format json`` prints one JSON
line per delivered change on standard output: the one-shot fleet's document of the
line, plus ``previous_state``, ``changed_at`` (Unix time) and ``method`` (``watch``, or
``poll`` where a server does not stream).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from check_grpc_health.text import clean_text, state_name

if TYPE_CHECKING:
    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.monitor.state import Delivered

PROGRAM = "check_grpc_health_fleet"


class Events:
    """Where the monitor's words go."""

    def __init__(self, verbose: int, json: bool) -> None:
        self.verbose = verbose
        self.json = json

    def say(self, text: str) -> None:
        """A problem or a fact worth telling even without ``-v``: one line on stderr."""
        sys.stderr.write(f"{PROGRAM}: {clean_text(text)}\n")
        sys.stderr.flush()

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
        if self.json:
            from check_grpc_health.fleet.sinks.json_lines import json_line

            line = json_line(outcome, previous_state=previous, changed_at=at, method=method)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
