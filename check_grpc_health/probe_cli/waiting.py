"""``-wait`` and ``-watch``: the probe's extensions for waiting on a server and watching it.

Layer: adapter (the drop-in probe). Both run the core's ``watch()``, which follows the
server's Watch stream (polling Check where Watch is UNIMPLEMENTED) and reconnects.

- ``-wait=DURATION`` exits 0 the moment every asked service is SERVING. When DURATION
  runs out it exits with the code and the line one probe would have given then: 2 not
  connected, 3 the health RPC failed, 4 not SERVING.
- ``-watch`` prints each status the server reports, one line each (with the time under
  ``-v``), and a line when the connection drops or fails, until the server ends the
  stream, ``-wait`` runs out or a signal comes. It exits with the code of the last
  thing it learnt, by the same table.

A signal (SIGTERM, SIGINT) ends either at once: ``cancellation received`` and, for
``-wait``, the last attempt's line, with the last attempt's code.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from check_grpc_health.probe_cli.durations import MILLISECOND, SECOND, format_duration
from check_grpc_health.probe_cli.gotext import (
    go_quote,
    go_status_error,
    hide_header_values,
    log_line,
)
from check_grpc_health.probe_cli.process import Exit
from check_grpc_health.probe_cli.verdicts import connect_failed, rpc_failed, service_verdict
from check_grpc_health.probe_cli.wording import diagnosed_reason

if TYPE_CHECKING:
    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import (
        ConnectFailure,
        ServiceResult,
        WatchEvent,
        WatchResult,
    )
    from check_grpc_health.probe_cli.flags import Settings
    from check_grpc_health.probe_cli.process import Cancellation

# How soon a refused or dropped connection is tried again, and how often Check is
# polled where Watch is UNIMPLEMENTED. Where Watch works, a change is pushed at once.
RETRY_INTERVAL = 0.25
# -watch without -wait: until the stream ends or a signal (grpc's longest deadline).
_FOREVER = (2**31 - 1) / 1000
_NOT_FOUND = go_status_error("NOT_FOUND", "unknown service")
# How long the diagnosis of the last connection failure may take, at the end of -wait.
_DIAGNOSIS_BUDGET = 0.1


def wait_or_watch(
    settings: Settings,
    options: ProbeOptions,
    cancellation: Cancellation,
    until: float | None = None,
) -> int:
    """Run ``-wait`` or ``-watch``; return the exit code.

    ``until`` (a ``time.monotonic()`` instant) is when the last line is due; by
    default ``-wait`` from now. The wait ends early enough for a diagnosis before it.
    """
    from check_grpc_health.core.results import ConnectFailure, HealthStatus, InvalidArgument
    from check_grpc_health.core.watch import watch

    if until is None:
        until = time.monotonic() + (settings.wait / SECOND if settings.wait else _FOREVER)
    deadline = until - (_DIAGNOSIS_BUDGET if settings.wait else 0.0)
    follower = _Follower(settings, cancellation)
    while True:
        try:
            result = watch(
                options,
                wanted=None if settings.watch else HealthStatus.SERVING,
                timeout=max(deadline - time.monotonic(), 0.001),
                interval=RETRY_INTERVAL,
                observer=follower.observe,
            )
        except InvalidArgument as error:
            return cancellation.finish(
                Exit.INVALID_ARGUMENTS, f"failed to initialize tls credentials. error={error}"
            )
        except ConnectFailure as failure:
            # The -tls-no-verify pin needs the server before the channel exists.
            follower.observe_failure(failure)
            if time.monotonic() + RETRY_INTERVAL >= deadline:
                return cancellation.finish(*follower.ending())
            time.sleep(RETRY_INTERVAL)
            continue
        break
    if settings.watch:
        return cancellation.finish(follower.ending()[0])
    return _waited(settings, options, result, follower, cancellation)


def _waited(
    settings: Settings,
    options: ProbeOptions,
    result: WatchResult,
    follower: _Follower,
    cancellation: Cancellation,
) -> int:
    if result.reached:
        lines = []
        if settings.verbose:
            waited = format_duration(round(result.elapsed * 1000) * MILLISECOND)
            lines.append(f"waited {waited} for SERVING ({result.attempts} attempts)")
        return cancellation.finish(Exit.SERVING, *lines, "status: SERVING")
    if result.connect_failure is not None:
        # The same words as one probe's, found in the time kept for it before -wait ends.
        failure = result.connect_failure
        reason = None
        if not failure.timed_out:
            within = min(_DIAGNOSIS_BUDGET, options.connect_timeout)
            reason = diagnosed_reason(settings, failure, options, time.monotonic() + within)
        return cancellation.finish(
            Exit.CONNECTION_FAILURE, connect_failed(settings, failure, reason)
        )
    if result.outcomes:
        return cancellation.finish(*_verdict(settings, result.outcomes[0]))
    return cancellation.finish(*follower.ending())


def _verdict(settings: Settings, outcome: ServiceResult) -> tuple[int, str]:
    """One probe's verdict on ``outcome``; Watch's SERVICE_UNKNOWN reads as Check's NOT_FOUND."""
    if outcome.status is not None and outcome.status.name == "SERVICE_UNKNOWN":
        return Exit.RPC_FAILURE, f"error: health rpc failed: {_NOT_FOUND}"
    return service_verdict(settings, outcome)


