"""The plugin's ``--wait``: wait for SERVING through the core, then judge as usual.

Layer: adapter (the Nagios/Icinga plugin). :func:`wait_for_health` runs the core's
``watch()`` (the Watch stream; Check polled where Watch is UNIMPLEMENTED; refused
connections retried) and hands the resource the state the wait ended in, as one
``ProbeResult`` or the ``ConnectFailure``, so the verdict, thresholds and perfdata are
the plugin's own. It is for scripts that start a server, not for monitoring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import (
        ConnectFailure,
        ProbeResult,
        ServiceResult,
        WatchResult,
    )

# How soon a refused or dropped connection is tried again, and how often Check is
# polled where Watch is UNIMPLEMENTED. Where Watch works, a change is pushed at once.
RETRY_INTERVAL = 0.25


def wait_for_health(
    options: ProbeOptions, wait: float
) -> tuple[ProbeResult | ConnectFailure, float]:
    """Wait up to ``wait`` seconds for every service to be SERVING.

    Returns the final state and the seconds waited: the confirming Check's result when
    every service got there, otherwise what the wait last learnt (a connection failure,
    or a status or RPC error per service). Raises :class:`InvalidArgument` for unusable
    TLS files.
    """
    import time

    from check_grpc_health.core.results import ConnectFailure
    from check_grpc_health.core.watch import watch

    started = time.monotonic()
    while True:
        try:
            result = watch(
                options,
                timeout=max(wait - (time.monotonic() - started), 0.001),
                interval=RETRY_INTERVAL,
            )
        except ConnectFailure as failure:
            # The --insecure pin needs the server before the channel exists.
            if time.monotonic() - started + RETRY_INTERVAL >= wait:
                return failure, time.monotonic() - started
            time.sleep(RETRY_INTERVAL)
            continue
        waited = time.monotonic() - started
        if result.reached and result.last_probe is not None:
            return _with_certificate(options, result.last_probe), waited
        if result.connect_failure is not None:
            return result.connect_failure, waited
        return _final_state(options, result), waited


def _final_state(options: ProbeOptions, result: WatchResult) -> ProbeResult:
    """What the wait last learnt per service, as one probe result with the last timings."""
    from check_grpc_health.core.results import ProbeResult

    latest = {outcome.service: outcome for outcome in result.outcomes}
    services = tuple(
        latest.get(service) or _no_answer(service, result.elapsed) for service in options.services
    )
    last = result.last_probe
    return ProbeResult(
        target=options.target.display,
        services=services,
        connect_time=last.connect_time if last else 0.0,
        rpc_time=last.rpc_time if last else 0.0,
        time=last.time if last else result.elapsed,
        certificate=last.certificate if last else None,
    )


def _no_answer(service: str, elapsed: float) -> ServiceResult:
    """A service that never answered while the wait lasted: its RPC ran out of time."""
    import grpc

    from check_grpc_health.core.results import RpcFailure, ServiceResult

    failure = RpcFailure(
        f"no answer for {service!r} while waiting",
        service=service,
        code=grpc.StatusCode.DEADLINE_EXCEEDED,
        details="",
    )
    return ServiceResult(service, None, elapsed, failure)


def _with_certificate(options: ProbeOptions, result: ProbeResult) -> ProbeResult:
    if not options.certificate_facts or result.certificate is not None:
        return result
    from check_grpc_health.core.probe import with_certificate

    return with_certificate(options, result)
