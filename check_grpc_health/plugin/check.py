"""The plugin's check: a resource that probes, contexts that judge, a summary that words.

Layer: adapter (the Nagios/Icinga plugin), built the way nagiosplugin intends.
:class:`HealthResource` probes the target once through the core and yields metrics,
contexts judge them, and :class:`HealthSummary` words the status line. A network
failure is a metric judged CRITICAL; only input the check cannot judge is UNKNOWN.
:func:`build_check` is pure: tests call it and read ``check.state`` without exiting.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import nagiosplugin

from check_grpc_health.core.results import (
    ConnectFailure,
    HealthCheckError,
    InvalidArgument,
    ProbeResult,
    RpcFailure,
    ServiceResult,
)
from check_grpc_health.plugin.contexts import (
    CertificateContext,
    ConnectionContext,
    DecimalContext,
    service_labels,
)
from check_grpc_health.plugin.options import NAME, SPELLING, PluginOptions, Thresholds
from check_grpc_health.text import clean_text, explained, quote, seconds, state_name, subject

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.plugin.backends import BackendsProber

    # A prober takes the options and the diagnosis budget (``diagnose_within``).
    Prober = Callable[[ProbeOptions, float], ProbeResult]

_log = logging.getLogger("nagiosplugin.grpc_health")


class HealthResource(nagiosplugin.Resource):
    """Domain model: the health of one gRPC server, learnt with one core probe.

    Keeps what it learnt (``result`` or ``failure``) for the JSON rendering.
    ``prober``, when given, replaces the core's ``probe`` (the fleet's probes share
    one channel between checks of the same target); it raises as ``probe`` does.
    """

    name = NAME

    def __init__(self, options: PluginOptions, prober: Prober | None = None) -> None:
        self.options = options
        self.prober = prober
        self.result: ProbeResult | None = None
        self.failure: ConnectFailure | None = None
        self.elapsed = 0.0
        self.labels = service_labels(options.probe.services)

    def probe(self) -> Generator[nagiosplugin.Metric, None, None]:
        """Probe once; a connection failure is a metric, bad input a CheckError."""
        options = self.options.probe
        _log.debug(
            "probing %s (grpc target %s)", options.target.display, options.target.grpc_target
        )
        # Imported here, so main() can quiet grpc's own logging before grpc loads.
        from check_grpc_health.core.probe import probe

        started = time.monotonic()
        if self.options.wait is not None:
            yield from self._wait()
            return
        within = self.options.diagnose_within
        try:
            if self.options.all_services:
                from check_grpc_health.core.discovery import probe_all_services

                result = probe_all_services(options, diagnose_within=within)
                self.labels = service_labels([item.service for item in result.services])
            elif self.prober is not None:
                result = self.prober(options, within)
            else:
                result = probe(options, diagnose_within=within)
        except InvalidArgument as error:
            raise nagiosplugin.CheckError(clean_text(explained(error, SPELLING))) from None
        except ConnectFailure as failure:
            yield from self.failure_metrics(failure, time.monotonic() - started)
            return
        except HealthCheckError as error:
            # E.g. no reflection for --all-services: the check cannot judge.
            raise nagiosplugin.CheckError(clean_text(str(error))) from None
        yield from self.result_metrics(result)

    def _wait(self) -> Iterator[nagiosplugin.Metric]:
        """--wait: the same metrics for the state the wait ended in, and how long it took."""
        from check_grpc_health.plugin.waiting import wait_for_health

        try:
            outcome, waited = wait_for_health(self.options.probe, self.options.wait or 0.0)
        except InvalidArgument as error:
            raise nagiosplugin.CheckError(clean_text(str(error))) from None
        if isinstance(outcome, ConnectFailure):
            yield from self.failure_metrics(outcome, waited)
        else:
            yield from self.result_metrics(outcome)
        yield nagiosplugin.Metric("wait", waited, "s", min=0, context="wait")

    def failure_metrics(
        self, failure: ConnectFailure, elapsed: float
    ) -> Iterator[nagiosplugin.Metric]:
        """No connection: one metric the connection context judges CRITICAL, and the time."""
        self.failure = failure
        self.elapsed = elapsed
        _log.debug("connection failed after %.4fs: %s", self.elapsed, failure)
        yield nagiosplugin.Metric("connection", failure, context="connection")
        yield nagiosplugin.Metric("time", self.elapsed, "s", min=0, context="time")

    def result_metrics(self, result: ProbeResult) -> Iterator[nagiosplugin.Metric]:
        """One metric per service, then the timings and the certificate's days left."""
        self.result = result
        self.elapsed = result.time
        for label, outcome in zip(self.labels, result.services, strict=True):
            found = outcome.error if outcome.status is None else outcome.status.name
            _log.debug("service %r: %s", outcome.service, found)
            yield nagiosplugin.Metric(label, outcome, context="health")
        yield nagiosplugin.Metric("time", result.time, "s", min=0, context="time")
        yield nagiosplugin.Metric("connect_time", result.connect_time, "s", min=0)
        yield nagiosplugin.Metric("rpc_time", result.rpc_time, "s", min=0)
        if result.certificate is not None:
            yield nagiosplugin.Metric("cert_days", result.certificate.days_left)


