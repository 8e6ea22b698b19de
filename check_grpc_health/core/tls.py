"""TLS for the core: channel credentials, the no-verify pin, and peer certificate facts.

Layer: core. Reads the PEM files named in :class:`TlsOptions` (each exactly once),
validates them with the standard ``ssl`` module so a bad file is an
:class:`InvalidArgument` naming it, and builds grpcio channel credentials.

grpcio has no switch to skip verification. "No verify" mode therefore fetches the
certificate the server presents with a plain TLS handshake (``ssl``, no verification)
and pins it as the only trusted root, with the target name set to a name the
certificate carries. The traffic stays encrypted, and grpcio still checks that the
server holds the key of the pinned certificate, but the certificate is trusted on
first use, not authenticated. An expired pinned certificate still fails.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
from typing import TYPE_CHECKING, Any, NamedTuple

from check_grpc_health.core.results import CertificateInfo, ConnectFailure, InvalidArgument

if TYPE_CHECKING:
    import grpc

    from check_grpc_health.core.targets import Target


class TlsOptions(NamedTuple):
    """How to secure the channel. File fields are paths to PEM files.

    ``verify=False`` is the "no verify" mode described in the module docstring;
    ``ca_cert`` and ``server_name`` are then not used.
    """

    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    server_name: str | None = None
    verify: bool = True


class ChannelSecurity(NamedTuple):
    """Credentials for grpcio, plus the channel options they need."""

    credentials: grpc.ChannelCredentials
    options: tuple[tuple[str, Any], ...] = ()
    certificate: CertificateInfo | None = None


def read_pem_file(path: str, role: str) -> bytes:
    """Read a PEM file once; any problem is an :class:`InvalidArgument` naming it."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise InvalidArgument(f"cannot read {role} {path!r}: {reason}") from None
    except ValueError:  # a NUL byte in the path
        raise InvalidArgument(f"cannot read {role} {path!r}: the path is not valid") from None
    if b"-----BEGIN " not in data:
        raise InvalidArgument(f"{role} {path!r} is not a PEM file")
    return data


def _check_ca_bundle(path: str, data: bytes) -> None:
    try:
        ssl.create_default_context(cadata=data.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError):
        raise InvalidArgument(f"CA certificate {path!r} holds no usable certificate") from None


def _check_key_pair(cert_path: str, cert: bytes, key_path: str, key: bytes) -> None:
    """Let OpenSSL confirm that the key belongs to the certificate, from memory.

    A secret file is read exactly once (it may be a FIFO or a one-shot secret), so
    OpenSSL gets the bytes already read, in anonymous memory files (``memfd``) that
    never reach a disk, instead of the paths. Where memory files do not exist (not
    Linux), the pair is left for the TLS handshake to judge.
    """
    create = getattr(os, "memfd_create", None)
    if create is None or not os.path.isdir("/proc/self/fd"):
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    descriptors: list[int] = []
    try:
        paths = []
        for name, data in (("client-cert", cert), ("client-key", key)):
            descriptor = create(name)
            descriptors.append(descriptor)
            os.write(descriptor, data)
            paths.append(f"/proc/self/fd/{descriptor}")
        context.load_cert_chain(paths[0], paths[1], password=_refuse_password)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise InvalidArgument(
                f"client key {key_path!r} does not match client certificate {cert_path!r}"
            ) from None
        raise InvalidArgument(
            f"client certificate {cert_path!r} or key {key_path!r} is not usable "
            f"({exc.reason or 'bad PEM data'})"
        ) from None
    except OSError:
        return  # memory files unusable here: the handshake will judge the pair
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


def _refuse_password() -> str:
    raise InvalidArgument("encrypted client keys are not supported")


def load_client_pair(tls: TlsOptions) -> tuple[bytes | None, bytes | None]:
    """Read and check the client certificate and key, which come together or not at all."""
    if (tls.client_cert is None) != (tls.client_key is None):
        missing = "client key" if tls.client_key is None else "client certificate"
        raise InvalidArgument(f"a {missing} is required for mutual TLS")
    if tls.client_cert is None or tls.client_key is None:
        return None, None
    cert = read_pem_file(tls.client_cert, "client certificate")
    key = read_pem_file(tls.client_key, "client key")
    _check_key_pair(tls.client_cert, cert, tls.client_key, key)
    return key, cert


