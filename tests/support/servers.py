"""Real peers for the tests: gRPC health servers and hostile listeners on loopback.

Every server binds 127.0.0.1 on an ephemeral port (or a unix socket) and is stopped
by the fixture that started it. Nothing here is a mock: the client under test speaks
to a real socket every time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from support.paths import DEMO

if TYPE_CHECKING:
    from collections.abc import Iterator

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
UNKNOWN = health_pb2.HealthCheckResponse.UNKNOWN


# Every servicer here runs Watch in blocking mode. In grpcio's default non-blocking
# mode, set() can wait forever when a Watch client disconnects while it sends, and
# server.stop() then waits with it.


class SlowHealthServicer(health.HealthServicer):
    """Answers Check after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(experimental_non_blocking=False)
        self.delay = delay

    def Check(self, request: Any, context: Any) -> Any:
        time.sleep(self.delay)
        return super().Check(request, context)


class HoldingServicer(health.HealthServicer):
    """Holds every Check until released (at most 30 s), and tells when one has arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def Check(self, request: Any, context: Any) -> Any:
        self.entered.set()
        self.release.wait(30)
        return super().Check(request, context)


class NoWatchHealthServicer(health.HealthServicer):
    """A health service whose Watch is UNIMPLEMENTED, as in many older servers."""

    def Watch(self, request: Any, context: Any, send_response_callback: Any = None) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")


class FlappingHealthServicer(health.HealthServicer):
    """Alternates SERVING and NOT_SERVING on every Check."""

    def __init__(self) -> None:
        super().__init__(experimental_non_blocking=False)
        self.calls = 0
        self.lock = threading.Lock()

    def Check(self, request: Any, context: Any) -> Any:
        with self.lock:
            self.calls += 1
            status = SERVING if self.calls % 2 else NOT_SERVING
        return health_pb2.HealthCheckResponse(status=status)


class BigMetadataHealthServicer(health.HealthServicer):
    """Sends initial metadata larger than a client accepts by default."""

    def Check(self, request: Any, context: Any) -> Any:
        context.send_initial_metadata((("x-big", "a" * 64 * 1024),))
        return super().Check(request, context)


class HeaderRecordingServicer(health.HealthServicer):
    """Remembers the invocation metadata of the last Check (to test headers and UA)."""

    def __init__(self) -> None:
        super().__init__(experimental_non_blocking=False)
        self.seen: list[dict[str, str]] = []

    def Check(self, request: Any, context: Any) -> Any:
        self.seen.append({k: v for k, v in context.invocation_metadata()})
        return super().Check(request, context)


@dataclass
class HealthServer:
    """A running gRPC server with the health service, flipped with :meth:`set`."""

    server: grpc.Server
    servicer: health.HealthServicer
    address: str
    port: int | None = None
    unix_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def set(self, service: str, status: int) -> None:
        self.servicer.set(service, status)

    def stop(self) -> None:
        self.server.stop(grace=None)


def start_health_server(
    *,
    statuses: dict[str, int] | None = None,
    servicer: health.HealthServicer | None = None,
    credentials: grpc.ServerCredentials | None = None,
    unix_path: str | None = None,
    with_health: bool = True,
    reflection: bool = False,
    extra_services: tuple[str, ...] = (),
    port: int = 0,
    host: str = "127.0.0.1",
) -> HealthServer:
    """Start a server on 127.0.0.1 (``port`` 0 picks a free one) or ``unix_path``."""
    # No SO_REUSEPORT: a restart on a fixed port must not share it with a leftover server.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8), options=[("grpc.so_reuseport", 0)]
    )
    servicer = servicer or health.HealthServicer(experimental_non_blocking=False)
    if with_health:
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for service, status in (statuses if statuses is not None else {"": SERVING}).items():
        servicer.set(service, status)
    if reflection:
        from grpc_reflection.v1alpha import reflection as grpc_reflection

        names = [
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            grpc_reflection.SERVICE_NAME,
            *extra_services,
        ]
        grpc_reflection.enable_server_reflection(names, server)
    bind = f"unix:{unix_path}" if unix_path else f"{host}:{port}"
    if credentials is None:
        port = server.add_insecure_port(bind)
    else:
        port = server.add_secure_port(bind, credentials)
    server.start()
    if unix_path:
        return HealthServer(server, servicer, f"unix:{unix_path}", unix_path=unix_path)
    return HealthServer(server, servicer, f"{host}:{port}", port=port)


class RawListener:
    """A TCP listener on 127.0.0.1 that treats each connection with ``handler``.

    ``handler`` gets the accepted socket. The listener and every accepted socket are
    closed by :meth:`close`.
    """

    def __init__(self, handler: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.handler = handler
        self.accepted: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.handler(conn, self.stopping)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(1)
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def black_hole(conn: socket.socket, stopping: threading.Event) -> None:
    """Accept and never speak."""
    stopping.wait(60)


def http1_responder(conn: socket.socket, stopping: threading.Event) -> None:
    """Answer whatever arrives with an HTTP/1.1 response and close."""
    conn.settimeout(2)
    with contextlib.suppress(OSError):
        conn.recv(4096)
    conn.sendall(
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 11\r\nConnection: close\r\n\r\nbad request"
    )
    conn.close()


def random_bytes_responder(conn: socket.socket, stopping: threading.Event) -> None:
    """Send random bytes and close."""
    conn.sendall(os.urandom(512))
    conn.close()


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


class WatchResettingServicer(health.HealthServicer):
    """Sends the current status on Watch, then aborts the stream as a crashing proxy would."""

    def __init__(self) -> None:
        super().__init__(experimental_non_blocking=False)
        self.watches = 0

    def Watch(self, request: Any, context: Any, send_response_callback: Any = None) -> Any:
        self.watches += 1
        if send_response_callback is not None:  # grpcio's non-blocking mode
            send_response_callback(health_pb2.HealthCheckResponse(status=NOT_SERVING))
            context.abort(grpc.StatusCode.UNAVAILABLE, "stream reset by peer")
        return self._reset(context)

    def _reset(self, context: Any) -> Any:
        yield health_pb2.HealthCheckResponse(status=NOT_SERVING)
        context.abort(grpc.StatusCode.UNAVAILABLE, "stream reset by peer")


def start_huge_response_server(size: int = 8 * 1024 * 1024) -> tuple[grpc.Server, str]:
    """A server whose health Check answers with ``size`` bytes of garbage."""

    def check(request: bytes, context: Any) -> bytes:
        return b"\x08" + b"\xff" * size

    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                check, request_deserializer=None, response_serializer=None
            )
        },
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2),
        options=[("grpc.max_send_message_length", size * 2)],
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def require_unshare_mount() -> None:
    """Skip (fail under CI) unless ``unshare --mount`` works: a private /etc/hosts needs it."""
    import pytest

    unshare = shutil.which("unshare")
    works = unshare is not None and (
        subprocess.run([unshare, "--mount", "true"], capture_output=True, check=False).returncode
        == 0
    )
    if not works:
        if os.environ.get("CI"):
            pytest.fail("unshare --mount does not work here, and CI must run these tests")
        pytest.skip("unshare --mount is not available (util-linux, as root)")


@contextlib.contextmanager
def demo_serving(command: str) -> Iterator[None]:
    """Run a page's ``check-grpc-health-demo serve ...`` line until the block ends."""
    assert command.startswith("check-grpc-health-demo serve ")
    process = subprocess.Popen(
        [DEMO, *command.split()[1:]],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("serving grpc.health.v1 on 127.0.0.1:")
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
