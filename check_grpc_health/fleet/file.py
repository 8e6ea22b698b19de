"""The fleet file: one ``check_grpc_health`` command line per line, parsed once each.

Layer: adapter (the fleet). A line may start with a label, ``HOST!SERVICE:`` (Icinga 2's
own name for a service), which names the line in every output and names the monitoring
object its result is submitted for. The rest of the line, up to a ``#`` comment, becomes
the plugin's own options (:func:`check_grpc_health.plugin.arguments.parse_arguments`,
whose parser is built once for the whole file); a line that cannot be used becomes an
entry with its error, never the end of the run.
"""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, NamedTuple

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.plugin.arguments import parse_arguments
from check_grpc_health.plugin.options import OutputMode
from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    from collections.abc import Mapping

    from check_grpc_health.plugin.options import PluginOptions

# Characters a label may not hold: the command pipe's field separator, the perfdata
# separator, quotes, and anything that is not one printable word.
_LABEL_FORBIDDEN = frozenset(";|'\"`\\")
# Without these, shlex.split(line, comments=True) == line.split().
_SHELL_CHARS = frozenset("'\"\\#")
PRINTS_AND_EXITS = (
    "-h/--help and -V/--version print text and exit instead of checking: "
    "they have no place in a fleet line"
)


class Label(NamedTuple):
    """``HOST!SERVICE``: the monitoring object a line's result belongs to."""

    host: str
    service: str

    def __str__(self) -> str:
        return f"{self.host}!{self.service}"


class Entry(NamedTuple):
    """One line of the fleet file: its number, text, label, and the options it parsed to.

    ``repeats`` is the number of an earlier line with the same label: this line is then
    UNKNOWN, and its result goes to no monitoring object (it would overwrite that line's).
    """

    line: int
    text: str
    options: PluginOptions | None
    error: str | None
    label: Label | None = None
    repeats: int | None = None

    @property
    def destination(self) -> Label | None:
        """The monitoring object the line's result is submitted for, if any."""
        return self.label if self.repeats is None else None


def parse_label(token: str) -> Label:
    """``web1!grpc-orders:`` to its host and service; one clear line when it is not that."""
    body = token[:-1]
    host, sep, service = body.partition("!")
    usable = (
        sep
        and host
        and service
        and "!" not in service
        and body.isprintable()
        and not _LABEL_FORBIDDEN.intersection(body)
    )
    if not usable:
        raise InvalidArgument(
            f"label {clean_text(repr(token))} is not HOST!SERVICE: (one '!', no spaces, "
            "quotes, semicolons or vertical bars)"
        )
    return Label(host, service)


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
    entries = _parse_lines(text, environ, budget)
    if not entries:
        raise InvalidArgument(f"fleet file {path!r} names no target")
    return entries


def _parse_lines(text: str, environ: Mapping[str, str], budget: float) -> list[Entry]:
    import contextlib
    import io

    entries = []
    labels: dict[Label, int] = {}
    # A line holding -h or -V makes argparse print and raise SystemExit: what it prints
    # must not reach the fleet's output, and the exit must end only that line.
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            label = None
            try:
                label, words = _split_label(_words(line))
                if label is not None and label in labels:
                    first = labels[label]
                    message = f"line {number}: label {label} is already used on line {first}"
                    entries.append(Entry(number, line, None, message, label, first))
                    continue
                options = _fleet_options(parse_arguments(words, environ))
            except (InvalidArgument, ValueError) as error:
                message = f"line {number}: {clean_text(str(error))}"
                entries.append(Entry(number, line, None, message, label))
                continue
            except SystemExit:
                message = f"line {number}: {PRINTS_AND_EXITS}"
                entries.append(Entry(number, line, None, message, label))
                continue
            finally:
                sink.seek(0)
                sink.truncate()
                if label is not None:
                    labels.setdefault(label, number)
            entries.append(Entry(number, line, _within(options, budget), None, label))
    return entries


def _words(line: str) -> list[str]:
    """The line's words as a shell would split them, without a ``#`` comment (``shlex``,
    only when needed: slow)."""
    if _SHELL_CHARS.isdisjoint(line):
        return line.split()
    return shlex.split(line, comments=True)


def _fleet_options(options: PluginOptions) -> PluginOptions:
    """Refuse what a fleet line may hold but would not change: the plugin's output modes."""
    if options.output is OutputMode.JSON:
        raise InvalidArgument(
            "--json changes nothing in a fleet line: give check_grpc_health_fleet "
            "--format json for JSON lines"
        )
    if options.output is OutputMode.QUIET:
        raise InvalidArgument(
            "-q/--quiet changes nothing in a fleet line: give check_grpc_health_fleet -q "
            "to list only the lines that are not OK"
        )
    return options


def _split_label(words: list[str]) -> tuple[Label | None, list[str]]:
    if words and words[0].endswith(":") and not words[0].startswith("-"):
        return parse_label(words[0]), words[1:]
    return None, words


def _within(options: PluginOptions, budget: float) -> PluginOptions:
    from dataclasses import replace

    half = budget / 2
    probe = options.probe
    # The line's own -t bounds its diagnosis too; within the fleet, the fleet's wins.
    timeout = min(options.timeout, budget)
    if probe.connect_timeout <= half and probe.rpc_timeout <= half:
        # A copy costs as much as a fifth of parsing the line: only when it differs.
        return options if timeout == options.timeout else replace(options, timeout=timeout)
    capped = replace(
        probe,
        connect_timeout=min(probe.connect_timeout, half),
        rpc_timeout=min(probe.rpc_timeout, half),
    )
    return replace(options, probe=capped, timeout=timeout)
