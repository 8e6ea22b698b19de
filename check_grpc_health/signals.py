"""Hold SIGTERM and SIGINT from start-up until a console script can answer them.

Layer: process glue, shared by every console script. It imports nothing of the project,
so no import circle runs through the entry points. Loading a tool (its modules,
nagiosplugin, grpc) takes tens of milliseconds. A signal in that window would end the
process without the tool's own last line, or with a ``KeyboardInterrupt`` traceback. So
:mod:`check_grpc_health.entry` blocks the signals before anything is imported, and each
tool's ``main()`` releases them once its handlers are installed: a signal that arrived
in between is delivered then, to the tool's handler.
"""

from __future__ import annotations

import signal

HELD_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def hold_signals() -> None:
    """Block SIGTERM and SIGINT; they stay pending until :func:`release_signals`."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)


def release_signals() -> set[int]:
    """Unblock SIGTERM and SIGINT, delivering any that arrived while they were held.

    Returns the signal mask from before, for a caller that puts it back.
    """
    return signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)
