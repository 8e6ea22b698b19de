"""``/probe`` under load: CPU per probe and latency, beside blackbox_exporter's gRPC prober.

Starts a health server in another process (so its CPU is not counted), then each
exporter in turn on 127.0.0.1:

- ``check_grpc_health_exporter`` with a module ``grpc`` (no options);
- blackbox_exporter (Debian's ``prometheus-blackbox-exporter``), with a ``grpc`` prober
  module, plaintext, IPv4, where it is installed.

For each, ``--probes`` scrapes of ``/probe?target=...&module=grpc`` run one at a time, then
the same number from ``--concurrency`` threads at once (as many Prometheus jobs scraping
together), each with Prometheus' ``X-Prometheus-Scrape-Timeout-Seconds: 10``. It reports the
exporter process's CPU (user + sys, from /proc) per probe, and the latency's median, 99th
percentile and maximum; every answer must be a 200 with ``probe_success 1``.

    python bench/exporter.py                  # 400 probes, 50 at once
    python bench/exporter.py --probes 1000 --concurrency 50
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.health_process import HealthProcess

BIN = Path(sys.executable).parent
TICKS = os.sysconf("SC_CLK_TCK")
HEADERS = {"X-Prometheus-Scrape-Timeout-Seconds": "10"}
BLACKBOX_CONFIG = """modules:
  grpc:
    prober: grpc
    timeout: 5s
    grpc:
      tls: false
      preferred_ip_protocol: ip4
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int, target: str) -> float:
    """One /probe; its latency in seconds (an error unless probe_success is 1)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", f"/probe?target={target}&module=grpc", headers=HEADERS)
        answer = connection.getresponse()
        text = answer.read().decode()
    finally:
        connection.close()
    took = time.perf_counter() - started
    if answer.status != 200 or not re.search(r"^probe_success 1(\.0)?$", text, re.M):
        raise RuntimeError(f"bad probe: {answer.status} {text[:200]}")
    return took


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the exporter exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the exporter did not listen within 20 s")


def measure(
    name: str, command: list[str], port: int, target: str, args: argparse.Namespace
) -> None:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, process)
        for _ in range(20):  # warm-up: imports, first connections
            scrape(port, target)
        for label, workers in (
            ("one at a time", 1),
            (f"{args.concurrency} at once", args.concurrency),
        ):
            before = cpu_seconds(process.pid)
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                latencies = sorted(pool.map(lambda _: scrape(port, target), range(args.probes)))
            wall = time.perf_counter() - started
            cpu = cpu_seconds(process.pid) - before
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(
                f"{name:<28} {label:<14} CPU {1000 * cpu / args.probes:6.2f} ms/probe   "
                f"latency median {1000 * statistics.median(latencies):7.1f} ms, "
                f"p99 {1000 * p99:7.1f} ms, max {1000 * latencies[-1]:7.1f} ms   "
                f"({args.probes / wall:5.0f} probes/s)"
            )
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    server = HealthProcess([""])
    try:
        with tempfile.TemporaryDirectory() as folder:
            modules = Path(folder) / "modules.txt"
            modules.write_text("grpc:\n")
            port = free_port()
            measure(
                "check_grpc_health_exporter",
                [
                    str(BIN / "check_grpc_health_exporter"),
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--modules",
                    str(modules),
                    "--allow-target",
                    "127.0.0.1:*",
                ],
                port,
                server.address,
                args,
            )
            blackbox = shutil.which("prometheus-blackbox-exporter")
            if blackbox is None:
                print(
                    "blackbox_exporter: not installed "
                    "(apt-get install prometheus-blackbox-exporter)"
                )
                return
            config = Path(folder) / "blackbox.yml"
            config.write_text(BLACKBOX_CONFIG)
            port = free_port()
            measure(
                "blackbox_exporter",
                [blackbox, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
                port,
                server.address,
                args,
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
