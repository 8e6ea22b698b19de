"""The plugin's ``--all-addresses`` mode: every backend behind a name, N of M healthy.

Layer: adapter (part of the Nagios plugin). A :class:`BackendsResource` resolves the
name and probes each address through the core; each backend becomes an informational
metric (1 healthy, 0 not) and the count of healthy backends is judged against minimum
counts or shares (``--backends-warning``/``--backends-critical``). Imported only when
the mode is asked for.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import nagiosplugin

from check_grpc_health.nagios import (
    NAME,
    DecimalContext,
    clean_text,
    decimal,
    seconds,
    service_labels,
    state_name,
    subject,
)
from check_grpc_health.results import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Generator

    from check_grpc_health.discovery import BackendResult
    from check_grpc_health.nagios import PluginOptions


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


class BackendsResource(nagiosplugin.Resource):
    """The backends behind one name, each probed once through the core."""

    name = NAME

    def __init__(self, options: PluginOptions) -> None:
        self.options = options
        self.backends: tuple[BackendResult, ...] = ()
        self.elapsed = 0.0

    def probe(self) -> Generator[nagiosplugin.Metric, None, None]:
        import time

        from check_grpc_health.discovery import probe_addresses
        from check_grpc_health.results import ConnectFailure

        started = time.monotonic()
        try:
            self.backends = probe_addresses(self.options.probe, self.options.address_family)
        except InvalidArgument as error:
            raise nagiosplugin.CheckError(clean_text(str(error))) from None
        except ConnectFailure as failure:
            # The name itself does not resolve: no backend can be judged healthy.
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


def build_backends_check(options: PluginOptions) -> nagiosplugin.Check:
    """The ``--all-addresses`` check; call it, then read ``check.state``."""
    from check_grpc_health.nagios import ConnectionContext

    return nagiosplugin.Check(
        BackendsResource(options),
        ConnectionContext(),
        BackendContext(),
        HealthyBackendsContext(
            options.backends_warning or DEFAULT_WARNING,
            options.backends_critical or DEFAULT_CRITICAL,
        ),
        DecimalContext("time", options.time),
        BackendsSummary(options),
    )


def backends_document(check: nagiosplugin.Check) -> dict[str, Any]:
    """The ``--json`` object of an ``--all-addresses`` check."""
    resource = check.resources[0]
    assert isinstance(resource, BackendsResource)
    backends = []
    for backend in resource.backends:
        result = backend.result
        backends.append(
            {
                "address": backend.target.display,
                "healthy": backend.healthy,
                "error": None if backend.failure is None else clean_text(str(backend.failure)),
                "services": []
                if result is None
                else [
                    {
                        "service": outcome.service,
                        "status": None if outcome.status is None else outcome.status.name,
                        "error": None if outcome.error is None else outcome.error.code_name,
                    }
                    for outcome in result.services
                ],
                "time": None if result is None else round(result.time, 6),
            }
        )
    return {
        "state": state_name(check.state),
        "exit_code": check.exitcode,
        "summary": check.summary_str,
        "target": resource.options.probe.target.display,
        "backends": backends,
        "healthy": sum(backend.healthy for backend in resource.backends),
        "total": len(resource.backends),
        "time": round(resource.elapsed, 6),
        "perfdata": " ".join(check.perfdata),
    }
