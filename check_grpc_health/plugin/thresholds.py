"""Thresholds: Nagios ranges that print as plain decimals, days left, healthy backends.

Layer: adapter (the Nagios/Icinga plugin). Pure parsing on nagiosplugin's ``Range``;
every bad value is an :class:`InvalidArgument` naming the option and the value.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import nagiosplugin

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.text import decimal

_RANGE_EXAMPLES = "e.g. 0.5, 10:, ~:1 or @0.2:0.4"
_WORDED: dict[DecimalRange, str] = {}


class DecimalRange(nagiosplugin.Range):
    """A Range that prints its bounds as plain decimals (``0.000001``), never ``1e-06``.

    nagiosplugin prints a Range with ``%s``, and perfdata thresholds must not use
    exponent notation.
    """

    __slots__ = ()

    def __str__(self) -> str:
        # Ranges are immutable and few (the fleet's lines share them), but printed in
        # the perfdata of every check: each is worded once.
        text = _WORDED.get(self)
        if text is None:
            text = _WORDED[self] = self._format()
        return text

    def _format(self, omit_zero_start: bool = True) -> str:
        parts = ["@"] if self.invert else []
        if self.start == -math.inf:
            parts.append("~:")
        elif not omit_zero_start or self.start != 0:
            parts.append(f"{decimal(self.start)}:")
        if self.end != math.inf:
            parts.append(decimal(self.end))
        return "".join(parts)


def parse_range(option: str, text: str) -> nagiosplugin.Range:
    """A Nagios range, or an InvalidArgument naming the option and the value.

    nagiosplugin parses the text. Refused besides what it refuses: a bound that is
    not a finite number (``1.e400``), a range that names no bound at all (``:``,
    ``~:``, ``@``, ``@~:``), and an inverted range that holds every time (``@0:``),
    which would alert on every check. An empty text is no threshold.
    """
    try:
        parsed = DecimalRange(text)
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or (text and not _means_something(parsed, text)):
        raise InvalidArgument(f"{option} {text!r} is not a Nagios range ({_RANGE_EXAMPLES})")
    return parsed


def _means_something(parsed: nagiosplugin.Range, text: str) -> bool:
    # nagiosplugin has parsed the text, so it is "[@][start:][end]" with at most one ':'.
    start_text, _, end_text = text.removeprefix("@").rpartition(":")
    bounds = [parsed.start] if start_text not in ("", "~") else []
    bounds += [parsed.end] if end_text else []
    if not bounds or not all(math.isfinite(bound) for bound in bounds):
        return False
    holds_every_time = parsed.start <= 0 and parsed.end == math.inf
    return not (parsed.invert and holds_every_time)


def parse_days(option: str, text: str) -> nagiosplugin.Range:
    """``--cert-warning 30`` means: fine while at least 30 days are left."""
    try:
        days = float(text)
    except ValueError:
        raise InvalidArgument(f"{option} {text!r} is not a number of days") from None
    if not math.isfinite(days) or days < 0 or days > 100_000:
        raise InvalidArgument(f"{option} {text!r} must be a number of days from 0 to 100000")
    return nagiosplugin.Range(f"{decimal(days)}:")


class MinimumHealthy(NamedTuple):
    """A minimum of healthy backends: a count, or a share of all of them in percent."""

    value: float
    percent: bool

    def required(self, total: int) -> int:
        """How many healthy backends out of ``total`` meet this minimum."""
        if self.percent:
            return math.ceil(total * self.value / 100 - 1e-9)
        return int(self.value)

    def __str__(self) -> str:
        return f"{decimal(self.value)}%" if self.percent else str(int(self.value))


# By default: WARNING when any backend is unhealthy, CRITICAL when fewer than half are.
DEFAULT_WARNING = MinimumHealthy(100, percent=True)
DEFAULT_CRITICAL = MinimumHealthy(50, percent=True)


def parse_minimum(option: str, text: str | None) -> MinimumHealthy | None:
    """``3`` (backends) or ``75%`` (of all backends), None when not given.

    Anything else is an InvalidArgument naming the option and the value.
    """
    if not text:
        return None
    number, percent = (text[:-1], True) if text.endswith("%") else (text, False)
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    valid = (
        math.isfinite(value) and value >= 0 and (value <= 100 if percent else value.is_integer())
    )
    if not valid:
        raise InvalidArgument(
            f"{option} {text!r} is not a number of backends or a percentage (e.g. 2 or 50%)"
        )
    return MinimumHealthy(value, percent)
