"""Why a check failed, in words, and the option that fixes it.

Layer: core. Imports only the standard library and :mod:`check_grpc_health.core.peek`.
It never prints. It runs only after a check has failed, so the healthy path never
imports it.

A diagnosis reads the failure's text first: most causes are spelled out by grpcio,
only buried. Where the text is ambiguous it runs one cheap active test from
:mod:`~check_grpc_health.core.peek` against the target, bounded by the caller's
deadline. When grpcio sends the connection through an HTTP proxy, the tests go
through the same proxy and every cause says so.

Hints name options by key (``{tls}``, ``{ca_cert}``, ...). The core does not know how
an adapter spells them: each adapter renders a :class:`Diagnosis` with its own table
through :meth:`Diagnosis.hint` and :meth:`Diagnosis.line` (the record lives in
:mod:`~check_grpc_health.core.results`, so errors can carry it). The keys are ``tls``,
``no_tls``, ``ca_cert``, ``insecure``, ``server_name``, ``client_cert``,
``client_key``, ``no_proxy``, ``gzip``, ``connect_timeout``, ``rpc_timeout`` and
``address``. A fix whose key a table lacks is left out. A hint never holds a metadata
value, a key, or a proxy's credentials.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from check_grpc_health.core.handshake import closed, http1, not_http2, tls_failure
from check_grpc_health.core.peek import MIN_ACTIVE, Hop, remaining, tcp_state
from check_grpc_health.core.proxy import proxy_for
from check_grpc_health.core.results import ConnectFailure, Diagnosis, InvalidArgument, RpcFailure
from check_grpc_health.core.rpc import ALTS_UNAVAILABLE, NO_CREDENTIALS

__all__ = ["Diagnosis", "attach", "diagnose"]

if TYPE_CHECKING:
    from collections.abc import Mapping

    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.proxy import ProxyRoute
    from check_grpc_health.core.results import HealthCheckError
    from check_grpc_health.core.targets import Target


def diagnose(
    error: HealthCheckError,
    options: ProbeOptions,
    deadline: float,
    *,
    environ: Mapping[str, str] | None = None,
    socket_states: tuple[str, ...] | None = None,
) -> Diagnosis:
    """Explain ``error``, raised or returned by a probe with ``options``. Never raises.

    ``deadline`` is a ``time.monotonic()`` instant: active tests never run past it,
    and none starts with less than 50 ms left. ``socket_states`` is what
    :func:`~check_grpc_health.core.peek.connection_states` saw when a connect timed
    out (by default, what the failure carries).
    """
    started = time.monotonic()
    try:
        route = _route(options, environ) if isinstance(error, ConnectFailure) else None
        if isinstance(error, RpcFailure):
            found = _rpc(error, options)
        elif isinstance(error, ConnectFailure):
            states = error.socket_states if socket_states is None else socket_states
            found = _connect(error, options, route, deadline, states)
            if route is not None:
                found = _through(found, route)
        elif isinstance(error, InvalidArgument):
            found = _argument(error.message)
        else:
            found = Diagnosis("other", error.message)
    except Exception as unexpected:  # a diagnosis must never hide the failure itself
        found = Diagnosis(
            "other", f"{error.message} (diagnosis failed: {type(unexpected).__name__})"
        )
    return found._replace(elapsed=time.monotonic() - started)


def attach(error: HealthCheckError, options: ProbeOptions, within: float) -> Diagnosis:
    """Diagnose ``error`` within ``within`` seconds from now and keep it on the error."""
    found = diagnose(error, options, time.monotonic() + max(within, 0.0))
    error.diagnosis = found
    return found


def _route(options: ProbeOptions, environ: Mapping[str, str] | None) -> ProxyRoute | None:
    """The proxy grpcio dials for this target, or None."""
    return proxy_for(options.target, environ, enabled=options.use_proxy).route


def _hop(route: ProxyRoute | None) -> Hop | None:
    return None if route is None else Hop(route.host, route.port, route.credentials)


def _through(found: Diagnosis, route: ProxyRoute) -> Diagnosis:
    """Say that the connection went through the proxy, and how to go around it."""
    cause = found.cause
    if route.url not in cause:
        cause = f"{cause} (through the HTTP proxy {route.url} from {route.source})"
    fixes = found.fixes
    if "connect directly with {no_proxy}" not in fixes:
        fixes = (*fixes, "connect directly with {no_proxy}")
    return found._replace(cause=cause, fixes=fixes, proxy=route.url)


# --- RPC failures -------------------------------------------------------------------

# What servers say when they have no health service at all.
_NO_HEALTH = re.compile(
    r"^(Method not (found|implemented)!?"  # grpcio (Python)
    r"|unknown (service|method Check for service) grpc\.health\.v1\.Health"  # Go
    r"|Method not found: grpc\.health\.v1\.Health/.*"  # grpc-java
    r"|The server does not implement the method /grpc\.health\.v1\.Health/.*"  # grpc-js
    r"|(Service|Method) is unimplemented\."  # grpc-dotnet
    r"|)$"  # grpc C++ and others send no message
)
_HTTP_STATUS = re.compile(r"Received http2 header with status: (\d+)")


def _rpc(error: RpcFailure, options: ProbeOptions) -> Diagnosis:
    code, details = error.code_name, error.details
    if code == "UNIMPLEMENTED":
        if _NO_HEALTH.match(details):
            return Diagnosis(
                "no_health_service", "the server does not offer the grpc.health.v1.Health service"
            )
        if "ecompressor is not installed" in details or "grpc-encoding" in details:
            return Diagnosis(
                "compression_unsupported",
                f"the server cannot read compressed requests ({details})",
                ("leave out {gzip}",) if options.gzip else (),
            )
        status = _HTTP_STATUS.search(details)
        if status:
            return Diagnosis(
                "http2_not_grpc",
                f"an HTTP/2 server that is not gRPC answered HTTP {status.group(1)} "
                "(a web server, or a proxy or load balancer that does not route gRPC here)",
                ("check the port in {address}",),
            )
        return Diagnosis("unimplemented", f"the server answered UNIMPLEMENTED: {details}")
    if code == "DEADLINE_EXCEEDED":
        return Diagnosis(
            "rpc_timeout",
            f"connected, but the health RPC got no answer within {options.rpc_timeout:g}s "
            "(the server is slow or overloaded)",
            ("use a longer {rpc_timeout}",),
        )
    if code == "NOT_FOUND":
        return Diagnosis("unknown_service", f"the server does not know service {error.service!r}")
    return Diagnosis("rpc_error", f"the health RPC failed: {code}: {details}")


# --- connection failures -------------------------------------------------------------

_DNS = (
    ("Domain name not found", "name_not_found", "the name {host} does not exist in DNS (NXDOMAIN)"),
    ("DNS server refused query", "dns_refused", "the DNS server refused to resolve {host}"),
    ("Could not contact DNS servers", "dns_unreachable", "no DNS server answered for {host}"),
    ("Timeout while contacting DNS", "dns_unreachable", "no DNS server answered for {host}"),
    ("answer with no data", "no_address", "{host} has no address in DNS"),
    ("No address associated", "no_address", "{host} has no address of the asked family"),
)
# grpcio's own attempt may end a moment before the core's wait: the same time-out.
TIMEOUT_MARKERS = ("handshaker shutdown", "timed out", "Timeout occurred", "Deadline Exceeded")
_REFUSED_ADDRESS = re.compile(r"(ipv4|ipv6):(\S+?): Failed to connect to remote host")
_PROXY_STATUS = re.compile(r"HTTP proxy returned response code (\d+)")


def _connect(
    error: ConnectFailure,
    options: ProbeOptions,
    route: ProxyRoute | None,
    deadline: float,
    socket_states: tuple[str, ...],
) -> Diagnosis:
    detail = error.detail or error.message
    target = options.target
    host = target.host or target.unix_path or target.display
    if error.timed_out and detail.startswith("resolving "):
        return Diagnosis("dns_timeout", f"no answer from DNS for {host} in time")
    if error.timed_out or any(marker in detail for marker in TIMEOUT_MARKERS):
        return _timeout(options, route, deadline, socket_states)
    if "errors resolving" in detail or "DNS" in detail:
        for marker, kind, words in _DNS:
            if marker in detail:
                fixes = ("check the name in {address}",) if kind == "name_not_found" else ()
                return Diagnosis(kind, words.format(host=host), fixes)
        return Diagnosis("dns", f"{host} could not be resolved: {_tail(detail)}")
    proxy_status = _PROXY_STATUS.search(detail)
    if proxy_status and route is not None:
        return _proxy_status(int(proxy_status.group(1)), route, target)
    if "Connection refused" in detail:
        if route is not None:
            return Diagnosis(
                "proxy_refused",
                f"the HTTP proxy {route.url} (from {route.source}) refused the connection; "
                f"{target.display} itself was not tried",
            )
        return Diagnosis("refused", _refused(detail, target))
    if "No such file or directory" in detail and target.unix_path:
        return Diagnosis("no_socket", f"the socket {target.unix_path} does not exist")
    if "Permission denied" in detail and target.unix_path:
        return Diagnosis("socket_permission", f"no permission to connect to {target.unix_path}")
    if "No route to host" in detail or "Network is unreachable" in detail:
        return Diagnosis(
            "unreachable",
            f"{host} is unreachable (no route to host): it is down, or the address is wrong",
            ("check the address in {address}",),
        )
    hop = _hop(route)
    if "Trying to connect an http1.x server" in detail:
        return http1(detail, options, hop, deadline)
    if "Expected SETTINGS frame" in detail:
        return not_http2(options, hop, deadline)
    if options.tls is not None:
        found = tls_failure(detail, options, hop, deadline)
        if found is not None:
            return found
    if "Socket closed" in detail or "Connection reset" in detail or "End of TCP stream" in detail:
        return closed(options, hop, deadline)
    if detail.endswith(NO_CREDENTIALS):
        return Diagnosis("alts_unavailable", ALTS_UNAVAILABLE)
    if "failed to connect to all addresses" not in detail:
        # The core's own words (name resolution, address family): already a cause.
        return Diagnosis(
            "connect_failed", detail.removeprefix(f"failed to connect to {error.target}: ")
        )
    return Diagnosis("connect_failed", f"the connection failed: {_tail(detail)}")


def _tail(detail: str) -> str:
    """grpcio's reason without its 'failed to connect to all addresses' boilerplate."""
    return re.sub(
        r"^(failed to connect to all addresses; last error: )?([A-Z_]+: )?"
        r"((ipv4|ipv6|unix|unix-abstract):\S+: )?",
        "",
        detail,
        count=1,
    )


