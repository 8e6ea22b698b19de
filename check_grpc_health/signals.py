"""The process's start: SIGTERM and SIGINT held until a tool can answer them, and its age.

Layer: process glue, shared by every console script. It imports nothing of the project,
so no import circle runs through the entry points, and nothing that a fresh interpreter
has not loaded already. Loading a tool (its modules, nagiosplugin, grpc) takes tens of
milliseconds. A signal in that window would end the process without the tool's own last
line, or with a ``KeyboardInterrupt`` traceback. So :mod:`check_grpc_health.entry` blocks
the signals before anything is imported, and each tool's ``main()`` releases them once
its handlers are installed: a signal that arrived in between is delivered then, to the
tool's handler.

That window also counts against a tool's overall time limit: a monitoring core (or the
kubelet) starts its clock when it starts the process, not when ``main()`` runs. Each
tool reads :func:`process_age` first thing, and counts its limit from the start.
"""

from __future__ import annotations

import os
import signal
import time

HELD_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def hold_signals() -> None:
    """Block SIGTERM and SIGINT; they stay pending until :func:`release_signals`."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)


def release_signals() -> set[int]:
    """Unblock SIGTERM and SIGINT, delivering any that arrived while they were held.

    Returns the signal mask from before, for a caller that puts it back.
    """
    return signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)


def process_age() -> float:
    """Seconds since this process was started (forked), interpreter start-up included.

    Linux gives the start in ``/proc/self/stat`` (field 22, in clock ticks since boot,
    10 ms apart), on the clock ``CLOCK_BOOTTIME`` reads. The tick truncates the start
    downwards, so the age errs long, by at most a tick. Where that file cannot be read,
    0.0: the limit then counts from the caller.
    """
    try:
        handle = os.open("/proc/self/stat", os.O_RDONLY)
        try:
            stat = os.read(handle, 4096)
        finally:
            os.close(handle)
        # The command name, in parentheses, may hold spaces and parentheses itself.
        fields = stat.rpartition(b")")[2].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0
    return max(age, 0.0)
