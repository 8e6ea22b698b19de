"""Console-script entry points: hold SIGTERM and SIGINT until the tool can answer them.

Layer: adapter glue, imported first by every console script. Loading a tool (its
modules, nagiosplugin, grpc) takes tens of milliseconds. A signal in that window would
end the process without the tool's own last line, or with a ``KeyboardInterrupt``
traceback. So the signals are blocked before anything is imported, and each tool's
``main()`` releases them once its handlers are installed: a signal that arrived in
between is delivered then, to the tool's handler.
"""

from __future__ import annotations

import signal
import sys

HELD_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def hold_signals() -> None:
    """Block SIGTERM and SIGINT; they stay pending until :func:`release_signals`."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)


def release_signals() -> None:
    """Unblock SIGTERM and SIGINT, delivering any that arrived while they were held."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)


def plugin() -> None:
    """``check_grpc_health``, the Nagios/Icinga plugin."""
    hold_signals()
    from check_grpc_health.nagios import main

    main()


def probe() -> None:
    """``grpc_health_probe``, the drop-in for the Go tool."""
    hold_signals()
    from check_grpc_health.probe_cli import main

    sys.exit(main())


def fleet() -> None:
    """``check_grpc_health_fleet``, many targets from one file."""
    hold_signals()
    from check_grpc_health.fleet import main

    main()
