"""The monitor's senders: the one-shot fleet's sinks, one result at a time, kept open.

Layer: adapter (the monitor). Each sender is one connection a :class:`.SinkWorker`
thread holds: a keep-alive HTTPS connection to the Icinga 2 API
(:class:`~check_grpc_health.fleet.sinks.icinga2_api.Icinga2Connection`), or the command
pipe opened for writing. The bodies and command lines are the one-shot fleet's own.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from check_grpc_health.monitor.delivery import Report

if TYPE_CHECKING:
    from collections.abc import Sequence

    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.fleet.sinks.icinga2_settings import Icinga2Api

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
        from check_grpc_health.fleet.sinks.pipe import CommandPipe

        self.path = path
        self.pipe: CommandPipe[str] = CommandPipe(path)

    def send(self, batch: Sequence[tuple[str, Outcome]]) -> Report:
        from check_grpc_health.fleet.sinks.command_file import command_line
        from check_grpc_health.fleet.sinks.pipe import NoReader, PipeFault, PipeFull, ReaderGone

        if self.pipe.handle is None:
            try:
                self.pipe.open()
            except NoReader:
                down = f"no process reads {self.path!r} (is the monitoring daemon running?)"
                return Report((), (), down)
            except PipeFault as fault:
                return Report((), (), f"cannot open {self.path!r}: {fault}")
        deadline = time.monotonic() + PIPE_READ_WAIT
        problem: str | None = None
        written: list[str] = []
        for key, outcome in batch:
            try:
                self.pipe.write(command_line(outcome), key, deadline)
            except PipeFull:
                problem = (
                    f"{self.path!r} stayed full for {PIPE_READ_WAIT:g}s (is its reader stuck?)"
                )
            except ReaderGone:
                problem = f"the reader of {self.path!r} went away"
            except PipeFault as fault:
                problem = f"writing to {self.path!r}: {fault}"
            if problem is not None:
                break
            written.append(key)
        unread = set(self.pipe.unread() if problem else self.pipe.wait_read(deadline))
        if problem is None and unread:
            gone = self.pipe.readerless()
            problem = (
                f"the reader of {self.path!r} went away"
                if gone
                else f"{len(unread)} commands stayed unread in {self.path!r} "
                f"for {PIPE_READ_WAIT:g}s"
            )
        taken = [key for key in written if key not in unread]
        if problem is not None:
            # What was not read stays pending, and goes again once a reader is back.
            self.close()
            return Report(taken, (), problem)
        return Report(taken)

    def close(self) -> None:
        self.pipe.close()
