"""Running the fleet: every line's plugin check, concurrently, within one deadline.

Layer: adapter (the fleet). Every line is the plugin's own check
(:func:`check_grpc_health.plugin.check.build_check`), so states, thresholds and
messages are exactly the plugin's. A check without a result by the deadline is CRITICAL.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NamedTuple

import nagiosplugin

from check_grpc_health.plugin.check import build_check
from check_grpc_health.plugin.document import check_document, failure_document
from check_grpc_health.text import clean_text, scrub

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nagiosplugin.state import ServiceState

    from check_grpc_health.fleet.file import Entry


class Outcome(NamedTuple):
    """What one target's check found, in the forms the outputs need."""

    entry: Entry
    state: ServiceState
    summary: str
    document: dict[str, Any]


def check_entry(entry: Entry) -> Outcome:
    """Run one target's plugin check in this thread."""
    if entry.options is None:
        message = entry.error or "unusable line"
        document = failure_document(nagiosplugin.Unknown, message)
        return Outcome(entry, nagiosplugin.Unknown, message, document)
    check = build_check(entry.options)
    check()
    # As the plugin's own output does: no metadata value may reach the output.
    summary = scrub(clean_text(check.summary_str), entry.options.probe.metadata)
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


def worst(outcomes: Sequence[Outcome]) -> ServiceState:
    """The worst state, as a plugin's exit code ranks them (UNKNOWN above CRITICAL)."""
    return max((outcome.state for outcome in outcomes), key=lambda state: state.code)