class HealthContext(nagiosplugin.Context):
    """Maps each service's health status to a state; an RPC error is CRITICAL.

    With several services each gets a ``serving_<service>`` perfdata value, 1 when
    SERVING and 0 otherwise.
    """

    def __init__(self, options: PluginOptions) -> None:
        super().__init__("health")
        self.options = options

    def evaluate(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Result:
        outcome: ServiceResult = metric.value
        if outcome.error is not None:
            hint = describe_rpc_failure(outcome.error, self.options.probe.rpc_timeout)
            return nagiosplugin.Result(nagiosplugin.Critical, hint, metric)
        assert outcome.status is not None
        hint = f"{subject(outcome.service)} is {outcome.status.name}"
        return nagiosplugin.Result(self.options.state_for(outcome.status), hint, metric)

    def performance(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Performance | None:
        assert isinstance(resource, HealthResource)
        if len(resource.labels) < 2:
            return None
        outcome: ServiceResult = metric.value
        return nagiosplugin.Performance(metric.name, int(outcome.serving), "", None, None, 0, 1)


def describe_rpc_failure(error: RpcFailure, rpc_timeout: float) -> str:
    """One line for a failed health RPC that names the service and the gRPC code."""
    service = subject(error.service)
    if error.code_name == "NOT_FOUND":
        return f"unknown service {quote(error.service)} (NOT_FOUND)"
    if error.code_name == "UNIMPLEMENTED":
        # "No health service" only when the server said so; else the server's reason.
        if error.diagnosis is None or error.diagnosis.kind == "no_health_service":
            return "the server lacks the grpc.health.v1.Health service (UNIMPLEMENTED)"
        return clean_text(explained(error, SPELLING))
    if error.code_name == "DEADLINE_EXCEEDED":
        return f"{service}: no answer within the {seconds(rpc_timeout)} RPC timeout"
    details = clean_text(error.details) if error.details else "no details"
    return f"{service}: health RPC failed with {error.code_name}: {details}"


class HealthSummary(nagiosplugin.Summary):
    """Words the status line and the long output (one line per service)."""

    def __init__(self, options: PluginOptions) -> None:
        self.options = options

    @property
    def target(self) -> str:
        return clean_text(self.options.probe.target.display)

    def ok(self, results: nagiosplugin.Results) -> str:
        health = _judged(results, "health")
        outcomes: list[ServiceResult] = [_value(result) for result in health]
        if all(outcome.serving for outcome in outcomes):
            if len(outcomes) == 1:
                what = f"{subject(outcomes[0].service)} is SERVING"
            else:
                what = f"{len(outcomes)} services are SERVING"
        else:
            what = ", ".join(str(result) for result in health)
        took = seconds(_value(results["time"]))
        certificate = [str(result) for result in _judged(results, "cert_days")]
        return ", ".join([f"{self.target}: {what} in {took}{_waited(results)}", *certificate])

    def problem(self, results: nagiosplugin.Results) -> str:
        worst = results.first_significant
        if worst.metric is None:
            return str(worst)  # a CheckError (UNKNOWN) says it all
        if worst.metric.context == "connection":
            return str(worst) + _waited(results)
        problems = _grouped([result for result in results if result.state != nagiosplugin.Ok])
        return f"{self.target}: " + ", ".join(problems) + _waited(results)

    def verbose(self, results: nagiosplugin.Results) -> list[str]:
        lines = []
        health = _judged(results, "health")
        if len(health) > 1 or (health and self.options.verbose >= 1):
            for result in health:
                outcome: ServiceResult = _value(result)
                words = _naming(outcome.service, str(result))
                lines.append(f"{state_name(result.state)}: {words} ({seconds(outcome.rpc_time)})")
        if self.options.verbose >= 1:
            lines.extend(self._details(results))
            lines.extend(self._diagnosis(results))
        return lines

    def _diagnosis(self, results: nagiosplugin.Results) -> Iterator[str]:
        """grpcio's own text and how the diagnosis found the cause, for -v."""
        for result in _judged(results, "connection"):
            failure: ConnectFailure = _value(result)
            if failure.detail:
                yield f"grpc: {clean_text(failure.detail)}"
            found = failure.diagnosis
            if found is not None:
                how = "active test" if found.probed else "the error text"
                yield f"diagnosis: {found.kind} in {seconds(found.elapsed)} (from {how})"

    def _details(self, results: nagiosplugin.Results) -> Iterator[str]:
        yield from proxy_notes(self.options.probe)
        names = ("connect_time", "rpc_time", "time")
        known = [f"{name} {seconds(_value(results[name]))}" for name in names if name in results]
        if known:
            yield ", ".join(known)
        for result in _judged(results, "cert_days"):
            resource = result.resource
            assert isinstance(resource, HealthResource)
            info = resource.result.certificate if resource.result else None
            if info is not None:
                version = f", {info.tls_version}" if info.tls_version else ""
                yield (
                    f"certificate: subject {info.subject}, issuer {info.issuer}, "
                    f"expires {info.not_after:%Y-%m-%d %H:%M:%S} UTC{version}"
                )


def _naming(service: str, words: str) -> str:
    """``words`` about one service, with the service named when they do not name it.

    A line per service must say whose it is: "the server lacks the ... Health service"
    is the same words for every service of a server without one.
    """
    return words if subject(service) in words else f"{subject(service)}: {words}"


def _waited(results: nagiosplugin.Results) -> str:
    """`` after waiting 1.2s`` under --wait, else nothing."""
    return f" after waiting {seconds(_value(results['wait']))}" if "wait" in results else ""


def _grouped(problems: list[nagiosplugin.Result]) -> list[str]:
    """Each problem once: the same words for several services name the services once."""
    services: dict[str, list[str]] = {}
    for result in problems:
        services.setdefault(str(result), [])
        if result.metric is not None and result.metric.context == "health":
            services[str(result)].append(_value(result).service)
    lines = []
    for text, names in services.items():
        named = ", ".join(quote(name) for name in names)
        lines.append(f"{text} (services {named})" if len(names) > 1 else text)
    return lines


def proxy_notes(options: ProbeOptions) -> list[str]:
    """For ``-v``: whether grpcio sends the check through an HTTP proxy, and why.

    Read from the environment as grpcio reads it; credentials are never shown.
    """
    from check_grpc_health.core.proxy import proxy_for

    decision = proxy_for(options.target, enabled=options.use_proxy)
    return [f"proxy: {clean_text(note)}" for note in decision.notes]


def _judged(results: nagiosplugin.Results, context: str) -> list[nagiosplugin.Result]:
    """The results of one context, in the order the resource yielded their metrics."""
    return [
        result
        for result in results.results
        if result.metric is not None and result.metric.context == context
    ]


def _value(result: nagiosplugin.Result) -> Any:
    assert result.metric is not None
    return result.metric.value


def build_check(
    options: PluginOptions,
    prober: Prober | None = None,
    backends_prober: BackendsProber | None = None,
) -> nagiosplugin.Check:
    """The check for ``options``: call it (``check()``), then read ``check.state``.

    ``prober`` replaces the core's probe (see :class:`HealthResource`); the
    ``--all-services`` mode always uses its own. ``backends_prober`` replaces the
    probe of every address in the ``--all-addresses`` mode.
    """
    if options.all_addresses:
        from check_grpc_health.plugin.backends import build_backends_check

        return build_backends_check(options, backends_prober)
    return nagiosplugin.Check(
        HealthResource(options, prober),
        ConnectionContext(),
        HealthContext(options),
        DecimalContext("time", options.time),
        DecimalContext("connect_time", options.connect_time),
        DecimalContext("rpc_time", options.rpc_time),
        CertificateContext(options.cert_days),
        # --wait: how long the check waited for SERVING, for the perfdata only.
        DecimalContext("wait", Thresholds()),
        HealthSummary(options),
    )
