"""The fleet into Nagios, Naemon or Icinga 2 through their external command pipe.

Layer: adapter (a fleet sink): a delivery of the outcomes (``--command-file PATH``).
Each labelled line's result becomes one passive check result command::

    [1767225600] PROCESS_SERVICE_CHECK_RESULT;web1;grpc-orders;0;GRPC_HEALTH OK - ...|time=...

Each command goes in one ``write()`` of at most ``PIPE_BUF`` bytes, which the kernel
keeps whole even with other writers on the pipe. A longer command has its output
shortened (then its perfdata dropped), never split. The pipe is opened without blocking:
a pipe that no daemon reads (the daemon is down) is an error at once (ENXIO), not a
hang, and a full pipe is waited on only until the fleet's deadline. A command counts as
delivered once the daemon has read it (:mod:`.pipe`).
"""

from __future__ import annotations

import select
import time
from typing import TYPE_CHECKING

from check_grpc_health.fleet.sinks.delivery import Deliverer, named
from check_grpc_health.fleet.sinks.pipe import CommandPipe, PipeFault, PipeFull, ReaderGone

if TYPE_CHECKING:
    from check_grpc_health.fleet.run import Outcome

NAME = "command-file"
#: The kernel writes up to this many bytes to a pipe in one piece (4096 on Linux).
ATOMIC = select.PIPE_BUF
_SHORTENED = "..."


def command_line(outcome: Outcome, limit: int = ATOMIC) -> bytes:
    """The passive check result command for a labelled outcome, at most ``limit`` bytes.

    As the plugin prints it: the status line, its perfdata on the first line (Icinga 2
    mishandles perfdata in long output), then the long output, whose line breaks are the
    two characters backslash and n, which the daemons read as a newline. What does not fit
    goes in this order: the long output, then the end of the status line (marked ``...``),
    then the perfdata.
    """
    label = outcome.entry.label
    assert label is not None
    stamp = int(outcome.finished or time.time())
    head = (
        f"[{stamp}] PROCESS_SERVICE_CHECK_RESULT;{label.host};{label.service};{outcome.state.code};"
    ).encode()
    # The texts never hold '|' or a newline (clean_text), so they cannot break the line.
    status = outcome.status_line.encode()
    perfdata = b"|" + " ".join(outcome.perfdata).encode() if outcome.perfdata else b""
    details = "".join(f"\\n{item}" for item in outcome.details).encode()
    line = head + status + perfdata + details + b"\n"
    if len(line) <= limit:
        return line
    if len(head) + len(status) + len(perfdata) + 1 > limit:
        if len(head) + len(_SHORTENED) + len(perfdata) + 1 > limit:
            perfdata = b""
        room = max(0, limit - len(head) - len(perfdata) - len(_SHORTENED) - 1)
        status = _cut(status, room) + _SHORTENED.encode()
    return head + status + perfdata + b"\n"


def _cut(text: bytes, size: int) -> bytes:
    """At most ``size`` bytes of UTF-8 text, never half a character."""
    return text[:size].decode("utf-8", "ignore").encode()


class CommandFileDelivery(Deliverer):
    """Each labelled outcome's command into the pipe, in one thread, as the checks end.

    A result counts as delivered once the daemon has read it. When every outcome is
    written, the thread waits, until the fleet's deadline, for the daemon to read what
    it has not read yet; what is still unread then, or was left in the pipe when its
    reader went away, is named.
    """

    name = NAME

    def __init__(self, path: str, deadline: float) -> None:
        super().__init__(deadline)
        self.path = path
        self.written = 0
        self.unsent: dict[str, int] = {}
        self.unread: list[Outcome] | None = None  # None until the thread knows
        self.unread_when = ""
        self.start()

    def work(self) -> None:
        pipe: CommandPipe[Outcome] = CommandPipe(self.path)
        try:
            pipe.open()
        except PipeFault as fault:
            self._drop(f"cannot open {self.path!r}: {fault}", None)
            return
        try:
            self._write_all(pipe)
        finally:
            pipe.close()

    def _write_all(self, pipe: CommandPipe[Outcome]) -> None:
        while (outcome := self.take()) is not None:
            try:
                pipe.write(command_line(outcome), outcome, self.deadline)
            except PipeFault as fault:
                gone = isinstance(fault, ReaderGone) or pipe.readerless()
                self._settle(pipe.unread(), gone)
                if isinstance(fault, PipeFull):
                    fault = PipeFull("the pipe stayed full until the fleet's deadline (-t)")
                self._drop(f"writing to {self.path!r}: {fault}", outcome)
                return
            with self._lock:
                self.written += 1
        unread = pipe.wait_read(self.deadline)
        self._settle(unread, pipe.readerless())

    def _settle(self, unread: list[Outcome], gone: bool) -> None:
        with self._lock:
            self.unread = unread
            self.unread_when = (
                "when its reader went away" if gone else "at the fleet's deadline (-t)"
            )

    def _drop(self, problem: str, first: Outcome | None) -> None:
        """``problem`` stopped the writing: the outcomes not written are its, to the end."""
        count = 0 if first is None else 1
        while self.take() is not None:
            count += 1
        with self._lock:
            self.unsent[problem] = self.unsent.get(problem, 0) + count

    def report(self) -> None:
        delivery = self.delivery
        for problem, count in self.unsent.items():
            if count:
                delivery.fail(problem, count)
        if self.unread is None:  # the thread is still waiting: nothing is known to be read
            if self.written:
                delivery.fail(
                    f"not known to be read from {self.path!r} by the fleet's deadline (-t)",
                    self.written,
                )
        elif self.unread:
            delivery.fail(
                f"still unread in {self.path!r} {self.unread_when}: {named(self.unread)}",
                len(self.unread),
            )
            delivery.delivered = self.written - len(self.unread)
        else:
            delivery.delivered = self.written
        missing = self.offered - delivery.delivered - delivery.undelivered
        if missing > 0:
            delivery.fail("not written by the fleet's deadline (-t)", missing)
