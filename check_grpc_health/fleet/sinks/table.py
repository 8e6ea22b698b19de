"""The fleet's table for people: state, target and summary, one row per line.

Layer: adapter (a fleet sink): a function from outcomes to text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import nagiosplugin

from check_grpc_health.text import clean_text, state_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from check_grpc_health.fleet.run import Outcome


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
