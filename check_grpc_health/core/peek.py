"""Active tests after a failed check: what the peer really speaks, within a deadline.

Layer: core. Imports only the standard library. Used by
:mod:`check_grpc_health.core.diagnosis` once a check has failed, never on the healthy
path. Every test is bounded by the caller's ``deadline`` (a ``time.monotonic()``
instant) and none starts with less than :data:`MIN_ACTIVE` seconds left.

- :func:`tls_peek`: a TLS handshake without verification, offering ``h2`` and
  ``http/1.1``, then the HTTP/2 client preface. It tells a TLS port from a plaintext
  one, reads the certificate's names and dates, and sees whether the server wants a
  client certificate.
- :func:`plain_peek`: the plaintext HTTP/2 preface and the first bytes of the answer:
  SETTINGS (gRPC), ``HTTP/1.`` (a web server), or anything else.
- :func:`tcp_state`: one TCP connect, capped at :data:`TCP_CAP`: a SYN-ACK comes
  within one round trip, so waiting longer only says "dropped" later, not better.
- :func:`connection_states`: the kernel's state of this process's own sockets to a
  port, read from ``/proc`` when a connect times out: ``SYN_SENT`` means no TCP
  answer at all, ``ESTABLISHED`` means connected but silent. No network wait.

When the connection goes through an HTTP proxy, the tests go through it too, with
``CONNECT``; ``Hop`` says where the proxy is and, for ``Proxy-Authorization``, its
credentials (never printed).
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import time
from typing import TYPE_CHECKING, NamedTuple

from check_grpc_health.core.tls import certificate_info, connect_socket

if TYPE_CHECKING:
    from check_grpc_health.core.results import CertificateInfo
    from check_grpc_health.core.targets import Target

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
# Below this much time left, an active test is not worth starting.
MIN_ACTIVE = 0.05
# A single read after the preface: servers answer in one round trip.
READ_CAP = 1.0
# A TCP connect after a connect time-out (see the module docstring).
TCP_CAP = 1.0

_TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "08": "CLOSE_WAIT", "06": "TIME_WAIT"}


class Hop(NamedTuple):
    """An HTTP proxy to go through with ``CONNECT``. ``credentials`` is ``user:password``."""

    host: str
    port: int
    credentials: str | None = None

    def __repr__(self) -> str:
        return f"Hop(host={self.host!r}, port={self.port})"


class TlsPeek(NamedTuple):
    """What a TLS handshake without verification learnt."""

    handshake: bool
    error: str | None
    alpn: str | None
    certificate: CertificateInfo | None
    not_before: str | None
    wants_client_cert: bool
    answer: bytes


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline``."""
    return deadline - time.monotonic()


def connection_states(port: int) -> tuple[str, ...]:
    """States of this process's TCP sockets to remote ``port`` (Linux; else empty).

    Read at the moment a connect times out, before the channel closes: grpcio's own
    socket shows whether the peer ever answered. Costs a few reads of ``/proc``.
    """
    try:
        inodes = set()
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/self/fd/{name}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        states = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table, encoding="ascii") as handle:
                next(handle, None)
                for row in handle:
                    fields = row.split()
                    if len(fields) < 10 or fields[9] not in inodes:
                        continue
                    if int(fields[2].rpartition(":")[2], 16) == port:
                        states.append(_TCP_STATES.get(fields[3], fields[3]))
        return tuple(states)
    except OSError:
        return ()


def open_stream(
    target: Target, hop: Hop | None, deadline: float, *, tunnel: bool = True
) -> socket.socket:
    """A TCP (or unix) connection to ``target``, through ``hop`` when there is one.

    With ``tunnel=False`` only the TCP connection to the proxy is made.
    """
    timeout = max(remaining(deadline), 0.001)
    if target.unix_path is None and (target.host is None or target.port is None):
        raise OSError("no host and port to connect to")
    if hop is None or target.unix_path is not None:
        return connect_socket(target, timeout)
    sock = socket.create_connection((hop.host, hop.port), timeout=timeout)
    if not tunnel:
        return sock
    try:
        _connect_through(sock, target, hop, deadline)
    except BaseException:
        sock.close()
        raise
    return sock


