"""The JSON document of a check: what ``--json`` prints and the fleet passes on.

Layer: adapter (the Nagios/Icinga plugin), shared with the fleet. One shape for every
mode: the same keys always, ``null`` where a key does not apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nagiosplugin

from check_grpc_health.plugin.check import HealthResource
from check_grpc_health.plugin.options import SPELLING
from check_grpc_health.text import clean_text, explained, state_name

if TYPE_CHECKING:
    from nagiosplugin.state import ServiceState

    from check_grpc_health.core.results import HealthCheckError
    from check_grpc_health.plugin.options import PluginOptions


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
        "diagnosis": diagnosis_document(failed),
    }


def backends_document(check: nagiosplugin.Check) -> dict[str, Any]:
    """The ``--json`` object of an ``--all-addresses`` check."""
    from check_grpc_health.plugin.backends import BackendsResource

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
        "diagnosis": None,
    }