def _refused(detail: str, target: Target) -> str:
    """grpcio's words, naming the address that refused when the target is a name."""
    found = _REFUSED_ADDRESS.search(detail)
    address = found.group(2).replace("%5B", "[").replace("%5D", "]") if found else ""
    if not address or address == target.display or target.is_ip_literal:
        return "Connection refused"
    return f"Connection refused by {address}"


def _proxy_status(status: int, route: ProxyRoute, target: Target) -> Diagnosis:
    via = f"the HTTP proxy {route.url} (from {route.source})"
    if status == 407 or (status == 401 and route.authenticated):
        if route.authenticated:
            return Diagnosis(
                "proxy_auth",
                f"{via} rejected the credentials in its URL (HTTP {status}; not shown)",
            )
        return Diagnosis("proxy_auth", f"{via} wants credentials (HTTP 407); none are set")
    if status in (401, 403):
        return Diagnosis(
            "proxy_forbidden", f"{via} refused to connect to {target.display} (HTTP {status})"
        )
    if status >= 500:
        return Diagnosis(
            "proxy_upstream", f"{via} could not reach {target.display} (HTTP {status})"
        )
    return Diagnosis("proxy_error", f"{via} answered HTTP {status}")


def _timeout(
    options: ProbeOptions, route: ProxyRoute | None, deadline: float, socket_states: tuple[str, ...]
) -> Diagnosis:
    peer = f"the HTTP proxy {route.url}" if route is not None else "the server"
    hop = _hop(route)
    states = set(socket_states)
    probed = False
    if not states and remaining(deadline) > MIN_ACTIVE:
        states, probed = {tcp_state(options.target, hop, deadline, tunnel=False)}, True
    if "SYN_SENT" in states or states == {"SYN_TIMEOUT"}:
        return Diagnosis(
            "no_answer",
            f"no TCP answer from {peer}: packets are dropped (host down, firewall, "
            "or wrong address)",
            ("check the address in {address}",),
            probed=probed,
        )
    if "REFUSED" in states:
        return Diagnosis("refused", f"nothing listens on {options.target.display} now")
    if not ({"ESTABLISHED", "CONNECTED"} & states):
        return Diagnosis(
            "connect_timeout", "no connection in time", ("use a longer {connect_timeout}",)
        )
    layer = "TLS handshake" if options.tls is not None else "HTTP/2 settings"
    fixes = ("use a longer {connect_timeout}", "check the port in {address}")
    if route is not None and hop is not None and remaining(deadline) > MIN_ACTIVE:
        tunnel = tcp_state(options.target, hop, deadline, tunnel=True)
        if tunnel == "CONNECTED":
            return Diagnosis(
                "silent_peer",
                f"{options.target.display} accepted the connection from the HTTP proxy "
                f"{route.url} but sent no {layer} (overloaded, or not a gRPC server)",
                fixes,
                probed=True,
            )
        if tunnel == "SYN_TIMEOUT":
            return Diagnosis(
                "proxy_silent",
                f"the HTTP proxy {route.url} did not answer CONNECT in time",
                probed=True,
            )
    return Diagnosis(
        "silent_peer",
        f"{peer} accepted the TCP connection but sent no {layer} "
        "(overloaded, or not a gRPC server)",
        fixes,
        probed=probed,
    )


def _argument(message: str) -> Diagnosis:
    if "client key is required" in message:
        return Diagnosis(
            "client_key_missing",
            "a client certificate needs its private key",
            ("give {client_key} together with {client_cert}",),
        )
    if "client certificate is required" in message:
        return Diagnosis(
            "client_cert_missing",
            "a client key needs its certificate",
            ("give {client_cert} together with {client_key}",),
        )
    return Diagnosis("invalid_argument", message)
