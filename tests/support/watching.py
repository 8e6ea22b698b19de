"""``check_grpc_health_fleet --watch`` run as its users run it, read as it speaks.

Layer: tests (support). :class:`WatchingFleet` starts the installed console script with
``--format json -v``, reads its JSON events (standard output) and its lines (standard
error) in threads, and waits for what a test expects, always within a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

from support.paths import FLEET

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

#: How long a test waits for an event it expects (the monitor usually takes milliseconds).
WAIT = 20.0


class WatchingFleet:
    """A running monitor: its events, its stderr lines, and signals to send it."""

    def __init__(
        self,
        fleet_file: Path,
        *options: str,
        interval: float = 60,
        env: Mapping[str, str] | None = None,
        json_events: bool = True,
        stdout: int | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        """``stdout``, when given, is where the events go instead of this reader;
        ``prefix`` runs the monitor through another command (``unshare ...``)."""
        self.path = fleet_file
        command = [*prefix, FLEET, "--watch", str(fleet_file), "-v", "--interval", f"{interval:g}"]
        if json_events:
            command += ["--format", "json"]
        command += list(options)
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        streams = [(self.process.stderr, False)]
        if stdout is None:
            streams.append((self.process.stdout, True))
        self._readers = [
            threading.Thread(target=self._read, args=stream, daemon=True) for stream in streams
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any, events: bool) -> None:
        for raw in stream:
            with self._changed:
                if events:
                    self.events.append(json.loads(raw))
                else:
                    self.lines.append(raw.rstrip("\n"))
                self._changed.notify_all()

    def _wait(self, found: Callable[[], Any], what: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = found()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not result):
                    raise AssertionError(
                        f"no {what} within {timeout:g}s (exit code {self.process.poll()});\n"
                        f"stderr: {self.lines[-20:]}\nevents: {self.events[-10:]}"
                    )
                self._changed.wait(min(remaining, 0.5))

    def event(
        self, name: str | None, state: str, *, after: int = 0, timeout: float = WAIT
    ) -> dict[str, Any]:
        """The first event at index ``after`` or later for line ``name`` into ``state``."""

        def found() -> dict[str, Any] | None:
            for event in self.events[after:]:
                if event["name"] == name and event["state"] == state:
                    return event
            return None

        return self._wait(found, f"event {name} -> {state}", timeout)  # type: ignore[no-any-return]

    def started(self, names: Sequence[str | None], timeout: float = WAIT) -> None:
        """Wait until every line in ``names`` has had its first event."""

        def found() -> bool:
            seen = {event["name"] for event in self.events if event["previous_state"] is None}
            return all(name in seen for name in names)

        self._wait(found, f"first events of {list(names)}", timeout)

    def line(self, text: str, *, after: int = 0, timeout: float = WAIT) -> str:
        """The first stderr line at index ``after`` or later that holds ``text``."""

        def found() -> str | None:
            return next((line for line in self.lines[after:] if text in line), None)

        return self._wait(found, f"a line with {text!r}", timeout)  # type: ignore[no-any-return]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, and the exit code once it has ended."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def tracebacks(self) -> list[str]:
        return [line for line in self.lines if "Traceback" in line]
