"""``grpc_health_probe -wait`` and ``-watch`` as real processes against real servers.

A wait that runs out must end exactly as one probe at that moment would: the same exit
code and the same line, so each failure case is compared with a plain probe of the
same target.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING

import pytest
from grpc_health.v1 import health
from support.paths import PROBE
from support.servers import NOT_SERVING, SERVING, NoWatchHealthServicer, closed_port

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import TlsMaterial
    from support.servers import HealthServer

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROBE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def later(seconds: float, action: Callable[[], object]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


class WatchSeen(health.HealthServicer):
    """Tells when a client has opened a Watch stream."""

    def __init__(self) -> None:
        super().__init__(experimental_non_blocking=False)
        self.watching = threading.Event()

    def Watch(
        self, request: object, context: object, send_response_callback: object = None
    ) -> Iterator[object]:
        self.watching.set()
        yield from super().Watch(request, context, send_response_callback)


def start_watching(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([PROBE, *args], stderr=subprocess.PIPE, text=True)


def read_until(process: subprocess.Popen[str], line: str) -> list[str]:
    """Lines of stderr up to and including ``line`` (the process keeps running)."""
    assert process.stderr is not None
    seen = []
    for got in process.stderr:
        seen.append(got.rstrip("\n"))
        if re.sub(STAMP, "", seen[-1]) == line:
            return seen
    raise AssertionError(f"stderr ended before {line!r}: {seen}")


def rest(process: subprocess.Popen[str]) -> tuple[int, list[str]]:
    assert process.stderr is not None
    lines = process.stderr.read().splitlines()
    return process.wait(timeout=30), lines


# --- -wait ------------------------------------------------------------------------


def test_wait_exits_0_once_the_server_turns_serving(server: HealthServer) -> None:
    server.set("app", NOT_SERVING)
    later(1.0, lambda: server.set("app", SERVING))
    started = time.monotonic()
    done = run(f"-addr={server.address}", "-service=app", "-wait=20s")
    assert (done.returncode, done.stderr) == (0, "status: SERVING\n")
    assert 1.0 < time.monotonic() - started < 10


def test_wait_on_a_serving_server_returns_at_once(server: HealthServer) -> None:
    done = run(f"-addr={server.address}", "-wait=1m", "-v")
    assert done.returncode == 0
    lines = done.stderr.splitlines()
    assert lines[-3] == "establishing connection"
    assert re.fullmatch(r"waited \d+(\.\d+)?(ms|µs|s) for SERVING \(1 attempts\)", lines[-2])
    assert lines[-1] == "status: SERVING"


def test_wait_retries_a_server_that_is_not_up_yet(
    start_server: Callable[..., HealthServer],
) -> None:
    port = closed_port()
    later(1.5, lambda: start_server(port=port))
    done = run(f"-addr=127.0.0.1:{port}", "-wait=20s")
    assert (done.returncode, done.stderr) == (0, "status: SERVING\n")


def test_wait_falls_back_to_polling_without_watch(
    start_server: Callable[..., HealthServer],
) -> None:
    server = start_server(servicer=NoWatchHealthServicer(), statuses={"": NOT_SERVING})
    later(0.8, lambda: server.set("", SERVING))
    done = run(f"-addr={server.address}", "-wait=20s")
    assert (done.returncode, done.stderr) == (0, "status: SERVING\n")


@pytest.mark.parametrize(
    ("case", "code"),
    [("not-serving", 4), ("unknown-service", 3), ("no-health", 3), ("refused", 2)],
)
def test_wait_that_runs_out_ends_like_one_probe(
    start_server: Callable[..., HealthServer], case: str, code: int
) -> None:
    args = []
    if case == "refused":
        address = f"127.0.0.1:{closed_port()}"
    elif case == "no-health":
        address = start_server(with_health=False).address
    else:
        address = start_server(statuses={"": NOT_SERVING}).address
        if case == "unknown-service":
            args = ["-service=nope"]
    started = time.monotonic()
    waited = run(f"-addr={address}", *args, "-wait=2s")
    elapsed = time.monotonic() - started
    once = run(f"-addr={address}", *args)
    assert waited.returncode == once.returncode == code
    assert waited.stderr == once.stderr
    assert waited.stderr.count("\n") == 1
    # -wait counts from the process's start and ends a margin before: it kept trying
    # well past the first answer.
    assert elapsed >= 1.0


def test_wait_against_a_silent_peer_ends_with_the_connect_timeout_line(
    black_hole_address: str,
) -> None:
    done = run(f"-addr={black_hole_address}", "-connect-timeout=250ms", "-wait=1s")
    assert done.returncode == 2
    assert done.stderr == (
        f'timeout: failed to connect service "{black_hole_address}" within 250ms\n'
    )


def test_wait_with_tls_verifies_as_without_it(
    tls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    args = [
        f"-addr={tls_server.address}",
        "-tls",
        f"-tls-ca-cert={tls_material.ca_cert}",
        f"-tls-server-name={tls_material.server_name}",
    ]
    done = run(*args, "-wait=5s")
    assert (done.returncode, done.stderr) == (0, "status: SERVING\n")
    missing = run(*args[:1], "-tls", "-tls-ca-cert=/nonexistent/ca.pem", "-wait=5s")
    assert missing.returncode == 1
    assert missing.stderr.startswith("failed to initialize tls credentials. error=")


def test_negative_wait_is_an_argument_error() -> None:
    done = run("-addr=127.0.0.1:1", "-wait=-1s")
    assert (done.returncode, done.stderr) == (
        1,
        "error: -wait must not be negative (specified: -1s)\n",
    )


def test_signal_while_waiting_ends_with_the_last_attempt(server: HealthServer) -> None:
    server.set("app", NOT_SERVING)
    process = subprocess.Popen(
        [PROBE, f"-addr={server.address}", "-service=app", "-wait=1m", "-v"],
        stderr=subprocess.PIPE,
        text=True,
    )
    read_until(process, "establishing connection")
    time.sleep(0.5)  # let the first Check answer NOT_SERVING
    process.send_signal(signal.SIGTERM)
    code, lines = rest(process)
    assert code == 4
    assert lines == [
        "cancellation received (signal: terminated)",
        'service unhealthy (responded with "NOT_SERVING")',
    ]


# --- -watch -----------------------------------------------------------------------


def test_watch_prints_every_status_and_ends_on_sigint(server: HealthServer) -> None:
    server.set("app", NOT_SERVING)
    process = start_watching(f"-addr={server.address}", "-service=app", "-watch")
    assert read_until(process, "status: NOT_SERVING") == ["status: NOT_SERVING"]
    server.set("app", SERVING)
    assert read_until(process, "status: SERVING") == ["status: SERVING"]
    server.set("app", NOT_SERVING)
    read_until(process, "status: NOT_SERVING")
    server.set("app", SERVING)
    read_until(process, "status: SERVING")
    process.send_signal(signal.SIGINT)
    assert rest(process) == (0, ["cancellation received (signal: interrupt)"])


def test_watch_under_v_stamps_each_line_and_ends_with_wait(server: HealthServer) -> None:
    server.set("app", NOT_SERVING)
    started = time.monotonic()
    done = run(f"-addr={server.address}", "-service=app", "-watch", "-wait=2s", "-v")
    assert time.monotonic() - started >= 1.0
    assert done.returncode == 4
    last = done.stderr.splitlines()[-1]
    assert re.fullmatch(STAMP + "status: NOT_SERVING", last), last


def test_watch_says_when_the_connection_drops_and_reconnects(
    start_server: Callable[..., HealthServer],
) -> None:
    servicer = WatchSeen()
    first = start_server(servicer=servicer, statuses={"": SERVING})
    process = start_watching(f"-addr={first.address}", "-watch", "-wait=30s")
    read_until(process, "status: SERVING")
    assert servicer.watching.wait(10)  # the stream is open: now drop it
    first.stop()
    assert process.stderr is not None
    lost = process.stderr.readline().rstrip("\n")
    assert re.fullmatch(r"connection lost \(.+\), reconnecting", lost), lost
    # Restart on the same port: the stream comes back by itself.
    later(0.3, lambda: start_server(port=first.port, statuses={"": NOT_SERVING}))
    assert read_until(process, "status: NOT_SERVING") == ["status: NOT_SERVING"]
    process.send_signal(signal.SIGTERM)
    assert rest(process) == (4, ["cancellation received (signal: terminated)"])


def test_watch_of_a_server_that_never_comes_exits_2(closed_address: str) -> None:
    done = run(f"-addr={closed_address}", "-watch", "-wait=2s")
    assert done.returncode == 2
    assert done.stderr == "not connected (Connection refused)\n"


def test_watch_ends_when_the_server_ends_the_stream(
    start_server: Callable[..., HealthServer],
) -> None:
    from grpc_health.v1 import health_pb2

    class OneAnswer(health.HealthServicer):
        """Answers Watch once, then ends the stream."""

        def Watch(
            self, request: object, context: object, send_response_callback: object = None
        ) -> Iterator[object]:
            yield health_pb2.HealthCheckResponse(status=SERVING)

    server = start_server(servicer=OneAnswer(experimental_non_blocking=False))
    done = run(f"-addr={server.address}", "-watch", timeout=20)
    assert (done.returncode, done.stderr) == (0, "status: SERVING\n")
