"""The fleet file: one ``check_grpc_health`` command line per line, parsed once each.

Layer: adapter (the fleet). Each line becomes the plugin's own options
(:func:`check_grpc_health.plugin.arguments.parse_arguments`); a line that cannot be
used becomes an entry with its error, never the end of the run.
"""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, NamedTuple

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.plugin.arguments import parse_arguments
from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    from collections.abc import Mapping

    from check_grpc_health.plugin.options import PluginOptions


class Entry(NamedTuple):
    """One line of the fleet file: its number, its text, and the options it parsed to."""

    line: int
    text: str
    options: PluginOptions | None
    error: str | None


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
    # The line's own -t bounds its diagnosis too; within the fleet, the fleet's wins.
    timeout = min(options.timeout, budget)
    if probe.connect_timeout <= half and probe.rpc_timeout <= half:
        return replace(options, timeout=timeout)
    capped = replace(
        probe,
        connect_timeout=min(probe.connect_timeout, half),
        rpc_timeout=min(probe.rpc_timeout, half),
    )
    return replace(options, probe=capped, timeout=timeout)
