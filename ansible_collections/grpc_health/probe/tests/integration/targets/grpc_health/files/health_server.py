"""A real gRPC health server for the integration tests, started in the background.

Layer: test support. It binds 127.0.0.1 on a free port, detaches, and writes ``port`` and
``pid`` into ``--state-dir`` once it is serving, so a task can start it and read its port.
``--then STATUS --after SECONDS`` changes the overall health once, after a delay: the gate
tests use it to turn a server SERVING (or NOT_SERVING, to drain) while the module waits.
``--tls``/``--mtls`` write a CA, a client certificate and key, and a foreign CA made with
trustme into the state directory. The server stops itself after ``--lifetime`` seconds, so
a failed run leaves nothing behind; ``--stop`` stops every server under ``--state-dir`` now.
``--closed`` prints a loopback port that nothing listens on, for the refused-connection test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

STATUSES = {
    name: health_pb2.HealthCheckResponse.ServingStatus.Value(name)
    for name in ("SERVING", "NOT_SERVING", "UNKNOWN")
}


class NoWatchHealthServicer(health.HealthServicer):
    """A health service whose Watch is UNIMPLEMENTED, as in many older servers."""

    def Watch(self, request, context, send_response_callback=None):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command line of the test server."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--status", default="SERVING", choices=sorted(STATUSES))
    parser.add_argument("--service", action="append", default=[])
    parser.add_argument("--then", choices=sorted(STATUSES))
    parser.add_argument("--after", type=float, default=0.0)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--mtls", action="store_true")
    parser.add_argument("--no-watch", action="store_true")
    parser.add_argument("--lifetime", type=float, default=120.0)
    parser.add_argument("--stop", action="store_true")
    parser.add_argument("--closed", action="store_true")
    return parser.parse_args(argv)


def server_credentials(args: argparse.Namespace) -> grpc.ServerCredentials | None:
    """Write trustme material into the state directory and return server credentials."""
    if not (args.tls or args.mtls):
        return None
    import trustme

    ca = trustme.CA()
    other = trustme.CA()
    server = ca.issue_cert("health.example.test", "127.0.0.1", "localhost")
    client = ca.issue_cert("client@example.test")
    ca.cert_pem.write_to_path(str(args.state_dir / "ca.pem"))
    other.cert_pem.write_to_path(str(args.state_dir / "other-ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(args.state_dir / "client.pem"))
    client.private_key_pem.write_to_path(str(args.state_dir / "client.key"))
    return grpc.ssl_server_credentials(
        [(server.private_key_pem.bytes(), server.cert_chain_pems[0].bytes())],
        root_certificates=ca.cert_pem.bytes() if args.mtls else None,
        require_client_auth=args.mtls,
    )


def serve(args: argparse.Namespace, on_ready) -> None:
    """Run the server until SIGTERM or the end of its lifetime; ``on_ready`` once serving."""
    # The blocking Watch: grpcio's default non-blocking one deadlocks when a watcher
    # disconnects while set() is sending to it (grpc/grpc pull request 43403).
    servicer = (NoWatchHealthServicer if args.no_watch else health.HealthServicer)(
        experimental_non_blocking=False
    )
    for service in ["", *args.service]:
        servicer.set(service, STATUSES[args.status])
    # No SO_REUSEPORT (grpcio's default turns it on): a real server on a fixed port must
    # fail on a port that is taken rather than share it and flap between two processes.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8), options=[("grpc.so_reuseport", 0)]
    )
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    credentials = server_credentials(args)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    write_atomically(args.state_dir / "pid", f"{os.getpid()}\n")
    write_atomically(args.state_dir / "port", f"{port}\n")
    on_ready()
    started = time.monotonic()
    if args.then and not stop.wait(args.after):
        for service in ["", *args.service]:
            servicer.set(service, STATUSES[args.then])
    stop.wait(max(0.0, args.lifetime - (time.monotonic() - started)))
    server.stop(grace=None)


def write_atomically(path: Path, text: str) -> None:
    """Readers see the whole file or none of it."""
    partial = path.with_suffix(".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def stop_all(state_dir: Path) -> None:
    """SIGTERM every server that wrote a pid file under ``state_dir``."""
    for pid_file in sorted(state_dir.rglob("pid")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text(encoding="utf-8")), signal.SIGTERM)
        print(f"stopped {pid_file.parent.name}")


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str]) -> int:
    """Fork a detached server and return once it is serving (its port is then written)."""
    args = parse_args(argv)
    if args.stop:
        stop_all(args.state_dir)
        return 0
    if args.closed:
        print(closed_port())
        return 0
    args.state_dir.mkdir(parents=True, exist_ok=True)
    for name in ("port", "pid"):
        (args.state_dir / name).unlink(missing_ok=True)
    ready_read, ready_write = os.pipe()
    if os.fork():
        os.close(ready_write)
        with os.fdopen(ready_read, "rb") as ready:
            ok = ready.read(1) == b"1"
        if not ok:
            print("the test server failed to start", file=sys.stderr)
            return 1
        print((args.state_dir / "port").read_text(encoding="utf-8").strip())
        return 0
    os.close(ready_read)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    with os.fdopen(ready_write, "wb", buffering=0) as ready:

        def announce() -> None:
            ready.write(b"1")
            ready.close()

        try:
            serve(args, announce)
        except BaseException:
            if not ready.closed:
                ready.write(b"0")
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
