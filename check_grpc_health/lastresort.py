"""The console scripts' last resort: an unexpected exception is one line and an error code.

Layer: process glue, loaded by :mod:`check_grpc_health.entry` only when an exception
escapes a tool (or ends one of its threads), so a healthy run never pays for it.

An exception a tool did not expect (a bug, or a fault of the machine it did not foresee)
ends the run with one line and the tool's error code, never a traceback: UNKNOWN (3) for
the plugin and the fleet, whose callers read any other code as a verdict (a systemd unit
counts 1 and 2 as success), 1 for the probe and the demo, and 1 for the resident ones
(the fleet's ``--watch`` mode, the exporter), whose units restart them on it but not on
3, their code for options or files that a restart cannot fix. The line names the exception's
type and the project's line it came from, not its message, which could hold a value the
tools never print (a header, a password). A ``KeyboardInterrupt`` that gets this far
ends the process by SIGINT, as Python would, without the traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from check_grpc_health.signals import hold_signals

if TYPE_CHECKING:
    from collections.abc import Callable
    from threading import ExceptHookArgs
    from types import TracebackType


class Tool(NamedTuple):
    """How one console script ends after an unexpected exception."""

    program: str
    code: int
    fd: int
    line: Callable[[str], str]


def _plugin_line(text: str) -> str:
    """The plugin's UNKNOWN line, or its JSON document under ``--json``."""
    if "--json" in sys.argv[1:]:
        with contextlib.suppress(Exception):  # then the plain line says it
            import json

            import nagiosplugin

            from check_grpc_health.plugin.document import failure_document

            document = failure_document(nagiosplugin.Unknown, text)
            return json.dumps(document, sort_keys=True)
    return f"GRPC_HEALTH UNKNOWN - {text}"


TOOLS = {
    "plugin": Tool("check_grpc_health", 3, 1, _plugin_line),
    "probe": Tool("grpc_health_probe", 1, 2, lambda text: f"error: {text}"),
    "fleet": Tool("check_grpc_health_fleet", 3, 2, lambda text: f"check_grpc_health_fleet: {text}"),
    "demo": Tool("check-grpc-health-demo", 1, 2, lambda text: f"check-grpc-health-demo: {text}"),
    "watch": Tool("check_grpc_health_fleet", 1, 2, lambda text: f"check_grpc_health_fleet: {text}"),
    "exporter": Tool(
        "check_grpc_health_exporter", 1, 2, lambda text: f"check_grpc_health_exporter: {text}"
    ),
}


def end(error: BaseException, name: str) -> NoReturn:
    """End the process after ``error`` escaped the tool ``name``: one line, its code."""
    tool = TOOLS[name]
    if isinstance(error, KeyboardInterrupt):
        _flush()
        # As Python ends on an uncaught KeyboardInterrupt: killed by SIGINT.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        os.kill(os.getpid(), signal.SIGINT)
    # One line and one code: no signal handler or backstop timer adds a second.
    hold_signals()
    signal.setitimer(signal.ITIMER_REAL, 0)
    _flush()
    _write(tool.fd, tool.line(describe(error)))
    os._exit(tool.code)


def thread_ended(args: ExceptHookArgs, name: str) -> None:
    """``threading.excepthook``: one line on stderr; the main thread goes on."""
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    thread = args.thread.name if args.thread is not None else None
    _write(2, f"{TOOLS[name].program}: {describe(args.exc_value, thread)}")


def describe(error: BaseException, thread: str | None = None) -> str:
    """``internal error: KeyError in check_grpc_health.fleet.file line 88 (...)``.

    The type and where the project raised it, never the message itself. An ``OSError``
    is the system's refusal (``No space left on device`` on standard output) and an
    ``ImportError`` an incomplete installation, rather than bugs: they say so first.
    """
    kind = type(error).__name__
    where = _origin(error.__traceback__)
    place = f" in {where}" if where else ""
    within = f" in thread {thread}" if thread else ""
    if isinstance(error, OSError) and error.strerror:
        text = f"system error{within}: {error.strerror} ({kind}{place})"
    elif isinstance(error, ImportError) and error.name:
        text = (
            f"cannot load the module {error.name!r}{within} ({kind}{place}): "
            "the installation is incomplete"
        )
    else:
        text = f"internal error{within}: {kind}{place} (a bug: please report it)"
    return " ".join(text.split())


def _origin(trace: TracebackType | None) -> str:
    """``module line N`` of the innermost frame in the project, else the innermost one."""
    ours = innermost = ""
    while trace is not None:
        module = str(trace.tb_frame.f_globals.get("__name__", "?"))
        innermost = f"{module} line {trace.tb_lineno}"
        if module.startswith("check_grpc_health"):
            ours = innermost
        trace = trace.tb_next
    return ours or innermost


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # closed or broken: the line goes by fd
            stream.flush()


def _write(fd: int, line: str) -> None:
    with contextlib.suppress(OSError):  # nowhere left to say it; the exit code still does
        os.write(fd, (line + "\n").encode("utf-8", "backslashreplace"))
