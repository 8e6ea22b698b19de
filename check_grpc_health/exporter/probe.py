"""``/probe``: one synchronous check per scrape, blackbox_exporter's multi-target way.

Layer: adapter (the exporter), the prober. A request names ``target`` and ``module``
(and optionally one or more ``service``); the module's options plus ``-H target`` make a
fleet line, which the one-shot fleet's check runs in the request's thread
(:func:`check_grpc_health.fleet.run.check_entry`), so states, thresholds and the
diagnosis are exactly the plugin's. The answer is the one metric set of that line plus
``probe_success`` and ``probe_duration_seconds``, rendered from a registry of its own.

The deadline is Prometheus' scrape timeout (``X-Prometheus-Scrape-Timeout-Seconds``)
less ``--timeout-offset``, capped by the module's ``-t``; the connect and RPC deadlines
each get at most half of it, as a fleet line's do. A request that cannot be probed gets
a 4xx and one line saying why (:class:`Refused`), before anything is dialed.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.exporter.metrics import LINES, PROBE, MetricSet, add_line, serving
from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from check_grpc_health.exporter.allow import AllowedTargets
    from check_grpc_health.exporter.modules import Module
    from check_grpc_health.fleet.file import Entry
    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.plugin.options import PluginOptions

TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"


class Refused(Exception):
    """A request that gets no probe: the HTTP status, the reason label, one line."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ProbeSettings(NamedTuple):
    """What ``/probe`` needs: the modules, the allowed targets, the timeout offset."""

    modules: Mapping[str, Module]
    allowed: AllowedTargets
    offset: float


class ProbeRequest(NamedTuple):
    """A checked request: the module, the line to check, and its deadline in seconds."""

    module: str
    entry: Entry
    deadline: float


def parse_request(
    query: Mapping[str, Sequence[str]],
    timeout_header: str | None,
    settings: ProbeSettings,
    environ: Mapping[str, str],
) -> ProbeRequest:
    """The probe a request asks for, or :class:`Refused` saying why there is none."""
    target = _single(query, "target")
    name = _single(query, "module")
    if not target:
        raise Refused(400, "bad_request", "the target parameter is missing (?target=HOST:PORT)")
    if not name:
        raise Refused(400, "bad_request", "the module parameter is missing (&module=NAME)")
    modules = settings.modules
    module = modules.get(name)
    if module is None:
        known = ", ".join(sorted(modules))
        raise Refused(
            400, "unknown_module", f"unknown module {clean_text(repr(name))} (known: {known})"
        )
    scrape_timeout = _scrape_timeout(timeout_header)
    services = [clean_text(service) for service in query.get("service", [])]
    try:
        options = module.options(target, services, environ)
    except InvalidArgument as error:
        raise Refused(400, "bad_request", clean_text(str(error))) from None
    if not settings.allowed.allows(target, options.probe.target.display):
        raise Refused(
            403,
            "target_not_allowed",
            f"target {clean_text(repr(target))} matches no --allow-target pattern",
        )
    deadline = options.timeout
    if scrape_timeout is not None:
        # As blackbox_exporter: the scrape timeout less the offset; an offset that would
        # leave less than half of it leaves half.
        deadline = min(deadline, max(scrape_timeout - settings.offset, scrape_timeout / 2))
    from check_grpc_health.fleet.file import Entry

    entry = Entry(0, f"{name}: -H {target}", _within(options, deadline), None)
    return ProbeRequest(name, entry, deadline)


def _single(query: Mapping[str, Sequence[str]], key: str) -> str:
    values = query.get(key) or []
    if len(values) > 1:
        raise Refused(400, "bad_request", f"the {key} parameter is given {len(values)} times")
    return values[0].strip() if values else ""


def _scrape_timeout(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise Refused(
            400,
            "bad_request",
            f"{TIMEOUT_HEADER} {clean_text(repr(header[:40]))} is not a positive number of seconds",
        )
    return seconds


def _within(options: PluginOptions, deadline: float) -> PluginOptions:
    """The options with every deadline inside ``deadline`` (the check's -t)."""
    if deadline >= options.timeout:
        return options
    share = deadline / options.timeout
    half = deadline / 2
    probe = replace(
        options.probe,
        connect_timeout=min(options.probe.connect_timeout * share, half),
        rpc_timeout=min(options.probe.rpc_timeout * share, half),
    )
    wait = None if options.wait is None else options.wait * share
    return replace(options, probe=probe, timeout=deadline, wait=wait)


def run_probe(request: ProbeRequest) -> tuple[MetricSet, Outcome, float]:
    """Check the request's line in this thread: its metrics, its outcome, the seconds taken."""
    from check_grpc_health.fleet.run import check_entry
    from check_grpc_health.fleet.sinks.table import describe_line

    started = time.monotonic()
    outcome = check_entry(request.entry, documents=True)
    took = time.monotonic() - started
    metrics = MetricSet(LINES, PROBE)
    options = request.entry.options
    assert options is not None
    line = {"name": describe_line(outcome), "target": options.probe.target.display}
    add_line(metrics, outcome, line)
    metrics.add("probe_success", {}, 1 if serving(outcome) else 0)
    metrics.add("probe_duration_seconds", {}, took)
    return metrics, outcome, took
