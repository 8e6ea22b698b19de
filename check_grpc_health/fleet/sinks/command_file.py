"""The fleet into Nagios, Naemon or Icinga 2 through their external command pipe.

Layer: adapter (a fleet sink): a delivery of the outcomes (``--command-file PATH``).
Each labelled line's result becomes one passive check result command::

    [1767225600] PROCESS_SERVICE_CHECK_RESULT;web1;grpc-orders;0;GRPC_HEALTH OK - ...|time=...

Each command goes in one ``write()`` of at most ``PIPE_BUF`` bytes, which the kernel
keeps whole even with other writers on the pipe. A longer command has its output
shortened (then its perfdata dropped), never split. The pipe is opened without blocking:
a pipe that no daemon reads (the daemon is down) is an error at once (ENXIO), not a
hang, and a full pipe is waited on only until the fleet's deadline.
"""

from __future__ import annotations

import errno
import os
import select
import time
from typing import TYPE_CHECKING

from check_grpc_health.fleet.sinks.delivery import Delivery, unlabelled

if TYPE_CHECKING:
    from collections.abc import Sequence

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


def deliver_commands(path: str, outcomes: Sequence[Outcome], deadline: float) -> Delivery:
    """Write each labelled outcome's command to the pipe; what could not go in is reported."""
    delivery = Delivery(NAME)
    labelled = unlabelled(delivery, outcomes)
    if not labelled:
        return delivery
    try:
        # O_NONBLOCK: a FIFO without a reader fails with ENXIO instead of blocking forever.
        handle = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND | os.O_CLOEXEC)
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        if error.errno == errno.ENXIO:
            reason = "no process reads the pipe (is the monitoring daemon running?)"
        delivery.fail(f"cannot open {path!r}: {reason}", len(labelled))
        return delivery
    try:
        for number, outcome in enumerate(labelled):
            problem = _write_whole(handle, command_line(outcome), deadline)
            if problem is not None:
                delivery.fail(f"writing to {path!r}: {problem}", len(labelled) - number)
                break
            delivery.delivered += 1
    finally:
        os.close(handle)
    return delivery


def _write_whole(handle: int, line: bytes, deadline: float) -> str | None:
    """One write() of the whole line; waits for room in a full pipe until ``deadline``."""
    while True:
        try:
            written = os.write(handle, line)
        except BlockingIOError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "the pipe stayed full until the fleet's deadline (-t)"
            select.select([], [handle], [], remaining)
            continue
        except OSError as error:
            return error.strerror or error.__class__.__name__
        if written != len(line):  # only a regular file can do this (a full disk)
            return f"only {written} of {len(line)} bytes written"
        return None
