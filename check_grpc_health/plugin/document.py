"""The JSON document of a check: what ``--json`` prints and the fleet passes on.

Layer: adapter (the Nagios/Icinga plugin), shared with the fleet. One shape for every
mode, documented as a JSON Schema in docs/schema/check_grpc_health.json: the same keys
always; a list is always a list (empty where nothing applies), any other key is ``null``
where it does not apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nagiosplugin

from check_grpc_health.plugin.check import HealthResource, describe_rpc_failure
from check_grpc_health.plugin.options import SPELLING
from check_grpc_health.text import clean_text, explained, state_name

if TYPE_CHECKING:
    from nagiosplugin.state import ServiceState

    from check_grpc_health.core.results import HealthCheckError, ServiceResult
    from check_grpc_health.plugin.options import PluginOptions


def failure_document(state: ServiceState, message: str) -> dict[str, Any]:
    """The ``--json`` object when there is no check result: same keys, empty values."""
    document: dict[str, Any] = dict.fromkeys(
        ("target", "time", "connect_time", "rpc_time", "wait", "certificate", "healthy", "total")
    )
    document.update(
        state=state_name(state),
        exit_code=state.code,
        summary=message,
        error=message,
        services=[],
        backends=[],
        perfdata="",
        diagnosis=None,
    )
    return document


def diagnosis_document(error: HealthCheckError | None) -> dict[str, Any] | None:
    """The ``diagnosis`` object of a failure: kind, cause, hint (plugin spelling), proxy."""
    found = None if error is None else error.diagnosis
    if found is None:
        return None
    return {
        "kind": found.kind,
        "cause": clean_text(found.cause),
        "hint": found.hint(SPELLING),
        "proxy": found.proxy,
    }


def service_item(outcome: ServiceResult, state: str | None, message: str | None) -> dict[str, Any]:
    """One service's object; ``message`` words its RPC error, if it had one."""
    return {
        "service": outcome.service,
        "status": None if outcome.status is None else outcome.status.name,
        "state": state,
        "rpc_time": round(outcome.rpc_time, 6),
        "error": None
        if outcome.error is None
        else {"code": outcome.error.code_name, "message": message or str(outcome.error)},
    }


def check_document(check: nagiosplugin.Check, options: PluginOptions) -> dict[str, Any]:
    """The ``--json`` object of a finished check, in the shape of its mode."""
    if options.all_addresses:
        return backends_document(check)
    return json_document(check)


def json_document(check: nagiosplugin.Check) -> dict[str, Any]:
    """The JSON form of a finished check, as ``--json`` prints it."""
    resource = check.resources[0]
    assert isinstance(resource, HealthResource)
    result, failure = resource.result, resource.failure
    error = None
    if failure is not None:
        error = clean_text(explained(failure, SPELLING))
    elif result is None and check.state == nagiosplugin.Unknown:
        error = check.summary_str
    services = []
    failed: HealthCheckError | None = failure
    if result is not None:
        failed = next((item.error for item in result.services if item.error), None)
        for label, outcome in zip(resource.labels, result.services, strict=True):
            judged = check.results[label]
            services.append(service_item(outcome, state_name(judged.state), str(judged)))
    certificate = None
    if result is not None and result.certificate is not None:
        info = result.certificate
        certificate = {
            "subject": info.subject,
            "issuer": info.issuer,
            "sans": list(info.sans),
            "not_after": info.not_after.isoformat(),
            "days_left": info.days_left,
            "tls_version": info.tls_version,
        }
    # --wait: how long the check waited for SERVING.
    waited = check.results["wait"].metric if "wait" in check.results else None
    return {
        "state": state_name(check.state),
        "exit_code": check.exitcode,
        "summary": check.summary_str,
        "target": resource.options.probe.target.display,
        "services": services,
        "time": round(resource.elapsed, 6) if result or failure else None,
        "connect_time": round(result.connect_time, 6) if result else None,
        "rpc_time": round(result.rpc_time, 6) if result else None,
        "wait": None if waited is None else round(waited.value, 6),
        "certificate": certificate,
        "error": error,
        "perfdata": " ".join(check.perfdata),
        "diagnosis": diagnosis_document(failed),
        "backends": [],
        "healthy": None,
        "total": None,
    }


def backends_document(check: nagiosplugin.Check) -> dict[str, Any]:
    """The ``--json`` object of an ``--all-addresses`` check.

    ``services``, ``connect_time``, ``rpc_time`` and ``certificate`` belong to single
    targets: each backend carries its own services and time instead.
    """
    from check_grpc_health.plugin.backends import BackendsResource

    resource = check.resources[0]
    assert isinstance(resource, BackendsResource)
    rpc_timeout = resource.options.probe.rpc_timeout
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
                    service_item(
                        outcome,
                        None,
                        None
                        if outcome.error is None
                        else describe_rpc_failure(outcome.error, rpc_timeout),
                    )
                    for outcome in result.services
                ],
                "time": None if result is None else round(result.time, 6),
            }
        )
    counted = "healthy_backends" in check.results
    error = None
    if resource.failure is not None:
        error = clean_text(str(resource.failure))
    elif not counted and check.state == nagiosplugin.Unknown:
        error = check.summary_str
    return {
        "state": state_name(check.state),
        "exit_code": check.exitcode,
        "summary": check.summary_str,
        "target": resource.options.probe.target.display,
        "services": [],
        "time": round(resource.elapsed, 6) if counted or resource.failure else None,
        "connect_time": None,
        "rpc_time": None,
        "wait": None,
        "certificate": None,
        "error": error,
        "perfdata": " ".join(check.perfdata),
        "diagnosis": None,
        "backends": backends,
        "healthy": sum(backend.healthy for backend in resource.backends) if counted else None,
        "total": len(resource.backends) if counted else None,
    }
