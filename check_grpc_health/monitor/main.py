"""``check_grpc_health_fleet --watch FILE``: the fleet as a resident, Watch-driven monitor.

Layer: adapter (the monitor), the process. It reads the same fleet file and delivers
through the same sinks as a one-shot run, but stays: every line's services are followed
by Watch streams, every status change is judged and delivered the moment the server
pushes it, and a heartbeat Checks each line every ``--interval``. SIGHUP reloads the
file, SIGTERM and SIGINT stop it within a second after flushing what is pending.

Exit codes: 0 after a clean stop, 3 (UNKNOWN, as the one-shot fleet) for bad arguments
or a fleet file that cannot be read at the start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn

import nagiosplugin

from check_grpc_health.core.options import parse_seconds
from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.exporter.options import add_exporter_options, exporter_settings
from check_grpc_health.fleet.arguments import Parser, add_delivery_options, icinga2_settings
from check_grpc_health.monitor.events import PROGRAM, Events
from check_grpc_health.monitor.notify import notify, watchdog_interval
from check_grpc_health.signals import release_signals
from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from check_grpc_health.exporter.options import ExporterSettings
    from check_grpc_health.exporter.web import Endpoints, HttpServer
    from check_grpc_health.fleet.file import Entry
    from check_grpc_health.monitor.delivery import SinkWorker
    from check_grpc_health.monitor.monitor import Monitor

DEFAULT_INTERVAL = 60.0
#: Icinga 2's ttl: this many intervals without a result make the service UNKNOWN.
TTL_INTERVALS = 3
DEFAULT_THREADS = 8
#: SIGTERM and SIGINT end the process within this many seconds.
STOP_WITHIN = 1.0


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROGRAM,
        allow_abbrev=False,
        description=(
            "Watch every target of a fleet file and deliver each health change the moment "
            "the server pushes it (gRPC Watch), with a heartbeat Check every --interval."
        ),
    )
    parser.add_argument("--watch", action="store_true", required=True, help="stay and watch")
    parser.add_argument("file", metavar="FILE", help="the fleet file (SIGHUP reads it again)")
    parser.add_argument(
        "--interval",
        default=f"{DEFAULT_INTERVAL:g}",
        metavar="SECONDS",
        help=f"a heartbeat Check of each line every SECONDS (default {DEFAULT_INTERVAL:g})",
    )
    parser.add_argument(
        "--format",
        choices=("json", "table", "prometheus"),
        default=None,
        help="json: one JSON line per change on standard output",
    )
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        metavar="N",
        help=f"worker threads for failures, certificates and discovery (default {DEFAULT_THREADS})",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="a line per event")
    add_delivery_options(parser, ttl=TTL_INTERVALS * DEFAULT_INTERVAL)
    add_exporter_options(parser, required=False)
    return parser


class _Setup:
    """The parsed and checked options of a run."""

    def __init__(self, argv: Sequence[str]) -> None:
        args = _parser().parse_args(argv)
        self.args = args
        self.interval = parse_seconds("--interval", args.interval)
        if self.interval < 1:
            raise InvalidArgument(f"--interval {args.interval} must be at least 1 second")
        if args.json:
            args.format = "json"
        if args.format in ("table", "prometheus"):
            raise InvalidArgument(
                f"--format {args.format} is a one-shot summary and makes no sense with --watch; "
                "--format json prints one line per change"
            )
        if args.textfile is not None:
            raise InvalidArgument("--textfile is for one-shot runs; with --watch it is not written")
        if args.threads < 1:
            raise InvalidArgument(f"--threads {args.threads} must be at least 1")
        self.api = icinga2_settings(args, ttl=TTL_INTERVALS * self.interval)
        self.events = Events(args.verbose, args.format == "json")
        # --listen: /metrics (and /probe with --modules), see check_grpc_health.exporter.
        self.exporter = exporter_settings(args)

    def read(self) -> list[Entry]:
        from check_grpc_health.fleet.file import read_fleet

        # Each line's deadlines stay within half an interval, as the one-shot fleet
        # keeps them within half of its -t.
        return read_fleet(self.args.file, os.environ, self.interval)

    def sinks(self) -> list[SinkWorker]:
        from check_grpc_health.monitor.delivery import SinkWorker

        workers = []
        say, trace = self.events.say, self.events.trace
        if self.api is not None:
            from check_grpc_health.fleet.sinks.icinga2_api import CONNECTIONS, NAME
            from check_grpc_health.monitor.sinks import Icinga2Sender

            senders = [Icinga2Sender(self.api) for _ in range(CONNECTIONS)]
            workers.append(SinkWorker(NAME, senders, say, trace))
        if self.args.command_file is not None:
            from check_grpc_health.fleet.sinks.command_file import NAME as PIPE
            from check_grpc_health.monitor.sinks import PipeSender

            workers.append(SinkWorker(PIPE, [PipeSender(self.args.command_file)], say, trace))
        return workers


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``--watch`` mode of ``check_grpc_health_fleet``."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        setup = _Setup(arguments)
        entries = setup.read()
    except InvalidArgument as error:
        print(f"{PROGRAM}: {clean_text(str(error))}", file=sys.stderr)
        sys.exit(nagiosplugin.Unknown.code)
    sinks = setup.sinks()
    _unlabelled(setup, entries, sinks)
    try:
        asyncio.run(_run(setup, entries, sinks))
    except InvalidArgument as error:  # --listen's address cannot be bound
        print(f"{PROGRAM}: {clean_text(str(error))}", file=sys.stderr)
        os._exit(nagiosplugin.Unknown.code)
    # grpcio's and the sinks' threads must not hold the exit up.
    sys.stdout.flush()
    os._exit(0)


def _unlabelled(setup: _Setup, entries: Sequence[Entry], sinks: Sequence[SinkWorker]) -> None:
    lines = [str(entry.line) for entry in entries if entry.label is None]
    if sinks and lines:
        listed = ", ".join(lines[:10]) + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")
        setup.events.say(
            f"lines {listed} have no HOST!SERVICE: label, so their results go to no sink"
        )


async def _run(setup: _Setup, entries: list[Entry], sinks: list[SinkWorker]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from check_grpc_health.monitor.monitor import Monitor, Settings

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_defect(setup.events))
    stopping = asyncio.Event()
    stopped_by: list[str] = []
    executor = ThreadPoolExecutor(setup.args.threads, thread_name_prefix="check")
    loop.set_default_executor(executor)
    # /metrics describes each line from its --json document, as the one-shot fleet does.
    documents = setup.events.json or setup.exporter is not None
    settings = Settings(setup.interval, documents=documents)
    monitor = Monitor(settings, setup.events, sinks, executor)
    reloading: list[asyncio.Task[None]] = []
    served = None if setup.exporter is None else _serve(setup, setup.exporter, loop, monitor)

    def stop(signum: int) -> None:
        stopped_by.append(signal.Signals(signum).name)
        stopping.set()

    def hangup() -> None:
        if not reloading or reloading[-1].done():
            reloading.append(loop.create_task(_reload(setup, monitor)))
        if served is not None:
            from check_grpc_health.exporter.options import reload_modules

            setup.exporter = reload_modules(setup.exporter, served[1], setup.events.say)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    loop.add_signal_handler(signal.SIGHUP, hangup)
    release_signals()  # held since start-up by the console script (see signals.py)
    await monitor.start(entries)
    notify("READY=1", f"STATUS=watching {len(entries)} lines")
    setup.events.trace(f"watching {len(entries)} lines, a heartbeat every {setup.interval:g}s")
    watchdog = _watchdog(loop)
    await stopping.wait()
    deadline = time.monotonic() + STOP_WITHIN
    notify("STOPPING=1")
    if watchdog is not None:
        watchdog.cancel()
    await monitor.stop()
    if served is not None:
        await loop.run_in_executor(None, served[0].shutdown)
    left = await loop.run_in_executor(None, _flush, sinks, deadline)
    for name, count in left:
        setup.events.say(f"{name}: {count} results not delivered at the stop")
    setup.events.trace(f"stopped by {stopped_by[0]}")
    setup.events.drain(deadline)
    executor.shutdown(wait=False, cancel_futures=True)


def _serve(
    setup: _Setup, exporter: ExporterSettings, loop: asyncio.AbstractEventLoop, monitor: Monitor
) -> tuple[HttpServer, Endpoints]:
    """/metrics over the monitor's state (and /probe), served from threads of their own."""
    from check_grpc_health.exporter.collector import MonitorCollector, snapshot_reader
    from check_grpc_health.exporter.options import start, url

    collector = MonitorCollector(snapshot_reader(loop, monitor), setup.interval)
    server, endpoints = start(exporter, collector, title=PROGRAM)
    pages = "/metrics and /probe" if exporter.modules is not None else "/metrics"
    setup.events.say(f"serving {pages} on {url(server, exporter)}")
    return server, endpoints


