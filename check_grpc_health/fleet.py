"""``check_grpc_health_fleet``: many targets from one file, checked at once in one process.

Layer: adapter. Each line of the fleet file holds the arguments one
``check_grpc_health`` run would take (``-H api-1:50051 -s orders -w 0.5``); blank lines
and ``#`` comments are skipped. Every line becomes the plugin's own check
(:func:`check_grpc_health.nagios.build_check`), so states, thresholds and messages are
exactly the plugin's. The checks run concurrently within one overall deadline; the
output is a table for people or JSON lines for machines, and the exit code is the worst
state, as a plugin's would be. It is meant for cron, and for inventories too large for
one process per target.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import nagiosplugin

from check_grpc_health import __version__
from check_grpc_health.entry import release_signals
from check_grpc_health.nagios import (
    PluginOptions,
    build_check,
    check_document,
    clean_text,
    failure_document,
    parse_arguments,
    scrub,
    state_name,
)
from check_grpc_health.options import parse_seconds
from check_grpc_health.results import InvalidArgument

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence

    from nagiosplugin.state import ServiceState

DEFAULT_TIMEOUT = 30.0
DEFAULT_CONCURRENCY = 32


class Entry(NamedTuple):
    """One line of the fleet file: its number, its text, and the options it parsed to."""

    line: int
    text: str
    options: PluginOptions | None
    error: str | None


class Outcome(NamedTuple):
    """What one target's check found, in the forms the outputs need."""

    entry: Entry
    state: ServiceState
    summary: str
    document: dict[str, Any]


def read_fleet(path: str, environ: Mapping[str, str], budget: float) -> list[Entry]:
    """Parse the fleet file; a bad line becomes an entry with an error, not a failure.

    Each target's connect and RPC deadlines are capped at half of ``budget`` so that
    every check ends within the fleet's overall deadline.
    """
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        raise InvalidArgument(f"cannot read fleet file {path!r}: {reason}") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"fleet file {path!r} is not UTF-8 text") from None
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            options = parse_arguments(shlex.split(line), environ)
        except (InvalidArgument, ValueError) as error:
            entries.append(Entry(number, line, None, f"line {number}: {clean_text(str(error))}"))
            continue
        entries.append(Entry(number, line, _within(options, budget), None))
    if not entries:
        raise InvalidArgument(f"fleet file {path!r} names no target")
    return entries


def _within(options: PluginOptions, budget: float) -> PluginOptions:
    from dataclasses import replace

    half = budget / 2
    probe = options.probe
    if probe.connect_timeout <= half and probe.rpc_timeout <= half:
        return options
    capped = replace(
        probe,
        connect_timeout=min(probe.connect_timeout, half),
        rpc_timeout=min(probe.rpc_timeout, half),
    )
    return replace(options, probe=capped)


def check_entry(entry: Entry) -> Outcome:
    """Run one target's plugin check in this thread."""
    if entry.options is None:
        message = entry.error or "unusable line"
        document = failure_document(nagiosplugin.Unknown, message)
        return Outcome(entry, nagiosplugin.Unknown, message, document)
    check = build_check(entry.options)
    check()
    # As the plugin's own output does: no metadata value may reach the output.
    summary = scrub(clean_text(check.summary_str), entry.options)
    return Outcome(entry, check.state, summary, check_document(check, entry.options))


def run_fleet(entries: Sequence[Entry], budget: float, concurrency: int) -> list[Outcome]:
    """Check every entry concurrently; a target without a result by ``budget`` is CRITICAL."""
    from concurrent.futures import ThreadPoolExecutor, wait

    deadline = time.monotonic() + budget
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(entries))))
    futures = [pool.submit(check_entry, entry) for entry in entries]
    wait(futures, timeout=max(0.0, deadline - time.monotonic()))
    # Checks past the deadline are abandoned, not waited for: each has its own
    # deadlines and ends soon, and the process exits without joining them.
    pool.shutdown(wait=False, cancel_futures=True)
    outcomes = []
    for entry, future in zip(entries, futures, strict=True):
        if future.done() and not future.cancelled() and future.exception() is None:
            outcomes.append(future.result())
            continue
        if future.done() and not future.cancelled():
            message = f"check failed: {clean_text(str(future.exception()))}"
            state = nagiosplugin.Unknown
        else:
            message = f"no result within the fleet's {budget:g}s deadline (-t)"
            state = nagiosplugin.Critical
        outcomes.append(Outcome(entry, state, message, failure_document(state, message)))
    return outcomes


def _target(outcome: Outcome) -> str:
    options = outcome.entry.options
    if options is None:
        return f"(line {outcome.entry.line})"
    return clean_text(options.probe.target.display)


def render_table(outcomes: Sequence[Outcome], quiet: bool) -> str:
    """A table for people: state, target and summary, one row per target."""
    shown = [o for o in outcomes if not quiet or o.state != nagiosplugin.Ok]
    if not shown:
        return ""
    width = max(len("TARGET"), *(len(_target(o)) for o in shown))
    rows = [f"{'STATE':<8}  {'TARGET':<{width}}  SUMMARY"]
    rows += [f"{state_name(o.state):<8}  {_target(o):<{width}}  {o.summary}" for o in shown]
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[state_name(outcome.state)] = counts.get(state_name(outcome.state), 0) + 1
    order = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
    totals = ", ".join(f"{counts[name]} {name}" for name in order if name in counts)
    rows.append(f"{len(outcomes)} targets: {totals}")
    return "\n".join(rows) + "\n"


def render_json_lines(outcomes: Sequence[Outcome]) -> str:
    """JSON lines for machines: the plugin's ``--json`` object per target, plus its line."""
    import json

    lines = []
    for outcome in outcomes:
        document = dict(outcome.document, line=outcome.entry.line)
        options = outcome.entry.options
        if options is None:
            document["target"] = None
        line = json.dumps(document, sort_keys=True)
        # The same guard as the plugin's --json: no metadata value in the output.
        lines.append(line if options is None else scrub(line, options))
    return "\n".join(lines) + "\n"


def worst(outcomes: Sequence[Outcome]) -> ServiceState:
    """The worst state, as a plugin's exit code ranks them (UNKNOWN above CRITICAL)."""
    return max((outcome.state for outcome in outcomes), key=lambda state: state.code)


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
    release_signals()  # held since start-up by the console script (entry.py)
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