def _connect_through(sock: socket.socket, target: Target, hop: Hop, deadline: float) -> None:
    host = target.host or ""
    authority = f"[{host}]:{target.port}" if ":" in host else f"{host}:{target.port}"
    request = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
    if hop.credentials is not None:
        import base64

        token = base64.b64encode(hop.credentials.encode()).decode("ascii")
        request += f"Proxy-Authorization: Basic {token}\r\n"
    sock.sendall((request + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 8192:
        sock.settimeout(max(remaining(deadline), 0.001))
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
        raise ConnectionError("the proxy refused CONNECT")


def tcp_state(target: Target, hop: Hop | None, deadline: float, *, tunnel: bool) -> str:
    """``CONNECTED``, ``REFUSED``, ``SYN_TIMEOUT``, ``TUNNEL_REFUSED`` or ``ERROR``."""
    deadline = min(deadline, time.monotonic() + TCP_CAP)
    try:
        with open_stream(target, hop, deadline, tunnel=tunnel):
            return "CONNECTED"
    except ConnectionRefusedError:
        return "REFUSED"
    except TimeoutError:
        return "SYN_TIMEOUT"
    except ConnectionError:
        return "TUNNEL_REFUSED"
    except OSError:
        return "ERROR"


def tls_peek(
    target: Target, server_name: str | None, hop: Hop | None, deadline: float
) -> TlsPeek | None:
    """A TLS handshake (no verification), then the HTTP/2 preface; None without time."""
    if remaining(deadline) < MIN_ACTIVE:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    sni = server_name or (None if target.is_ip_literal or target.host is None else target.host)
    try:
        raw = open_stream(target, hop, deadline)
    except OSError:
        return None
    cert = not_before = alpn = None
    try:
        with context.wrap_socket(
            raw, server_hostname=sni, do_handshake_on_connect=False
        ) as tls_socket:
            tls_socket.settimeout(max(remaining(deadline), 0.001))
            try:
                tls_socket.do_handshake()
            except ssl.SSLError as exc:
                reason = exc.reason or str(exc)
                return TlsPeek(False, reason, None, None, None, _wants_cert(reason), b"")
            alpn = tls_socket.selected_alpn_protocol()
            chain = tls_socket._sslobj.get_unverified_chain()  # type: ignore[attr-defined]
            if chain:
                decoded = chain[0].get_info()
                cert = certificate_info(decoded)
                not_before = decoded.get("notBefore")
            answer = b""
            try:
                tls_socket.sendall(PREFACE)
                tls_socket.settimeout(max(min(remaining(deadline), READ_CAP), 0.001))
                answer = tls_socket.recv(64)
            except ssl.SSLError as exc:
                reason = exc.reason or str(exc)
                return TlsPeek(True, reason, alpn, cert, not_before, _wants_cert(reason), b"")
            except OSError:
                pass
            # A gRPC server answers the preface with SETTINGS. One that closes at once
            # after the handshake has checked the client's certificate and found none
            # (grpcio's servers close without the TLS 1.3 alert that Go servers send).
            closed_at_once = answer == b"" and alpn == "h2"
            return TlsPeek(True, None, alpn, cert, not_before, closed_at_once, answer)
    except OSError as exc:
        return TlsPeek(False, str(exc), alpn, cert, not_before, False, b"")


def _wants_cert(reason: str) -> bool:
    return "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason


def plain_peek(target: Target, hop: Hop | None, deadline: float) -> bytes | None:
    """The first bytes a peer answers to the plaintext HTTP/2 preface; None if unknown."""
    if remaining(deadline) < MIN_ACTIVE:
        return None
    try:
        with open_stream(target, hop, deadline) as sock:
            sock.sendall(PREFACE)
            sock.settimeout(max(min(remaining(deadline), READ_CAP), 0.001))
            return sock.recv(64)
    except OSError:
        return None


def is_settings(answer: bytes) -> bool:
    """True when ``answer`` starts with an HTTP/2 SETTINGS frame."""
    return len(answer) >= 9 and answer[3] == 0x04