def _defect(events: Events) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """The event loop's last resort: an error nothing else caught is one line, never a
    traceback; the monitor goes on."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        what = f"{type(error).__name__}: {error}" if error is not None else context["message"]
        events.say(f"internal error: {what}")

    return handler


def _flush(sinks: Sequence[SinkWorker], deadline: float) -> list[tuple[str, int]]:
    left = [(sink.name, sink.flush(deadline - 0.1)) for sink in sinks]
    return [(name, count) for name, count in left if count]


async def _reload(setup: _Setup, monitor: Monitor) -> None:
    notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
    try:
        entries = setup.read()
    except InvalidArgument as error:
        setup.events.say(
            f"reload: {clean_text(str(error))}; the {len(monitor.lines)} lines from before "
            "keep running"
        )
    else:
        kept, started, stopped = await monitor.reload(entries)
        setup.events.say(f"reload: {kept} lines kept, {started} started, {stopped} stopped")
    notify("READY=1", f"STATUS=watching {len(monitor.lines)} lines")


def _watchdog(loop: asyncio.AbstractEventLoop) -> asyncio.Task[None] | None:
    """``WATCHDOG=1`` from the event loop itself, so that systemd restarts a stuck loop."""
    interval = watchdog_interval()
    if interval is None:
        return None

    async def ping() -> None:
        while True:
            notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    return loop.create_task(ping())
