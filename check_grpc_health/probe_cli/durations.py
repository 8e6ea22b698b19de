"""Go durations: ``time.ParseDuration`` and ``Duration.String``, to the nanosecond.

Layer: adapter (the drop-in probe). Pure logic: ``250ms``, ``1.5s``, ``1m`` parse and
print exactly as the Go tool's flags do, so its scripts and error messages carry over.
"""

from __future__ import annotations

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # MICRO SIGN
    "\u03bcs": MICROSECOND,  # GREEK SMALL LETTER MU
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_MAX = 1 << 63
_DIGITS = frozenset("0123456789")


def parse_duration(text: str) -> int:
    """Parse a Go duration (``250ms``, ``1.5s``, ``1h2m``) into nanoseconds.

    The grammar and the limits are those of Go's ``time.ParseDuration``: a sign,
    then one or more decimal numbers each with a unit; ``0`` alone is zero. Raises
    :class:`ValueError` for anything else, a bare number such as ``5`` included.
    """
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    while rest:
        if not (rest[0] == "." or rest[0] in _DIGITS):
            raise ValueError(f"invalid duration {text!r}")
        whole, rest, had_whole = _leading_int(rest, text)
        fraction, scale, had_fraction = 0, 1.0, False
        if rest[:1] == ".":
            fraction, scale, rest, had_fraction = _leading_fraction(rest[1:])
        if not (had_whole or had_fraction):
            raise ValueError(f"invalid duration {text!r}")
        end = 0
        while end < len(rest) and not (rest[end] == "." or rest[end] in _DIGITS):
            end += 1
        if end == 0:
            raise ValueError(f"missing unit in duration {text!r}")
        unit = _UNITS.get(rest[:end])
        if unit is None:
            raise ValueError(f"unknown unit {rest[:end]!r} in duration {text!r}")
        rest = rest[end:]
        if whole > _MAX // unit:
            raise ValueError(f"invalid duration {text!r}")
        value = whole * unit
        if fraction > 0:
            # Go uses float64 here too, which is exact to the nanosecond for hours.
            value += int(float(fraction) * (float(unit) / scale))
            if value > _MAX:
                raise ValueError(f"invalid duration {text!r}")
        total += value
        if total > _MAX:
            raise ValueError(f"invalid duration {text!r}")
    if negative:
        return -total
    if total > _MAX - 1:
        raise ValueError(f"invalid duration {text!r}")
    return total


def _leading_int(text: str, original: str) -> tuple[int, str, bool]:
    value = 0
    index = 0
    while index < len(text) and text[index] in _DIGITS:
        if value > _MAX // 10:
            raise ValueError(f"invalid duration {original!r}")
        value = value * 10 + ord(text[index]) - ord("0")
        if value > _MAX:
            raise ValueError(f"invalid duration {original!r}")
        index += 1
    return value, text[index:], index > 0


def _leading_fraction(text: str) -> tuple[int, float, str, bool]:
    value = 0
    scale = 1.0
    overflow = False
    index = 0
    while index < len(text) and text[index] in _DIGITS:
        if not overflow:
            if value > (_MAX - 1) // 10:
                overflow = True
            else:
                candidate = value * 10 + ord(text[index]) - ord("0")
                if candidate > _MAX:
                    overflow = True
                else:
                    value = candidate
                    scale *= 10
        index += 1
    return value, scale, text[index:], index > 0


def format_duration(nanoseconds: int) -> str:
    """Render nanoseconds exactly as Go's ``time.Duration.String`` does.

    ``1s``, ``250ms``, ``1.5s``, ``1m0s``, ``1h2m0s``, ``1.234567ms``, ``0s``.
    """
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    value = abs(nanoseconds)
    if value < SECOND:
        if value < MICROSECOND:
            return f"{sign}{value}ns"
        unit, precision = ("\u00b5s", 3) if value < MILLISECOND else ("ms", 6)
        whole, fraction = divmod(value, 10**precision)
        return f"{sign}{whole}{_fraction(fraction, precision)}{unit}"
    seconds, fraction = divmod(value, SECOND)
    minutes, seconds = divmod(seconds, 60)
    text = f"{seconds}{_fraction(fraction, 9)}s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def _fraction(value: int, precision: int) -> str:
    if value == 0:
        return ""
    return "." + f"{value:0{precision}d}".rstrip("0")
