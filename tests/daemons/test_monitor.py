"""The watching fleet into a real Icinga 2: every change read back, sinks that go away.

The monitor delivers through the Icinga 2 API and the command pipe of a real Icinga 2
(tests/support/daemons/icinga2_api.py); each test reads the service back from Icinga
itself. A relay between the monitor and the API takes the API away and brings it back.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

from support.relay import Relay

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.daemons.icinga2_api import Icinga2Api, Icinga2Service
    from support.daemons.nagios import Nagios4
    from support.health_process import HealthProcess
    from support.watching import WatchingFleet

#: How long a test waits for Icinga 2 to show what the monitor delivered.
WAIT = 20.0


def api_options(api: Icinga2Api, url: str | None = None) -> list[str]:
    return [
        "--icinga2-api",
        url or api.url,
        "--icinga2-user",
        api.user,
        "--icinga2-password-file",
        str(api.password_file),
        "--icinga2-ca",
        str(api.ca_file),
    ]


def wait_for_state(api: Icinga2Api, name: str, state: int, text: str) -> Icinga2Service:
    """Read the service from Icinga 2 until its state is ``state`` with ``text`` in its output."""
    deadline = time.monotonic() + WAIT
    while True:
        service = api.service(name)
        if service.check_result is not None and service.state == state and text in service.output:
            return service
        api.daemon.check_alive()
        assert time.monotonic() < deadline, (
            f"{name}: state {service.state}, "
            f"{service.check_result and service.check_result['output']!r}"
        )
        time.sleep(0.02)


def test_each_change_reaches_icinga2_through_the_api(
    icinga2_api: Icinga2Api,
    health_process: Callable[..., HealthProcess],
    watching: Callable[..., WatchingFleet],
) -> None:
    name = icinga2_api.create_service("watch1!grpc-orders")
    server = health_process(["orders"])
    fleet = watching(
        f"{name}: -H {server.address} -s orders\n",
        "--check-source",
        "monitor-7",
        *api_options(icinga2_api),
        interval=3600,
    )
    ok = wait_for_state(icinga2_api, name, 0, "service 'orders' is SERVING")
    assert ok.output.startswith(f"GRPC_HEALTH OK - {server.address}: service 'orders' is SERVING")
    assert ok.check_source == "monitor-7"
    assert ok.check_result is not None
    assert ok.check_result["ttl"] == 3 * 3600
    server.set("orders", "NOT_SERVING")
    down = wait_for_state(icinga2_api, name, 2, "NOT_SERVING")
    assert (
        down.output == f"GRPC_HEALTH CRITICAL - {server.address}: service 'orders' is NOT_SERVING"
    )
    server.kill()
    refused = wait_for_state(icinga2_api, name, 2, "Connection refused")
    assert refused.output == (
        f"GRPC_HEALTH CRITICAL - failed to connect to {server.address}: Connection refused"
    )
    server.start()
    wait_for_state(icinga2_api, name, 0, "service 'orders' is SERVING")
    assert fleet.tracebacks() == []


def test_each_change_reaches_icinga2_through_the_command_pipe(
    icinga2_api: Icinga2Api,
    health_process: Callable[..., HealthProcess],
    watching: Callable[..., WatchingFleet],
) -> None:
    name = icinga2_api.create_service("watch2!grpc-orders")
    server = health_process(["orders"])
    watching(
        f"{name}: -H {server.address} -s orders\n",
        "--command-file",
        str(icinga2_api.command_pipe),
        interval=3600,
    )
    wait_for_state(icinga2_api, name, 0, "service 'orders' is SERVING")
    server.set("orders", "NOT_SERVING")
    down = wait_for_state(icinga2_api, name, 2, "NOT_SERVING")
    assert (
        down.output == f"GRPC_HEALTH CRITICAL - {server.address}: service 'orders' is NOT_SERVING"
    )


def test_results_wait_while_the_api_is_away_and_the_latest_arrives_when_it_is_back(
    icinga2_api: Icinga2Api,
    health_process: Callable[..., HealthProcess],
    watching: Callable[..., WatchingFleet],
) -> None:
    name = icinga2_api.create_service("watch3!grpc-orders")
    server = health_process(["orders"])
    relay = Relay(("127.0.0.1", icinga2_api.port))
    try:
        fleet = watching(
            f"{name}: -H {server.address} -s orders\n",
            *api_options(icinga2_api, f"https://127.0.0.1:{relay.port}"),
            interval=3600,
        )
        wait_for_state(icinga2_api, name, 0, "is SERVING")
        relay.down()
        lines = len(fleet.lines)
        server.set("orders", "NOT_SERVING")
        server.set("orders", "UNKNOWN")
        pending = fleet.line("results pending, retrying with back-off", after=lines)
        assert pending.startswith(
            f"check_grpc_health_fleet: icinga2-api: cannot reach https://127.0.0.1:{relay.port}: "
        )
        # The monitor goes on watching while the API is away.
        fleet.event(name, "CRITICAL")
        assert icinga2_api.service(name).state == 0
        relay.up()
        # Only the latest result is kept and delivered.
        wait_for_state(icinga2_api, name, 2, "service 'orders' is UNKNOWN")
        assert fleet.line("icinga2-api: delivering again", after=lines)
    finally:
        relay.close()


def test_results_wait_while_no_process_reads_the_pipe(
    tmp_path: Path,
    health_process: Callable[..., HealthProcess],
    watching: Callable[..., WatchingFleet],
) -> None:
    pipe = tmp_path / "icinga2.cmd"
    os.mkfifo(pipe)
    server = health_process(["orders"])
    fleet = watching(
        f"web1!orders: -H {server.address} -s orders\n",
        "--command-file",
        str(pipe),
        interval=3600,
    )
    assert fleet.line(f"command-file: no process reads {str(pipe)!r}")
    server.set("orders", "NOT_SERVING")
    fleet.event("web1!orders", "CRITICAL")
    handle = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        received = b""
        deadline = time.monotonic() + WAIT
        while b"NOT_SERVING" not in received:
            assert time.monotonic() < deadline, received
            try:
                received += os.read(handle, 65536)
            except BlockingIOError:
                time.sleep(0.05)
    finally:
        os.close(handle)
    lines = received.decode().splitlines()
    # The latest result only, once: the OK from the start was replaced while it waited.
    assert len(lines) == 1
    assert lines[0].split(";")[1:4] == ["web1", "orders", "2"]
    assert (
        lines[0]
        .split(";")[4]
        .startswith(f"GRPC_HEALTH CRITICAL - {server.address}: service 'orders' is NOT_SERVING")
    )


def test_what_is_pending_is_flushed_at_sigterm(
    icinga2_api: Icinga2Api,
    health_process: Callable[..., HealthProcess],
    watching: Callable[..., WatchingFleet],
) -> None:
    name = icinga2_api.create_service("watch4!grpc-orders")
    server = health_process(["orders"])
    fleet = watching(
        f"{name}: -H {server.address} -s orders\n", *api_options(icinga2_api), interval=3600
    )
    wait_for_state(icinga2_api, name, 0, "is SERVING")
    server.set("orders", "NOT_SERVING")
    fleet.event(name, "CRITICAL")
    fleet.signal(signal.SIGTERM)
    assert fleet.process.wait(10) == 0
    wait_for_state(icinga2_api, name, 2, "NOT_SERVING")


def test_each_change_reaches_nagios4_through_its_command_file(
    nagios4: Nagios4,
    health_process: Callable[..., HealthProcess],
    watching: Callable[..., WatchingFleet],
) -> None:
    server = health_process(["orders"])
    watching(
        f"web1!grpc-users: -H {server.address} -s orders\n",
        "--command-file",
        str(nagios4.command_file),
        interval=3600,
    )
    first = nagios4.wait_for_result("web1!grpc-users", timeout=WAIT)
    assert (first.state, first.check_type) == (0, "PASSIVE")
    assert first.output.startswith(f"GRPC_HEALTH OK - {server.address}: service 'orders' is")
    server.set("orders", "NOT_SERVING")
    down = nagios4.wait_for_result("web1!grpc-users", timeout=WAIT)
    assert down.state == 2
    assert (
        down.output == f"GRPC_HEALTH CRITICAL - {server.address}: service 'orders' is NOT_SERVING"
    )
