"""A real HTTP CONNECT proxy on 127.0.0.1, for the proxy tests.

Layer: tests (support). It does what a forward proxy such as Squid or tinyproxy does
for ``CONNECT``: reads the request, checks ``Proxy-Authorization`` when it wants
credentials, opens a TCP connection to the requested host and port, answers
``200 Connection established`` and then copies bytes both ways until either side
closes. It records every ``CONNECT`` it was asked for and how many bytes it carried,
so a test can prove that a check went through it (or did not).
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from dataclasses import dataclass, field

_MAX_HEADER = 64 * 1024
_IO_TIMEOUT = 10.0


@dataclass
class ConnectRequest:
    """One CONNECT the proxy received: where to, with which credentials, what it carried."""

    authority: str
    credentials: str | None
    status: int = 0
    carried: int = 0


@dataclass
class ConnectProxy:
    """Start with :meth:`start`, stop with :meth:`stop`. ``url`` is ``http://127.0.0.1:PORT``.

    With ``credentials`` (``user:password``) it answers 407 to a CONNECT without them
    or with others, as an authenticating proxy does.
    """

    credentials: str | None = None
    requests: list[ConnectRequest] = field(default_factory=list)
    _listener: socket.socket | None = None
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self._listener is not None
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def authorities(self) -> list[str]:
        """The ``host:port`` of every CONNECT, in order."""
        with self._lock:
            return [request.authority for request in self.requests]

    def start(self) -> ConnectProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(32)
        self._listener = listener
        threading.Thread(target=self._accept, name="connect-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for item in sockets:
            with contextlib.suppress(OSError):
                item.shutdown(socket.SHUT_RDWR)
            item.close()

    def _keep(self, item: socket.socket) -> None:
        with self._lock:
            self._sockets.append(item)

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._keep(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(_IO_TIMEOUT)
        try:
            head, rest = _read_head(client)
        except OSError:
            client.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, _, remainder = lines[0].partition(" ")
        authority = remainder.partition(" ")[0]
        request = ConnectRequest(authority, _basic_credentials(lines[1:]))
        with self._lock:
            self.requests.append(request)
        if method != "CONNECT":
            _answer(client, request, 405, "Method Not Allowed")
            return
        if self.credentials is not None and request.credentials != self.credentials:
            _answer(
                client,
                request,
                407,
                "Proxy Authentication Required",
                'Proxy-Authenticate: Basic realm="test"\r\n',
            )
            return
        host, _, port = authority.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        except (OSError, ValueError):
            _answer(client, request, 502, "Bad Gateway")
            return
        self._keep(upstream)
        request.status = 200
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
            request.carried += len(rest)
        upstream.settimeout(None)
        client.settimeout(None)
        back = threading.Thread(target=_pump, args=(upstream, client, request), daemon=True)
        back.start()
        _pump(client, upstream, request)
        back.join(_IO_TIMEOUT)
        client.close()
        upstream.close()


def _read_head(client: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(4096)
        if not chunk or len(data) > _MAX_HEADER:
            raise OSError("no complete request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _basic_credentials(header_lines: list[str]) -> str | None:
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "proxy-authorization":
            scheme, _, encoded = value.strip().partition(" ")
            if scheme.lower() == "basic":
                with contextlib.suppress(ValueError):
                    return base64.b64decode(encoded.strip()).decode("utf-8")
    return None


def _answer(
    client: socket.socket, request: ConnectRequest, status: int, reason: str, extra: str = ""
) -> None:
    request.status = status
    with contextlib.suppress(OSError):
        client.sendall(
            f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: 0\r\n\r\n".encode("latin-1")
        )
    client.close()


def _pump(source: socket.socket, sink: socket.socket, request: ConnectRequest) -> None:
    """Copy bytes until ``source`` closes, then pass the close on to ``sink``."""
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
            request.carried += len(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
