# Generated from check_grpc_health/core/proxy.py by tools/sync_module_utils.py.
# Do not edit: change the core, then run `python tools/sync_module_utils.py`.
"""Which HTTP proxy grpcio will send a connection through, and why (for ``-v``).

Layer: core. Standard library only; pure logic over the environment, no I/O.

grpcio (C-core's ``HttpProxyMapper``) reads proxy settings from the environment on
its own: a user with ``http_proxy`` set for curl sends every check through that proxy
without knowing it. :func:`proxy_for` repeats grpcio's rules so that adapters can say
which proxy is used (``-v``) and a failure can say it went through it. The rules,
checked against grpcio 1.85:

- the first setting *present* wins: ``grpc_proxy``, then ``https_proxy``, then
  ``http_proxy``, lower case only (``HTTP_PROXY`` is ignored); an empty value means
  "no proxy" and ends the search;
- only ``http://`` URLs are used (``https://proxy`` or ``host:port`` are ignored and the
  connection goes direct); a URL without a port means port 443;
- ``no_grpc_proxy`` (or, only when it is not set at all, ``no_proxy``) is a comma list
  of host names, matched case-insensitively against the host or a parent domain of it
  (a leading dot is optional; there is no ``*``), and of IP addresses and CIDR ranges,
  matched against IP-literal targets only;
- ``unix:`` and ``vsock:`` targets never use a proxy, but ``unix-abstract:`` ones do;
- the channel option ``grpc.enable_http_proxy=0`` (``enabled=False`` here) turns
  all of it off.

grpcio has a second, address-level proxy (``GRPC_ADDRESS_HTTP_PROXY`` for the addresses
in ``GRPC_ADDRESS_HTTP_PROXY_ENABLED_ADDRESSES``) that ``grpc.enable_http_proxy=0`` does
not turn off; :func:`proxy_for` notes it, and :data:`ADDRESS_PROXY_VARIABLE` tells the
channel when it must be turned off on its own.

Credentials in a proxy URL are sent by grpcio as ``Proxy-Authorization``; here they
never reach a note, a URL, a ``repr`` or ``str``: :class:`ProxyRoute` keeps them in a
field hidden from both.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .targets import Target

PROXY_VARIABLES = ("grpc_proxy", "https_proxy", "http_proxy")
ADDRESS_PROXY_VARIABLE = "GRPC_ADDRESS_HTTP_PROXY"
# grpcio resolves a proxy given without a port with the "https" default.
DEFAULT_PROXY_PORT = 443
# Targets grpcio never sends through a proxy (C-core exempts these schemes only).
_NEVER_PROXIED = ("unix:", "vsock:")


@dataclass(frozen=True)
class ProxyRoute:
    """The HTTP proxy grpcio dials for a target.

    ``url`` is ``http://host:port``, rebuilt without credentials; ``source`` names
    where the setting came from (``http_proxy``, ...). ``credentials`` is
    ``user:password`` when the URL had any (for a ``CONNECT`` of one's own); it is
    left out of ``repr``, ``str`` and comparisons, and ``authenticated`` says it is set.
    """

    url: str
    source: str
    host: str
    port: int
    credentials: str | None = field(default=None, repr=False, compare=False)

    @property
    def authenticated(self) -> bool:
        """True when the proxy URL carried a user name (grpcio then sends it)."""
        return self.credentials is not None


class ProxyDecision(NamedTuple):
    """Whether grpcio will use a proxy for a target (``route``), and notes on why."""

    route: ProxyRoute | None
    notes: tuple[str, ...] = ()


def proxy_for(
    target: Target,
    environ: Mapping[str, str] | None = None,
    *,
    enabled: bool = True,
) -> ProxyDecision:
    """The proxy grpcio would use for ``target``, with notes for a verbose output.

    ``environ`` defaults to ``os.environ``. ``enabled=False`` stands for the channel
    option ``grpc.enable_http_proxy=0`` (``--no-proxy``). Notes never hold credentials.
    """
    env = os.environ if environ is None else environ
    notes: list[str] = []
    upper = [name.upper() for name in PROXY_VARIABLES if name.upper() in env]
    if upper and not any(name in env for name in PROXY_VARIABLES):
        notes.append(
            f"{', '.join(upper)} set, but grpcio reads only lower-case "
            f"{'/'.join(PROXY_VARIABLES)}: no proxy"
        )
    found = _setting(env)
    if env.get(ADDRESS_PROXY_VARIABLE):
        shown = strip_credentials(env[ADDRESS_PROXY_VARIABLE])
        notes.append(
            f"{ADDRESS_PROXY_VARIABLE}={shown!r} "
            + (
                "not used (proxy use turned off)"
                if not enabled
                else "is set: grpcio sends the addresses in "
                "GRPC_ADDRESS_HTTP_PROXY_ENABLED_ADDRESSES through it"
            )
        )
    if not enabled:
        if found is not None:
            notes.append(f"{found[0]} not used (proxy use turned off): connecting directly")
        return ProxyDecision(None, tuple(notes))
    if target.grpc_target.startswith(_NEVER_PROXIED) or found is None:
        return ProxyDecision(None, tuple(notes))
    source, setting = found
    if not setting:
        return ProxyDecision(None, (*notes, f"{source} is empty: no proxy"))
    route = _parse_proxy_url(setting, source)
    if route is None:
        shown = strip_credentials(setting)
        notes.append(f"{source}={shown!r} is ignored by grpcio (only http://host:port works)")
        return ProxyDecision(None, tuple(notes))
    exempt = _exempt_by(target, env)
    if exempt is not None:
        notes.append(f"{exempt} lists {target.host}: connecting directly")
        return ProxyDecision(None, tuple(notes))
    if target.grpc_target.startswith("unix-abstract:"):
        notes.append("grpcio sends unix-abstract: targets through a proxy too")
    notes.append(f"connecting through the HTTP proxy {route.url} (from {source})")
    return ProxyDecision(route, tuple(notes))


def strip_credentials(setting: str) -> str:
    """A proxy setting with any ``user:password@`` replaced by ``***@``."""
    scheme, sep, rest = setting.partition("://")
    if not sep:
        scheme, rest = "", setting
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{path}"


def _setting(env: Mapping[str, str]) -> tuple[str, str] | None:
    for name in PROXY_VARIABLES:
        if name in env:
            return name, env[name]
    return None


def _parse_proxy_url(setting: str, source: str) -> ProxyRoute | None:
    try:
        parts = urlsplit(setting)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() != "http" or not parts.hostname:
        return None
    host = parts.hostname
    port = port if port is not None else DEFAULT_PROXY_PORT
    shown_host = f"[{host}]" if ":" in host else host
    credentials = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return ProxyRoute(
        url=f"http://{shown_host}:{port}",
        source=source,
        host=host,
        port=port,
        credentials=credentials,
    )


def _exempt_by(target: Target, env: Mapping[str, str]) -> str | None:
    """The variable (``no_grpc_proxy`` or ``no_proxy``) that exempts the target, if any."""
    name = "no_grpc_proxy" if "no_grpc_proxy" in env else "no_proxy"
    listing = env.get(name)
    host = target.host
    if not listing or host is None:
        return None
    host = host.lower()
    address = _ip(host)
    for raw_entry in listing.split(","):
        entry = raw_entry.strip().lower()
        domain = entry.lstrip(".")
        if not domain:
            continue
        if host == domain or (address is None and host.endswith("." + domain)):
            return name
        if address is not None and _in_network(address, entry):
            return name
    return None


def _in_network(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    with contextlib.suppress(ValueError):
        return address in ipaddress.ip_network(entry.strip("[]"), strict=False)
    return False


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
