"""What a failed handshake means: TLS versus plaintext, certificates, HTTP/1.x, mTLS.

Layer: core. Part of the diagnosis (:mod:`check_grpc_health.core.diagnosis`), which
calls it for connection failures whose text leaves the cause open. It runs at most
one active test from :mod:`~check_grpc_health.core.peek`, bounded by ``deadline``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import re
import ssl
from typing import TYPE_CHECKING

from check_grpc_health.core.peek import Hop, is_settings, plain_peek, tls_peek
from check_grpc_health.core.results import Diagnosis

if TYPE_CHECKING:
    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import CertificateInfo

_VERIFY = re.compile(r"CERTIFICATE_VERIFY_FAILED: ([^:]+)")
CHECK_PORT = ("check the port in {address}",)


def tls_failure(
    detail: str, options: ProbeOptions, hop: Hop | None, deadline: float
) -> Diagnosis | None:
    tls = options.tls
    if tls is None:
        return None
    if "WRONG_VERSION_NUMBER" in detail or "PACKET_LENGTH_TOO_LONG" in detail:
        return _not_tls(options, hop, deadline)
    if "NO_APPLICATION_PROTOCOL" in detail or "missing selected ALPN" in detail:
        return Diagnosis(
            "tls_no_h2",
            "the TLS server does not offer HTTP/2 (ALPN h2): an HTTPS server, proxy or load "
            "balancer without HTTP/2, not a gRPC server",
            CHECK_PORT,
        )
    verify = _VERIFY.search(detail)
    hostname = "Hostname Verification Check failed" in detail
    if verify is None and not hostname:
        return None
    found = tls_peek(options.target, tls.server_name, hop, deadline)
    probed = found is not None
    cert = found.certificate if found is not None else None
    reason = verify.group(1).strip() if verify else ""
    if hostname:
        names = _names(cert)
        expected = tls.server_name or options.target.host or options.target.display
        return Diagnosis(
            "name_mismatch",
            f"the certificate is not valid for {expected}"
            + (f"; it names {names}" if names else ""),
            ("use {server_name} with one of its names",),
            probed=probed,
        )
    if "expired" in reason:
        when = f" on {_date(cert.not_after)}" if cert is not None else ""
        return Diagnosis("cert_expired", f"the server's certificate expired{when}", probed=probed)
    if "not yet valid" in reason:
        start = found.not_before if found is not None else None
        when = f" (valid from {_cert_date(start)})" if start else ""
        return Diagnosis(
            "cert_not_yet_valid",
            f"the server's certificate is not valid yet{when}: check this machine's clock",
            probed=probed,
        )
    if "issuer" in reason or "self-signed" in reason or "self signed" in reason:
        issuer = f" (issued by {cert.issuer})" if cert is not None and cert.issuer else ""
        trusted_by = "the CA file given" if tls.ca_cert else "the system's trusted CAs"
        return Diagnosis(
            "cert_untrusted",
            f"the server's certificate{issuer} is not signed by {trusted_by}",
            ("give {ca_cert} the CA that issued it", "use {insecure} to skip verification, unsafe"),
            probed=probed,
        )
    return Diagnosis("cert_invalid", f"the server's certificate was rejected: {reason}")


def _names(cert: CertificateInfo | None) -> str:
    if cert is None:
        return ""
    names = [_compact(*san.partition(":")[::2]) for san in cert.sans]
    if not names:
        common = re.search(r"CN=([^,]+)", cert.subject)
        names = [common.group(1)] if common else []
    return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")


def _compact(kind: str, value: str) -> str:
    """A name from a certificate; IPv6 addresses as people write them (``::1``)."""
    if kind == "IP Address" and ":" in value:
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_address(value.strip()))
    return value


def _date(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _cert_date(text: str) -> str:
    """A certificate time as ``ssl`` spells it (``Jan  1 00:00:00 2030 GMT``), in ISO form."""
    try:
        seconds = ssl.cert_time_to_seconds(text)
    except ValueError:
        return text
    return _date(datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc))


def _not_tls(options: ProbeOptions, hop: Hop | None, deadline: float) -> Diagnosis:
    """TLS failed with a non-TLS answer: find out what the port speaks instead."""
    answer = plain_peek(options.target, hop, deadline)
    if answer is not None and is_settings(answer):
        return Diagnosis(
            "plaintext_server",
            "the server speaks plaintext gRPC, not TLS",
            ("{no_tls}",),
            probed=True,
        )
    if answer is not None and answer.startswith(b"HTTP/1."):
        return Diagnosis(
            "http1_server",
            f"an HTTP/1.x server answered ({_status_line(answer)}), not TLS and not gRPC: "
            "wrong port, or a proxy or load balancer without HTTP/2",
            CHECK_PORT,
            probed=True,
        )
    return Diagnosis(
        "not_tls",
        "the server does not speak TLS"
        + (" and does not answer HTTP/2 either: not a gRPC server" if answer is not None else ""),
        ("{no_tls}", "check the port in {address}"),
        probed=answer is not None,
    )


def not_http2(options: ProbeOptions, hop: Hop | None, deadline: float) -> Diagnosis:
    """The peer answered, but not with HTTP/2: an HTTP/1.x server grpcio did not name, or junk."""
    answer = plain_peek(options.target, hop, deadline) if options.tls is None else None
    # Some web servers answer the HTTP/2 preface with an HTTP/0.9-style bare page.
    page = answer is not None and answer.lstrip()[:14].lower().startswith((b"<!doctype", b"<html"))
    if answer is not None and (answer.startswith(b"HTTP/1.") or page):
        shown = "an HTML page" if page else _status_line(answer)
        return Diagnosis(
            "http1_server",
            f"an HTTP/1.x server answered ({shown}), not gRPC: wrong port, or a "
            "proxy or load balancer without HTTP/2",
            CHECK_PORT,
            probed=True,
        )
    return Diagnosis(
        "not_http2",
        "the peer does not speak HTTP/2: this port is not a gRPC server",
        CHECK_PORT,
        probed=answer is not None,
    )


def _status_line(answer: bytes) -> str:
    return answer.split(b"\r\n", 1)[0].decode("ascii", "replace")[:60]


def http1(detail: str, options: ProbeOptions, hop: Hop | None, deadline: float) -> Diagnosis:
    status = re.search(r"HTTP status (\d+)", detail)
    code = f"HTTP/1.x status {status.group(1)}" if status else "HTTP/1.x"
    if options.tls is None:
        # An HTTPS port answers a plaintext request with an HTTP/1.x error page.
        found = tls_peek(options.target, None, hop, deadline)
        if found is not None and found.handshake:
            if found.alpn == "h2" or is_settings(found.answer):
                return Diagnosis(
                    "tls_required",
                    "the server speaks TLS (it answered plaintext with HTTP/1.x)",
                    ("add {tls}",),
                    probed=True,
                )
            return Diagnosis(
                "https_no_h2",
                "an HTTPS server without HTTP/2 (ALPN h2) answered: a web server, proxy or load "
                "balancer, not a gRPC server",
                CHECK_PORT,
                probed=True,
            )
    return Diagnosis(
        "http1_server",
        f"an HTTP/1.x server answered ({code}), not gRPC: wrong port, or a proxy or load "
        "balancer without HTTP/2",
        CHECK_PORT,
        probed=options.tls is None,
    )


def closed(options: ProbeOptions, hop: Hop | None, deadline: float) -> Diagnosis:
    """The peer closed the connection without a word: TLS expected, or a client cert."""
    tls = options.tls
    found = tls_peek(options.target, tls.server_name if tls else None, hop, deadline)
    if found is None:  # no time left for the test: say what it most likely is
        if tls is None:
            return Diagnosis(
                "closed",
                "the server closed the connection during set-up (a TLS port?)",
                ("add {tls} if it speaks TLS",),
            )
        return Diagnosis(
            "closed",
            "the server closed the connection after the TLS handshake (it may want a "
            "client certificate)",
        )
    if tls is None:
        if found.handshake:
            if found.wants_client_cert:
                return Diagnosis(
                    "tls_required",
                    "the server speaks TLS and wants a client certificate",
                    ("add {tls}, {client_cert} FILE and {client_key} FILE",),
                    probed=True,
                )
            return Diagnosis("tls_required", "the server speaks TLS", ("add {tls}",), probed=True)
        return Diagnosis(
            "closed",
            "the server closed the connection; it speaks neither plaintext HTTP/2 nor TLS",
            CHECK_PORT,
            probed=True,
        )
    if found.wants_client_cert:
        if tls.client_cert is None:
            return Diagnosis(
                "client_cert_required",
                "the server wants a client certificate (mutual TLS)",
                ("add {client_cert} FILE and {client_key} FILE",),
                probed=True,
            )
        return Diagnosis(
            "client_cert_rejected",
            "the server rejected the client certificate (not issued by a CA it trusts, or expired)",
            ("use a {client_cert} issued by a CA the server trusts",),
            probed=True,
        )
    return Diagnosis(
        "closed", "the server closed the connection after the TLS handshake", probed=True
    )
