"""Results and errors of the core: what a probe found out, or why it could not find out.

Layer: core. Plain data. An unhealthy status is a result (:class:`ServiceResult`);
an exception (:class:`HealthCheckError` and its subclasses) means the probe could not
learn the status at all.

Records are ``typing.NamedTuple``s rather than frozen dataclasses: both are immutable
and typed, but a dataclass costs about 1 ms of start-up to build and a NamedTuple about
0.1 ms, and every check is a fresh process.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import datetime
    from collections.abc import Mapping

    import grpc


class HealthStatus(enum.IntEnum):
    """``grpc.health.v1.HealthCheckResponse.ServingStatus``, with the same numbers."""

    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3


class Diagnosis(NamedTuple):
    """Why a check failed, and what to change (see :mod:`check_grpc_health.core.diagnosis`).

    ``kind`` is a stable identifier (JSON output, the Ansible result, tests). ``cause``
    says what is wrong, without option names. ``fixes`` are alternatives, each a
    template naming options as ``{key}``, which every adapter renders in its own
    spelling. ``proxy`` is the proxy the connection went through (credentials
    removed). ``elapsed`` is how long the diagnosis took; ``probed`` tells whether it
    sent anything on the network.
    """

    kind: str
    cause: str
    fixes: tuple[str, ...] = ()
    proxy: str | None = None
    elapsed: float = 0.0
    probed: bool = False

    def hint(self, spelling: Mapping[str, str]) -> str | None:
        """The fixes in one adapter's spelling, joined with "or"; None without any."""
        usable = []
        for template in self.fixes:
            try:
                usable.append(template.format_map(_Strict(spelling)))
            except KeyError:
                continue
        if not usable:
            return None
        if len(usable) == 1:
            return usable[0]
        return ", ".join(usable[:-1]) + ", or " + usable[-1]

    def line(self, spelling: Mapping[str, str]) -> str:
        """``cause; hint`` (or the cause alone), as one line for a person."""
        hint = self.hint(spelling)
        return f"{self.cause}; {hint}" if hint else self.cause


class _Strict(dict[str, str]):
    """A spelling table that raises for an option the adapter does not have."""

    def __missing__(self, key: str) -> str:
        raise KeyError(key)


class HealthCheckError(Exception):
    """Base of every error the core raises. ``str(error)`` is one line for the user.

    ``diagnosis`` is set by the core when the caller asked for one (``diagnose_within``).
    """

    diagnosis: Diagnosis | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(HealthCheckError):
    """The caller's input is unusable: a bad address, a missing or unreadable file, ..."""


class ConnectFailure(HealthCheckError):
    """No connection could be established. ``timed_out`` tells a deadline from a refusal.

    ``detail`` is grpcio's own text. ``socket_states`` is the kernel's state of the
    channel's sockets at a time-out (``SYN_SENT``, ``ESTABLISHED``), when taken.
    """

    def __init__(
        self,
        message: str,
        *,
        target: str,
        timed_out: bool,
        detail: str = "",
        socket_states: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.target = target
        self.timed_out = timed_out
        self.detail = detail
        self.socket_states = socket_states


class RpcFailure(HealthCheckError):
    """The health RPC itself failed. ``code`` is the gRPC status code."""

    def __init__(self, message: str, *, service: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(message)
        self.service = service
        self.code = code
        self.details = details

    @property
    def code_name(self) -> str:
        """The code's canonical name, e.g. ``NOT_FOUND``."""
        return str(self.code.name)

    @property
    def timed_out(self) -> bool:
        """True when the RPC ran out of its deadline."""
        return self.code_name == "DEADLINE_EXCEEDED"


class CertificateInfo(NamedTuple):
    """Facts about the certificate a TLS server presented.

    ``tls_version`` (``"TLS 1.3"``) is the version the handshake that fetched the
    certificate agreed on, when one did; grpcio does not tell which version its own
    connection uses.
    """

    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_after: datetime.datetime
    days_left: float
    tls_version: str | None = None


class ServiceResult(NamedTuple):
    """The outcome for one service: a status, or the RPC error that prevented one."""

    service: str
    status: HealthStatus | None
    rpc_time: float
    error: RpcFailure | None = None

    @property
    def serving(self) -> bool:
        """True only for SERVING."""
        return self.status is HealthStatus.SERVING


class ProbeResult(NamedTuple):
    """One probe of one target: per-service outcomes and phase timings in seconds.

    ``connect_time`` runs from the start until the channel is ready; ``rpc_time`` is
    the wall time of the (concurrent) health RPCs; ``time`` is the whole probe.
    """

    target: str
    services: tuple[ServiceResult, ...]
    connect_time: float
    rpc_time: float
    time: float
    certificate: CertificateInfo | None = None

    @property
    def serving(self) -> bool:
        """True when every service answered SERVING."""
        return all(result.serving for result in self.services)


class WatchResult(NamedTuple):
    """The outcome of waiting for services to reach a wanted status.

    ``reached`` tells whether all of them got there before the deadline. ``statuses``
    is the last status seen per service (None where none was seen). ``method`` is
    ``"watch"`` or ``"poll"`` (the fallback when Watch is UNIMPLEMENTED). ``last_probe``
    is the last Check-based probe, for its timings, when one succeeded. ``last_error``
    is the last error seen while waiting and not answered since, if the wait failed.
    ``connect_time`` is the seconds the wait's connection took to become ready, set-up
    and TLS included, or None when no connection was timed: none was made, or a Watch
    stream waiting for the server made it. ``last_probe.connect_time`` is only the wait
    of that probe, which is next to nothing on a connection that was already up.

    ``outcomes`` is the latest outcome per service (a status or an RPC error), in the
    order of the options' services, and ``connect_failure`` is set when the wait ended
    without a connection. Together they are what one more Check would most likely
    have found at the end. An outcome a Watch stream pushed carries the ``rpc_time``
    of the service's last Check (0 when no Check of it was answered).
    """

    wanted: HealthStatus | None
    reached: bool
    statuses: dict[str, HealthStatus | None]
    elapsed: float
    attempts: int
    method: str
    last_probe: ProbeResult | None = None
    last_error: HealthCheckError | None = None
    connect_time: float | None = None
    outcomes: tuple[ServiceResult, ...] = ()
    connect_failure: ConnectFailure | None = None


class WatchEvent(NamedTuple):
    """One thing :func:`~check_grpc_health.core.watch.watch` learnt, as it happened.

    Either a ``status`` the server reported for ``service``, or an ``error``: a
    :class:`ConnectFailure` (``service`` is None: the whole connection) or an
    :class:`RpcFailure` (a Check failed or a Watch stream broke). ``time`` is the
    wall-clock time (``time.time()``) it was learnt.
    """

    service: str | None
    status: HealthStatus | None
    error: HealthCheckError | None
    time: float
