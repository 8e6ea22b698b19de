"""Many probes in one process leave no threads, sockets or memory behind."""

from __future__ import annotations

import os
import threading
import time

import pytest

from check_grpc_health import HealthChannel, probe
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import ConnectFailure
from check_grpc_health.core.targets import parse_target


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def client_threads() -> list[str]:
    """Live threads, less the hostile peers' per-connection handlers (test fixtures)."""
    return [t.name for t in threading.enumerate() if "(_handle)" not in t.name]


def settle(baseline: int) -> list[str]:
    """Give finished helper threads a moment to exit; return the live ones."""
    deadline = time.monotonic() + 3
    while len(client_threads()) > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    return client_threads()


def test_repeated_probes_keep_fds_threads_and_memory_flat(
    server: object, closed_address: str, black_hole_address: str
) -> None:
    address = server.address  # type: ignore[attr-defined]
    healthy = ProbeOptions(parse_target(address), services=("", "ready"))
    refused = ProbeOptions(parse_target(closed_address))
    hole = ProbeOptions(parse_target(black_hole_address), connect_timeout=0.05)
    for _ in range(50):  # warm-up: grpc's own pools and caches
        probe(healthy)
    threads, fds, rss = len(client_threads()), open_fds(), rss_mib()

    for _ in range(600):
        assert probe(healthy).serving
    for _ in range(200):
        with pytest.raises(ConnectFailure):
            probe(refused)
    for _ in range(20):
        with pytest.raises(ConnectFailure):
            probe(hole)
    with HealthChannel(healthy) as channel:
        for _ in range(600):
            assert channel.probe().serving

    time.sleep(0.5)  # a cancelled attempt to a silent peer ends at its connect deadline
    live = settle(threads)
    assert len(live) <= threads + 1, live
    # The black hole's accepted sockets belong to the fixture: 20 of them.
    assert open_fds() <= fds + 20 + 2
    assert rss_mib() - rss < 15
