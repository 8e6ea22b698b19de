"""Wait reaction: from the server turning SERVING to the waiting process exiting.

A health server runs in a process of its own and starts NOT_SERVING. For each round the
bench starts a waiting command, lets it open its Watch stream (the server reports it),
then has the server flip to SERVING and note the moment (``CLOCK_MONOTONIC``, which both
processes share). The lag is the child's exit time minus the flip time:

- ``probe -wait``: ``grpc_health_probe -addr=... -wait=30s``;
- ``plugin --wait``: ``check_grpc_health -H ... --wait 30 -t 40``.

And when SERVING never comes, how far past its deadline each ends:

- ``probe -wait, never``: the server stays NOT_SERVING; from the probe's
  ``establishing connection`` line under ``-v`` (printed as the wait starts) to the
  exit, minus DURATION;
- ``probe -wait, refused``: the same with nothing listening;
- ``plugin --wait, never``: the server stays NOT_SERVING; from the server's first Check
  (the wait's start plus the connect, so this reads a little low) to the exit, minus
  DURATION.

    python bench/wait_reaction.py --rounds 20
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
PROBE = str(BIN / "grpc_health_probe")
PLUGIN = str(BIN / "check_grpc_health")


def serve() -> int:
    """The server process: NOT_SERVING until told ``flip``; reports Watch, Check, flips."""
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    class Reporting(health.HealthServicer):
        def Check(self, request: Any, context: Any) -> Any:
            say(f"check {time.monotonic():.6f}")
            return super().Check(request, context)

        def Watch(self, request: Any, context: Any, send_response_callback: Any = None) -> Any:
            say("watching")
            yield from super().Watch(request, context, send_response_callback)

    servicer = Reporting(experimental_non_blocking=False)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", 2)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    say(f"port {port}")
    for line in sys.stdin:
        command = line.strip()
        if command == "flip":
            flipped = time.monotonic()
            servicer.set("", 1)
            say(f"flipped {flipped:.6f}")
        elif command == "reset":
            servicer.set("", 2)
            say("reset")
    server.stop(None)
    return 0


class Server:
    """The server process, driven through its stdin and read through its stdout."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self.expect("port"))

    def expect(self, word: str) -> str:
        """Read lines until one starts with ``word``; return the rest of it."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            head, _, rest = line.strip().partition(" ")
            if head == word:
                return rest
        raise RuntimeError(f"the server ended before {word!r}")

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def run_timed(argv: list[str]) -> tuple[subprocess.Popen[bytes], list[float]]:
    """Start ``argv``; a thread notes the monotonic time the moment it exits."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ended: list[float] = []

    def reap() -> None:
        process.wait()
        ended.append(time.monotonic())

    thread = threading.Thread(target=reap, daemon=True)
    thread.start()
    process.reaper = thread  # type: ignore[attr-defined]
    return process, ended


def finish(process: subprocess.Popen[bytes], ended: list[float]) -> float:
    process.reaper.join(timeout=120)  # type: ignore[attr-defined]
    return ended[0]


def flip_lag(server: Server, argv: list[str]) -> float:
    """One round: wait for the Watch stream, flip at a random moment, time the exit."""
    server.send("reset")
    server.expect("reset")
    process, ended = run_timed(argv)
    server.expect("watching")
    time.sleep(random.uniform(0.05, 0.25))
    server.send("flip")
    flipped = float(server.expect("flipped"))
    exited = finish(process, ended)
    assert process.returncode == 0, process.returncode
    return exited - flipped


def never_overrun(server: Server, argv: list[str], wait: float, code: int) -> float:
    """SERVING never comes: exit time minus (first Check + ``wait``)."""
    server.send("reset")
    server.expect("reset")
    process, ended = run_timed(argv)
    first_check = float(server.expect("check"))
    exited = finish(process, ended)
    assert process.returncode == code, process.returncode
    return exited - first_check - wait


def marked_overrun(argv: list[str], wait: float, code: int) -> float:
    """From the probe's ``establishing connection`` line to its exit, minus ``wait``."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    started = None
    for line in process.stderr:
        if line.startswith(b"establishing connection"):
            started = time.monotonic()
            break
    process.wait()
    exited = time.monotonic()
    process.stderr.close()
    assert started is not None
    assert process.returncode == code, process.returncode
    return exited - started - wait


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def summarize(name: str, lags: list[float]) -> None:
    ms = sorted(lag * 1000 for lag in lags)
    print(
        f"{name:<24} median {statistics.median(ms):7.1f} ms   "
        f"min {ms[0]:7.1f}   max {ms[-1]:7.1f}   n={len(ms)}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--wait", type=float, default=1.0, help="DURATION of the never cases")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    rounds = range(args.rounds)
    server = Server()
    address = f"127.0.0.1:{server.port}"
    wait = args.wait
    try:
        summarize(
            "probe -wait",
            [flip_lag(server, [PROBE, f"-addr={address}", "-wait=30s"]) for _ in rounds],
        )
        summarize(
            "plugin --wait",
            [flip_lag(server, [PLUGIN, "-H", address, "--wait", "30", "-t", "40"]) for _ in rounds],
        )
        server.send("reset")
        server.expect("reset")
        probe_never = [PROBE, f"-addr={address}", f"-wait={wait:g}s", "-v"]
        summarize("probe -wait, never", [marked_overrun(probe_never, wait, 4) for _ in rounds])
        plugin_never = [PLUGIN, "-H", address, "--wait", f"{wait:g}", "-t", f"{wait + 5:g}"]
        summarize(
            "plugin --wait, never", [never_overrun(server, plugin_never, wait, 2) for _ in rounds]
        )
    finally:
        server.close()
    refused = [PROBE, f"-addr=127.0.0.1:{free_port()}", f"-wait={wait:g}s", "-v"]
    summarize("probe -wait, refused", [marked_overrun(refused, wait, 2) for _ in rounds])
    return 0


if __name__ == "__main__":
    sys.exit(main())
