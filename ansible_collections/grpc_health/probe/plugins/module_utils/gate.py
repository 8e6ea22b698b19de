"""The deployment gate behind the ``grpc_health`` module: module parameters in, return values out.

Layer: adapter (Ansible). It builds one immutable ``ProbeOptions`` from the module's
parameters, calls the core once (``probe()`` to check once, ``watch()`` to wait), and turns
the outcome into Ansible return values plus a one-line message. It never calls
``exit_json`` or ``fail_json``: the module does, so this logic is testable without Ansible.
Metadata values are secrets: they go into the options and nowhere else.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ansible_collections.grpc_health.probe.plugins.module_utils.core.channel import (
    GRPC_IMPORT_ERROR,
)
from ansible_collections.grpc_health.probe.plugins.module_utils.core.discovery import (
    list_services,
)
from ansible_collections.grpc_health.probe.plugins.module_utils.core.options import (
    ProbeOptions,
    check_metadata_key,
    parse_metadata,
)
from ansible_collections.grpc_health.probe.plugins.module_utils.core.probe import probe
from ansible_collections.grpc_health.probe.plugins.module_utils.core.results import (
    ConnectFailure,
    HealthCheckError,
    HealthStatus,
    InvalidArgument,
    ProbeResult,
    RpcFailure,
)
from ansible_collections.grpc_health.probe.plugins.module_utils.core.targets import parse_target
from ansible_collections.grpc_health.probe.plugins.module_utils.core.tls import TlsOptions
from ansible_collections.grpc_health.probe.plugins.module_utils.core.watch import watch

__all__ = ["GRPC_IMPORT_ERROR", "GateOutcome", "build_options", "run_gate"]

WANTED = {"serving": HealthStatus.SERVING, "not_serving": HealthStatus.NOT_SERVING}
# How the module writes the options a diagnosis names (the core knows only the keys).
SPELLING = {
    "tls": "tls: true",
    "no_tls": "set tls: false",
    "ca_cert": "ca_cert",
    "insecure": "validate_certs: false",
    "server_name": "server_name",
    "client_cert": "client_cert",
    "client_key": "client_key",
    "no_proxy": "use_proxy: false",
    "connect_timeout": "connect_timeout",
    "rpc_timeout": "rpc_timeout",
    "address": "host",
}
# A failure's diagnosis waits at most this long (and never longer than connect_timeout).
DIAGNOSIS_BUDGET = 2.0
_TLS_FILE_OPTIONS = ("ca_cert", "client_cert", "client_key", "server_name")


@dataclass(frozen=True)
class GateOutcome:
    """Whether the gate passed, the message for the user, and the module's return values."""

    passed: bool
    msg: str
    values: dict[str, Any] = field(default_factory=dict)


def build_options(params: dict[str, Any]) -> ProbeOptions:
    """Translate module parameters into core options; raises ``InvalidArgument``."""
    services = tuple(params.get("service") or ())
    target = parse_target(params["host"], params.get("port"))
    return ProbeOptions(
        target=target,
        services=services,
        connect_timeout=float(params.get("connect_timeout", 5.0)),
        rpc_timeout=float(params.get("rpc_timeout", 5.0)),
        tls=_tls_options(params, target.tls),
        metadata=_metadata(params.get("metadata") or {}),
        authority=params.get("authority"),
        use_proxy=params.get("use_proxy", True) is not False,
    )


def _tls_options(params: dict[str, Any], scheme_tls: bool | None) -> TlsOptions | None:
    """TLS from the options; ``grpcs://``/``https://`` in ``host`` turns it on too."""
    given = [name for name in _TLS_FILE_OPTIONS if params.get(name)]
    use_tls = params.get("tls")
    if use_tls is False and given:
        raise InvalidArgument(f"{given[0]} needs TLS, but tls is false")
    if use_tls is False and scheme_tls:
        raise InvalidArgument("host asks for TLS (grpcs:// or https://), but tls is false")
    if use_tls is None:
        use_tls = scheme_tls
    if not use_tls and not given:
        return None
    return TlsOptions(
        ca_cert=params.get("ca_cert"),
        client_cert=params.get("client_cert"),
        client_key=params.get("client_key"),
        server_name=params.get("server_name"),
        verify=bool(params.get("validate_certs", True)),
    )


