"""The drop-in ``grpc_health_probe``: the Go tool's flags, messages and exit codes.

Layer: adapter (the drop-in probe), the process around one probe. It parses argv with
:mod:`~check_grpc_health.probe_cli.flags`, calls the core once and renders the outcome
as the Go tool's stderr lines and exit codes.

It differs from the Go tool only where no script could rely on the difference:
a refused connection or a failed TLS handshake fails at once (Go waits out the
connect timeout; the exit code is the same), header values are never printed,
and it has extra flags (``-rpc-header-file``, ``-no-proxy``, and ``-wait`` and
``-watch`` in :mod:`~check_grpc_health.probe_cli.waiting`) and address forms
(``grpc://``, ``grpcs://``, ``http://``, ``https://``, where Go fails to dial).

Nothing heavy is imported before the arguments are known to be good: ``-h``, a bad
flag or ``-version`` never load grpcio.

Its time limit is the Go tool's: ``-connect-timeout`` plus ``-rpc-timeout`` (or
``-wait``), counted from the process's start, interpreter start-up included, as the
kubelet or a ``HEALTHCHECK`` counts it. The connect deadline runs from the dial, so
start-up does not eat a short ``-connect-timeout``; what start-up took comes off the
RPC's deadline when the connection took nearly all of its own.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from typing import TYPE_CHECKING

from check_grpc_health.probe_cli.durations import MILLISECOND, SECOND, format_duration
from check_grpc_health.probe_cli.flags import (
    Settings,
    UsageError,
    describe,
    parse_flags,
    usage,
    validate,
)
from check_grpc_health.probe_cli.gotext import go_quote, hide_header_values, log_line
from check_grpc_health.probe_cli.process import Cancellation, Exit
from check_grpc_health.probe_cli.verdicts import connect_failed, service_verdict
from check_grpc_health.probe_cli.wording import diagnosed_reason
from check_grpc_health.signals import process_age

if TYPE_CHECKING:
    from collections.abc import Sequence

    from check_grpc_health.core.channel import HealthChannel
    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import ConnectFailure, HealthCheckError, ServiceResult

# The last line is out this long before the limit: time for a loaded machine to word
# it, close the channel and end the process. bench/time_limits.py measures it.
PRINT_MARGIN = 250 * MILLISECOND


def main(argv: Sequence[str] | None = None) -> int:
    """Run the probe; return the exit code. ``argv`` excludes the program name.

    Without ``argv`` (the console script) the probe owns the process: see
    :class:`Cancellation` for what that changes about signals. Its time limit then
    counts from the process's start.
    """
    began = time.perf_counter_ns() - (round(process_age() * SECOND) if argv is None else 0)
    args = sys.argv[1:] if argv is None else list(argv)
    # Signals are handled from the first moment: a Ctrl-C while parsing must not end
    # in a KeyboardInterrupt traceback.
    with Cancellation(owns_process=argv is None) as cancellation:
        # Settled: from here a signal ends the process with this code and prints nothing.
        code = cancellation.finish(_main(args, cancellation, began))
    if argv is None:
        # The probe is over and its channel closed. Tearing down an interpreter that
        # loaded grpc would only add tens of milliseconds to every probe.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(args: list[str], cancellation: Cancellation, began: int) -> int:
    try:
        settings = parse_flags(args)
    except UsageError as error:
        lines = [error.message, usage()] if error.message else [usage()]
        return cancellation.finish(Exit.INVALID_ARGUMENTS, *lines)
    if settings.version:
        from check_grpc_health import __version__

        cancellation.finish(Exit.SERVING)
        sys.stdout.write(__version__ + "\n")
        sys.stdout.flush()
        return Exit.SERVING
    problem = validate(settings)
    if problem is not None:
        return cancellation.finish(Exit.INVALID_ARGUMENTS, f"error: {problem}")
    if "@" in settings.addr and not settings.addr.startswith(("unix:", "unix-abstract:")):
        # A user:password@ in the address is refused before anything could echo it.
        from check_grpc_health.core.proxy import strip_credentials

        shown = go_quote(strip_credentials(settings.addr))
        return cancellation.finish(
            Exit.CONNECTION_FAILURE,
            f"error: failed to connect service at {shown}: invalid address (not shown): "
            "it holds user@ or user:password@, and a gRPC address takes no user name or password",
        )
    cancellation.dialling(settings.addr)
    if settings.verbose:
        for line in describe(settings):
            log_line(line)
    # grpcio's C core logs handshake failures at INFO, and proxy failures at ERROR, to
    # stderr; the Go tool's stderr holds only its own lines. An explicit setting wins.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    return _run(settings, cancellation, began)


def _run(settings: Settings, cancellation: Cancellation, began: int) -> int:
    """Everything after argument validation: credentials, dial, Check, verdict.

    ``began`` is the ``time.perf_counter_ns()`` instant the time limit counts from.
    """
    finish = cancellation.finish
    if settings.tls and settings.spiffe:
        return finish(Exit.INVALID_ARGUMENTS, "-tls and -spiffe are mutually incompatible")
    if settings.spiffe:
        return finish(
            Exit.SPIFFE_FAILURE,
            f"failed to initialize tls credentials with spiffe. error={_spiffe_unsupported()}",
        )
    from check_grpc_health.core.results import InvalidArgument
    from check_grpc_health.core.targets import parse_target

    try:
        target = parse_target(settings.addr)
    except InvalidArgument as error:
        # Go only finds a bad address when it dials, and reports it as a dial failure.
        if settings.verbose:
            log_line("establishing connection")
        return finish(
            Exit.CONNECTION_FAILURE,
            f"error: failed to connect service at {go_quote(settings.addr)}: {error}",
        )
    try:
        options = _options(settings, target)
    except InvalidArgument as error:
        return finish(Exit.INVALID_ARGUMENTS, f"error: {error}")
    if settings.verbose:
        from check_grpc_health.core.proxy import proxy_for

        for note in proxy_for(target, enabled=not settings.no_proxy).notes:
            log_line(f"proxy: {note}")
    # grpc loads before the clock starts: importing it is start-up, not dialling, and
    # would otherwise eat about 100 ms of a short -connect-timeout.
    importlib.import_module("check_grpc_health.core.channel")
    if settings.wait or settings.watch:
        from check_grpc_health.probe_cli.waiting import wait_or_watch

        if settings.verbose:
            log_line("establishing connection")
        # -wait is the whole limit; -watch alone runs until the stream ends or a signal.
        until = None
        if settings.wait:
            left = began + settings.wait - PRINT_MARGIN - time.perf_counter_ns()
            until = time.monotonic() + left / SECOND
        return wait_or_watch(settings, options, cancellation, until)
    # Reading the credentials counts against the connect timeout, as in Go. It also
    # keeps this wait inside grpc's own attempt deadline, so a silent peer is reported
    # as a timeout rather than as grpc's failed attempt.
    started = time.perf_counter_ns()
    limit = round((options.connect_timeout + options.rpc_timeout) * SECOND)
    ends = began + limit - PRINT_MARGIN
    channel = None
    if options.tls is None or options.tls.verify:
        # Credentials are built (each file read once) before dialling, as Go does; the
        # channel does no I/O until it connects.
        channel = _open_channel(options, cancellation, snapshot=settings.verbose)
        if channel is None:
            return Exit.INVALID_ARGUMENTS
    # The no-verify pin needs the network to build its credentials, so its file errors
    # come after "establishing connection": checking the files earlier would read the
    # client key twice.
    if settings.verbose:
        log_line("establishing connection")
    return _dial_and_check(settings, options, channel, (started, ends), cancellation)


def _open_channel(
    options: ProbeOptions, cancellation: Cancellation, *, snapshot: bool = False
) -> HealthChannel | None:
    """The channel with its credentials, or None once the TLS failure is reported.

    ``snapshot``: read the sockets' state at a time-out, for the -v diagnosis.
    """
    from check_grpc_health.core.channel import HealthChannel
    from check_grpc_health.core.results import InvalidArgument

    try:
        return HealthChannel(options, snapshot_sockets=snapshot)
    except InvalidArgument as error:
        cancellation.finish(
            Exit.INVALID_ARGUMENTS, f"failed to initialize tls credentials. error={error}"
        )
        return None


def _options(settings: Settings, target: object) -> ProbeOptions:
    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import InvalidArgument
    from check_grpc_health.core.tls import TlsOptions

    try:
        settings.service.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"-service {go_quote(settings.service)} is not valid UTF-8") from None
    tls = None
    if settings.wants_tls:
        tls = TlsOptions(
            ca_cert=settings.tls_ca_cert or None,
            client_cert=settings.tls_client_cert or None,
            client_key=settings.tls_client_key or None,
            server_name=settings.tls_server_name or None,
            verify=not settings.tls_no_verify,
        )
    return ProbeOptions(
        target=target,  # type: ignore[arg-type]
        services=(settings.service,),
        connect_timeout=_core_seconds(settings.connect_timeout),
        rpc_timeout=_core_seconds(settings.rpc_timeout),
        tls=tls,
        alts=settings.alts,
        metadata=settings.rpc_headers,
        user_agent=settings.user_agent or None,
        gzip=settings.gzip,
        use_proxy=not settings.no_proxy,
    )


# grpcio takes some deadlines as int32 milliseconds; Go accepts up to 292 years.
# No probe waits 24 days, so longer timeouts are capped rather than overflowing.
_CORE_TIMEOUT_LIMIT = (2**31 - 1) * MILLISECOND


def _core_seconds(nanoseconds: int) -> float:
    return min(nanoseconds, _CORE_TIMEOUT_LIMIT) / SECOND


def _dial_and_check(
    settings: Settings,
    options: ProbeOptions,
    channel: HealthChannel | None,
    clock: tuple[int, int],
    cancellation: Cancellation,
) -> int:
    """Dial, then Check. ``clock``: when the dial started and when the last line is due.

    Both are ``time.perf_counter_ns()`` instants. The connect deadline is
    ``-connect-timeout`` after the dial's start, and never past the due time.
    """
    from check_grpc_health.core.results import ConnectFailure

    started, ends = clock
    deadline = min(started + round(options.connect_timeout * SECOND), ends)
    if channel is None:
        # The no-verify pin: its handshake counts against the one connect timeout.
        try:
            channel = _open_channel(options, cancellation, snapshot=settings.verbose)
        except ConnectFailure as failure:
            return _connect_failed(settings, options, failure, (deadline, ends), cancellation)
        if channel is None:
            return Exit.INVALID_ARGUMENTS
    with channel:
        return _check(settings, channel, (started, deadline, ends), cancellation)


def _check(
    settings: Settings,
    channel: HealthChannel,
    clock: tuple[int, int, int],
    cancellation: Cancellation,
) -> int:
    """``clock``: when the dial started, the connect deadline and when the last line is due."""
    from check_grpc_health.core.results import ConnectFailure

    started, deadline, ends = clock
    options = channel.options
    try:
        channel.connect(max(deadline - time.perf_counter_ns(), MILLISECOND) / SECOND)
    except ConnectFailure as failure:
        channel.close()
        return _connect_failed(settings, options, failure, (deadline, ends), cancellation)
    connect_time = time.perf_counter_ns() - started
    # Go's dial has returned here: a signal from now on cancels the RPC instead.
    cancellation.rpc_started()
    if settings.verbose:
        log_line(f"connection established (took {format_duration(connect_time)})")
    try:
        # The RPC gets -rpc-timeout, or less when start-up and the dial took more than
        # -connect-timeout leaves: the probe ends within the two, as Go's does.
        result = channel.probe(within=max(ends - time.perf_counter_ns(), MILLISECOND) / SECOND)
    except ConnectFailure as failure:
        channel.close()
        return _connect_failed(settings, options, failure, (deadline, ends), cancellation)
    outcome: ServiceResult = result.services[0]
    code, line = service_verdict(settings, outcome)
    if code != Exit.SERVING:
        if outcome.error is not None and settings.verbose:
            _log_diagnosis(settings, outcome.error, options, ends)
        return cancellation.finish(code, line)
    lines = []
    if settings.verbose:
        rpc_time = format_duration(round(outcome.rpc_time * SECOND))
        lines.append(f"time elapsed: connect={format_duration(connect_time)} rpc={rpc_time}")
    return cancellation.finish(Exit.SERVING, *lines, "status: SERVING")


def _connect_failed(
    settings: Settings,
    options: ProbeOptions,
    failure: ConnectFailure,
    clock: tuple[int, int],
    cancellation: Cancellation,
) -> int:
    """The dial failed. ``clock``: the connect deadline and when the last line is due."""
    deadline, ends = clock
    if failure.timed_out:
        # Go's own line, byte for byte; the diagnosis only under -v.
        if settings.verbose:
            _log_diagnosis(settings, failure, options, ends)
        return cancellation.finish(Exit.CONNECTION_FAILURE, connect_failed(settings, failure))
    # Go would wait out the connect timeout here; what is left of it bounds the diagnosis.
    left = max(deadline - time.perf_counter_ns(), 0) / SECOND
    if settings.verbose:
        detail = hide_header_values(failure.detail or str(failure), settings.rpc_headers)
        log_line(f"grpc: {detail}")
    reason = diagnosed_reason(settings, failure, options, time.monotonic() + left)
    return cancellation.finish(Exit.CONNECTION_FAILURE, connect_failed(settings, failure, reason))


def _log_diagnosis(
    settings: Settings, error: HealthCheckError, options: ProbeOptions, ends: int
) -> None:
    """The -v line with the cause of a failure whose Go line stays as it is.

    It takes what is left before ``ends`` (a ``time.perf_counter_ns()`` instant, when
    the last line is due), at most :data:`VERBOSE_BUDGET`. A server may echo header
    values in its error details: they are hidden here too.
    """
    from check_grpc_health.probe_cli.wording import VERBOSE_BUDGET

    left = max(ends - time.perf_counter_ns(), 0) / SECOND
    within = min(VERBOSE_BUDGET, options.connect_timeout, left)
    words = diagnosed_reason(settings, error, options, time.monotonic() + within)
    if words:
        log_line(f"diagnosis: {words}")


def _spiffe_unsupported() -> str:
    """Why -spiffe cannot work here, with Go's own text when the socket is not set."""
    if not os.environ.get("SPIFFE_ENDPOINT_SOCKET"):
        return "workload endpoint socket address is not configured"
    return (
        "SPIFFE is not supported by this grpc_health_probe: grpcio cannot verify a "
        "server by its SPIFFE ID; mount the SVID files (e.g. with spiffe-helper) and "
        "use -tls -tls-ca-cert -tls-client-cert -tls-client-key instead"
    )
