"""The monitor's senders: the one-shot fleet's sinks, one result at a time, kept open.

Layer: adapter (the monitor). Each sender is one connection a :class:`.SinkWorker`
thread holds: a keep-alive HTTPS connection to the Icinga 2 API
(:class:`~check_grpc_health.fleet.sinks.icinga2_api.Icinga2Connection`), or the command
pipe opened for writing. The bodies and command lines are the one-shot fleet's own.
"""

from __future__ import annotations

import errno
import os
import time
from typing import TYPE_CHECKING

from check_grpc_health.monitor.delivery import Report

if TYPE_CHECKING:
    from collections.abc import Sequence

    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.fleet.sinks.icinga2_api import Icinga2Api

#: Each request waits at most this long for the API's answer.
API_TIMEOUT = 10.0
#: How long a written command may sit unread in the pipe before the reader counts as gone.
PIPE_READ_WAIT = 10.0


class Icinga2Sender:
    """Results to the Icinga 2 API on one keep-alive connection."""

    def __init__(self, api: Icinga2Api) -> None:
        from check_grpc_health.fleet.sinks.icinga2_api import Icinga2Connection

        self.connection = Icinga2Connection(api)

    def send(self, batch: Sequence[tuple[str, Outcome]]) -> Report:
        from check_grpc_health.fleet.sinks.icinga2_api import Icinga2Fault

        taken: list[str] = []
        refused: list[tuple[str, str]] = []
        for key, outcome in batch:
            try:
                status, problem = self.connection.submit(outcome, API_TIMEOUT)
            except Icinga2Fault as fault:
                return Report(taken, refused, str(fault))
            if problem is None:
                taken.append(key)
            elif status >= 500:
                # The API could not take it now (e.g. it is shutting down): keep it.
                return Report(taken, refused, f"{status}: {problem}")
            else:
                refused.append((key, problem))
        return Report(taken, refused)

    def close(self) -> None:
        self.connection.close()


class PipeSender:
    """Commands to an external command pipe; each counts once the reader has read it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: int | None = None

    def _open(self) -> str | None:
        try:
            # O_NONBLOCK: a FIFO without a reader fails with ENXIO instead of blocking.
            self.handle = os.open(
                self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND | os.O_CLOEXEC
            )
        except OSError as error:
            if error.errno == errno.ENXIO:
                return f"no process reads {self.path!r} (is the monitoring daemon running?)"
            return f"cannot open {self.path!r}: {error.strerror or type(error).__name__}"
        return None

    def send(self, batch: Sequence[tuple[str, Outcome]]) -> Report:
        from check_grpc_health.fleet.sinks.command_file import command_line

        if self.handle is None:
            problem = self._open()
            if problem is not None:
                return Report((), (), problem)
        assert self.handle is not None
        written: list[str] = []
        for key, outcome in batch:
            problem = self._write(command_line(outcome))
            if problem is not None:
                self.close()
                return Report((), (), problem)
            written.append(key)
        problem = self._await_read()
        if problem is not None:
            self.close()
            return Report((), (), problem)
        return Report(written)

    def _write(self, line: bytes) -> str | None:
        import select

        assert self.handle is not None
        deadline = time.monotonic() + PIPE_READ_WAIT
        while True:
            try:
                os.write(self.handle, line)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return (
                        f"{self.path!r} stayed full for {PIPE_READ_WAIT:g}s (is its reader stuck?)"
                    )
                select.select([], [self.handle], [], remaining)
                continue
            except OSError as error:
                if error.errno == errno.EPIPE:
                    return f"the reader of {self.path!r} went away"
                return f"writing to {self.path!r}: {error.strerror or type(error).__name__}"
            return None

    def _await_read(self) -> str | None:
        """Wait until the reader has read everything written: only then is it delivered."""
        import fcntl
        import struct
        import termios

        assert self.handle is not None
        deadline = time.monotonic() + PIPE_READ_WAIT
        pause = 0.001
        while True:
            unread = struct.unpack("i", fcntl.ioctl(self.handle, termios.FIONREAD, b"\0\0\0\0"))[0]
            if unread == 0:
                return None
            if time.monotonic() >= deadline:
                return f"{unread} bytes stayed unread in {self.path!r} for {PIPE_READ_WAIT:g}s"
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def close(self) -> None:
        if self.handle is not None:
            os.close(self.handle)
            self.handle = None
