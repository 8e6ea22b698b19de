"""The fleet at scale: wall time, CPU per target and peak memory of one fleet process.

Starts ``--servers`` local health servers in another process (so their CPU is not the
fleet's), writes fleet files of 100, 1,000, 3,000 and 10,000 labelled lines spread over
them, runs ``check_grpc_health_fleet`` on each ``--rounds`` times, and reports the
medians of:

- wall time of the run;
- the fleet process's own CPU (user + sys, from ``os.wait4``) per target;
- the fleet process's peak RSS (``ru_maxrss``).

It then starts a real Icinga 2 (the ``icinga2`` Debian package, through the test
harness in tests/support/daemons) with 1,000 passive services and times a fleet run that
submits 1,000 results to its API, against the same run without the API.

    python bench/fleet.py                        # 100, 1000, 3000, 10000 targets
    python bench/fleet.py --sizes 3000 --rounds 5 --icinga2 0
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SERVICES = 50
GOALS = {3000: 0.5, 10000: 0.6}  # CPU ms per target
# Measure what an installed package does: pip compiles bytecode at install time, so a
# PYTHONDONTWRITEBYTECODE in the caller's environment would only add compile time to
# every run (about 70 ms here, 0.02 ms per target at 3,000 targets). As bench/cold_start.py.
CHILD_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def serve(count: int) -> None:
    """Run ``count`` health servers; print their ports; serve until stdin closes."""
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    servers = []
    for _ in range(count):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        servicer = health.HealthServicer(experimental_non_blocking=False)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        servicer.set("", 1)
        for number in range(SERVICES):
            servicer.set(f"svc{number}", 1)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append((server, port))
    print(" ".join(str(port) for _, port in servers), flush=True)
    sys.stdin.read()
    for server, _ in servers:
        server.stop(None)


def fleet_text(ports: list[int], targets: int, prefix: str = "bench") -> str:
    lines = []
    for number in range(targets):
        port = ports[number % len(ports)]
        lines.append(
            f"{prefix}-{number}!grpc: -H 127.0.0.1:{port} -s svc{number % SERVICES} -w 0.5 -c 1\n"
        )
    return "".join(lines)


def run_measured(argv: list[str]) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds (user + sys), peak RSS in KiB, exit code of one run."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=CHILD_ENV
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    assert process.stderr is not None
    error = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if error:
        print(error, file=sys.stderr, end="")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, process.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,3000,10000")
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", default="30", help="the fleet's -t")
    parser.add_argument("--concurrency", help="the fleet's --concurrency (default: its own)")
    parser.add_argument("--serve", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument(
        "--icinga2",
        type=int,
        default=1000,
        metavar="N",
        help="results to submit to a real Icinga 2 API (0: skip; needs icinga2 and trustme)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    servers = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.servers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert servers.stdout is not None
    assert servers.stdin is not None
    ports = [int(port) for port in servers.stdout.readline().split()]
    fleet = str(BIN / "check_grpc_health_fleet")
    extra = [] if args.concurrency is None else ["--concurrency", args.concurrency]
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # One run first, not measured: it writes the bytecode an install would have.
            warm_up = Path(tmp) / "warm-up.txt"
            warm_up.write_text(fleet_text(ports, len(ports)))
            run_measured([fleet, "-t", args.timeout, str(warm_up)])
            for size in sizes:
                path = Path(tmp) / f"fleet-{size}.txt"
                path.write_text(fleet_text(ports, size))
                samples = []
                for _ in range(args.rounds):
                    argv = [fleet, "-t", args.timeout, *extra, str(path)]
                    wall, cpu, rss, code = run_measured(argv)
                    if code != 0:
                        print(f"{size} targets: exit code {code}", file=sys.stderr)
                        return 1
                    samples.append((wall, cpu, rss))
                rows.append((size, *(statistics.median(s[i] for s in samples) for i in range(3))))
            submit = None
            if args.icinga2 and shutil.which("icinga2") is None:
                submit = "Icinga 2 submission skipped: icinga2 is not installed"
            elif args.icinga2:
                submit = icinga2_submit(ports, args.rounds, args.icinga2, Path(tmp), fleet)
    finally:
        servers.stdin.close()
        servers.wait(timeout=30)
    print(f"{args.servers} local servers in another process, median of {args.rounds} rounds")
    print(f"{'targets':>8}  {'wall s':>7}  {'CPU ms/target':>13}  {'peak RSS MiB':>12}  goal")
    for size, wall, cpu, rss in rows:
        per_target = cpu * 1000 / size
        goal = GOALS.get(size)
        verdict = ""
        if goal is not None:
            verdict = f"<= {goal} ms: {'met' if per_target <= goal else 'MISSED'}"
        print(f"{size:>8}  {wall:7.2f}  {per_target:13.3f}  {rss / 1024:12.1f}  {verdict}")
    if len(rows) > 1:
        growth = (rows[-1][3] - rows[0][3]) / 1024
        print(f"RSS growth {rows[0][0]} -> {rows[-1][0]} targets: {growth:.1f} MiB (goal <= 40)")
    if submit is not None:
        print(submit)
    return 0


def icinga2_submit(ports: list[int], rounds: int, count: int, tmp: Path, fleet: str) -> str:
    """The cost of submitting ``count`` results to a real Icinga 2 API.

    Starts Icinga 2 with ``count`` passive services through the test harness
    (tests/support/daemons), then times the same fleet file with and without ``--icinga2-api``:
    the difference is what submitting costs.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from support.daemons.icinga2_api import start_icinga2_api, stop_icinga2_api

    names = [f"bench-{number % 50}!grpc-{number}" for number in range(count)]
    api = start_icinga2_api(tmp / "icinga2", services=names)
    try:
        path = tmp / "submit.txt"
        path.write_text(
            "".join(
                f"{name}: -H 127.0.0.1:{ports[n % len(ports)]} -s svc{n % SERVICES}\n"
                for n, name in enumerate(names)
            )
        )
        plain = [fleet, "-q", "-t", "30", str(path)]
        options = ["--icinga2-api", api.url, "--icinga2-user", api.user]
        options += ["--icinga2-password-file", str(api.password_file)]
        options += ["--icinga2-ca", str(api.ca_file)]
        without, with_api, cpu = [], [], []
        for _ in range(rounds):
            wall, _, _, code = run_measured(plain)
            without.append(wall)
            wall, used, _, code = run_measured([*plain, *options])
            if code != 0:
                raise SystemExit(f"submitting to the Icinga 2 API: exit code {code}")
            with_api.append(wall)
            cpu.append(used)
        state = api.service(names[-1]).state
    finally:
        stop_icinga2_api(api)
    if state != 0:
        raise SystemExit(f"{names[-1]} is in state {state} after the submission, not 0")
    total = statistics.median(with_api)
    extra = total - statistics.median(without)
    return (
        f"{count} results into a real Icinga 2 API: the fleet run took {total:.2f} s "
        f"(median; goal < 5 s), {extra:.2f} s more than without the API; "
        f"fleet CPU {statistics.median(cpu) * 1000 / count:.3f} ms per result"
    )


if __name__ == "__main__":
    sys.exit(main())
