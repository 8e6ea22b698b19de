"""Many probes in one process stay flat where the basic resource test does not look.

Layer: tests. tests/core/test_resources.py covers plaintext probes, refusals, a black hole
and a reused channel. This adds what else opens sockets or starts threads: verified
TLS, mutual TLS, the no-verify pin (its own TLS handshake), certificate facts, and
``watch()`` in all its modes (answered by Check, following Watch streams to a deadline,
polling where Watch is unimplemented, re-opening streams a server resets), and the
Ansible gate's copy of the core. After each batch, file descriptors, threads and
resident memory must be back where they started.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from support.hardening import open_fds, run_module, settled_threads
from support.servers import NOT_SERVING, NoWatchHealthServicer, WatchResettingServicer

from check_grpc_health import probe, watch
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import HealthStatus
from check_grpc_health.core.targets import parse_target
from check_grpc_health.core.tls import TlsOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import TlsMaterial
    from support.servers import HealthServer


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


class Baseline:
    """Threads, descriptors and memory at one moment, to compare a later moment with."""

    def __init__(self) -> None:
        self.threads = len(settled_threads(0, wait=0))
        self.fds = open_fds()
        self.rss = rss_mib()

    def assert_flat(self, rss_slack: float = 15) -> None:
        live = settled_threads(self.threads)
        assert len(live) <= self.threads, live
        # A closed channel's socket is released by grpc's poller moments later.
        deadline = time.monotonic() + 3
        while open_fds() > self.fds and time.monotonic() < deadline:
            time.sleep(0.05)
        assert open_fds() <= self.fds
        assert rss_mib() - self.rss < rss_slack


def test_tls_probes_keep_fds_threads_and_memory_flat(
    start_server: Callable[..., HealthServer], tls_material: TlsMaterial
) -> None:
    tls_server = start_server(credentials=tls_material.server_credentials())
    mtls_server = start_server(credentials=tls_material.server_credentials(require_client=True))
    verified = ProbeOptions(
        parse_target(tls_server.address), tls=TlsOptions(ca_cert=str(tls_material.ca_cert))
    )
    mutual = ProbeOptions(
        parse_target(mtls_server.address),
        tls=TlsOptions(
            ca_cert=str(tls_material.ca_cert),
            client_cert=str(tls_material.client_cert),
            client_key=str(tls_material.client_key),
        ),
    )
    pinned = ProbeOptions(
        parse_target(tls_server.address), tls=TlsOptions(verify=False), certificate_facts=True
    )
    facts = ProbeOptions(
        parse_target(tls_server.address),
        tls=TlsOptions(ca_cert=str(tls_material.ca_cert)),
        certificate_facts=True,
    )
    for options in (verified, mutual, pinned, facts):  # warm-up: grpc's pools and caches
        for _ in range(10):
            assert probe(options).serving
    before = Baseline()
    for _ in range(150):
        assert probe(verified).serving
    for _ in range(100):
        assert probe(mutual).serving
    for _ in range(100):
        result = probe(pinned)
        assert result.serving
        assert result.certificate is not None
    for _ in range(50):
        assert probe(facts).certificate is not None
    before.assert_flat()


def test_watch_in_every_mode_keeps_fds_threads_and_memory_flat(
    start_server: Callable[..., HealthServer],
) -> None:
    serving = start_server(statuses={"": 1})
    stuck = start_server(statuses={"": NOT_SERVING, "other": NOT_SERVING})
    polled = start_server(servicer=NoWatchHealthServicer(), statuses={"": NOT_SERVING})
    reset = start_server(servicer=WatchResettingServicer(), statuses={"": NOT_SERVING})

    def options(server: HealthServer, *services: str) -> ProbeOptions:
        return ProbeOptions(parse_target(server.address), services=services or ("",))

    # Each of these waits runs to its deadline: long enough that a loaded machine has had the
    # first answer, which decides the method, well before it.
    def wait(server: HealthServer, *services: str) -> str:
        outcome = watch(options(server, *services), timeout=0.5, interval=0.1)
        return outcome.method

    for server in (serving, stuck, polled, reset):  # warm-up
        wait(server)
    before = Baseline()
    for _ in range(60):
        result = watch(options(serving), timeout=5)
        assert result.reached
        assert result.statuses == {"": HealthStatus.SERVING}
    for _ in range(10):
        assert wait(stuck, "", "other") == "watch"  # two streams, both cancelled
    for _ in range(10):
        assert wait(polled) == "poll"
    for _ in range(10):
        assert wait(reset) == "watch"
    before.assert_flat()


def test_the_ansible_gate_keeps_threads_and_fds_flat(
    start_server: Callable[..., HealthServer], closed_address: str
) -> None:
    server = start_server(statuses={"": 1, "down": NOT_SERVING})
    for _ in range(5):  # warm-up: the module_utils copy of the core has its own imports
        run_module({"host": server.address})
    before = Baseline()
    for _ in range(60):
        assert run_module({"host": server.address}).code == 0
        assert run_module({"host": closed_address}).code == 1
    for _ in range(10):
        done = run_module({"host": server.address, "service": "down", "timeout": 0.5})
        assert done.result["method"] == "watch"
    before.assert_flat()
