"""A fleet of targets: one check_grpc_health_fleet process against separate plugin runs.

Starts ``--servers`` local health servers and writes a fleet file of ``--targets``
lines spread over them, then times, side by side:

- ``fleet``: one ``check_grpc_health_fleet`` process for all targets;
- ``separate, sequential``: one ``check_grpc_health`` process per target, one after
  another (a cron loop);
- ``separate, N at a time``: the same processes, ``--parallel`` at once (xargs -P).

    python bench/fleet.py                  # 200 targets over 20 servers, 3 rounds
    python bench/fleet.py --targets 50 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2_grpc

BIN = Path(sys.executable).parent


def start_servers(count: int) -> list[tuple[grpc.Server, int]]:
    servers = []
    for _ in range(count):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        servicer = health.HealthServicer(experimental_non_blocking=False)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        servicer.set("", 1)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append((server, port))
    return servers


def timed(argv: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    return time.perf_counter() - started, done.returncode


def separate_runs(addresses: list[str], parallel: int) -> tuple[float, int]:
    """Run one plugin process per address, ``parallel`` at a time; worst exit code."""
    started = time.perf_counter()
    worst = 0
    plugin = str(BIN / "check_grpc_health")
    pending = list(addresses)
    running: list[subprocess.Popen[bytes]] = []
    while pending or running:
        while pending and len(running) < parallel:
            argv = [plugin, "-H", pending.pop()]
            running.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        finished = running.pop(0)
        worst = max(worst, finished.wait())
    return time.perf_counter() - started, worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    servers = start_servers(args.servers)
    addresses = [f"127.0.0.1:{servers[i % len(servers)][1]}" for i in range(args.targets)]
    results: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            fleet_file = Path(tmp) / "fleet.txt"
            fleet_file.write_text("".join(f"-H {address}\n" for address in addresses))
            fleet = [str(BIN / "check_grpc_health_fleet"), str(fleet_file)]
            for _ in range(args.rounds):
                for name, run in (
                    ("fleet (one process)", lambda: timed(fleet)),
                    ("separate, sequential", lambda: separate_runs(addresses, 1)),
                    (
                        f"separate, {args.parallel} at a time",
                        lambda: separate_runs(addresses, args.parallel),
                    ),
                ):
                    seconds, code = run()
                    if code != 0:
                        print(f"{name}: exit code {code}", file=sys.stderr)
                        return 1
                    results.setdefault(name, []).append(seconds)
    finally:
        for server, _ in servers:
            server.stop(None)
    base = statistics.median(results["fleet (one process)"])
    print(f"{args.targets} targets over {args.servers} local servers, {args.rounds} rounds")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"{name:<24} median {median:7.2f} s   {median / base:6.1f}x the fleet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
