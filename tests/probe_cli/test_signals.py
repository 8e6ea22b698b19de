"""SIGTERM and SIGINT cancel the drop-in probe the way they cancel the Go tool.

The probe runs as a real process with ``-v``; the signal is sent once its stderr
shows the phase under test has begun, so no test sleeps or races.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from typing import TYPE_CHECKING, Any

import pytest
from grpc_health.v1 import health, health_pb2
from support.paths import PROBE
from support.servers import start_health_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from support.servers import HealthServer


class BlockingServicer(health.HealthServicer):
    """Holds every Check until released, so a signal surely lands during the RPC."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def Check(self, request: Any, context: Any) -> Any:
        self.release.wait(30)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
def blocking_server() -> Iterator[HealthServer]:
    servicer = BlockingServicer()
    server = start_health_server(servicer=servicer)
    yield server
    servicer.release.set()
    server.stop()


def signal_after(args: list[str], marker: str, signum: int) -> tuple[int, list[str]]:
    """Run the probe, send ``signum`` once stderr shows ``marker``; return code and lines."""
    process = subprocess.Popen([PROBE, "-v", *args], stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line.rstrip("\n"))
        if line.startswith(marker):
            process.send_signal(signum)
            break
    lines += process.stderr.read().splitlines()
    return process.wait(timeout=10), lines


@pytest.mark.parametrize(
    ("signum", "name"), [(signal.SIGTERM, "terminated"), (signal.SIGINT, "interrupt")]
)
def test_signal_during_dial_exits_2(black_hole_address: str, signum: int, name: str) -> None:
    code, lines = signal_after(
        [f"-addr={black_hole_address}", "-connect-timeout=30s"], "establishing connection", signum
    )
    assert code == 2
    assert lines[-2:] == [
        f"cancellation received (signal: {name})",
        f'error: failed to connect service at "{black_hole_address}": context canceled',
    ]


def test_signal_during_no_verify_handshake_exits_2(black_hole_address: str) -> None:
    code, lines = signal_after(
        [f"-addr={black_hole_address}", "-tls", "-tls-no-verify", "-connect-timeout=30s"],
        "establishing connection",
        signal.SIGTERM,
    )
    assert code == 2
    assert lines[-2] == "cancellation received (signal: terminated)"


def test_signal_during_rpc_exits_3(blocking_server: HealthServer) -> None:
    code, lines = signal_after(
        [f"-addr={blocking_server.address}", "-rpc-timeout=30s"],
        "connection established",
        signal.SIGTERM,
    )
    assert code == 3
    assert lines[-2:] == [
        "cancellation received (signal: terminated)",
        "error: health rpc failed: rpc error: code = Canceled desc = context canceled",
    ]


def test_in_process_the_probe_gives_back_the_callers_handlers_and_signal_mask(
    server: HealthServer,
) -> None:
    from check_grpc_health.probe_cli.main import main

    def mine(number: int, frame: object) -> None:
        raise AssertionError("no signal was sent")

    before = {number: signal.signal(number, mine) for number in (signal.SIGTERM, signal.SIGINT)}
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        assert main([f"-addr={server.address}"]) == 0
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is mine
        # The probe unblocks the signals while it runs (the console script holds them
        # from start-up); afterwards the caller's mask is back, whatever it was.
        assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == blocked | {signal.SIGINT}
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        for number, handler in before.items():
            signal.signal(number, handler)
