"""The test daemons' start-up time, and what a real Icinga 2 API takes for 1,000 results.

Two reports, both against the daemons of tests/support/daemons/ (Debian's icinga2, nagios4-core
and prometheus-node-exporter must be installed):

- seconds from launch to ready for each daemon, median of ``--starts`` launches;
- 1,000 passive check results sent to ``/v1/actions/process-check-result`` with the
  standard library's http.client and ssl, the floor for any Python client: one
  keep-alive connection in sequence, N keep-alive connections in threads, requests
  pipelined on one connection, and a new connection per request.

    python bench/monitoring_daemons.py
    python bench/monitoring_daemons.py --results 3000 --starts 10
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.client
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.daemons import icinga2_api, nagios, prometheus

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

SUBMIT = "/v1/actions/process-check-result"


def start_times(starts: int) -> None:
    def start_icinga2(base: Path) -> Callable[[], object]:
        api = icinga2_api.start_icinga2_api(base)
        return lambda: icinga2_api.stop_icinga2_api(api)

    def start_nagios4(base: Path) -> Callable[[], object]:
        return nagios.Nagios4(base, nagios.NAGIOS_SERVICES).stop

    def start_node_exporter(base: Path) -> Callable[[], object]:
        exporter = prometheus.NodeExporter(base)
        exporter.scrape()
        return exporter.stop

    print(f"{'daemon':<34}{'ready (median)':>16}{'stop (median)':>16}")
    for name, start in (
        ("icinga2 (api + command pipe)", start_icinga2),
        ("nagios4 (command file)", start_nagios4),
        ("node_exporter (first scrape)", start_node_exporter),
    ):
        ready, stopped = [], []
        for _ in range(starts):
            with tempfile.TemporaryDirectory(prefix="cgh-bench-") as folder:
                began = time.perf_counter()
                stop = start(Path(folder))
                ready.append(time.perf_counter() - began)
                began = time.perf_counter()
                stop()
                stopped.append(time.perf_counter() - began)
        print(f"{name:<34}{statistics.median(ready):>15.3f}s{statistics.median(stopped):>15.3f}s")


def bodies(count: int, services: Sequence[str]) -> list[bytes]:
    now = time.time()
    return [
        json.dumps(
            {
                "type": "Service",
                "service": services[index % len(services)],
                "exit_status": index % 3,
                "plugin_output": f"GRPC_HEALTH OK - 127.0.0.1:50051: overall health is "
                f"SERVING in 0.001s (#{index})",
                "performance_data": ["time=0.001s;;;0", "connect_time=0.0005s;;;0"],
                "check_source": "bench",
                "execution_start": now,
                "execution_end": now,
                "ttl": 600,
            }
        ).encode()
        for index in range(count)
    ]


def throughput(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cgh-bench-") as folder:
        api = icinga2_api.start_icinga2_api(Path(folder))
        try:
            payloads = bodies(count, api.services)
            token = base64.b64encode(f"{api.user}:{api.password}".encode()).decode()
            headers = {
                "Accept": "application/json",
                "Content-Type": "application/json",
                "Authorization": f"Basic {token}",
            }
            context = api.ssl_context()

            def sequence(part: Sequence[bytes], *, fresh: bool = False) -> None:
                connection = http.client.HTTPSConnection(
                    "127.0.0.1", api.port, context=context, timeout=30
                )
                for body in part:
                    if fresh:
                        connection.close()
                    connection.request("POST", SUBMIT, body, headers)
                    answer = connection.getresponse()
                    answer.read()
                    assert answer.status == 200, answer.status
                connection.close()

            def parallel(connections: int) -> None:
                threads = [
                    threading.Thread(target=sequence, args=(payloads[first::connections],))
                    for first in range(connections)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()

            def pipelined(depth: int) -> None:
                raw = socket.create_connection(("127.0.0.1", api.port))
                stream = context.wrap_socket(raw, server_hostname="127.0.0.1")
                replies = stream.makefile("rb")
                head = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
                sent = received = 0
                while received < len(payloads):
                    while sent < len(payloads) and sent - received < depth:
                        body = payloads[sent]
                        stream.sendall(
                            f"POST {SUBMIT} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
                            f"Content-Length: {len(body)}\r\n\r\n".encode()
                            + body
                        )
                        sent += 1
                    assert b" 200 " in replies.readline()
                    length = 0
                    while (line := replies.readline()) != b"\r\n":
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    replies.read(length)
                    received += 1
                stream.close()

            cases: list[tuple[str, Callable[[], None]]] = [
                ("1 keep-alive connection", functools.partial(sequence, payloads)),
                ("2 keep-alive connections", functools.partial(parallel, 2)),
                ("4 keep-alive connections", functools.partial(parallel, 4)),
                ("8 keep-alive connections", functools.partial(parallel, 8)),
                ("pipelined, depth 16", functools.partial(pipelined, 16)),
                ("a new connection per request", functools.partial(sequence, payloads, fresh=True)),
            ]
            print(f"\n{count} results to {api.url}{SUBMIT}")
            print(f"{'how':<32}{'wall':>9}{'per second':>12}{'client CPU':>12}{'icinga2 CPU':>13}")
            for name, run in cases:
                daemon_cpu = process_tree_cpu(api.daemon.process.pid)
                began, cpu = time.perf_counter(), os.times()
                run()
                wall = time.perf_counter() - began
                after = os.times()
                client = after.user + after.system - cpu.user - cpu.system
                server = process_tree_cpu(api.daemon.process.pid) - daemon_cpu
                print(
                    f"{name:<32}{wall:>8.2f}s{count / wall:>12.0f}{client:>11.2f}s{server:>12.2f}s"
                )
        finally:
            icinga2_api.stop_icinga2_api(api)


def process_tree_cpu(root: int) -> float:
    """User + system CPU seconds of a process and its descendants, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--results", type=int, default=1000, help="check results to send")
    parser.add_argument("--starts", type=int, default=5, help="launches of each daemon")
    options = parser.parse_args()
    start_times(options.starts)
    throughput(options.results)


if __name__ == "__main__":
    main()
