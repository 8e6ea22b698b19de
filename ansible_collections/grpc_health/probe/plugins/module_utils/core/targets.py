# Generated from check_grpc_health/core/targets.py by tools/sync_module_utils.py.
# Do not edit: change the core, then run `python tools/sync_module_utils.py`.
"""Target parsing for the core: turns what a user typed into a gRPC target string.

Layer: core. Pure logic, no I/O. Every adapter parses its address through
:func:`parse_target`, so the forms accepted are the same everywhere.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from .results import InvalidArgument

_SCHEMES_PASSED_THROUGH = ("dns:", "ipv4:", "ipv6:")
# URL schemes as blackbox_exporter, curl and service meshes write gRPC endpoints: the
# scheme says TLS or plaintext, and http/https bring their usual default ports.
_URL_SCHEMES: dict[str, tuple[bool, int | None]] = {
    "grpc": (False, None),
    "http": (False, 80),
    "grpcs": (True, None),
    "https": (True, 443),
}
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.DOTALL)
_FORMS = "host:port, grpc://, grpcs://, http://, https://, unix:, dns:, ipv4: or ipv6:"


class Target(NamedTuple):
    """A parsed target.

    ``grpc_target`` is what grpcio dials. ``host`` and ``port`` are set for network
    targets (used for TLS SNI and for fetching the peer certificate); ``unix_path`` is
    set for unix sockets. ``display`` is the address as the user gave it, with the
    port added when it was given separately.

    ``tls`` is what a URL scheme said: True for ``grpcs://``/``https://``, False for
    ``grpc://``/``http://``, None without a scheme (see :class:`ProbeOptions`, which
    turns TLS on for True). ``address`` is the IP address the core resolved the host
    to when one address family was asked for; ``grpc_target`` then dials it, while
    ``host`` keeps the name for ``:authority`` and TLS.
    """

    grpc_target: str
    display: str
    host: str | None = None
    port: int | None = None
    unix_path: str | None = None
    tls: bool | None = None
    address: str | None = None

    @property
    def is_ip_literal(self) -> bool:
        """True when the host is an IP address, which cannot be sent as TLS SNI."""
        return self.host is not None and _is_ip(self.host)


def parse_port(text: str | int) -> int:
    """Return a TCP port in 1..65535, or raise :class:`InvalidArgument` naming it."""
    value = text.strip() if isinstance(text, str) else text
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise InvalidArgument(f"invalid port {text!r}: not a number")
    port = int(value)
    if not 1 <= port <= 65535:
        raise InvalidArgument(f"invalid port {text!r}: must be between 1 and 65535")
    return port


def parse_target(address: str, port: int | str | None = None) -> Target:
    """Parse an address in any accepted form, with an optional separate port.

    Accepted: ``host:port``, ``[v6]:port``, ``:port`` (localhost), ``host`` or a bare
    IPv6 literal with ``port`` given separately, ``unix:/path``, ``unix:///abs/path``,
    ``unix-abstract:name`` and ``dns:///name:port`` (also ``ipv4:``/``ipv6:``), and URLs:
    ``grpc://`` and ``http://`` (plaintext), ``grpcs://`` and ``https://`` (TLS), where
    ``http://`` and ``https://`` default to ports 80 and 443. A URL takes no path, and a
    bare file path is refused with the ``unix:`` form to write instead.
    """
    if not isinstance(address, str):
        raise InvalidArgument(f"invalid address {address!r}: not a string")
    _reject_unsafe_characters(address)
    text = address.strip()
    if not text:
        raise InvalidArgument("invalid address '': empty")
    separate_port = None if port is None or port == "" else parse_port(port)
    if text.startswith(("unix:", "unix-abstract:")):
        return _parse_unix(text, address, separate_port)
    if "@" in text:
        # What precedes '@' may be a password: the address is not shown.
        raise InvalidArgument(
            "invalid address (not shown): it holds user@ or user:password@, "
            "and a gRPC address takes no user name or password"
        )
    if text.startswith(_SCHEMES_PASSED_THROUGH):
        return _parse_scheme(text, address, separate_port)
    url = _URL.fullmatch(text)
    if url:
        return _parse_url(url.group(1), url.group(2), address, separate_port)
    _refuse_file_path(text, address)
    host, embedded_port = _split_host_port(text, address)
    if embedded_port is not None and separate_port not in (None, embedded_port):
        raise InvalidArgument(
            f"invalid address {address!r}: it names port {embedded_port} "
            f"but port {separate_port} was also given"
        )
    final_port = embedded_port if embedded_port is not None else separate_port
    if final_port is None:
        raise InvalidArgument(f"invalid address {address!r}: missing port")
    host = host or "localhost"
    _check_host(host, address)
    grpc_target = f"{_bracket(host)}:{final_port}"
    # With the port given separately, messages name host and port together.
    display = address if embedded_port is not None else grpc_target
    return Target(grpc_target=grpc_target, display=display, host=host, port=final_port)


def _reject_unsafe_characters(address: str) -> None:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or ch.isspace() for ch in address.strip()):
        raise InvalidArgument(
            f"invalid address {address!r}: contains whitespace or control characters"
        )
    # grpcio encodes the target as UTF-8; undecodable argv bytes (lone surrogates) cannot be.
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"invalid address {address!r}: not valid UTF-8") from None


def _parse_unix(text: str, address: str, separate_port: int | None) -> Target:
    if separate_port is not None:
        raise InvalidArgument(f"invalid address {address!r}: a unix socket takes no port")
    if text.startswith("unix-abstract:"):
        name = text[len("unix-abstract:") :]
        if not name:
            raise InvalidArgument(f"invalid address {address!r}: empty socket name")
        return Target(grpc_target=text, display=address, unix_path="\0" + name)
    rest = text[len("unix:") :]
    path = rest[2:] if rest.startswith("///") else rest
    if rest.startswith("//") and not rest.startswith("///"):
        raise InvalidArgument(
            f"invalid address {address!r}: use unix:/path or unix:///path "
            "(an authority is not allowed)"
        )
    if not path:
        raise InvalidArgument(f"invalid address {address!r}: empty socket path")
    return Target(grpc_target=f"unix:{path}", display=address, unix_path=path)


def _parse_scheme(text: str, address: str, separate_port: int | None) -> Target:
    scheme, _unused, rest = text.partition(":")
    endpoint = rest[2:].partition("/")[2] if rest.startswith("//") else rest
    if not endpoint:
        raise InvalidArgument(f"invalid address {address!r}: missing host after {scheme}:")
    if scheme != "dns":
        # ipv4:/ipv6: may list several addresses; only the first names the host.
        endpoint = endpoint.split(",")[0]
    host, embedded_port = _split_host_port(endpoint, address)
    port = embedded_port if embedded_port is not None else separate_port
    if port is None:
        raise InvalidArgument(f"invalid address {address!r}: missing port")
    if not host:
        raise InvalidArgument(f"invalid address {address!r}: missing host")
    _check_host(host, address)
    if embedded_port is None:
        text = address = f"{text}:{port}"
    return Target(grpc_target=text, display=address, host=host, port=port)


def _parse_url(scheme: str, rest: str, address: str, separate_port: int | None) -> Target:
    """``grpc://``, ``grpcs://``, ``http://``, ``https://``: host and port, nothing else."""
    known = _URL_SCHEMES.get(scheme.lower())
    if known is None:
        raise InvalidArgument(
            f"invalid address {address!r}: unknown scheme {scheme}:// (use {_FORMS})"
        )
    tls, default_port = known
    authority, _unused, path = rest.partition("/")
    for mark in "?#":
        if mark in authority:
            authority, _unused, tail = authority.partition(mark)
            path = path or mark + tail
    if path:
        shown = path if path[0] in "?#" else "/" + path
        raise InvalidArgument(
            f"invalid address {address!r}: a gRPC address has no path ({shown!r}); "
            f"write {scheme}://{authority}"
        )
    host, embedded_port = _split_host_port(authority, address)
    if embedded_port is not None and separate_port not in (None, embedded_port):
        raise InvalidArgument(
            f"invalid address {address!r}: it names port {embedded_port} "
            f"but port {separate_port} was also given"
        )
    port = embedded_port or separate_port or default_port
    if port is None:
        raise InvalidArgument(f"invalid address {address!r}: missing port ({scheme}:// has none)")
    if not host:
        raise InvalidArgument(f"invalid address {address!r}: missing host")
    _check_host(host, address)
    display = address.strip().rstrip("/")
    if embedded_port is None:
        display = f"{display}:{port}"
    return Target(f"{_bracket(host)}:{port}", display, host, port, tls=tls)


