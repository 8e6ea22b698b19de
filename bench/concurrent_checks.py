"""Many check processes at once against one server: every one must give the right answer.

Starts a gRPC health server in this process (overall health SERVING, service ``down``
NOT_SERVING), launches COUNT ``check_grpc_health`` processes at the same moment (each
with ``-t 20``, half asking for ``down``), waits for all of them, and checks each exit
code and status line. Reports the wall time, the spread of per-process times, the
checks' own measured times, the Checks the server answered, and every failure.

    python bench/concurrent_checks.py                  # 200 plugin processes
    python bench/concurrent_checks.py --count 50
    python bench/concurrent_checks.py --tool probe     # the drop-in grpc_health_probe

Exits 1 if any process gave a wrong or missing answer.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

BIN = Path(sys.executable).parent
PERFDATA_TIME = re.compile(r" time=([0-9.]+)s;")


class CountingServicer(health.HealthServicer):
    """Counts the Checks it answers."""

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0
        self.lock = threading.Lock()

    def Check(self, request: Any, context: Any) -> Any:
        with self.lock:
            self.checks += 1
        return super().Check(request, context)


@dataclass
class Outcome:
    """One finished process: what it was asked, what it said, how long it took."""

    service: str
    code: int
    stdout: str
    stderr: str
    wall: float

    def problem(self, tool: str, address: str) -> str | None:
        """Why this outcome is wrong, or None."""
        if tool == "probe":
            expected = (0, "status: SERVING\n") if not self.service else (4, None)
            if self.code != expected[0] or (expected[1] and self.stderr != expected[1]):
                return f"exit {self.code}: {self.stderr.strip()!r}"
            return None
        if not self.service:
            code, start = 0, f"GRPC_HEALTH OK - {address}: overall health is SERVING in "
        else:
            code, start = 2, f"GRPC_HEALTH CRITICAL - {address}: service 'down' is NOT_SERVING | "
        if self.code != code or not self.stdout.startswith(start) or self.stderr:
            return f"exit {self.code}: {(self.stdout + self.stderr).strip()!r}"
        return None


def command(tool: str, address: str, service: str, timeout: float) -> list[str]:
    if tool == "probe":
        seconds = f"{timeout:g}s"
        return [
            str(BIN / "grpc_health_probe"),
            f"-addr={address}",
            f"-service={service}",
            f"-connect-timeout={seconds}",
            f"-rpc-timeout={seconds}",
        ]
    argv = [str(BIN / "check_grpc_health"), "-H", address, "-t", f"{timeout:g}"]
    return [*argv, "-s", service] if service else argv


def run_all(tool: str, address: str, count: int, timeout: float) -> tuple[list[Outcome], float]:
    """Start ``count`` processes at once; return their outcomes and the total wall time."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRPC_")}
    outcomes: list[Outcome | None] = [None] * count

    def wait(index: int, service: str, process: subprocess.Popen[str], started: float) -> None:
        try:
            stdout, stderr = process.communicate(timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            stderr += "\n(killed: no exit within the timeout plus 30 s)"
        wall = time.monotonic() - started
        outcomes[index] = Outcome(service, process.returncode, stdout, stderr, wall)

    waiters = []
    started = time.monotonic()
    for index in range(count):
        service = "down" if index % 2 else ""
        process = subprocess.Popen(
            command(tool, address, service, timeout),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        waiter = threading.Thread(target=wait, args=(index, service, process, time.monotonic()))
        waiter.start()
        waiters.append(waiter)
    for waiter in waiters:
        waiter.join()
    total = time.monotonic() - started
    return [outcome for outcome in outcomes if outcome is not None], total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--tool", choices=["plugin", "probe"], default="plugin")
    parser.add_argument("--timeout", type=float, default=20.0, help="each check's -t (seconds)")
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    servicer = CountingServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("down", health_pb2.HealthCheckResponse.NOT_SERVING)
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    try:
        outcomes, total = run_all(args.tool, address, args.count, args.timeout)
    finally:
        server.stop(None)

    failures = [
        (outcome, problem)
        for outcome in outcomes
        if (problem := outcome.problem(args.tool, address)) is not None
    ]
    walls = sorted(outcome.wall for outcome in outcomes)
    measured = [
        float(match.group(1))
        for outcome in outcomes
        if (match := PERFDATA_TIME.search(outcome.stdout)) is not None
    ]
    correct = len(outcomes) - len(failures)
    print(f"{args.count} concurrent {args.tool} processes against one server on {address}")
    print(f"  correct answers   {correct}/{args.count}")
    print(f"  wall time         {total:.2f}s for all of them")
    print(
        f"  per process       median {statistics.median(walls):.2f}s, "
        f"p95 {walls[int(len(walls) * 0.95) - 1]:.2f}s, max {walls[-1]:.2f}s"
    )
    if measured:
        print(
            f"  check's own time  median {statistics.median(measured) * 1000:.1f}ms, "
            f"max {max(measured) * 1000:.1f}ms"
        )
    print(f"  Checks answered   {servicer.checks}")
    for outcome, problem in failures[:20]:
        print(f"  FAILED ({outcome.service or 'overall'}): {problem}")
    return 1 if failures or len(outcomes) != args.count else 0


if __name__ == "__main__":
    sys.exit(main())
