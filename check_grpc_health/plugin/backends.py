"""The plugin's ``--all-addresses`` mode: every backend behind a name, N of M healthy.

Layer: adapter (the Nagios/Icinga plugin). A :class:`BackendsResource` resolves the
name and probes each address through the core; each backend becomes an informational
metric (1 healthy, 0 not) and the count of healthy backends is judged against minimum
counts or shares (``--backends-warning``/``--backends-critical``). Imported only when
the mode is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import nagiosplugin

from check_grpc_health.plugin.contexts import ConnectionContext, DecimalContext, service_labels
from check_grpc_health.plugin.options import NAME
from check_grpc_health.plugin.thresholds import (
    DEFAULT_CRITICAL,
    DEFAULT_WARNING,
    MinimumHealthy,
)
from check_grpc_health.text import clean_text, seconds, subject

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from check_grpc_health.core.discovery import BackendResult
    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import ConnectFailure
    from check_grpc_health.plugin.options import PluginOptions

    # Takes the options and the address family; returns every backend's probe.
    BackendsProber = Callable[[ProbeOptions, int], tuple[BackendResult, ...]]


class BackendsResource(nagiosplugin.Resource):
    """The backends behind one name, each probed once through the core."""

    name = NAME

    def __init__(self, options: PluginOptions, prober: BackendsProber | None = None) -> None:
        self.options = options
        self.prober = prober
        self.backends: tuple[BackendResult, ...] = ()
        self.failure: ConnectFailure | None = None
        self.elapsed = 0.0

    def probe(self) -> Generator[nagiosplugin.Metric, None, None]:
        import time

        from check_grpc_health.core.discovery import probe_addresses
        from check_grpc_health.core.results import ConnectFailure, InvalidArgument

        started = time.monotonic()
        try:
            probe = self.prober or probe_addresses
            self.backends = probe(self.options.probe, self.options.address_family)
        except InvalidArgument as error:
            raise nagiosplugin.CheckError(clean_text(str(error))) from None
        except ConnectFailure as failure:
            # The name itself does not resolve: no backend can be judged healthy.
            self.failure = failure
            self.elapsed = time.monotonic() - started
            yield nagiosplugin.Metric("connection", failure, context="connection")
            yield nagiosplugin.Metric("time", self.elapsed, "s", min=0, context="time")
            return
        self.elapsed = time.monotonic() - started
        labels = backend_labels(self.backends)
        for label, backend in zip(labels, self.backends, strict=True):
            yield nagiosplugin.Metric(label, backend, context="backend")
        healthy = sum(backend.healthy for backend in self.backends)
        yield nagiosplugin.Metric(
            "healthy_backends", healthy, min=0, max=len(self.backends), context="healthy_backends"
        )
        yield nagiosplugin.Metric("time", self.elapsed, "s", min=0, context="time")


def backend_labels(backends: tuple[BackendResult, ...]) -> tuple[str, ...]:
    """``backend_<address>`` perfdata labels, unique and legal."""
    names = [backend.target.display for backend in backends]
    return tuple(label.replace("serving_", "backend_", 1) for label in service_labels(names))


def describe_backend(backend: BackendResult) -> str:
    """One phrase for one backend: healthy, its unhealthy services, or why it failed."""
    address = backend.target.display
    if backend.failure is not None:
        return f"{address}: {clean_text(str(backend.failure))}"
    assert backend.result is not None
    problems = []
    for outcome in backend.result.services:
        if outcome.error is not None:
            problems.append(f"{subject(outcome.service)}: {outcome.error.code_name}")
        elif not outcome.serving:
            assert outcome.status is not None
            problems.append(f"{subject(outcome.service)} is {outcome.status.name}")
    if not problems:
        return f"{address}: SERVING in {seconds(backend.result.time)}"
    return f"{address}: " + ", ".join(problems)


class BackendContext(nagiosplugin.Context):
    """One backend: always OK on its own (the count decides), 1/0 perfdata."""

    def __init__(self) -> None:
        super().__init__("backend")

    def evaluate(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Result:
        return nagiosplugin.Result(nagiosplugin.Ok, describe_backend(metric.value), metric)

    def performance(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Performance:
        backend: BackendResult = metric.value
        return nagiosplugin.Performance(metric.name, int(backend.healthy), "", None, None, 0, 1)


class HealthyBackendsContext(nagiosplugin.Context):
    """Judges the healthy count against the minimum counts or shares."""

    def __init__(self, warning: MinimumHealthy, critical: MinimumHealthy) -> None:
        super().__init__("healthy_backends")
        self.warning = warning
        self.critical = critical

    def evaluate(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Result:
        healthy, total = int(metric.value), int(metric.max)
        text = f"{healthy} of {total} backends healthy"
        if total == 0 or healthy < self.critical.required(total):
            return nagiosplugin.Result(
                nagiosplugin.Critical, f"{text} (critical below {self.critical})", metric
            )
        if healthy < self.warning.required(total):
            return nagiosplugin.Result(
                nagiosplugin.Warn, f"{text} (warning below {self.warning})", metric
            )
        return nagiosplugin.Result(nagiosplugin.Ok, text, metric)

    def performance(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Performance:
        total = int(metric.max)
        warning = nagiosplugin.Range(f"{self.warning.required(total)}:")
        critical = nagiosplugin.Range(f"{self.critical.required(total)}:")
        return nagiosplugin.Performance(metric.name, metric.value, "", warning, critical, 0, total)


class BackendsSummary(nagiosplugin.Summary):
    """``name: 2 of 3 backends healthy; 127.0.0.3:50051: NOT_SERVING``."""

    def __init__(self, options: PluginOptions) -> None:
        self.options = options

    def _line(self, results: nagiosplugin.Results) -> str:
        target = clean_text(self.options.probe.target.display)
        if "healthy_backends" not in results:
            return str(results.first_significant)
        count = str(results["healthy_backends"])
        unhealthy = [
            str(result)
            for result in results
            if result.metric is not None
            and result.metric.context == "backend"
            and not result.metric.value.healthy
        ]
        timing = [
            str(result)
            for result in results
            if result.state != nagiosplugin.Ok
            and result.metric is not None
            and result.metric.context == "time"
        ]
        return "; ".join([f"{target}: {count}", *unhealthy, *timing])

    def ok(self, results: nagiosplugin.Results) -> str:
        return self._line(results)

    def problem(self, results: nagiosplugin.Results) -> str:
        return self._line(results)

    def verbose(self, results: nagiosplugin.Results) -> list[str]:
        return [
            f"{'healthy' if result.metric.value.healthy else 'unhealthy'}: {result}"
            for result in results
            if result.metric is not None and result.metric.context == "backend"
        ]


def build_backends_check(
    options: PluginOptions, prober: BackendsProber | None = None
) -> nagiosplugin.Check:
    """The ``--all-addresses`` check; call it, then read ``check.state``.

    ``prober``, when given, replaces the core's ``probe_addresses`` (a resident monitor
    judges the backends it follows); it raises as ``probe_addresses`` does.
    """
    return nagiosplugin.Check(
        BackendsResource(options, prober),
        ConnectionContext(),
        BackendContext(),
        HealthyBackendsContext(
            options.backends_warning or DEFAULT_WARNING,
            options.backends_critical or DEFAULT_CRITICAL,
        ),
        DecimalContext("time", options.time),
        BackendsSummary(options),
    )
