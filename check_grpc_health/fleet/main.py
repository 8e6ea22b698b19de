"""``check_grpc_health_fleet``: many targets from one file, checked at once in one process.

Layer: adapter (the fleet), the process around a run. Each line of the fleet file holds
the arguments one ``check_grpc_health`` run would take (``-H api-1:50051 -s orders -w
0.5``); blank lines and ``#`` comments are skipped. The checks run concurrently within
one overall deadline; the output is a table for people or JSON lines for machines, and
the exit code is the worst state, as a plugin's would be. It is meant for cron, and for
inventories too large for one process per target.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, NoReturn

import nagiosplugin

from check_grpc_health import __version__
from check_grpc_health.core.options import parse_seconds
from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.fleet.file import read_fleet
from check_grpc_health.fleet.run import run_fleet, worst
from check_grpc_health.fleet.sinks.json_lines import render_json_lines
from check_grpc_health.fleet.sinks.table import render_table
from check_grpc_health.signals import release_signals
from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

DEFAULT_TIMEOUT = 30.0
DEFAULT_CONCURRENCY = 8


def _parser() -> argparse.ArgumentParser:
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise InvalidArgument(message)

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
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="list only targets that are not OK (for cron)"
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM/SIGINT: one line, UNKNOWN, and no waiting for checks still running."""
    name = signal.Signals(signum).name
    sys.stdout.flush()
    os.write(2, f"check_grpc_health_fleet: interrupted by {name}\n".encode())
    os._exit(nagiosplugin.Unknown.code)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console script entry point."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    release_signals()  # held since start-up by the console script (see signals.py)
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(arguments)
        budget = parse_seconds("-t/--timeout", args.timeout)
        if args.concurrency < 1:
            raise InvalidArgument(f"--concurrency {args.concurrency} must be at least 1")
        entries = read_fleet(args.file, os.environ, budget)
    except InvalidArgument as error:
        print(f"check_grpc_health_fleet: {clean_text(str(error))}", file=sys.stderr)
        sys.exit(nagiosplugin.Unknown.code)
    outcomes = run_fleet(entries, budget, args.concurrency)
    text = render_json_lines(outcomes) if args.json else render_table(outcomes, args.quiet)
    sys.stdout.write(text)
    sys.stdout.flush()
    # Abandoned checks may still hold threads; they must not delay the exit.
    os._exit(worst(outcomes).code)
