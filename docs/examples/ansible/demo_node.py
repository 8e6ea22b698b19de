"""A demo gRPC service node, to try the rolling-deployment playbook on one machine.

Layer: example (docs). One process plays one node of a service: a gRPC server with the
standard health service, whose "release" can be drained, deployed and rolled back the way a
real service is, through signals:

    python3 demo_node.py serve --port 50061 --state-dir /tmp/orders-1   # in the foreground
    python3 demo_node.py drain --state-dir /tmp/orders-1     # SIGUSR1: turn NOT_SERVING
    python3 demo_node.py deploy --state-dir /tmp/orders-1 v2 # SIGHUP: restart on release v2
    python3 demo_node.py rollback --state-dir /tmp/orders-1  # SIGHUP: back to the last release
    python3 demo_node.py stop --state-dir /tmp/orders-1

After a restart the node reports NOT_SERVING while it warms up (``--warmup`` seconds), then
SERVING. A release whose name starts with ``bad`` never turns SERVING: that is how the
playbook's rollback is shown. It needs grpcio and grpcio-health-checking.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path

SERVICES = ("", "orders.v1.Orders")
SERVING, NOT_SERVING = 1, 2
# grpcio turns SO_REUSEPORT on by default: a second node started on a taken port would
# share it with the first, and health answers would flap between the two. Refuse it.
SERVER_OPTIONS = [("grpc.so_reuseport", 0)]


class Node:
    """The server and its release, changed by signals."""

    def __init__(self, state_dir: Path, warmup: float) -> None:
        from grpc_health.v1 import health

        self.state_dir = state_dir
        self.warmup = warmup
        # The blocking Watch: grpcio's default non-blocking one deadlocks when a watcher
        # disconnects while set() is sending to it (grpc/grpc pull request 43403).
        self.servicer = health.HealthServicer(experimental_non_blocking=False)
        self.timer: threading.Timer | None = None
        self.lock = threading.Lock()

    def release(self) -> str:
        path = self.state_dir / "release"
        return path.read_text("utf-8").strip() if path.exists() else "v1"

    def set_all(self, status: int) -> None:
        for service in SERVICES:
            self.servicer.set(service, status)

    def start_release(self) -> None:
        """(Re)start: NOT_SERVING while warming up, then SERVING unless the release is bad."""
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
            self.set_all(NOT_SERVING)
            if not self.release().startswith("bad"):
                self.timer = threading.Timer(self.warmup, self.set_all, (SERVING,))
                self.timer.daemon = True
                self.timer.start()

    def drain(self) -> None:
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
            self.set_all(NOT_SERVING)


def serve(args: argparse.Namespace) -> int:
    """Run the node in the foreground until SIGTERM or SIGINT."""
    # grpc's C core logs a refused bind to stderr ("Failed to add port"); the line below
    # says it once, in words. Read when grpc loads.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    import grpc
    from grpc_health.v1 import health_pb2_grpc

    node = Node(args.state_dir, args.warmup)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=SERVER_OPTIONS)
    health_pb2_grpc.add_HealthServicer_to_server(node.servicer, server)
    try:
        port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    except RuntimeError:  # grpcio's "Failed to bind": the port is taken
        print(
            f"cannot listen on 127.0.0.1:{args.port}: the port is in use or the address is not "
            "local",
            file=sys.stderr,
        )
        return 1
    args.state_dir.mkdir(parents=True, exist_ok=True)
    server.start()
    node.start_release()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: node.drain())
    signal.signal(signal.SIGHUP, lambda *_: node.start_release())
    (args.state_dir / "pid").write_text(f"{os.getpid()}\n", "utf-8")
    print(f"serving release {node.release()} on 127.0.0.1:{port}", flush=True)
    stop.wait()
    server.stop(grace=None)
    (args.state_dir / "pid").unlink(missing_ok=True)
    return 0


def signal_node(state_dir: Path, signum: int) -> int:
    """Send ``signum`` to the node serving from ``state_dir``."""
    try:
        pid = int((state_dir / "pid").read_text("utf-8"))
        os.kill(pid, signum)
    except (OSError, ValueError):
        print(f"no demo node is serving from {state_dir}", file=sys.stderr)
        return 1
    return 0


def deploy(state_dir: Path, release: str) -> int:
    """Record the release (keeping the last one for a rollback) and restart the node."""
    if not (state_dir / "pid").is_file():
        return signal_node(state_dir, signal.SIGHUP)  # says that no node serves there
    current = state_dir / "release"
    (state_dir / "previous").write_text(
        current.read_text("utf-8") if current.exists() else "v1\n", "utf-8"
    )
    current.write_text(f"{release}\n", "utf-8")
    return signal_node(state_dir, signal.SIGHUP)


def rollback(state_dir: Path) -> int:
    """Go back to the release before the last deploy and restart the node."""
    if not (state_dir / "pid").is_file():
        return signal_node(state_dir, signal.SIGHUP)  # says that no node serves there
    previous = state_dir / "previous"
    release = previous.read_text("utf-8") if previous.exists() else "v1\n"
    (state_dir / "release").write_text(release, "utf-8")
    return signal_node(state_dir, signal.SIGHUP)


def main(argv: list[str] | None = None) -> int:
    """Command line: serve, drain, deploy, rollback or stop."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "drain", "deploy", "rollback", "stop"):
        command = commands.add_parser(name)
        command.add_argument("--state-dir", type=Path, required=True)
        if name == "serve":
            command.add_argument("--port", type=int, default=50061)
            command.add_argument("--warmup", type=float, default=1.0)
        if name == "deploy":
            command.add_argument("release")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "deploy":
        return deploy(args.state_dir, args.release)
    if args.command == "rollback":
        return rollback(args.state_dir)
    signum = signal.SIGUSR1 if args.command == "drain" else signal.SIGTERM
    return signal_node(args.state_dir, signum)


if __name__ == "__main__":
    sys.exit(main())
