"""Cold start of one check as a whole process, against the bare import floor.

Each case runs as a fresh process, the way a monitoring core runs a plugin. Cases run
interleaved (floor, case, floor, case, ...) so that machine noise hits both alike, and
the script prints the median wall time, the median ratio to the floor, the median user
+ system CPU time and the peak RSS of each.

    python bench/cold_start.py            # all cases, 30 rounds
    python bench/cold_start.py --rounds 60 --case plugin-ok --case probe-ok

The gRPC servers run inside this script (on 127.0.0.1), so no other set-up is needed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import grpc
from grpc_health.v1 import health, health_pb2_grpc

PYTHON = sys.executable
BIN = Path(sys.executable).parent
FLOOR_PLUGIN = "import grpc, nagiosplugin; from grpc_health.v1 import health_pb2, health_pb2_grpc"
FLOOR_PROBE = "import grpc; from grpc_health.v1 import health_pb2, health_pb2_grpc"


@dataclass
class Sample:
    wall: float
    cpu: float
    max_rss_kib: int
    code: int


# Measure what an installed package does: pip compiles bytecode at install time, so a
# PYTHONDONTWRITEBYTECODE in the caller's environment would only add compile time.
CHILD_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def run(argv: list[str]) -> Sample:
    """Run one process to completion; measure wall, CPU and peak RSS of that child only."""
    started = time.perf_counter()
    quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
    pid = os.posix_spawn(argv[0], argv, CHILD_ENV, file_actions=quiet)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    return Sample(
        wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status)
    )


def start_server(services: int) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    servicer = health.HealthServicer(experimental_non_blocking=False)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", 1)
    for index in range(services):
        servicer.set(f"svc{index}", 1)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def black_hole() -> socket.socket:
    """A listener that never accepts: the kernel completes handshakes, nobody speaks."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    return listener


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


class Case(NamedTuple):
    floor: list[str]
    argv: list[str]
    expected_exit: int
    deadline_ms: float = 0.0


def cases(port: int, refused: int, hole: int) -> dict[str, Case]:
    """The measured commands, each with its floor and the exit code it must give."""
    plugin = str(BIN / "check_grpc_health")
    probe = str(BIN / "grpc_health_probe")
    floor_plugin = [PYTHON, "-c", FLOOR_PLUGIN]
    floor_probe = [PYTHON, "-c", FLOOR_PROBE]
    five = [arg for index in range(5) for arg in ("-s", f"svc{index}")]
    ok, closed, silent = f"127.0.0.1:{port}", f"127.0.0.1:{refused}", f"127.0.0.1:{hole}"
    return {
        "plugin-ok": Case(floor_plugin, [plugin, "-H", ok], 0),
        "plugin-5-services": Case(floor_plugin, [plugin, "-H", ok, *five], 0),
        "plugin-refused": Case(floor_plugin, [plugin, "-H", closed], 2),
        "plugin-black-hole-0.25s": Case(
            floor_plugin, [plugin, "-H", silent, "--connect-timeout", "0.25"], 2, 250
        ),
        "probe-ok": Case(floor_probe, [probe, f"-addr={ok}"], 0),
        "probe-refused": Case(floor_probe, [probe, f"-addr={closed}"], 2),
        "probe-black-hole-250ms": Case(
            floor_probe, [probe, f"-addr={silent}", "-connect-timeout=250ms"], 2, 250
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--case", action="append", help="run only these cases")
    args = parser.parse_args()
    server, port = start_server(services=5)
    hole = black_hole()
    table = cases(port, closed_port(), hole.getsockname()[1])
    chosen = args.case or list(table)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.rounds} rounds each")
    header = (
        f"{'case':<24} {'floor ms':>9} {'case ms':>9} {'ratio':>6} "
        f"{'extra ms':>9} {'cpu ms':>7} {'rss MiB':>8} {'exit':>5} {'over deadline ms':>17}"
    )
    print(header)
    failures = 0
    try:
        for name in chosen:
            case = table[name]
            floor_argv, case_argv = case.floor, case.argv
            run(floor_argv)  # warm the page and bytecode caches for both before measuring
            run(case_argv)
            floors: list[Sample] = []
            samples: list[Sample] = []
            for _ in range(args.rounds):
                floors.append(run(floor_argv))
                samples.append(run(case_argv))
            codes = {sample.code for sample in samples}
            failures += codes != {case.expected_exit}
            floor_ms = statistics.median(s.wall for s in floors) * 1000
            case_ms = statistics.median(s.wall for s in samples) * 1000
            ratio = statistics.median(c.wall / f.wall for c, f in zip(samples, floors, strict=True))
            cpu_ms = statistics.median(s.cpu for s in samples) * 1000
            rss = max(s.max_rss_kib for s in samples) / 1024
            print(
                f"{name:<24} {floor_ms:9.1f} {case_ms:9.1f} {ratio:6.3f} "
                f"{case_ms - floor_ms:9.1f} {cpu_ms:7.1f} {rss:8.1f} "
                f"{','.join(map(str, sorted(codes))):>5} "
                + (f"{case_ms - floor_ms - case.deadline_ms:17.1f}" if case.deadline_ms else "")
            )
    finally:
        server.stop(None)
    if failures:
        print("some cases did not exit with the expected code", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
