"""Library use: probes per second, and whether memory, threads and fds stay flat.

Probes one local server N times in this process, first on one reused
``HealthChannel``, then with a fresh channel (``probe()``) each time, and reports the
rate of each, plus RSS, thread count and open file descriptors before and after.

    python bench/library.py                 # 10,000 probes each way
    python bench/library.py --count 2000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from check_grpc_health import HealthChannel, ProbeOptions, parse_target, probe


def snapshot() -> tuple[float, int, int]:
    """Current RSS in MiB, live threads, open file descriptors."""
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    rss = rss_pages * resource.getpagesize() / 2**20
    return rss, threading.active_count(), len(os.listdir("/proc/self/fd"))


def report(label: str, count: int, elapsed: float, before: tuple[float, int, int]) -> None:
    after = snapshot()
    print(
        f"{label:<14} {count / elapsed:9.0f} probes/s   "
        f"rss {before[0]:6.1f} -> {after[0]:6.1f} MiB   "
        f"threads {before[1]} -> {after[1]}   fds {before[2]} -> {after[2]}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    servicer = health.HealthServicer(experimental_non_blocking=False)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    options = ProbeOptions(parse_target(f"127.0.0.1:{port}"))
    try:
        probe(options)  # warm up: first channel, imports, server threads
        before = snapshot()
        started = time.perf_counter()
        with HealthChannel(options) as channel:
            for _ in range(args.count):
                channel.probe()
        report("reused channel", args.count, time.perf_counter() - started, before)

        before = snapshot()
        started = time.perf_counter()
        for _ in range(args.count):
            probe(options)
        report("fresh channel", args.count, time.perf_counter() - started, before)
    finally:
        server.stop(None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
