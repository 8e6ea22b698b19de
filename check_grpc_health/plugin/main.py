"""``check_grpc_health``: parse argv, run the check once, print one result, exit 0-3.

Layer: adapter (the Nagios/Icinga plugin), the process around the check. Deadlines
come from gRPC (connect and RPC timeouts). The overall ``-t`` budget counts from the
process's start, as the monitoring core that runs the plugin counts it, interpreter
start-up included. It is enforced by a backstop timer of our own instead of
nagiosplugin's: that one rounds to whole seconds and raises inside whatever is running,
which may be a blocking grpc call. Ours is a thread, so a main thread blocked in grpc
cannot delay it; it prints one line and ends the process, a margin before ``-t``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, NoReturn

import nagiosplugin

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.plugin.arguments import parse_arguments
from check_grpc_health.plugin.check import build_check
from check_grpc_health.plugin.document import failure_document
from check_grpc_health.plugin.options import BACKSTOP_LEAD, NAME, OutputMode, PluginOptions
from check_grpc_health.plugin.output import JsonOutput, TextOutput
from check_grpc_health.signals import process_age, release_signals
from check_grpc_health.text import clean_text, decimal, quote, seconds, state_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nagiosplugin.state import ServiceState

_log = logging.getLogger("nagiosplugin.grpc_health")


class _FinalWords:
    """What to print when the process must end at once (signal, backstop timer).

    The backstop runs in a thread of its own and a signal handler in the main thread:
    a lock, reentrant for a handler that interrupts the main thread while it holds
    it, lets only one of them, or the verdict, have the last word.
    """

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.verdict: int | None = None
        self.options: PluginOptions | None = None
        self.lock = threading.RLock()
        self.backstop: threading.Timer | None = None
        if json_mode:
            # Imported now: a signal handler is no place for an import.
            import json

            self.dumps = json.dumps

    def line(self, state: ServiceState, message: str, elapsed: float | None = None) -> str:
        """The one line to print for ``state``, in plugin or JSON form.

        With ``elapsed`` (the backstop), the line carries the plugin's ``time`` perfdata
        with the ``-w``/``-c`` thresholds, so graphs show the timeout.
        """
        options = self.options
        perfdata = ""
        if elapsed is not None and options is not None:
            thresholds = options.time
            perfdata = str(
                nagiosplugin.Performance(
                    "time", decimal(elapsed), "s", thresholds.warning, thresholds.critical, 0
                )
            )
        if not self.json_mode:
            return f"{NAME} {state_name(state)} - {message}" + (
                f" | {perfdata}" if perfdata else ""
            )
        document = failure_document(state, message)
        if options is not None:
            document["target"] = options.probe.target.display
        if perfdata:
            document.update(time=round(elapsed or 0.0, 6), perfdata=perfdata)
        return self.dumps(document, sort_keys=True)

    def exit(self, state: ServiceState, message: str, elapsed: float | None = None) -> None:
        """Print one line and end the process without unwinding.

        ``os._exit`` because unwinding from a signal handler through a blocking grpc
        call can leave channel shutdown waiting. Once the check has its verdict, this
        does nothing: the main thread is printing the verdict, perhaps at this very
        moment (a flush from here would be a reentrant call into stdout, which raises),
        and then ends with the verdict's exit code. No second line.
        """
        with self.lock:
            if self.verdict is not None:
                return
            sys.stdout.flush()
            line = self.line(state, message, elapsed)
            os.write(1, (line + "\n").encode("utf-8", "backslashreplace"))
            os._exit(state.code)

    def settle(self, exit_code: int) -> None:
        """The check has a result: stop the backstop timer and remember the code."""
        with self.lock:
            if self.backstop is not None:
                self.backstop.cancel()
            self.verdict = exit_code

    def on_signal(self, signum: int, frame: object) -> None:
        self.exit(nagiosplugin.Unknown, f"interrupted by {signal.Signals(signum).name}")


def _install_backstop(words: _FinalWords, started: float, timeout: float) -> None:
    """Past the overall budget the check is CRITICAL: the server did not answer in time.

    The timer fires :data:`BACKSTOP_LEAD` before ``-t`` runs out, counted from
    ``started``, so that its line is out by then; ``time`` is the time since the start.
    """

    def expire() -> None:
        message = f"no result within the {seconds(timeout)} timeout (-t)"
        words.exit(nagiosplugin.Critical, message, time.monotonic() - started)

    due = started + timeout - BACKSTOP_LEAD
    timer = threading.Timer(max(due - time.monotonic(), 0.0), expire)
    timer.name = "backstop"
    timer.daemon = True  # an unexpected error's exit must not wait for it
    words.backstop = timer
    timer.start()


def _log_configuration(options: PluginOptions) -> None:
    probe_options = options.probe
    tls = probe_options.tls
    if tls is None:
        security = "plaintext"
    elif tls.verify:
        security = f"TLS, CA {tls.ca_cert or 'system roots'}, name {tls.server_name or 'default'}"
    else:
        security = "TLS without verification (certificate pinned on first use)"
    if tls is not None and tls.client_cert:
        security += f", client certificate {tls.client_cert}"
    _log.info("target %s, %s", probe_options.target.display, security)
    _log.info(
        "timeouts: connect %s, rpc %s, overall %s",
        seconds(probe_options.connect_timeout),
        seconds(probe_options.rpc_timeout),
        seconds(options.timeout),
    )
    _log.info("services: %s", ", ".join(quote(name) for name in probe_options.services))
    if probe_options.metadata:
        keys = ", ".join(key for key, _ in probe_options.metadata)
        _log.info("metadata keys (values hidden): %s", keys)


def main(argv: Sequence[str] | None = None) -> None:
    """Console script entry point: parse, run the check once, print, exit 0-3.

    Not ``@nagiosplugin.guarded``: that prints a traceback from ``-v`` on. An unexpected
    exception goes to the entry point's last resort, one UNKNOWN line in every mode.
    Without ``argv`` (the console script) ``-t`` counts from the process's start.
    """
    started = time.monotonic() - (process_age() if argv is None else 0.0)
    arguments = sys.argv[1:] if argv is None else list(argv)
    # grpc logs to stderr, and monitoring cores mix stderr into the plugin output.
    # Every failure it would log is already in our one line. Read when grpc loads.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    words = _FinalWords(json_mode="--json" in arguments)
    signal.signal(signal.SIGTERM, words.on_signal)
    signal.signal(signal.SIGINT, words.on_signal)
    release_signals()  # held since start-up by the console script (see signals.py)
    try:
        options = parse_arguments(arguments)
    except InvalidArgument as error:
        print(words.line(nagiosplugin.Unknown, clean_text(str(error))))
        sys.exit(nagiosplugin.Unknown.code)
    options = replace(options, started=started)
    words.options = options
    _install_backstop(words, started, options.timeout)
    runtime = nagiosplugin.Runtime()
    output_class = JsonOutput if options.output is OutputMode.JSON else TextOutput
    output = output_class(runtime.logchan, options)
    output.on_verdict = words.settle
    runtime.output = output
    runtime.verbose = options.verbose
    _log_configuration(options)
    check = build_check(options)
    try:
        check.main(verbose=options.verbose, timeout=0)
    except SystemExit as done:
        _exit_now(done.code)


def _exit_now(code: object) -> NoReturn:
    """Flush the output and end the process without the interpreter's teardown.

    The check is over and its channel closed; tearing down a process that loaded
    grpc (its threads, thousands of module objects) only adds tens of milliseconds
    to every check. Nothing is left to clean up: no file is open for writing.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else nagiosplugin.Unknown.code)
