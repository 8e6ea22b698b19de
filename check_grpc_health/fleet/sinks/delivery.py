"""What a delivering sink reports: how many results went in, and each reason some did not.

Layer: adapter (the fleet's sinks). A sink that hands results to a monitoring system
(the Icinga 2 API, a command pipe) returns a :class:`Delivery`; the fleet prints one
line per problem to standard error and exits UNKNOWN (3) when any result was not
delivered, so that no result is dropped in silence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from check_grpc_health.fleet.run import Outcome

#: How many lines without a label are named one by one before "and N more".
_NAMED = 10


@dataclass
class Delivery:
    """The result of one delivering sink: counts, and one line per problem."""

    sink: str
    delivered: int = 0
    undelivered: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str, count: int) -> None:
        """``count`` results did not go in, for ``problem`` (one line, no secret)."""
        self.undelivered += count
        noun = "result" if count == 1 else "results"
        self.problems.append(f"{self.sink}: {problem} ({count} {noun} not delivered)")

    @property
    def failed(self) -> bool:
        return bool(self.problems)


def unlabelled(delivery: Delivery, outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The outcomes a monitoring object can be named for; the others count as failures.

    A line without a ``HOST!SERVICE:`` label names no service, so its result cannot be
    submitted: that is reported, never skipped in silence.
    """
    labelled = [outcome for outcome in outcomes if outcome.entry.label is not None]
    missing = [outcome.entry.line for outcome in outcomes if outcome.entry.label is None]
    if missing:
        named = ", ".join(str(line) for line in missing[:_NAMED])
        more = f" and {len(missing) - _NAMED} more" if len(missing) > _NAMED else ""
        noun = "line" if len(missing) == 1 else "lines"
        delivery.fail(
            f"{noun} {named}{more} without a HOST!SERVICE: label, so naming no service",
            len(missing),
        )
    return labelled
