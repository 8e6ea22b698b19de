# Generated from check_grpc_health/core/family.py by tools/sync_module_utils.py.
# Do not edit: change the core, then run `python tools/sync_module_utils.py`.
"""One address family (``-4``/``-6``): resolve the host and dial only its addresses of it.

Layer: core. Standard library only; the one wait (``getaddrinfo``) is bounded.

grpcio resolves a name to every address it has and tries them all, so "connect over
IPv6 only" cannot be said to grpcio. The core resolves the name itself instead and
dials the addresses of the asked family as an ``ipv4:``/``ipv6:`` list, which grpcio
tries in order as it would the name's. The name itself stays the ``:authority`` and
the TLS name (the channel sees to both), so the server is asked exactly what a client
using the name would ask.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

from .results import ConnectFailure

if TYPE_CHECKING:
    from .options import ProbeOptions
    from .targets import Target
    from .tls import TlsOptions

FAMILY_NAMES: dict[int, str] = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}
_FLAGS: dict[int, str] = {socket.AF_INET: "-4", socket.AF_INET6: "-6"}


def pin_family(target: Target, family: int, timeout: float) -> Target:
    """``target`` dialling only its ``family`` addresses, or ``target`` itself for a literal.

    Raises :class:`ConnectFailure` when the name does not resolve within ``timeout``
    seconds, or has no address of ``family``; the message then names the addresses
    it has.
    """
    host, port = target.host, target.port
    if (
        host is None
        or port is None
        or _is_literal(host)
        or target.grpc_target.startswith(("ipv4:", "ipv6:"))
    ):
        return target
    addresses = _resolve(target, host, timeout)
    wanted = [address for address, found in addresses if found == family]
    if not wanted:
        asked = FAMILY_NAMES[family]
        other = _FLAGS[socket.AF_INET if family == socket.AF_INET6 else socket.AF_INET6]
        has = ", ".join(address for address, _unused in addresses) or "no address"
        cause = (
            f"{host} has no {asked} address (it has {has}); "
            f"leave out {_FLAGS[family]}, or use {other}"
        )
        raise ConnectFailure(
            f"failed to connect to {target.display}: {cause}",
            target=target.display,
            timed_out=False,
            detail=cause,
        )
    scheme = "ipv6" if family == socket.AF_INET6 else "ipv4"
    listed = ",".join(
        f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}"
        for address in wanted
    )
    return target._replace(grpc_target=f"{scheme}:{listed}", address=wanted[0])


def family_route(options: ProbeOptions) -> tuple[Target, TlsOptions | None, str | None, bool]:
    """For ``options.family``: the target to dial, its TLS settings, ``:authority``, and
    whether a proxy may be used.

    With one address family asked for, the core resolves the name itself and dials
    its addresses of that family; the name stays the ``:authority`` and the name TLS
    verifies (and sends as SNI), as for a channel to the name itself. Whether the
    environment's proxy applies is decided on the name too (grpcio would match
    ``no_proxy`` against the address); through a proxy only the first address is
    dialled, as grpcio would send a whole list to the proxy as one ``CONNECT``.
    """
    target, tls, authority = options.target, options.tls, options.authority
    pinned = pin_family(target, options.family, options.connect_timeout)
    if pinned is target:
        return target, tls, authority, options.use_proxy
    if tls is not None and not tls.server_name:
        tls = tls._replace(server_name=target.host)
    name = f"[{target.host}]" if ":" in str(target.host) else target.host
    from .proxy import proxy_for

    proxied = proxy_for(target, enabled=options.use_proxy).route is not None
    if proxied and pinned.address is not None:
        pinned = pinned._replace(grpc_target=pinned.grpc_target.partition(",")[0])
    return pinned, tls, authority or f"{name}:{target.port}", proxied


def _resolve(target: Target, host: str, timeout: float) -> list[tuple[str, int]]:
    """Every address of ``host``, in getaddrinfo's order, within ``timeout`` seconds.

    getaddrinfo has no timeout of its own, so it runs in a helper thread; one that
    outlives the wait is abandoned (a daemon thread) and its answer dropped.
    """
    outcome: dict[str, object] = {}

    def resolve() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, target.port, 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            outcome["error"] = error

    helper = threading.Thread(target=resolve, name="grpc-health-resolve", daemon=True)
    helper.start()
    helper.join(timeout)
    if helper.is_alive():
        raise ConnectFailure(
            f"timed out connecting to {target.display} after {timeout:g}s (resolving {host})",
            target=target.display,
            timed_out=True,
            detail=f"resolving {host} timed out",
        )
    error = outcome.get("error")
    if error is not None:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConnectFailure(
            f"failed to connect to {target.display}: cannot resolve {host}: {reason}",
            target=target.display,
            timed_out=False,
            detail=f"cannot resolve {host}: {reason}",
        )
    infos = outcome.get("infos", [])
    if not isinstance(infos, list):
        raise AssertionError('isinstance(infos, list)')
    found = dict.fromkeys(
        (str(info[4][0]), int(info[0])) for info in infos if info[0] in FAMILY_NAMES
    )
    return list(found)


def _is_literal(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.split("%", 1)[0])
        except OSError:
            continue
        return True
    return False
