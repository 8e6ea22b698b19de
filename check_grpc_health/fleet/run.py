"""Running the fleet: every line's plugin check, concurrently, within one deadline.

Layer: adapter (the fleet). Every line is the plugin's own check
(:func:`check_grpc_health.plugin.check.build_check`), so states, thresholds and
messages are exactly the plugin's. Lines of the same target and transport share one
connection (:mod:`check_grpc_health.fleet.channels`). A check without a result by the
deadline is CRITICAL.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NamedTuple

import nagiosplugin

from check_grpc_health.plugin.check import build_check
from check_grpc_health.plugin.document import check_document, failure_document
from check_grpc_health.plugin.options import NAME, Thresholds
from check_grpc_health.text import clean_text, scrub, state_name

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from nagiosplugin.state import ServiceState

    from check_grpc_health.fleet.channels import SharedChannels
    from check_grpc_health.fleet.file import Entry
    from check_grpc_health.plugin.backends import BackendsProber
    from check_grpc_health.plugin.check import Prober
    from check_grpc_health.plugin.options import PluginOptions


_NO_THRESHOLDS = Thresholds()


class Outcome(NamedTuple):
    """What one line's check found, in the forms the outputs need.

    ``perfdata`` holds the plugin's perfdata values (``label=value;warn;crit;min;max``),
    ``started`` and ``finished`` the wall-clock (Unix) times of the check, ``details``
    the plugin's long output lines (one per service when a line checks several).
    """

    entry: Entry
    state: ServiceState
    summary: str
    document: dict[str, Any]
    perfdata: tuple[str, ...] = ()
    started: float = 0.0
    finished: float = 0.0
    details: tuple[str, ...] = ()

    @property
    def status_line(self) -> str:
        """The plugin's own first output line, without perfdata: ``GRPC_HEALTH OK - ...``."""
        return f"{NAME} {state_name(self.state)} - {self.summary}"


def check_entry(
    entry: Entry, channels: SharedChannels | None = None, *, documents: bool = True
) -> Outcome:
    """Run one line's plugin check in this thread.

    Without ``documents`` (no output needs the ``--json`` document) the outcome's
    document is empty, which saves building one per line.
    """
    shared = channels is not None and not _judges_connect_time(entry)
    return judge_entry(entry, channels if shared else None, documents=documents)


def judge_entry(
    entry: Entry,
    prober: Prober | None = None,
    backends_prober: BackendsProber | None = None,
    *,
    documents: bool = True,
) -> Outcome:
    """One line's plugin check on what ``prober`` returns (the core's probe without one).

    The fleet's probers share channels; a resident monitor's return what its streams
    learnt, so that every line is judged by the plugin's own check either way.
    """
    if entry.options is None:
        message = entry.error or "unusable line"
        document = failure_document(nagiosplugin.Unknown, message)
        now = time.time()
        return Outcome(entry, nagiosplugin.Unknown, message, document, (), now, now)
    options = entry.options
    check = build_check(options, prober, backends_prober)
    started = time.time()
    check()
    finished = _ended(check, options, started)
    # As the plugin's own output does: no metadata value may reach the output.
    metadata = options.probe.metadata
    if documents:
        document = check_document(check, options)
        # The document holds the summary already: wording it again costs as much as judging.
        text = document["summary"]
    else:
        document, text = {}, check.summary_str
    summary = scrub(clean_text(text), metadata)
    perfdata = tuple(scrub(item, metadata) for item in check.perfdata)
    # The plugin's long output: one line per service when a line checks several.
    verbose = check.verbose_str
    details = tuple(scrub(clean_text(str(item)), metadata) for item in verbose) if verbose else ()
    return Outcome(entry, check.state, summary, document, perfdata, started, finished, details)


def _ended(check: nagiosplugin.Check, options: PluginOptions, started: float) -> float:
    """When the check itself ended: its start plus the time it measured (the perfdata's
    ``time``), not the moment judging and wording it were done too (later by up to a
    scheduler's slice or more on a busy machine). Under ``--wait`` that time is the last
    probe's only, so there it is the moment the whole check returned."""
    now = time.time()
    elapsed = getattr(check.resources[0], "elapsed", None) if check.resources else None
    if options.wait is not None or not isinstance(elapsed, float):
        return now
    return min(started + elapsed, now)


def _judges_connect_time(entry: Entry) -> bool:
    return entry.options is not None and entry.options.connect_time != _NO_THRESHOLDS


def run_fleet(
    entries: Sequence[Entry],
    budget: float,
    concurrency: int,
    *,
    share: bool = True,
    documents: bool = True,
    done: Callable[[Outcome], None] | None = None,
    deadline: float | None = None,
) -> list[Outcome]:
    """Check every entry concurrently; a target without a result by ``budget`` is CRITICAL.

    ``concurrency`` threads take the next line as they come free. (A thread pool's
    future per line would cost a lock, a condition and a queue entry each: at 10,000
    lines, megabytes and milliseconds for nothing.) ``done`` gets each outcome once, the
    moment its check ends (the deliveries hand it on at once), and the late ones at the
    deadline; it must be quick, for it runs under the lock the threads take lines with.
    ``deadline``, a ``time.monotonic()`` instant, ends the checks earlier than ``budget``
    from now (the fleet counts its ``-t`` from the process's start); ``budget`` still
    names the limit in the output.
    """
    import threading

    from check_grpc_health.fleet.channels import SharedChannels

    if deadline is None:
        deadline = time.monotonic() + budget
    channels = SharedChannels() if share else None
    found: list[Outcome | None] = [None] * len(entries)
    pending = iter(range(len(entries)))
    taking = threading.Lock()
    closed = False

    def record(index: int, outcome: Outcome) -> None:
        with taking:
            if closed:  # past the deadline: the line is already reported late
                return
            found[index] = outcome
            if done is not None:
                done(outcome)

    def work() -> None:
        while time.monotonic() < deadline:
            with taking:
                index = next(pending, None)
            if index is None:
                return
            try:
                outcome = check_entry(entries[index], channels, documents=documents)
            except (Exception, SystemExit) as error:  # a defect costs one line, not the run
                message = f"check failed: {clean_text(str(error)) or type(error).__name__}"
                options = entries[index].options
                if options is not None:  # the error's text may quote a header's value
                    message = scrub(message, options.probe.metadata)
                outcome = _failure(entries[index], nagiosplugin.Unknown, message, 0.0)
            record(index, outcome)

    # Daemon threads: checks past the deadline are abandoned, not waited for. Each has
    # its own deadlines and ends soon, and the process exits without joining them.
    workers = [
        threading.Thread(target=work, name="fleet-check", daemon=True)
        for _ in range(max(1, min(concurrency, len(entries))))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    late = f"no result within the fleet's {budget:g}s deadline (-t)"
    with taking:
        closed = True
        outcomes = []
        for entry, outcome in zip(entries, found, strict=True):
            if outcome is not None:
                outcomes.append(outcome)
                continue
            failure = _failure(entry, nagiosplugin.Critical, late, budget)
            if done is not None:
                done(failure)
            outcomes.append(failure)
    return outcomes


def _failure(entry: Entry, state: ServiceState, message: str, took: float) -> Outcome:
    now = time.time()
    return Outcome(entry, state, message, failure_document(state, message), (), now - took, now)


def worst(outcomes: Sequence[Outcome]) -> ServiceState:
    """The worst state, as a plugin's exit code ranks them (UNKNOWN above CRITICAL)."""
    return max((outcome.state for outcome in outcomes), key=lambda state: state.code)
