# Generated from check_grpc_health/core/options.py by tools/sync_module_utils.py.
# Do not edit: change the core, then run `python tools/sync_module_utils.py`.
"""Probe options for the core: the one immutable object an adapter builds.

Layer: core. Pure logic. Also holds the shared parsers for metadata headers, so every
adapter accepts ``key: value`` the same way and no error ever echoes a value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .results import InvalidArgument

if TYPE_CHECKING:
    from .targets import Target
    from .tls import TlsOptions

# grpc keeps deadlines and timeouts as milliseconds in a C int: about 24.8 days.
MAX_TIMEOUT = (2**31 - 1) / 1000
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """Everything :func:`check_grpc_health.core.probe.probe` needs.

    Timeouts are in seconds. ``connect_timeout`` bounds reaching a ready channel
    (TLS included); ``rpc_timeout`` bounds each health RPC. ``metadata`` values are
    secrets: they go on the wire and nowhere else (see :meth:`__repr__`).
    A service named more than once is asked once, in the order first given; a single
    string in ``services`` is one name.

    A target written ``grpcs://`` or ``https://`` turns TLS on (default settings) when
    ``tls`` is None. ``use_proxy=False`` stops grpcio from using the HTTP proxy of the
    environment (see :mod:`check_grpc_health.core.proxy`). ``family``
    (``socket.AF_INET``/``AF_INET6``, 0 for any) makes the channel resolve the host
    itself and dial only addresses of that family.
    """

    target: Target
    services: tuple[str, ...] = ("",)
    connect_timeout: float = 1.0
    rpc_timeout: float = 1.0
    tls: TlsOptions | None = None
    alts: bool = False
    metadata: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    user_agent: str | None = None
    authority: str | None = None
    gzip: bool = False
    certificate_facts: bool = False
    use_proxy: bool = True
    family: int = 0

    def __post_init__(self) -> None:
        # Capped, not refused: a deadline beyond grpc's range would expire at once.
        object.__setattr__(
            self, "connect_timeout", capped(check_timeout("connect timeout", self.connect_timeout))
        )
        object.__setattr__(
            self, "rpc_timeout", capped(check_timeout("RPC timeout", self.rpc_timeout))
        )
        object.__setattr__(self, "services", _service_names(self.services))
        _check_scheme_security(self)
        if self.tls is not None and self.alts:
            raise InvalidArgument("TLS and ALTS cannot be combined")
        if self.family:
            _check_family(self.target, self.family)
        for key, _unused in self.metadata:
            check_metadata_key(key)
        if self.authority is not None:
            _check_printable("authority", self.authority)
        if self.user_agent is not None:
            _check_printable("user agent", self.user_agent)


def _service_names(services: object) -> tuple[str, ...]:
    """The names to ask for, each once, in the order first given.

    A single string is one name: iterating ``"shop.v1.Orders"`` would ask for one service
    per letter.
    """
    try:
        given = iter((services,) if isinstance(services, str) else services)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidArgument(
            f"services must be a sequence of names, not {type(services).__name__}"
        ) from None
    names: dict[str, None] = {}  # one answer per name: asking twice would count it twice
    for name in given:
        if not isinstance(name, str):
            raise InvalidArgument(f"a service name must be text, not {name!r}")
        _check_utf8("service", name)
        names[name] = None
    if not names:
        raise InvalidArgument("at least one service is required")
    return tuple(names)


def _check_scheme_security(options: ProbeOptions) -> None:
    """A ``grpcs://``/``https://`` target means TLS; ``grpc://``/``http://`` means plaintext."""
    target = options.target
    if target.tls is None:
        return
    scheme = target.display.partition("://")[0]
    if target.tls and options.alts:
        raise InvalidArgument(f"{target.display} asks for TLS ({scheme}://); ALTS cannot be used")
    if not target.tls and (options.tls is not None or options.alts):
        raise InvalidArgument(
            f"{target.display} asks for plaintext ({scheme}://), but TLS options were "
            "given: write grpcs:// or https:// for TLS"
        )
    if target.tls and options.tls is None:
        from .tls import TlsOptions

        object.__setattr__(options, "tls", TlsOptions())


def _check_family(target: Target, family: int) -> None:
    """One address family: a host name, or an IP literal of that family."""
    import socket

    names: dict[int, str] = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}
    if family not in names:
        raise InvalidArgument(f"address family {family!r} is not IPv4 or IPv6")
    if target.host is None:
        raise InvalidArgument(
            f"{target.display} is a unix socket: it has no {names[family]} address"
        )
    literal_family = _literal_family(target.host)
    if literal_family and literal_family != family:
        raise InvalidArgument(
            f"{target.display} is an {names[literal_family]} address, but "
            f"{names[family]} only was asked for"
        )


def _literal_family(host: str) -> int:
    import ipaddress
    import socket

    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return 0
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def check_timeout(name: str, value: float) -> float:
    """Return ``value`` if it is a finite number of seconds above zero."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{name} {value!r} is not a number")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgument(f"{name} must be a finite number above zero (got {value!r})")
    return float(value)


def capped(seconds: float) -> float:
    """Limit a timeout to :data:`MAX_TIMEOUT`, the longest deadline grpc can represent."""
    return min(seconds, MAX_TIMEOUT)


def parse_seconds(name: str, text: str) -> float:
    """Parse a float number of seconds from user text, e.g. ``0.5`` or ``10``."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name} {text!r} is not a number of seconds") from None
    return check_timeout(name, value)


def parse_metadata(entry: str, position: int = 1) -> tuple[str, str]:
    """Parse one ``key: value`` header. Errors name the key or position, never a value."""
    key, sep, value = entry.partition(":")
    if not sep:
        raise InvalidArgument(f"metadata entry #{position} has no ':' between key and value")
    key = key.strip().lower()
    check_metadata_key(key)
    value = value.lstrip(" ")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value) or not value.isascii():
        raise InvalidArgument(
            f"metadata {key!r}: the value must be printable ASCII (value not shown)"
        )
    return key, value


def check_metadata_key(key: str) -> None:
    """Reject keys gRPC would refuse: empty, reserved, or outside ``[a-z0-9-_.]``."""
    if not key:
        raise InvalidArgument("metadata key is empty")
    if not set(key) <= _KEY_CHARS:
        shown = key if key.isprintable() else repr(key)
        raise InvalidArgument(
            f"metadata key {shown!r} may contain only lowercase letters, digits, '-', '_', '.'"
        )
    if key.startswith("grpc-") or key.endswith("-bin"):
        raise InvalidArgument(f"metadata key {key!r} is reserved or binary and cannot be set")


def _check_utf8(name: str, value: str) -> None:
    # argv can carry lone surrogates (undecodable bytes); protobuf cannot send them.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{name} {value!r} is not valid UTF-8") from None


def _check_printable(name: str, value: str) -> None:
    if not value or not value.isprintable() or not value.isascii():
        raise InvalidArgument(f"{name} {value!r} must be non-empty printable ASCII")
