"""Time limits that hold: each tool's last line is out before its limit, under load too.

A monitoring core, cron, the kubelet or a ``HEALTHCHECK`` counts a check's time limit
from the moment it starts the process, and kills it there. This script runs each tool as
a fresh process against peers that never let it finish early, while ``--busy`` processes
keep every core busy, and reports the wall time from spawn to exit against the limit:

- a gRPC server that takes the health call and never answers;
- a listener whose kernel completes the TCP handshake but that never speaks.

The limit is ``-t`` for ``check_grpc_health`` and ``check_grpc_health_fleet``, and for
``grpc_health_probe`` the Go tool's own: ``-connect-timeout`` plus ``-rpc-timeout``, or
``-wait``. Every case is built so that the limit, not a shorter deadline, ends it.
"late" is how long after it was due (the limit less the tool's margin) the process
exited: each margin must stay above the worst of it. "over" counts the runs that ended
after the limit itself, which must be none.

    python bench/time_limits.py                  # 2 busy processes, -t 2, 10 rounds
    python bench/time_limits.py --busy 4 --rounds 30 --case plugin-never-answers

The peers run inside this script (on 127.0.0.1), so no other set-up is needed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any, NamedTuple

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from check_grpc_health.fleet.main import PRINT_MARGIN as FLEET_MARGIN
from check_grpc_health.fleet.main import RENDER_PER_LINE
from check_grpc_health.plugin.options import BACKSTOP_LEAD
from check_grpc_health.probe_cli.durations import SECOND
from check_grpc_health.probe_cli.main import PRINT_MARGIN as PROBE_MARGIN

BIN = Path(sys.executable).parent
# Measure what an installed package does (see bench/cold_start.py).
CHILD_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


class NeverAnswers(health.HealthServicer):
    """Takes every Check and holds it until the script ends."""

    def __init__(self, stopping: Any) -> None:
        super().__init__()
        self.stopping = stopping

    def Check(self, request: Any, context: Any) -> Any:
        self.stopping.wait(600)
        return super().Check(request, context)


class Case(NamedTuple):
    argv: list[str]
    limit: float  # seconds from the process's start
    margin: float  # how long before the limit the tool means to be done
    expected_exit: int


def cases(never: str, silent: str, limit: float, fleet_file: str) -> dict[str, Case]:
    plugin = str(BIN / "check_grpc_health")
    probe = str(BIN / "grpc_health_probe")
    fleet = str(BIN / "check_grpc_health_fleet")
    t = f"{limit:g}"
    ms = round(limit * 1000)
    # The fleet's lines: checks one after another, so its -t ends them, not theirs.
    fleet_margin = FLEET_MARGIN + RENDER_PER_LINE * 4
    return {
        "plugin-never-answers": Case(
            [plugin, "-H", never, "--rpc-timeout", "60", "-t", t], limit, BACKSTOP_LEAD, 2
        ),
        "plugin-silent": Case(
            [plugin, "-H", silent, "--connect-timeout", "60", "-t", t], limit, BACKSTOP_LEAD, 2
        ),
        "plugin-silent-json": Case(
            [plugin, "-H", silent, "--connect-timeout", "60", "-t", t, "--json"],
            limit,
            BACKSTOP_LEAD,
            2,
        ),
        "fleet-never-answers": Case(
            [fleet, "--concurrency", "1", "-t", t, fleet_file], limit, fleet_margin, 2
        ),
        "probe-never-answers": Case(
            [probe, f"-addr={never}", "-connect-timeout=100ms", f"-rpc-timeout={ms - 100}ms"],
            limit,
            PROBE_MARGIN / SECOND,
            3,
        ),
        "probe-silent": Case(
            [probe, f"-addr={silent}", f"-connect-timeout={ms - 100}ms", "-rpc-timeout=100ms"],
            limit,
            PROBE_MARGIN / SECOND,
            2,
        ),
        "probe-wait-never-answers": Case(
            [probe, f"-addr={never}", f"-wait={ms}ms", "-rpc-timeout=60s"],
            limit,
            PROBE_MARGIN / SECOND,
            3,
        ),
    }


class Sample(NamedTuple):
    wall: float
    code: int
    printed: bool


def run(argv: list[str]) -> Sample:
    """Spawn, wait; the wall time from spawn to exit, the exit code, whether it printed."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        done = subprocess.run(argv, stdout=out, stderr=out, env=CHILD_ENV, check=False)
        wall = time.perf_counter() - started
        out.seek(0)
        printed = bool(out.read().strip())
    return Sample(wall, done.returncode, printed)


def busy(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes that each keep a core busy until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=2, help="busy processes (default 2)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--limit", type=float, default=2.0, help="-t in seconds (default 2)")
    parser.add_argument("--case", action="append", help="run only these cases")
    args = parser.parse_args()

    import threading

    stopping = threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    health_pb2_grpc.add_HealthServicer_to_server(NeverAnswers(stopping), server)
    never = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)  # never accepted: the kernel completes handshakes, nobody speaks
    silent = f"127.0.0.1:{listener.getsockname()[1]}"
    workdir = Path(tempfile.mkdtemp(prefix="time-limits-"))
    fleet_file = workdir / "fleet.txt"
    fleet_file.write_text(
        "".join(f"-H {never} -s line{index} --rpc-timeout 60\n" for index in range(3))
        + f"-H {silent} --connect-timeout 60\n"
    )
    table = cases(never, silent, args.limit, str(fleet_file))
    chosen = args.case or list(table)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.busy} busy processes, "
        f"limit {args.limit:g}s, {args.rounds} rounds each"
    )
    print(
        f"{'case':<26} {'margin ms':>9} {'median s':>9} {'max s':>7} "
        f"{'late ms med':>11} {'late ms max':>11} {'over':>5} {'silent':>6} {'exit':>5}"
    )
    hogs = busy(args.busy)
    failures = 0
    try:
        for name in chosen:
            case = table[name]
            samples = [run(case.argv) for _ in range(args.rounds)]
            walls = [sample.wall for sample in samples]
            due = case.limit - case.margin
            late = [(wall - due) * 1000 for wall in walls]
            over = sum(wall >= case.limit for wall in walls)
            unprinted = sum(not sample.printed for sample in samples)
            codes = sorted({sample.code for sample in samples})
            failures += over + unprinted + (codes != [case.expected_exit])
            print(
                f"{name:<26} {case.margin * 1000:9.0f} {statistics.median(walls):9.3f} "
                f"{max(walls):7.3f} {statistics.median(late):11.1f} {max(late):11.1f} "
                f"{over:5d} {unprinted:6d} {','.join(map(str, codes)):>5}"
            )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        stopping.set()
        server.stop(None)
        listener.close()
        fleet_file.unlink()
        workdir.rmdir()
    if failures:
        print("some runs ended past the limit, printed nothing or exited unexpectedly")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