def _refuse_file_path(text: str, address: str) -> None:
    """A path such as ``/tmp/app.sock`` or ``./x.sock`` is a unix socket, written ``unix:``."""
    looks_like_path = text.startswith(("/", "./", "../")) or (
        text.endswith(".sock") and ":" not in text
    )
    if looks_like_path:
        raise InvalidArgument(
            f"invalid address {address!r}: a file path is a unix socket; write unix:{text}"
        )


def _split_host_port(text: str, address: str) -> tuple[str, int | None]:
    """Split ``host:port``, ``[v6]:port``, ``:port``, ``host`` or a bare IPv6 literal."""
    if text.startswith("["):
        host, sep, tail = text[1:].partition("]")
        if not sep or not _is_ipv6(host):
            raise InvalidArgument(f"invalid address {address!r}: bad bracketed IPv6 address")
        if not tail:
            return host, None
        if not tail.startswith(":"):
            raise InvalidArgument(f"invalid address {address!r}: expected ':' after ']'")
        return host, parse_port(tail[1:])
    if text.count(":") > 1:
        if _is_ipv6(text):
            return text, None
        raise InvalidArgument(f"invalid address {address!r}: write IPv6 addresses as [addr]:port")
    host, sep, port_text = text.partition(":")
    if not sep:
        return host, None
    return host, parse_port(port_text)


def _check_host(host: str, address: str) -> None:
    if _is_ip(host) or _is_ipv6(host):
        return
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_valid_label(label) for label in labels):
        raise InvalidArgument(f"invalid address {address!r}: bad host name {host!r}")


def _valid_label(label: str) -> bool:
    return (
        0 < len(label) <= 63
        and label.isascii()
        and all(ch.isalnum() or ch in "-_" for ch in label)
        and not label.startswith("-")
        and not label.endswith("-")
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host.split("%", maxsplit=1)[0])
    except ValueError:
        return False
    return True


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