def _metadata(entries: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for position, (key, value) in enumerate(entries.items(), start=1):
        name = str(key).strip().lower()
        # Checked on its own first: a ':' in the key would shift the split below.
        check_metadata_key(name)
        if value is None or isinstance(value, dict | list):
            raise InvalidArgument(f"metadata {name!r}: the value must be text (value not shown)")
        pairs.append(parse_metadata(f"{name}: {value}", position))
    return tuple(pairs)


def _seconds(params: dict[str, Any], name: str, *, allow_zero: bool) -> float:
    value = params.get(name)
    number = float(value) if isinstance(value, int | float) else math.nan
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        limit = "0 or more" if allow_zero else "more than 0"
        raise InvalidArgument(f"{name} must be {limit} seconds (got {value!r})")
    return number


def run_gate(params: dict[str, Any], *, sleep: Any = time.sleep) -> GateOutcome:
    """Check once (``timeout`` 0) or wait up to ``timeout`` seconds for the wanted state."""
    started = time.monotonic()
    wanted = WANTED[params.get("state") or "serving"]
    services = list(params.get("service") or ())
    try:
        timeout = _seconds(params, "timeout", allow_zero=True)
        delay = _seconds(params, "delay", allow_zero=True)
        interval = _seconds(params, "sleep", allow_zero=False)
        options = build_options(params)
    except HealthCheckError as error:
        return GateOutcome(False, str(error), _values(services, started, attempts=0))
    within = min(DIAGNOSIS_BUDGET, options.connect_timeout)
    if delay:
        sleep(delay)
    if params.get("all_services"):
        try:
            options = _with_listed_services(
                options, params, timeout=timeout, interval=interval, started=started, sleep=sleep
            )
        except HealthCheckError as error:
            # No health RPC was made, and which services there are is unknown.
            return GateOutcome(False, str(error), _values((), started, attempts=0))
    # As in ansible.builtin.wait_for, the timeout counts from the start, delay included.
    remaining = timeout - (time.monotonic() - started)
    if timeout == 0 or remaining <= 0:
        return _check_once(options, wanted, started, within)
    return _wait(
        options,
        wanted,
        timeout=timeout,
        remaining=remaining,
        interval=interval,
        started=started,
        within=within,
    )


def _with_listed_services(
    options: ProbeOptions,
    params: dict[str, Any],
    *,
    timeout: float,
    interval: float,
    started: float,
    sleep: Any,
) -> ProbeOptions:
    """The options with the overall health and every service the server lists.

    A server that is not up yet is asked again every ``interval`` until ``timeout``.
    """
    if list(params.get("service") or [""]) != [""]:
        raise InvalidArgument("all_services checks every service: leave out service")
    while True:
        try:
            listed = list_services(options)
        except ConnectFailure:
            if time.monotonic() - started + interval >= timeout:
                raise
            sleep(interval)
            continue
        return replace(options, services=("", *listed))


def _check_once(
    options: ProbeOptions, wanted: HealthStatus, started: float, within: float
) -> GateOutcome:
    target = options.target.display
    try:
        result = probe(options, diagnose_within=within)
    except InvalidArgument as error:  # e.g. an unreadable certificate file: nothing tried
        values = _values(options.services, started, attempts=0, error=error)
        return GateOutcome(False, explained(error), values)
    except HealthCheckError as error:  # one Check round, whose connection failed
        values = _values(options.services, started, attempts=1, method="check", error=error)
        return GateOutcome(False, explained(error), values)
    statuses = {item.service: item.status for item in result.services}
    failed = next((item.error for item in result.services if item.error is not None), None)
    values = _values(
        options.services,
        started,
        attempts=1,
        result=result,
        method="check",
        connect_time=result.connect_time,
        error=failed,
    )
    values["status"] = _status_names(statuses)
    if all(status is wanted for status in statuses.values()):
        return GateOutcome(True, f"{target} is {wanted.name}", values)
    errors = {item.service: item.error for item in result.services if item.error is not None}
    described = _describe(statuses, errors)
    return GateOutcome(False, f"{target} is not {wanted.name}: {described}", values)


def _wait(
    options: ProbeOptions,
    wanted: HealthStatus,
    *,
    timeout: float,
    remaining: float,
    interval: float,
    started: float,
    within: float,
) -> GateOutcome:
    target = options.target.display
    try:
        outcome = watch(
            options, wanted=wanted, timeout=remaining, interval=interval, diagnose_within=within
        )
    except HealthCheckError as error:
        values = _values(options.services, started, attempts=0, error=error)
        return GateOutcome(False, explained(error), values)
    values = _values(
        options.services,
        started,
        attempts=outcome.attempts,
        result=outcome.last_probe,
        method=outcome.method,
        error=outcome.last_error,
        connect_time=outcome.connect_time,
    )
    values["status"] = _status_names(outcome.statuses)
    if outcome.reached:
        return GateOutcome(True, f"{target} is {wanted.name}", values)
    described = _describe(outcome.statuses, {})
    message = f"{target} did not reach {wanted.name} within {timeout:g}s: {described}"
    last_error = outcome.last_error
    if last_error is not None:
        reason = "last error" if isinstance(last_error, ConnectFailure) else "last RPC error"
        message = f"{message} ({reason}: {explained(last_error)})"
    return GateOutcome(False, message, values)


def _values(
    services: Any,
    started: float,
    *,
    attempts: int,
    result: ProbeResult | None = None,
    method: str | None = None,
    error: HealthCheckError | None = None,
    connect_time: float | None = None,
) -> dict[str, Any]:
    """The module's return values; each one is documented in the module's RETURN.

    ``connect_time`` is the connection's real set-up time, not ``result.connect_time``,
    which after a wait is only the last Check's wait on a connection already up.
    """
    return {
        "diagnosis": _diagnosis(error),
        "status": dict.fromkeys(services),
        "elapsed": round(time.monotonic() - started, 3),
        "attempts": attempts,
        "method": method,
        "time": None if result is None else round(result.time, 6),
        "connect_time": None if connect_time is None else round(connect_time, 6),
        "rpc_time": None if result is None else round(result.rpc_time, 6),
    }


def _diagnosis(error: HealthCheckError | None) -> dict[str, Any] | None:
    """The ``diagnosis`` return value: kind, cause, hint (module spelling), proxy."""
    found = None if error is None else error.diagnosis
    if found is None:
        return None
    return {
        "kind": found.kind,
        "cause": found.cause,
        "hint": found.hint(SPELLING),
        "proxy": found.proxy,
    }


def explained(error: HealthCheckError) -> str:
    """The error's message, with grpcio's text given way to the diagnosis when there is one."""
    found = error.diagnosis
    if found is None or found.kind in ("other", "invalid_argument", "no_health_service"):
        return str(error)
    line = found.line(SPELLING)
    if isinstance(error, ConnectFailure):
        if error.timed_out:
            return f"{error.message}: {line}"
        return f"failed to connect to {error.target}: {line}"
    if isinstance(error, RpcFailure) and error.code_name != "UNIMPLEMENTED":
        return str(error)
    return line


def _status_names(statuses: dict[str, HealthStatus | None]) -> dict[str, str | None]:
    return {
        service: None if status is None else status.name for service, status in statuses.items()
    }


def _describe(statuses: dict[str, HealthStatus | None], errors: dict[str, Any]) -> str:
    # Services that failed the same way are named once, together: "services 'a', 'b' ...".
    failed: dict[str, list[str]] = {}
    for service in statuses:
        if service in errors:
            error = errors[service]
            failed.setdefault(f"{error.code_name} ({explained(error)})", []).append(service)
    parts = []
    for service, status in statuses.items():
        label = f"service {service!r}" if service else "overall health"
        if service not in errors:
            parts.append(f"{label} {'no answer' if status is None else status.name}")
            continue
        problem = f"{errors[service].code_name} ({explained(errors[service])})"
        alike = failed.pop(problem, [])
        if len(alike) > 1:
            label = "services " + ", ".join(repr(name) for name in alike)
        if alike:
            parts.append(f"{label} {problem}")
    return ", ".join(parts)