class _Follower:
    """Keeps the verdict of the latest event, and under ``-watch`` prints each event."""

    def __init__(self, settings: Settings, cancellation: Cancellation) -> None:
        self.settings = settings
        self.cancellation = cancellation
        self.last_printed = ""
        self.lock = threading.Lock()
        self.code: int = Exit.CONNECTION_FAILURE
        self.line = (
            f"error: failed to connect service at {go_quote(settings.addr)}: context canceled"
        )

    def ending(self) -> tuple[int, str]:
        return self.code, self.line

    def observe(self, event: WatchEvent) -> None:
        """Called by the core, from its threads, for every status and error."""
        from check_grpc_health.core.results import ConnectFailure, RpcFailure

        settings = self.settings
        if isinstance(event.error, ConnectFailure):
            self.observe_failure(event.error, event.time)
            return
        if isinstance(event.error, RpcFailure):
            failure = event.error
            if failure.code_name in ("UNAVAILABLE", "CANCELLED"):
                # The stream broke: the connection went away under it.
                detail = hide_header_values(failure.details, settings.rpc_headers)
                line = f"error: failed to connect service at {go_quote(settings.addr)}: {detail}"
                self._settle(Exit.CONNECTION_FAILURE, line)
                self._show(f"connection lost ({detail}), reconnecting", event.time)
                return
            line = rpc_failed(settings, failure)
            self._settle(Exit.RPC_FAILURE, line)
            self._show(line, event.time)
            return
        status = event.status
        if status is not None:
            from check_grpc_health.core.results import ServiceResult

            self._settle(*_verdict(settings, ServiceResult(event.service or "", status, 0)))
            self._show(f"status: {status.name}", event.time)

    def observe_failure(self, failure: ConnectFailure, at: float | None = None) -> None:
        from check_grpc_health.core.rpc import connect_reason

        line = connect_failed(self.settings, failure)
        self._settle(Exit.CONNECTION_FAILURE, line)
        if failure.timed_out:
            reason = f"no connection within {format_duration(self.settings.connect_timeout)}"
        else:
            reason = hide_header_values(
                connect_reason(failure.detail) if failure.detail else str(failure),
                self.settings.rpc_headers,
            )
        self._show(f"not connected ({reason})", time.time() if at is None else at)

    def _settle(self, code: int, line: str) -> None:
        self.code, self.line = code, line
        if self.settings.watch:
            self.cancellation.update(code)
        else:
            self.cancellation.update(code, line)

    def _show(self, text: str, at: float) -> None:
        """Under ``-watch``, print a line unless it repeats the one before."""
        if not self.settings.watch:
            return
        with self.lock:
            if text == self.last_printed:
                return
            self.last_printed = text
            if self.settings.verbose:
                log_line(f"{_stamp(at)} {text}")
            else:
                log_line(text)


def _stamp(at: float) -> str:
    """Local time with milliseconds and the UTC offset, as RFC 3339."""
    import datetime

    moment = datetime.datetime.fromtimestamp(at).astimezone()
    return moment.isoformat(timespec="milliseconds")
