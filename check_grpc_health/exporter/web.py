"""The HTTP endpoints: ``/metrics``, ``/probe`` and a landing page, in threads of their own.

Layer: adapter (the exporter), the server. :class:`Endpoints` is a WSGI application;
:func:`serve` runs it on the standard library's ``wsgiref`` with a thread per request,
so a probe that waits for its deadline holds only its own thread, and the monitor's
event loop never waits for HTTP. TLS handshakes happen in the request's thread too
(never in the accepting one), and a client that sends nothing is dropped after
:data:`IDLE_TIMEOUT`. Every error is an HTTP status and one line of text: never a
traceback, never a 200.

``/metrics`` renders a ``prometheus_client`` registry: the exporter's own figures
(:mod:`.stats`), the process's, and, in the monitor, its live state (:mod:`.collector`).
``/probe`` renders a registry of its own per request (:mod:`.probe`).
"""

from __future__ import annotations

import html
import os
import socket
import threading
import time
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.exporter.collector import SnapshotUnavailable
from check_grpc_health.exporter.metrics import serving
from check_grpc_health.exporter.probe import Refused, parse_request, run_probe
from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Iterable, Mapping

    from prometheus_client.registry import Collector

    from check_grpc_health.exporter.probe import ProbeSettings
    from check_grpc_health.exporter.stats import ExporterStats
    from check_grpc_health.exporter.webconfig import WebConfig

    StartResponse = Callable[[str, list[tuple[str, str]]], Any]

#: Seconds a connection may stay silent (TLS handshake, request line, headers).
IDLE_TIMEOUT = 30.0
TEXT = "text/plain; charset=utf-8"
_STATUS = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


class Endpoints:
    """The WSGI application: routes, basic auth, and one line per error."""

    def __init__(
        self,
        metrics: Collector,
        stats: ExporterStats,
        probe: ProbeSettings | None,
        web: WebConfig | None = None,
        title: str = "check_grpc_health exporter",
    ) -> None:
        self.metrics = metrics
        self.stats = stats
        self.probe = probe
        self.web = web
        self.title = title
        self._lock = threading.Lock()

    def set_probe(self, probe: ProbeSettings | None) -> None:
        """New modules (a reload); requests already running keep the old ones."""
        with self._lock:
            self.probe = probe

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, headers, body = self._answer(environ)
        except Exception as error:  # a defect costs one request, and says so in one line
            status, headers, body = _text(500, f"internal error: {type(error).__name__}: {error}")
        if self.web is not None:
            headers.extend(self.web.headers)
        headers.append(("Content-Length", str(len(body))))
        start_response(_STATUS[status], headers)
        return [body]

    def _answer(self, environ: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        users = None if self.web is None else self.web.users
        if users is not None and not users.allows(environ.get("HTTP_AUTHORIZATION")):
            self.stats.refused("unauthorized")
            status, headers, body = _text(401, "unauthorized: basic auth with a known user needed")
            headers.append(("WWW-Authenticate", 'Basic realm="check_grpc_health"'))
            return status, headers, body
        path = environ.get("PATH_INFO") or "/"
        if path not in ("/", "/metrics", "/probe"):
            self.stats.refused("not_found")
            shown = clean_text(repr(path[:100]))
            return _text(404, f"no such page {shown}: try /metrics or /probe")
        if environ.get("REQUEST_METHOD") != "GET":
            self.stats.refused("method_not_allowed")
            status, headers, body = _text(405, "only GET is allowed")
            headers.append(("Allow", "GET"))
            return status, headers, body
        if path == "/metrics":
            return self._metrics(environ)
        if path == "/probe":
            return self._probe(environ)
        return 200, [("Content-Type", "text/html; charset=utf-8")], self._landing()

    def _metrics(self, environ: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            return _render(self.metrics, environ)
        except SnapshotUnavailable as error:
            self.stats.refused("unavailable")
            return _text(503, str(error))

    def _probe(self, environ: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        with self._lock:
            probe = self.probe
        if probe is None:
            self.stats.refused("not_found")
            return _text(404, "/probe is off: start with --modules FILE and --allow-target")
        query = parse_qs(environ.get("QUERY_STRING") or "", keep_blank_values=True)
        started = time.monotonic()
        try:
            timeout = environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS")
            request = parse_request(query, timeout, probe, os.environ)
        except Refused as refused:
            self.stats.refused(refused.reason)
            return _text(refused.status, str(refused))
        metrics, outcome, _ = run_probe(request)
        self.stats.probed(request.module, serving(outcome), time.monotonic() - started)
        return _render(metrics, environ)

    def _landing(self) -> bytes:
        probe = ""
        if self.probe is not None:
            module = html.escape(min(self.probe.modules), quote=True)
            probe = (
                f'<p><a href="probe?target=127.0.0.1:50051&amp;module={module}">'
                "/probe?target=HOST:PORT&amp;module=NAME</a></p>\n"
            )
        return (
            f"<html><head><title>{self.title}</title></head><body>\n<h1>{self.title}</h1>\n"
            f'<p><a href="metrics">/metrics</a></p>\n{probe}</body></html>\n'
        ).encode()


def _text(status: int, line: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", TEXT)], (clean_text(line) + "\n").encode("utf-8")


def _render(
    collector: Collector, environ: Mapping[str, Any]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The exposition the scraper asked for (text 0.0.4 or OpenMetrics), gzipped if welcome."""
    import gzip

    from prometheus_client.exposition import choose_encoder, gzip_accepted

    encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT") or "")
    body = encoder(collector)
    headers = [("Content-Type", content_type)]
    if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING") or ""):
        body = gzip.compress(body)
        headers.append(("Content-Encoding", "gzip"))
    return 200, headers, body


class _Quiet:
    """Where wsgiref writes its errors: nowhere (the application answers every error)."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class _Handler(WSGIRequestHandler):
    timeout = IDLE_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_stderr(self) -> Any:
        return _Quiet()


class HttpServer(ThreadingMixIn, WSGIServer):
    """A thread per connection; TLS handshakes in that thread, within the idle timeout."""

    daemon_threads = True
    # socketserver's default backlog is 5: 50 scrapes at once would see dropped SYNs and
    # the kernel's retransmits (1 s, 3 s, 7 s later) as latency.
    request_queue_size = 256
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        if self.tls is not None:
            connection = self.tls.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            request.settimeout(IDLE_TIMEOUT)
            request.do_handshake()
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away, timed out or failed its TLS handshake: nothing to say."""

    def server_bind(self) -> None:
        # HTTPServer's own looks the host name up (getfqdn), which can hang on DNS.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]
        self.setup_environ()


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``:PORT`` (every IPv4 address) to a host and port."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise InvalidArgument(
            f"--listen {clean_text(repr(text))} is not HOST:PORT (e.g. 127.0.0.1:9115)"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


def serve(listen: tuple[str, int], app: Endpoints, tls: ssl.SSLContext | None) -> HttpServer:
    """Listen on ``listen`` and serve ``app`` from a thread; :class:`InvalidArgument` with
    one line when the address cannot be bound."""
    host, port = listen
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(HttpServer):
        address_family = family

    Server.tls = tls
    try:
        server = Server((host, port), _Handler, bind_and_activate=True)
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        raise InvalidArgument(f"--listen {host}:{port}: cannot listen: {reason}") from None
    server.set_app(app)
    # A short poll: shutdown() at the stop waits at most this long.
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="http", daemon=True)
    thread.start()
    return server
