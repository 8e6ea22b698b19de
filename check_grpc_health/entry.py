"""Console-script entry points: hold SIGTERM and SIGINT, then load and start one tool.

Layer: process glue. Each entry point blocks the signals first (see
:mod:`check_grpc_health.signals`), then imports its tool, whose ``main()`` releases them
once its handlers are in place. Tools import :mod:`check_grpc_health.signals`, never this
module, so no import circle runs through here.

Each tool runs inside a last resort (:mod:`check_grpc_health.lastresort`): an exception
it did not expect ends the run with one line and the tool's error code, never a
traceback, and so does one in another thread once the tool has loaded ``threading``.
That module loads only when it is needed, so a healthy start costs nothing more.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

from check_grpc_health.signals import hold_signals

if TYPE_CHECKING:
    from threading import ExceptHookArgs


def plugin() -> None:
    """``check_grpc_health``, the Nagios/Icinga plugin."""
    hold_signals()
    try:
        from check_grpc_health.plugin.main import main

        _hook_threads("plugin")
        main()
    except BaseException as error:
        _last_resort(error, "plugin")


def probe() -> None:
    """``grpc_health_probe``, the drop-in for the Go tool."""
    hold_signals()
    try:
        from check_grpc_health.probe_cli.main import main

        _hook_threads("probe")
        code = main()
    except BaseException as error:
        _last_resort(error, "probe")
    sys.exit(code)


def fleet() -> None:
    """``check_grpc_health_fleet``, many targets from one file (and its ``--watch`` mode)."""
    hold_signals()
    # A resident monitor's internal error must read as a failure to restart (see lastresort).
    tool = "watch" if "--watch" in sys.argv[1:] else "fleet"
    try:
        from check_grpc_health.fleet.main import main

        _hook_threads(tool)
        main()
    except BaseException as error:
        _last_resort(error, tool)


def exporter() -> None:
    """``check_grpc_health_exporter``, /probe and /metrics for Prometheus."""
    hold_signals()
    try:
        from check_grpc_health.exporter.main import main

        _hook_threads("exporter")
        main()
    except BaseException as error:
        _last_resort(error, "exporter")


def demo() -> None:
    """``check-grpc-health-demo``: an embedded server and the tools against it."""
    try:
        from check_grpc_health.demo import main

        _hook_threads("demo")
        code = main()
    except BaseException as error:
        _last_resort(error, "demo")
    sys.exit(code)


def _last_resort(error: BaseException, tool: str) -> NoReturn:
    if isinstance(error, SystemExit):
        raise error  # the tool's own ending
    from check_grpc_health.lastresort import end

    end(error, tool)


def _hook_threads(tool: str) -> None:
    """An exception that ends another thread is one line on stderr, not a traceback."""
    if "threading" not in sys.modules:
        return  # no thread yet; importing the module would only slow the start
    import threading

    def hook(args: ExceptHookArgs) -> None:
        from check_grpc_health.lastresort import thread_ended

        thread_ended(args, tool)

    threading.excepthook = hook
