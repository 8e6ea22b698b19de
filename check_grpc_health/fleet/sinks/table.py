"""The fleet's table for people: state, what the line checks, and summary, one row each.

Layer: adapter (a fleet sink): a function from outcomes to text.

The TARGET column shows what tells lines apart. A labelled line shows its label
(``web1!grpc-orders``). Otherwise it shows the address followed by the options that
change what is checked or how it is judged: the services (``-s orders``),
``--all-services``, ``--all-addresses``, ``--map-status`` and TLS. Two rows that
still read the same get their line numbers (``#4``), so no two rows are alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import nagiosplugin

from check_grpc_health.text import clean_text, state_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from check_grpc_health.fleet.run import Outcome


def describe_line(outcome: Outcome) -> str:
    """What a line checks, in a few words: its label, or address and distinguishing options."""
    entry = outcome.entry
    if entry.label is not None:
        return clean_text(str(entry.label))
    options = entry.options
    if options is None:
        return f"(line {entry.line})"
    words = [options.probe.target.display]
    if options.probe.services != ("",):
        words.append("-s " + ",".join(service or "''" for service in options.probe.services))
    if options.all_services:
        words.append("--all-services")
    if options.all_addresses:
        words.append("--all-addresses")
    words.extend(
        f"--map-status {status.name}={state_name(state)}" for status, state in options.status_states
    )
    if options.probe.tls is not None:
        words.append("--tls" if options.probe.tls.verify else "--insecure")
    return clean_text(" ".join(words))


def target_column(outcomes: Sequence[Outcome]) -> list[str]:
    """:func:`describe_line` for each outcome, with ``#line`` added where rows would match."""
    texts = [describe_line(outcome) for outcome in outcomes]
    seen: dict[str, int] = {}
    for text in texts:
        seen[text] = seen.get(text, 0) + 1
    return [
        f"{text} #{outcome.entry.line}" if seen[text] > 1 else text
        for text, outcome in zip(texts, outcomes, strict=True)
    ]


def render_table(outcomes: Sequence[Outcome], quiet: bool) -> str:
    """A table for people: state, target and summary, one row per line."""
    targets = target_column(outcomes)
    shown = [
        (outcome, target)
        for outcome, target in zip(outcomes, targets, strict=True)
        if not quiet or outcome.state != nagiosplugin.Ok
    ]
    if not shown:
        return ""
    width = max(len("TARGET"), *(len(target) for _, target in shown))
    rows = [f"{'STATE':<8}  {'TARGET':<{width}}  SUMMARY"]
    rows += [f"{state_name(o.state):<8}  {target:<{width}}  {o.summary}" for o, target in shown]
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[state_name(outcome.state)] = counts.get(state_name(outcome.state), 0) + 1
    order = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
    totals = ", ".join(f"{counts[name]} {name}" for name in order if name in counts)
    noun = "target" if len(outcomes) == 1 else "targets"
    rows.append(f"{len(outcomes)} {noun}: {totals}")
    return "\n".join(rows) + "\n"
