"""A health server in a process of its own, driven through its standard input.

Layer: tests (support), shared with bench/. The monitor's faults need a server it can
lose for real: killed (SIGKILL) and started again on the same port, frozen (SIGSTOP),
or one that does not stream. Run as a script, it serves the standard health service on
127.0.0.1 and prints ``ready PORT`` once it listens; each line on its standard input
sets a status (``set SERVICE STATUS``, ``-`` for the overall health). Modes:

- ``--watch normal``: grpcio's own HealthServicer (Watch pushes every change);
- ``--watch unimplemented``: Watch answers UNIMPLEMENTED, Check works;
- ``--watch once``: Watch sends the current status, then ends the stream (status OK);
- ``--max-streams N``: at most N concurrent streams per connection
  (``grpc.max_concurrent_streams``, as .NET Kestrel's 100);
- ``--reflect NAME,...``: server reflection that lists these services (``--all-services``).

:class:`HealthProcess` starts one and drives it from a test; every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

START_TIMEOUT = 20.0
STATUSES = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")


class HealthProcess:
    """One health server process: ``set`` statuses, ``kill``, ``freeze``, ``restart``."""

    def __init__(
        self,
        services: Sequence[str] = ("",),
        *,
        port: int = 0,
        watch: str = "normal",
        max_streams: int | None = None,
        status: str = "SERVING",
        reflect: Sequence[str] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self.services = tuple(services)
        self.port = port
        self.watch = watch
        self.max_streams = max_streams
        self.status = status
        self.reflect = tuple(reflect)
        self.host = host
        self.statuses: dict[str, str] = dict.fromkeys(self.services, status)
        self.process: subprocess.Popen[str] | None = None
        self.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving (again, on the same port once one was chosen)."""
        command = [
            sys.executable,
            __file__,
            "--port",
            str(self.port),
            "--watch",
            self.watch,
            "--status",
            self.status,
            "--host",
            self.host,
        ]
        if self.reflect:
            command += ["--reflect", ",".join(self.reflect)]
        if self.max_streams is not None:
            command += ["--max-streams", str(self.max_streams)]
        command += [name or "-" for name in self.services]
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
            )
            assert self.process.stdout is not None
            line = self.process.stdout.readline()
            if line.startswith("ready "):
                self.port = int(line.split()[1])
                self.statuses = dict.fromkeys(self.services, self.status)
                return
            self.process.wait(5)
            # The old process's port may linger a moment after a SIGKILL.
            if time.monotonic() > deadline:
                raise RuntimeError(f"the health server did not start: {line!r}")
            time.sleep(0.05)

    def set(self, service: str, status: str) -> None:
        """Set one service's status (the server pushes it to every Watch stream)."""
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(f"set {service or '-'} {status}\n")
        self.process.stdin.flush()
        self.statuses[service] = status

    def watched(self, service: str, timeout: float = 10.0) -> int:
        """Wait until the server holds a Watch stream of ``service``; how many it holds.

        A monitor may report a line's first state from its first Check a moment before its
        Watch stream is open; a change the server makes meanwhile reaches no stream.
        """
        assert self.process is not None
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"watched {service or '-'} {timeout}\n")
        self.process.stdin.flush()
        words = self.process.stdout.readline().split()
        assert words[:1] == ["watched"], words
        return int(words[1])

    def kill(self) -> None:
        """SIGKILL: the connections end with a reset, nothing is said first."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def shutdown(self) -> None:
        """Stop in order: grpcio's server.stop() sends GOAWAY and ends the streams."""
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: the connections stay open, nothing answers."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Kill the server and start it again on the same port."""
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.kill()
            self.process.wait(10)


def _serve(argv: Sequence[str]) -> None:
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--watch", choices=("normal", "unimplemented", "once"), default="normal")
    parser.add_argument("--max-streams", type=int)
    parser.add_argument("--status", default="SERVING")
    parser.add_argument("--reflect", default="")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("services", nargs="*")
    args = parser.parse_args(argv)

    watching: dict[str, int] = {}
    changed = threading.Condition()

    def count(service: str, step: int) -> None:
        with changed:
            watching[service] = watching.get(service, 0) + step
            changed.notify_all()

    class Servicer(health.HealthServicer):
        def Watch(self, request, context, send_response_callback=None):
            if args.watch == "unimplemented":
                context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
            if args.watch == "once":
                return iter([self.Check(request, context)])
            count(request.service, 1)
            context.add_callback(lambda: count(request.service, -1))
            return super().Watch(request, context, send_response_callback)

    options = []
    if args.max_streams is not None:
        options.append(("grpc.max_concurrent_streams", args.max_streams))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    servicer = Servicer(experimental_non_blocking=args.watch == "normal")
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    status = getattr(health_pb2.HealthCheckResponse, args.status)
    for name in args.services:
        servicer.set("" if name == "-" else name, status)
    if args.reflect:
        from grpc_reflection.v1alpha import reflection

        reflection.enable_server_reflection(
            [*args.reflect.split(","), reflection.SERVICE_NAME], server
        )
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    if not port:
        print("taken", flush=True)
        return
    server.start()
    print(f"ready {port}", flush=True)
    for line in iter(sys.stdin.readline, ""):
        words = line.split()
        if len(words) == 3 and words[0] == "set":
            name = "" if words[1] == "-" else words[1]
            servicer.set(name, getattr(health_pb2.HealthCheckResponse, words[2]))
        elif len(words) == 3 and words[0] == "watched":
            name = "" if words[1] == "-" else words[1]
            with changed:
                changed.wait_for(lambda name=name: watching.get(name, 0) > 0, float(words[2]))
                print(f"watched {watching.get(name, 0)}", flush=True)
    server.stop(None)


if __name__ == "__main__":
    _serve(sys.argv[1:])
