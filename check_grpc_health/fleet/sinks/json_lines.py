"""The fleet's JSON lines for machines: the plugin's ``--json`` object per line.

Layer: adapter (a fleet sink): a function from outcomes to text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from check_grpc_health.text import scrub

if TYPE_CHECKING:
    from collections.abc import Sequence

    from check_grpc_health.fleet.run import Outcome


def render_json_lines(outcomes: Sequence[Outcome]) -> str:
    """JSON lines for machines: the plugin's ``--json`` object per line, plus two keys.

    ``line`` is the line's number in the fleet file, ``name`` its label
    (``HOST!SERVICE``), or null for a line without one.
    """
    return "".join(json_line(outcome) + "\n" for outcome in outcomes)


def json_line(outcome: Outcome, **extra: Any) -> str:
    """One outcome's JSON line, with ``extra`` keys added (the monitor's change keys)."""
    import json

    label = outcome.entry.label
    document = dict(
        outcome.document,
        line=outcome.entry.line,
        name=None if label is None else str(label),
        **extra,
    )
    options = outcome.entry.options
    if options is None:
        document["target"] = None
    line = json.dumps(document, sort_keys=True)
    # The same guard as the plugin's --json: no metadata value in the output.
    return line if options is None else scrub(line, options.probe.metadata)
