"""``check_grpc_health_fleet``: many targets from one file, checked at once in one process.

Layer: adapter (the fleet), the process around a run. Each line of the fleet file holds
the arguments one ``check_grpc_health`` run would take (``-H api-1:50051 -s orders -w
0.5``), optionally after a ``HOST!SERVICE:`` label; blank lines and ``#`` comments are
skipped. The checks run concurrently within one overall deadline. The printed output is
a table for people, JSON lines or the Prometheus text format; the deliveries hand the
results to Icinga 2's API, a command pipe, or a textfile for node_exporter. The exit code
is the worst state, as a plugin's would be, or UNKNOWN when a result was not delivered.
It is meant for cron and timers, and for inventories too large for one process per target.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import TYPE_CHECKING, NoReturn

import nagiosplugin

from check_grpc_health import __version__
from check_grpc_health.core.options import capped, parse_seconds
from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.fleet.arguments import Parser, add_delivery_options, icinga2_settings
from check_grpc_health.fleet.file import read_fleet
from check_grpc_health.fleet.run import run_fleet, worst
from check_grpc_health.signals import process_age, release_signals
from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from check_grpc_health.fleet.run import Outcome

DEFAULT_TIMEOUT = 30.0
DEFAULT_CONCURRENCY = 8
# -t counts from the process's start, as cron's or a timer's limit does. The output is
# out this long before it, and the checks end earlier still by the time rendering takes
# per line and output (about 20 us unloaded), so that the last line is out by -t on a
# loaded machine too. bench/time_limits.py measures it.
PRINT_MARGIN = 0.25
RENDER_PER_LINE = 60e-6


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="check_grpc_health_fleet",
        description=(
            "Check many gRPC targets from one file, concurrently, within one deadline. "
            "Each line holds the arguments of one check_grpc_health run. Exit code: the "
            "worst state (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the fleet file, or - for standard input")
    parser.add_argument(
        "-t",
        "--timeout",
        default=str(int(DEFAULT_TIMEOUT)),
        metavar="SECONDS",
        help=f"overall deadline for the whole fleet (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"targets checked at once (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "prometheus"),
        default="table",
        help="what to print: a table (default), JSON lines, or Prometheus text format",
    )
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="list only targets that are not OK (for cron)"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="trace deliveries")
    add_delivery_options(parser)
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM/SIGINT: one line, UNKNOWN, and no waiting for checks still running."""
    name = signal.Signals(signum).name
    sys.stdout.flush()
    os.write(2, f"check_grpc_health_fleet: interrupted by {name}\n".encode())
    os._exit(nagiosplugin.Unknown.code)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console script entry point. Without ``argv``, ``-t`` counts from the process's start."""
    began = time.monotonic() - (process_age() if argv is None else 0.0)
    arguments = sys.argv[1:] if argv is None else list(argv)
    if "--watch" in arguments:
        from check_grpc_health.monitor.main import main as watch

        watch(arguments)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    release_signals()  # held since start-up by the console script (see signals.py)
    try:
        args = _parser().parse_args(arguments)
        # Capped as every deadline is (a day or more): a thread waits no longer than that.
        budget = capped(parse_seconds("-t/--timeout", args.timeout))
        if args.concurrency < 1:
            raise InvalidArgument(f"--concurrency {args.concurrency} must be at least 1")
        if args.json:
            args.format = "json"
        if args.quiet and args.format != "table":
            raise InvalidArgument("--quiet applies to the table only")
        if args.textfile is not None and not args.textfile.endswith(".prom"):
            raise InvalidArgument(
                f"--textfile {args.textfile!r} does not end in .prom: node_exporter's textfile "
                "collector reads only *.prom files"
            )
        api = icinga2_settings(args)
        # The checks end a fifth of the deadline (at most 5 s) before it; the deliveries,
        # which take each result as its check ends, end by the deadline.
        delivers = api is not None or args.command_file is not None
        share = min(budget / 5, 5.0) if delivers else 0.0
        # Each line's deadlines are capped at half of the checks' part of -t (the same
        # words every run); the checks still end by the deadline counted from the start.
        entries = read_fleet(args.file, os.environ, budget - share)
    except InvalidArgument as error:
        print(f"check_grpc_health_fleet: {clean_text(str(error))}", file=sys.stderr)
        sys.exit(nagiosplugin.Unknown.code)
    deadline = began + budget - PRINT_MARGIN
    deliveries = None
    if delivers or args.textfile is not None:
        from check_grpc_health.fleet.deliveries import Deliveries, line_printer

        deliveries = Deliveries(args, api, deadline, line_printer())
    # JSON and Prometheus are built from each line's --json document; the others need none.
    documents = args.format != "table" or args.textfile is not None
    done = deliveries.offer if deliveries is not None else None
    renders = 1 + (args.textfile is not None)
    checks_end = deadline - share - RENDER_PER_LINE * len(entries) * renders
    outcomes = run_fleet(
        entries, budget, args.concurrency, documents=documents, deadline=checks_end, done=done
    )
    sys.stdout.write(_printed(args, outcomes))
    sys.stdout.flush()
    failed = deliveries.finish(outcomes) if deliveries is not None else False
    code = nagiosplugin.Unknown.code if failed else worst(outcomes).code
    # Abandoned checks may still hold threads; they must not delay the exit.
    os._exit(code)


def _printed(args: argparse.Namespace, outcomes: Sequence[Outcome]) -> str:
    if args.format == "json":
        from check_grpc_health.fleet.sinks.json_lines import render_json_lines

        return render_json_lines(outcomes)
    if args.format == "prometheus":
        from check_grpc_health.fleet.sinks.prometheus import render_prometheus

        return render_prometheus(outcomes, time.time())
    from check_grpc_health.fleet.sinks.table import render_table

    return render_table(outcomes, args.quiet)