def build_security(tls: TlsOptions, target: Target, connect_timeout: float) -> ChannelSecurity:
    """Turn :class:`TlsOptions` into grpcio credentials (pinning the peer when not verifying)."""
    import grpc

    key, cert = load_client_pair(tls)
    if tls.verify:
        roots = None
        if tls.ca_cert is not None:
            roots = read_pem_file(tls.ca_cert, "CA certificate")
            _check_ca_bundle(tls.ca_cert, roots)
        options: tuple[tuple[str, Any], ...] = ()
        if tls.server_name:
            options = (("grpc.ssl_target_name_override", tls.server_name),)
        credentials = grpc.ssl_channel_credentials(roots, key, cert)
        return ChannelSecurity(credentials, options)
    der, info = fetch_peer_certificate(target, tls.server_name, connect_timeout)
    pinned = ssl.DER_cert_to_PEM_cert(der).encode("ascii")
    name = _name_in_certificate(info)
    options = (("grpc.ssl_target_name_override", name),) if name else ()
    return ChannelSecurity(grpc.ssl_channel_credentials(pinned, key, cert), options, info)


def _name_in_certificate(info: CertificateInfo) -> str | None:
    for san in info.sans:
        kind, _, value = san.partition(":")
        if kind in ("DNS", "IP Address") and "*" not in value:
            return value
    for san in info.sans:
        kind, _, value = san.partition(":")
        if kind == "DNS":
            # A wildcard name matches any single label in its place.
            return value.replace("*", "wildcard", 1)
    return _common_name(info.subject)


def _common_name(subject: str) -> str | None:
    for part in subject.split(","):
        key, _, value = part.strip().partition("=")
        if key == "CN" and value:
            return value
    return None


def fetch_peer_certificate(
    target: Target, server_name: str | None, timeout: float
) -> tuple[bytes, CertificateInfo]:
    """Handshake with the peer without verifying it, and return its leaf certificate.

    This is a separate TLS connection made with the standard library; grpcio does not
    expose the certificate a client saw. SNI is ``server_name`` or the target's host
    name (never an IP literal).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    sni = server_name or (None if target.is_ip_literal else target.host)
    try:
        with connect_socket(target, timeout) as raw:
            raw.settimeout(timeout)
            with context.wrap_socket(raw, server_hostname=sni) as tls_socket:
                der = tls_socket.getpeercert(binary_form=True)
                info = _describe(tls_socket)
    except (OSError, ValueError) as exc:
        timed_out = isinstance(exc, TimeoutError | socket.timeout)
        reason = "timed out" if timed_out else (getattr(exc, "strerror", None) or str(exc))
        raise ConnectFailure(
            f"TLS handshake with {target.display} failed: {reason}",
            target=target.display,
            timed_out=timed_out,
            detail=str(reason),
        ) from None
    if not der or info is None:
        raise ConnectFailure(
            f"TLS handshake with {target.display} failed: the server sent no certificate",
            target=target.display,
            timed_out=False,
        )
    return der, info


def connect_socket(target: Target, timeout: float) -> socket.socket:
    """A plain TCP (or unix) connection to ``target``, for a handshake of our own."""
    if target.unix_path is not None:
        unix_socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix_socket.settimeout(timeout)
        try:
            unix_socket.connect(target.unix_path)
        except OSError:
            unix_socket.close()
            raise
        return unix_socket
    assert target.host is not None
    assert target.port is not None
    # With one address family asked for, the address the channel dials, not the name.
    return socket.create_connection((target.address or target.host, target.port), timeout=timeout)


def _describe(tls_socket: ssl.SSLSocket) -> CertificateInfo | None:
    # Without verification getpeercert() returns {}; the unverified chain still
    # decodes. It is a private method before Python 3.13 and public from 3.13 on.
    chain = tls_socket._sslobj.get_unverified_chain()  # type: ignore[attr-defined]
    if not chain:
        return None
    version = tls_socket.version()
    # "TLSv1.3" as Prometheus exporters write it: "TLS 1.3".
    named = None if version is None else _VERSIONS.get(version, version)
    return certificate_info(chain[0].get_info())._replace(tls_version=named)


def certificate_info(decoded: dict[str, Any]) -> CertificateInfo:
    """Build :class:`CertificateInfo` from the dict form ``ssl`` uses for certificates."""
    not_after = datetime.datetime.fromtimestamp(
        ssl.cert_time_to_seconds(decoded["notAfter"]), tz=datetime.timezone.utc
    )
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    return CertificateInfo(
        subject=_flatten_name(decoded.get("subject", ())),
        issuer=_flatten_name(decoded.get("issuer", ())),
        sans=tuple(f"{kind}:{value}" for kind, value in decoded.get("subjectAltName", ())),
        not_after=not_after,
        days_left=round((not_after - now).total_seconds() / 86400, 3),
    )


def _flatten_name(name: Any) -> str:
    parts = []
    for rdn in name:
        for key, value in rdn:
            short = _SHORT_NAMES.get(key, key)
            parts.append(f"{short}={value}")
    return ",".join(parts)


_SHORT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
}

_VERSIONS = {
    "TLSv1": "TLS 1.0",
    "TLSv1.1": "TLS 1.1",
    "TLSv1.2": "TLS 1.2",
    "TLSv1.3": "TLS 1.3",
}
