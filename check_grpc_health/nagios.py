"""The Nagios/Icinga plugin ``check_grpc_health``, built with nagiosplugin.

Layer: adapter. :func:`main` parses argv into one :class:`PluginOptions`;
:func:`build_check` turns that into a :class:`nagiosplugin.Check`. A
:class:`HealthResource` probes the target once through the core and yields metrics,
contexts judge them, and :class:`HealthSummary` words the status line. The output
follows the monitoring-plugins development guidelines: the first line is
``GRPC_HEALTH <STATE> - <summary> | <perfdata>``, the exit code is 0-3, network
trouble is CRITICAL, and UNKNOWN means only that the check could not judge.

Deadlines come from gRPC (connect and RPC timeouts). The overall ``-t`` budget is
enforced by a backstop timer of our own instead of nagiosplugin's: that one rounds to
whole seconds and raises inside whatever is running, which may be a blocking grpc
call. Ours prints one line and ends the process.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import nagiosplugin
from nagiosplugin.output import Output

from check_grpc_health import __version__
from check_grpc_health.entry import release_signals
from check_grpc_health.options import ProbeOptions, parse_metadata, parse_seconds
from check_grpc_health.results import (
    ConnectFailure,
    HealthCheckError,
    HealthStatus,
    InvalidArgument,
    ProbeResult,
    RpcFailure,
    ServiceResult,
)
from check_grpc_health.targets import parse_target
from check_grpc_health.tls import TlsOptions

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
    from io import StringIO

    from nagiosplugin.state import ServiceState

    from check_grpc_health.nagios_backends import MinimumHealthy

_log = logging.getLogger("nagiosplugin.grpc_health")

NAME = "GRPC_HEALTH"
DEFAULT_TIMEOUT = 10.0

_STATES_BY_NAME: dict[str, ServiceState] = {
    "OK": nagiosplugin.Ok,
    "0": nagiosplugin.Ok,
    "WARNING": nagiosplugin.Warn,
    "WARN": nagiosplugin.Warn,
    "1": nagiosplugin.Warn,
    "CRITICAL": nagiosplugin.Critical,
    "CRIT": nagiosplugin.Critical,
    "2": nagiosplugin.Critical,
    "UNKNOWN": nagiosplugin.Unknown,
    "3": nagiosplugin.Unknown,
}
# Every health status but SERVING means the service must not get traffic.
DEFAULT_STATUS_STATES: Mapping[HealthStatus, ServiceState] = {
    HealthStatus.SERVING: nagiosplugin.Ok,
    HealthStatus.NOT_SERVING: nagiosplugin.Critical,
    HealthStatus.UNKNOWN: nagiosplugin.Critical,
    HealthStatus.SERVICE_UNKNOWN: nagiosplugin.Critical,
}
# What a DecimalRange prints; anything else (inf, nan) breaks perfdata.
_RANGE_TEXT = re.compile(r"@?(~:|-?[0-9]+(\.[0-9]+)?:)?(-?[0-9]+(\.[0-9]+)?)?")
_RANGE_EXAMPLES = "e.g. 0.5, 10:, ~:1 or @0.2:0.4"
# No health check waits a day; a longer timeout is a typo.
_MAX_SECONDS = 86400.0
_FAMILY_FLAGS = {"-4": "--ipv4", "-6": "--ipv6"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Secrets shorter than this are not scrubbed from output: it would mangle numbers.
_MIN_SCRUBBED_SECRET = 6


class OutputMode(enum.Enum):
    """How the result is printed."""

    TEXT = "text"
    QUIET = "quiet"
    JSON = "json"


@dataclass(frozen=True)
class Thresholds:
    """A warning and a critical Nagios range for one metric."""

    warning: nagiosplugin.Range = field(default_factory=nagiosplugin.Range)
    critical: nagiosplugin.Range = field(default_factory=nagiosplugin.Range)


@dataclass(frozen=True)
class PluginOptions:
    """Everything one run of the plugin needs, parsed and validated.

    ``status_states`` overrides :data:`DEFAULT_STATUS_STATES`. ``timeout`` is the
    overall budget (``-t``) enforced by the backstop timer in :func:`main`.
    """

    probe: ProbeOptions
    time: Thresholds = field(default_factory=Thresholds)
    connect_time: Thresholds = field(default_factory=Thresholds)
    rpc_time: Thresholds = field(default_factory=Thresholds)
    cert_days: Thresholds = field(default_factory=Thresholds)
    status_states: tuple[tuple[HealthStatus, ServiceState], ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    verbose: int = 0
    output: OutputMode = OutputMode.TEXT
    all_services: bool = False
    all_addresses: bool = False
    address_family: int = 0  # socket.AF_UNSPEC: A and AAAA records
    backends_warning: MinimumHealthy | None = None
    backends_critical: MinimumHealthy | None = None

    def state_for(self, status: HealthStatus) -> ServiceState:
        """The plugin state a health status maps to, overrides included."""
        states = dict(DEFAULT_STATUS_STATES)
        states.update(self.status_states)
        return states[status]


# --- data acquisition -------------------------------------------------------------


class HealthResource(nagiosplugin.Resource):
    """Domain model: the health of one gRPC server, learnt with one core probe.

    Keeps what it learnt (``result`` or ``failure``) for the JSON rendering.
    """

    name = NAME

    def __init__(self, options: PluginOptions) -> None:
        self.options = options
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
        from check_grpc_health.probe import probe

        started = time.monotonic()
        try:
            if self.options.all_services:
                from check_grpc_health.discovery import probe_all_services

                result = probe_all_services(options)
                self.labels = service_labels([item.service for item in result.services])
            else:
                result = probe(options)
        except InvalidArgument as error:
            raise nagiosplugin.CheckError(clean_text(str(error))) from None
        except ConnectFailure as failure:
            self.failure = failure
            self.elapsed = time.monotonic() - started
            _log.debug("connection failed after %.4fs: %s", self.elapsed, failure)
            yield nagiosplugin.Metric("connection", failure, context="connection")
            yield nagiosplugin.Metric("time", self.elapsed, "s", min=0, context="time")
            return
        except HealthCheckError as error:
            # E.g. no reflection for --all-services: the check cannot judge.
            raise nagiosplugin.CheckError(clean_text(str(error))) from None
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


def service_labels(services: Sequence[str]) -> tuple[str, ...]:
    """Perfdata labels, one per service: ``serving_<service>``, unique and legal.

    The overall health (service ``""``) is ``serving_overall``. Characters that the
    perfdata format forbids in a label (``'``, ``=``) or that would break the output
    (``|``, spaces, control characters) become ``_``.
    """
    labels: list[str] = []
    for service in services:
        name = "".join(
            ch if ch.isascii() and ch.isprintable() and ch not in " '=|" else "_" for ch in service
        )
        label = base = f"serving_{name or 'overall'}"
        counter = 1
        while label in labels:
            counter += 1
            label = f"{base}_{counter}"
        labels.append(label)
    return tuple(labels)


# --- evaluation ---------------------------------------------------------------------


class ConnectionContext(nagiosplugin.Context):
    """Judges a failed connection (refused, timed out, TLS, not gRPC) CRITICAL."""

    def __init__(self) -> None:
        super().__init__("connection")

    def evaluate(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Result:
        failure: ConnectFailure = metric.value
        return nagiosplugin.Result(nagiosplugin.Critical, clean_text(str(failure)), metric)


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


class DecimalContext(nagiosplugin.ScalarContext):
    """A ScalarContext whose perfdata values are plain decimals, never ``1e-05``."""

    def __init__(self, name: str, thresholds: Thresholds) -> None:
        super().__init__(name, thresholds.warning, thresholds.critical)
        # ScalarContext converts its ranges to plain Ranges; keep ours, whose
        # violation messages print plain decimals too.
        self.warning, self.critical = thresholds.warning, thresholds.critical
        self.thresholds = thresholds

    def performance(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Performance | None:
        return nagiosplugin.Performance(
            metric.name,
            decimal(metric.value),
            metric.uom,
            self.thresholds.warning,
            self.thresholds.critical,
            metric.min,
            metric.max,
        )


class CertificateContext(DecimalContext):
    """Judges the days left on the server certificate against day thresholds.

    An expired certificate is CRITICAL even without thresholds.
    """

    def __init__(self, thresholds: Thresholds) -> None:
        super().__init__("cert_days", thresholds)

    def describe(self, metric: nagiosplugin.Metric) -> str | None:
        return None  # the result's hint says it all

    def evaluate(
        self, metric: nagiosplugin.Metric, resource: nagiosplugin.Resource
    ) -> nagiosplugin.Result:
        days = float(metric.value)
        if days < 0:
            text = f"server certificate expired {-days:.1f} days ago"
            return nagiosplugin.Result(nagiosplugin.Critical, text, metric)
        text = f"server certificate expires in {days:.1f} days"
        warning, critical = self.thresholds.warning, self.thresholds.critical
        if not critical.match(days):
            return nagiosplugin.Result(
                nagiosplugin.Critical, f"{text} (critical below {critical.start})", metric
            )
        if not warning.match(days):
            return nagiosplugin.Result(
                nagiosplugin.Warn, f"{text} (warning below {warning.start})", metric
            )
        return nagiosplugin.Result(nagiosplugin.Ok, text, metric)


def describe_rpc_failure(error: RpcFailure, rpc_timeout: float) -> str:
    """One line for a failed health RPC that names the service and the gRPC code."""
    service = subject(error.service)
    if error.code_name == "NOT_FOUND":
        return f"unknown service {quote(error.service)} (NOT_FOUND)"
    if error.code_name == "UNIMPLEMENTED":
        return "the server lacks the grpc.health.v1.Health service (UNIMPLEMENTED)"
    if error.code_name == "DEADLINE_EXCEEDED":
        return f"{service}: no answer within the {seconds(rpc_timeout)} RPC timeout"
    details = clean_text(error.details) if error.details else "no details"
    return f"{service}: health RPC failed with {error.code_name}: {details}"


# --- presentation -------------------------------------------------------------------


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
        return ", ".join([f"{self.target}: {what} in {took}", *certificate])

    def problem(self, results: nagiosplugin.Results) -> str:
        worst = results.first_significant
        if worst.metric is None or worst.metric.context == "connection":
            # A CheckError (UNKNOWN) or a failed connection says it all.
            return str(worst)
        problems = [str(result) for result in results if result.state != nagiosplugin.Ok]
        return f"{self.target}: " + ", ".join(problems)

    def verbose(self, results: nagiosplugin.Results) -> list[str]:
        lines = []
        health = _judged(results, "health")
        if len(health) > 1 or (health and self.options.verbose >= 1):
            for result in health:
                took = seconds(_value(result).rpc_time)
                lines.append(f"{state_name(result.state)}: {result} ({took})")
        if self.options.verbose >= 1:
            lines.extend(self._details(results))
        return lines

    def _details(self, results: nagiosplugin.Results) -> Iterator[str]:
        names = ("connect_time", "rpc_time", "time")
        known = [f"{name} {seconds(_value(results[name]))}" for name in names if name in results]
        if known:
            yield ", ".join(known)
        for result in _judged(results, "cert_days"):
            resource = result.resource
            assert isinstance(resource, HealthResource)
            info = resource.result.certificate if resource.result else None
            if info is not None:
                yield (
                    f"certificate: subject {info.subject}, issuer {info.issuer}, "
                    f"expires {info.not_after:%Y-%m-%d %H:%M:%S} UTC"
                )


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


class PluginOutput(Output):
    """Base of the plugin's outputs: knows the options, and reports the verdict.

    ``on_verdict`` is called with the exit code once the check has a result, before
    anything is printed, so that a late timer or signal cannot add a second line.
    """

    def __init__(self, logchan: logging.StreamHandler[StringIO], options: PluginOptions) -> None:
        super().__init__(logchan)
        self.options = options
        self.on_verdict: Callable[[int], None] | None = None

    def add(self, check: nagiosplugin.Check) -> None:
        if self.on_verdict is not None:
            self.on_verdict(check.exitcode)


class TextOutput(PluginOutput):
    """nagiosplugin's output, with two changes the monitoring cores need.

    Perfdata always stays on the first line (Icinga 2.13 mishandles perfdata in long
    output), and the long output appears at any verbosity, so that several services
    get one line each. ``quiet`` prints nothing at all when the state is OK, for cron.
    """

    def __init__(self, logchan: logging.StreamHandler[StringIO], options: PluginOptions) -> None:
        super().__init__(logchan, options)
        self.silent = False
        self.added = False

    def add(self, check: nagiosplugin.Check) -> None:
        super().add(check)
        self.added = True
        self.status = self.format_status(check)
        perfdata = self.format_perfdata(check)
        if perfdata:
            self.status += " " + perfdata
        self.add_longoutput(check.verbose_str)
        self.silent = self.options.output is OutputMode.QUIET and check.state == nagiosplugin.Ok

    def __str__(self) -> str:
        if self.silent:
            return ""
        if not self.added:
            # nagiosplugin's last resort after an unexpected error says "UNKNOWN: ...";
            # keep the plugin's own status line format.
            message = self.status.partition("UNKNOWN: ")[2] or self.status
            self.status = f"{NAME} UNKNOWN - {clean_text(message)}"
        return scrub(super().__str__(), self.options)


class JsonOutput(PluginOutput):
    """One JSON object on one line: state, exit code, services, timings, certificate."""

    def __init__(self, logchan: logging.StreamHandler[StringIO], options: PluginOptions) -> None:
        super().__init__(logchan, options)
        self.document: dict[str, Any] = {}

    def add(self, check: nagiosplugin.Check) -> None:
        super().add(check)
        self.document = check_document(check, self.options)

    def __str__(self) -> str:
        import json

        document = self.document
        if not document:
            # nagiosplugin's last resort after an unexpected error: keep the JSON shape.
            message = self.status.partition("UNKNOWN: ")[2] or self.status
            document = failure_document(nagiosplugin.Unknown, clean_text(message))
        return scrub(json.dumps(document, sort_keys=True), self.options) + "\n"


def failure_document(state: ServiceState, message: str) -> dict[str, Any]:
    """The ``--json`` object when there is no check result: same keys, empty values."""
    document: dict[str, Any] = dict.fromkeys(
        ("target", "time", "connect_time", "rpc_time", "certificate")
    )
    document.update(
        state=state_name(state),
        exit_code=state.code,
        summary=message,
        error=message,
        services=[],
        perfdata="",
    )
    return document


def check_document(check: nagiosplugin.Check, options: PluginOptions) -> dict[str, Any]:
    """The ``--json`` object of a finished check, in the shape of its mode."""
    if options.all_addresses:
        from check_grpc_health.nagios_backends import backends_document

        return backends_document(check)
    return json_document(check)


def json_document(check: nagiosplugin.Check) -> dict[str, Any]:
    """The JSON form of a finished check, as ``--json`` prints it."""
    resource = check.resources[0]
    assert isinstance(resource, HealthResource)
    result, failure = resource.result, resource.failure
    error = None
    if failure is not None:
        error = clean_text(str(failure))
    elif result is None and check.state == nagiosplugin.Unknown:
        error = check.summary_str
    services = []
    if result is not None:
        for label, outcome in zip(resource.labels, result.services, strict=True):
            judged = check.results[label]
            services.append(
                {
                    "service": outcome.service,
                    "status": None if outcome.status is None else outcome.status.name,
                    "state": state_name(judged.state),
                    "rpc_time": round(outcome.rpc_time, 6),
                    "error": None
                    if outcome.error is None
                    else {"code": outcome.error.code_name, "message": str(judged)},
                }
            )
    certificate = None
    if result is not None and result.certificate is not None:
        info = result.certificate
        certificate = {
            "subject": info.subject,
            "issuer": info.issuer,
            "sans": list(info.sans),
            "not_after": info.not_after.isoformat(),
            "days_left": info.days_left,
        }
    return {
        "state": state_name(check.state),
        "exit_code": check.exitcode,
        "summary": check.summary_str,
        "target": resource.options.probe.target.display,
        "services": services,
        "time": round(resource.elapsed, 6) if result or failure else None,
        "connect_time": round(result.connect_time, 6) if result else None,
        "rpc_time": round(result.rpc_time, 6) if result else None,
        "certificate": certificate,
        "error": error,
        "perfdata": " ".join(check.perfdata),
    }


def build_check(options: PluginOptions) -> nagiosplugin.Check:
    """The check for ``options``: call it (``check()``), then read ``check.state``."""
    if options.all_addresses:
        from check_grpc_health.nagios_backends import build_backends_check

        return build_backends_check(options)
    return nagiosplugin.Check(
        HealthResource(options),
        ConnectionContext(),
        HealthContext(options),
        DecimalContext("time", options.time),
        DecimalContext("connect_time", options.connect_time),
        DecimalContext("rpc_time", options.rpc_time),
        CertificateContext(options.cert_days),
        HealthSummary(options),
    )


# --- small formatting helpers -------------------------------------------------------


def subject(service: str) -> str:
    """How a service is named in messages."""
    return f"service {quote(service)}" if service else "overall health"


def quote(text: str) -> str:
    """``repr`` without characters the plugin output forbids."""
    return clean_text(repr(text))


def clean_text(text: str) -> str:
    """One printable line: no ``|`` (it would start perfdata), no undecodable bytes."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return " ".join(text.replace("|", "/").split())


def decimal(value: float) -> str:
    """A perfdata number: plain decimal notation, at most six decimals."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def seconds(value: float) -> str:
    """Seconds for humans: ``0.0042s``, ``1.5s``."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return f"{text or '0'}s"


def state_name(state: ServiceState) -> str:
    return str(state).upper()


def scrub(text: str, options: PluginOptions) -> str:
    """Belt and braces: no metadata value may reach the output, whatever echoed it."""
    for _, value in options.probe.metadata:
        if len(value) >= _MIN_SCRUBBED_SECRET:
            text = text.replace(value, "<hidden>")
    return text


# --- argument parsing ---------------------------------------------------------------


class DecimalRange(nagiosplugin.Range):
    """A Range that prints its bounds as plain decimals (``0.000001``), never ``1e-06``.

    nagiosplugin prints a Range with ``%s``, and perfdata thresholds must not use
    exponent notation.
    """

    __slots__ = ()

    def _format(self, omit_zero_start: bool = True) -> str:
        parts = ["@"] if self.invert else []
        if self.start == -math.inf:
            parts.append("~:")
        elif not omit_zero_start or self.start != 0:
            parts.append(f"{decimal(self.start)}:")
        if self.end != math.inf:
            parts.append(decimal(self.end))
        return "".join(parts)


def parse_range(option: str, text: str) -> nagiosplugin.Range:
    """A Nagios range, or an InvalidArgument naming the option and the value."""
    try:
        parsed = DecimalRange(text)
    except (ValueError, TypeError):
        raise InvalidArgument(
            f"{option} {text!r} is not a Nagios range ({_RANGE_EXAMPLES})"
        ) from None
    if not _RANGE_TEXT.fullmatch(str(parsed)):
        raise InvalidArgument(f"{option} {text!r} is not a Nagios range ({_RANGE_EXAMPLES})")
    return parsed


def parse_days(option: str, text: str) -> nagiosplugin.Range:
    """``--cert-warning 30`` means: fine while at least 30 days are left."""
    try:
        days = float(text)
    except ValueError:
        raise InvalidArgument(f"{option} {text!r} is not a number of days") from None
    if not math.isfinite(days) or days < 0 or days > 100_000:
        raise InvalidArgument(f"{option} {text!r} must be a number of days from 0 to 100000")
    return nagiosplugin.Range(f"{decimal(days)}:")


def parse_status_state(text: str) -> tuple[HealthStatus, ServiceState]:
    """``NOT_SERVING=WARNING``: report a health status as another plugin state."""
    status_text, sep, state_text = text.replace(":", "=", 1).partition("=")
    status_key = status_text.strip().upper().replace("-", "_")
    state = _STATES_BY_NAME.get(state_text.strip().upper())
    if not sep or status_key not in HealthStatus.__members__ or state is None:
        raise InvalidArgument(
            f"--map-status {text!r} is not STATUS=STATE (STATUS: SERVING, NOT_SERVING, "
            "UNKNOWN or SERVICE_UNKNOWN; STATE: OK, WARNING, CRITICAL or UNKNOWN)"
        )
    return HealthStatus[status_key], state


def read_metadata_file(path: str) -> list[tuple[str, str]]:
    """``key: value`` lines; blank lines and ``#`` comments are skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        raise InvalidArgument(f"cannot read metadata file {path!r}: {reason}") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"metadata file {path!r} is not UTF-8 text") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entries.append(parse_metadata(line.rstrip("\r\n"), number))
        except InvalidArgument as error:
            raise InvalidArgument(f"metadata file {path!r} line {number}: {error}") from None
    return entries


def read_metadata_env(text: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """``key:VARIABLE``: the header value comes from the environment variable."""
    # Never echo the argument: a user who mistakes this option for -m gives the secret
    # value itself ('authorization:Bearer ...'). Only a plausible variable name is shown.
    key, sep, variable = text.partition(":")
    variable = variable.strip()
    if not sep or not variable:
        raise InvalidArgument("--metadata-env takes KEY:ENVIRONMENT_VARIABLE (value not shown)")
    if not _ENV_NAME.fullmatch(variable):
        raise InvalidArgument(
            "--metadata-env takes KEY:ENVIRONMENT_VARIABLE, and what follows ':' is not a "
            "variable name (not shown: give the name of a variable that holds the value)"
        )
    if not environ.get(variable):
        raise InvalidArgument(
            f"--metadata-env: environment variable {variable} is not set or empty"
        )
    return parse_metadata(f"{key}: {environ[variable]}")


def _parser() -> argparse.ArgumentParser:
    import argparse

    class Parser(argparse.ArgumentParser):
        """Argument errors are UNKNOWN (exit 3), never argparse's exit 2."""

        def error(self, message: str) -> NoReturn:
            raise InvalidArgument(message)

    parser = Parser(
        prog="check_grpc_health",
        description=(
            "Check a gRPC server through the standard health checking protocol "
            "(grpc.health.v1.Health/Check). Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, "
            "3 UNKNOWN. Times are in seconds; ranges use the Nagios range syntax."
        ),
        allow_abbrev=False,
    )
    add = parser.add_argument
    add(
        "-H",
        "--host",
        required=True,
        metavar="ADDRESS",
        help="host, IP, [v6], host:port, unix:/path or dns:///name:port",
    )
    add("-p", "--port", metavar="PORT", help="port, when ADDRESS has none")
    add(
        "-s",
        "--service",
        action="append",
        metavar="NAME",
        help="service to check (repeatable); default: the overall health ''",
    )
    add(
        "-w",
        "--warning",
        default="",
        metavar="RANGE",
        help="WARNING when the total time in seconds is outside RANGE",
    )
    add(
        "-c",
        "--critical",
        default="",
        metavar="RANGE",
        help="CRITICAL when the total time in seconds is outside RANGE",
    )
    add("--connect-warning", default="", metavar="RANGE", help="WARNING range on connect_time")
    add("--connect-critical", default="", metavar="RANGE", help="CRITICAL range on connect_time")
    add("--rpc-warning", default="", metavar="RANGE", help="WARNING range on rpc_time")
    add("--rpc-critical", default="", metavar="RANGE", help="CRITICAL range on rpc_time")
    add(
        "-t",
        "--timeout",
        default=str(int(DEFAULT_TIMEOUT)),
        metavar="SECONDS",
        help="overall time budget (default 10); past it the check is CRITICAL",
    )
    add("--connect-timeout", metavar="SECONDS", help="connect deadline (default: half of -t)")
    add("--rpc-timeout", metavar="SECONDS", help="health RPC deadline (default: half of -t)")
    add("--tls", action="store_true", help="use TLS (implied by the other TLS options)")
    add("--ca-cert", metavar="FILE", help="CA certificates (PEM) to verify the server")
    add("--client-cert", metavar="FILE", help="client certificate (PEM) for mutual TLS")
    add("--client-key", metavar="FILE", help="client key (PEM) for mutual TLS")
    add("--server-name", metavar="NAME", help="name to verify the server certificate against")
    add(
        "--insecure",
        action="store_true",
        help="TLS, but pin the server's certificate on first use instead of verifying it",
    )
    add("--cert-warning", metavar="DAYS", help="WARNING when the certificate has < DAYS left")
    add("--cert-critical", metavar="DAYS", help="CRITICAL when the certificate has < DAYS left")
    add(
        "-m",
        "--metadata",
        action="append",
        default=[],
        metavar="'KEY: VALUE'",
        help="request header (repeatable); visible in the process list",
    )
    add(
        "--metadata-file",
        action="append",
        default=[],
        metavar="FILE",
        help="read 'KEY: VALUE' header lines from FILE (repeatable)",
    )
    add(
        "--metadata-env",
        action="append",
        default=[],
        metavar="KEY:VARIABLE",
        help="header KEY with the value of environment VARIABLE (repeatable)",
    )
    add("--user-agent", metavar="TEXT", help="user agent to send")
    add("--authority", metavar="NAME", help="override the :authority header")
    add("--gzip", action="store_true", help="compress the requests with gzip")
    add(
        "--map-status",
        action="append",
        default=[],
        metavar="STATUS=STATE",
        help="report a health status as another state, e.g. NOT_SERVING=WARNING",
    )
    add(
        "--all-services",
        action="store_true",
        help="check the overall health and every service the server lists (needs reflection)",
    )
    add(
        "--all-addresses",
        action="store_true",
        help="resolve the host and check every address; reports N of M backends healthy",
    )
    # -4 and -6 are rewritten to these before parsing (see parse_arguments).
    add("--ipv4", action="store_true", help="-4: with --all-addresses, IPv4 addresses only")
    add("--ipv6", action="store_true", help="-6: with --all-addresses, IPv6 addresses only")
    add(
        "--backends-warning",
        metavar="MIN",
        help="WARNING when fewer backends than MIN (a count or N%%) are healthy (default 100%%)",
    )
    add(
        "--backends-critical",
        metavar="MIN",
        help="CRITICAL when fewer backends than MIN (a count or N%%) are healthy (default 50%%)",
    )
    add("--json", action="store_true", help="print one JSON object instead of plugin output")
    add("-q", "--quiet", action="store_true", help="print nothing when OK (for cron)")
    add("-v", "--verbose", action="count", default=0, help="more output (up to -vvv)")
    add("-V", "--version", action="version", version=f"check_grpc_health {__version__}")
    return parser


def parse_arguments(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> PluginOptions:
    """Parse and validate argv. Raises :class:`InvalidArgument` with one line."""
    # Registered as -4/-6, they would make argparse read every negative number
    # ("--rpc-timeout -1", "-w -5:10") as an option instead of a value.
    argv = [_FAMILY_FLAGS.get(item, item) for item in argv]
    args, extra = _parser().parse_known_args(argv)
    for item in extra:
        if item.startswith("-") and item != "-":
            raise InvalidArgument(f"unknown option {item.partition('=')[0]!r}")
        # Never echo it: it may be the rest of an unquoted 'key: secret' header.
        raise InvalidArgument(
            "unexpected argument (not shown); give the address with -H and quote "
            "each -m 'key: value'"
        )
    if args.json and args.quiet:
        raise InvalidArgument("--json and --quiet cannot be combined")
    timeout = _seconds_option("-t/--timeout", args.timeout)
    connect_timeout = (
        timeout / 2
        if args.connect_timeout is None
        else _seconds_option("--connect-timeout", args.connect_timeout)
    )
    rpc_timeout = (
        timeout / 2
        if args.rpc_timeout is None
        else _seconds_option("--rpc-timeout", args.rpc_timeout)
    )
    tls = _tls_options(args)
    cert_days = Thresholds(
        parse_days("--cert-warning", args.cert_warning)
        if args.cert_warning
        else nagiosplugin.Range(),
        parse_days("--cert-critical", args.cert_critical)
        if args.cert_critical
        else nagiosplugin.Range(),
    )
    wants_certificate = bool(args.cert_warning or args.cert_critical)
    if wants_certificate and tls is None:
        raise InvalidArgument("--cert-warning/--cert-critical need TLS (--tls)")
    metadata = [parse_metadata(entry, number) for number, entry in enumerate(args.metadata, 1)]
    for path in args.metadata_file:
        metadata.extend(read_metadata_file(path))
    for entry in args.metadata_env:
        metadata.append(read_metadata_env(entry, os.environ if environ is None else environ))
    probe_options = ProbeOptions(
        target=parse_target(args.host, args.port),
        services=tuple(args.service) if args.service else ("",),
        connect_timeout=connect_timeout,
        rpc_timeout=rpc_timeout,
        tls=tls,
        metadata=tuple(metadata),
        user_agent=args.user_agent,
        authority=args.authority,
        gzip=args.gzip,
        certificate_facts=wants_certificate,
    )
    output = OutputMode.JSON if args.json else OutputMode.QUIET if args.quiet else OutputMode.TEXT
    discovery = _discovery_options(args, probe_options)
    return PluginOptions(
        probe=probe_options,
        time=Thresholds(
            parse_range("-w/--warning", args.warning), parse_range("-c/--critical", args.critical)
        ),
        connect_time=Thresholds(
            parse_range("--connect-warning", args.connect_warning),
            parse_range("--connect-critical", args.connect_critical),
        ),
        rpc_time=Thresholds(
            parse_range("--rpc-warning", args.rpc_warning),
            parse_range("--rpc-critical", args.rpc_critical),
        ),
        cert_days=cert_days,
        status_states=tuple(parse_status_state(entry) for entry in args.map_status),
        timeout=timeout,
        verbose=min(args.verbose, 3),
        output=output,
        **discovery,
    )


def _discovery_options(args: argparse.Namespace, probe_options: ProbeOptions) -> dict[str, Any]:
    """The ``--all-services``/``--all-addresses`` options, checked against each other."""
    if args.ipv4 and args.ipv6:
        raise InvalidArgument("-4/--ipv4 and -6/--ipv6 cannot be combined")
    backend_options = (args.ipv4, args.ipv6, args.backends_warning, args.backends_critical)
    if not args.all_addresses and any(backend_options):
        raise InvalidArgument(
            "-4, -6, --backends-warning and --backends-critical need --all-addresses"
        )
    if args.all_services and args.service:
        raise InvalidArgument("--all-services checks every service: leave out -s/--service")
    if not args.all_addresses:
        return {"all_services": args.all_services}
    if args.all_services:
        raise InvalidArgument("--all-services and --all-addresses cannot be combined")
    if probe_options.target.unix_path is not None:
        raise InvalidArgument("--all-addresses needs a host name, not a unix socket")
    import socket

    from check_grpc_health.nagios_backends import parse_minimum

    family = socket.AF_INET if args.ipv4 else socket.AF_INET6 if args.ipv6 else 0
    return {
        "all_addresses": True,
        "address_family": family,
        "backends_warning": parse_minimum("--backends-warning", args.backends_warning),
        "backends_critical": parse_minimum("--backends-critical", args.backends_critical),
    }


def _seconds_option(option: str, text: str) -> float:
    value = parse_seconds(option, text)
    if value > _MAX_SECONDS:
        # Also a guard for grpc, whose deadlines overflow long before float does.
        raise InvalidArgument(f"{option} {text!r} is more than a day ({_MAX_SECONDS:g} seconds)")
    return value


def _tls_options(args: argparse.Namespace) -> TlsOptions | None:
    files_or_names = (args.ca_cert, args.client_cert, args.client_key, args.server_name)
    if not (args.tls or args.insecure or any(item is not None for item in files_or_names)):
        return None
    if args.insecure and args.ca_cert is not None:
        raise InvalidArgument("--insecure skips verification, so --ca-cert cannot be used with it")
    for option, value in (
        ("--ca-cert", args.ca_cert),
        ("--client-cert", args.client_cert),
        ("--client-key", args.client_key),
        ("--server-name", args.server_name),
    ):
        if value is not None and not value:
            raise InvalidArgument(f"{option} is empty")
    return TlsOptions(
        ca_cert=args.ca_cert,
        client_cert=args.client_cert,
        client_key=args.client_key,
        server_name=args.server_name,
        verify=not args.insecure,
    )


# --- runtime ------------------------------------------------------------------------


class _FinalWords:
    """What to print when the process must end at once (signal, backstop timer)."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.verdict: int | None = None
        if json_mode:
            # Imported now: a signal handler is no place for an import.
            import json

            self.dumps = json.dumps

    def line(self, state: ServiceState, message: str) -> str:
        """The one line to print for ``state``, in plugin or JSON form."""
        if not self.json_mode:
            return f"{NAME} {state_name(state)} - {message}"
        return self.dumps(failure_document(state, message), sort_keys=True)

    def exit(self, state: ServiceState, message: str) -> None:
        """Print one line and end the process without unwinding.

        ``os._exit`` because unwinding from a signal handler through a blocking grpc
        call can leave channel shutdown waiting. Once the check has its verdict, the
        process only ends, with the verdict's exit code and no second line.
        """
        sys.stdout.flush()
        if self.verdict is not None:
            os._exit(self.verdict)
        os.write(1, (self.line(state, message) + "\n").encode("utf-8", "backslashreplace"))
        os._exit(state.code)

    def settle(self, exit_code: int) -> None:
        """The check has a result: stop the backstop timer and remember the code."""
        signal.setitimer(signal.ITIMER_REAL, 0)
        self.verdict = exit_code

    def on_signal(self, signum: int, frame: object) -> None:
        self.exit(nagiosplugin.Unknown, f"interrupted by {signal.Signals(signum).name}")


def _install_backstop(words: _FinalWords, timeout: float) -> None:
    """Past the overall budget the check is CRITICAL: the server did not answer in time."""

    def expire(signum: int, frame: object) -> None:
        words.exit(nagiosplugin.Critical, f"no result within the {seconds(timeout)} timeout (-t)")

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)


def _log_configuration(options: PluginOptions) -> None:
    probe_options = options.probe
    tls = probe_options.tls
    if tls is None:
        security = "plaintext"
    elif tls.verify:
        security = f"TLS, CA {tls.ca_cert or 'system roots'}, name {tls.server_name or 'default'}"
    else:
        security = "TLS without verification (certificate pinned on first use)"
    if tls is not None and tls.client_cert:
        security += f", client certificate {tls.client_cert}"
    _log.info("target %s, %s", probe_options.target.display, security)
    _log.info(
        "timeouts: connect %s, rpc %s, overall %s",
        seconds(probe_options.connect_timeout),
        seconds(probe_options.rpc_timeout),
        seconds(options.timeout),
    )
    _log.info("services: %s", ", ".join(quote(name) for name in probe_options.services))
    if probe_options.metadata:
        keys = ", ".join(key for key, _ in probe_options.metadata)
        _log.info("metadata keys (values hidden): %s", keys)


@nagiosplugin.guarded
def main(argv: Sequence[str] | None = None) -> None:
    """Console script entry point: parse, run the check once, print, exit 0-3."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    # grpc logs to stderr, and monitoring cores mix stderr into the plugin output.
    # Every failure it would log is already in our one line. Read when grpc loads.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    words = _FinalWords(json_mode="--json" in arguments)
    signal.signal(signal.SIGTERM, words.on_signal)
    signal.signal(signal.SIGINT, words.on_signal)
    release_signals()  # held since start-up by the console script (entry.py)
    try:
        options = parse_arguments(arguments)
    except InvalidArgument as error:
        print(words.line(nagiosplugin.Unknown, clean_text(str(error))))
        sys.exit(nagiosplugin.Unknown.code)
    _install_backstop(words, options.timeout)
    runtime = nagiosplugin.Runtime()
    output_class = JsonOutput if options.output is OutputMode.JSON else TextOutput
    output = output_class(runtime.logchan, options)
    output.on_verdict = words.settle
    runtime.output = output
    # Tracebacks of unexpected errors only from -v on: they are for bug reports.
    runtime.verbose = options.verbose
    _log_configuration(options)
    check = build_check(options)
    try:
        check.main(verbose=options.verbose, timeout=0)
    except SystemExit as done:
        _exit_now(done.code)


def _exit_now(code: object) -> NoReturn:
    """Flush the output and end the process without the interpreter's teardown.

    The check is over and its channel closed; tearing down a process that loaded
    grpc (its threads, thousands of module objects) only adds tens of milliseconds
    to every check. Nothing is left to clean up: no file is open for writing.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else nagiosplugin.Unknown.code)
