"""Watch-based waiting against real servers that flip, drain, lack Watch, or come up late."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from check_grpc_health import watch
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import ConnectFailure, HealthStatus, RpcFailure
from check_grpc_health.core.targets import parse_target

if TYPE_CHECKING:
    from collections.abc import Callable

    from support.servers import HealthServer


def later(seconds: float, action: Callable[[], object]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def options_for(address: str, *services: str) -> ProbeOptions:
    return ProbeOptions(parse_target(address), services=services or ("",))


def test_already_serving_returns_after_one_check(server: HealthServer) -> None:
    result = watch(options_for(server.address), timeout=5)
    assert result.reached
    assert result.method == "check"
    assert result.attempts == 1
    assert result.statuses == {"": HealthStatus.SERVING}
    assert result.last_probe is not None
    assert result.last_error is None


def test_reacts_to_a_pushed_change(server: HealthServer) -> None:
    server.set("app", 2)
    flipped_at: list[float] = []

    def flip() -> None:
        flipped_at.append(time.monotonic())
        server.set("app", 1)

    # The flip comes a second and more after the first Check, even on a loaded machine.
    later(1.5, flip)
    result = watch(options_for(server.address, "app"), timeout=10, interval=4.0)
    done = time.monotonic()
    assert result.reached
    assert result.method == "watch"
    assert result.statuses == {"app": HealthStatus.SERVING}
    # The next poll would come 2.5 s after the flip: reacting well before proves the
    # stream was used.
    assert done - flipped_at[0] < 1.5


def test_waits_for_draining(server: HealthServer) -> None:
    later(0.3, lambda: server.set("", 2))
    result = watch(options_for(server.address), wanted=HealthStatus.NOT_SERVING, timeout=5)
    assert result.reached
    assert result.wanted is HealthStatus.NOT_SERVING
    assert result.statuses == {"": HealthStatus.NOT_SERVING}


def test_gives_up_at_the_deadline(server: HealthServer) -> None:
    server.set("", 2)
    started = time.monotonic()
    # Long enough for the first Check on a loaded machine.
    result = watch(options_for(server.address), timeout=1.5)
    elapsed = time.monotonic() - started
    assert not result.reached
    assert result.statuses == {"": HealthStatus.NOT_SERVING}
    assert 1.45 < elapsed < 3.0
    assert 1.45 < result.elapsed < 3.0


def test_several_services_all_must_arrive(server: HealthServer) -> None:
    server.set("a", 2)
    server.set("b", 2)
    later(0.2, lambda: server.set("a", 1))
    later(0.5, lambda: server.set("b", 1))
    result = watch(options_for(server.address, "a", "b"), timeout=5)
    assert result.reached
    assert result.statuses == {"a": HealthStatus.SERVING, "b": HealthStatus.SERVING}


def test_falls_back_to_polling_when_watch_is_unimplemented(
    start_server: Callable[..., HealthServer],
) -> None:
    from support.servers import NoWatchHealthServicer

    server = start_server(servicer=NoWatchHealthServicer(), statuses={"": 2})
    # Late enough for two polls before it, however slowly a loaded machine starts them.
    later(1.5, lambda: server.set("", 1))
    result = watch(options_for(server.address), timeout=5, interval=0.2)
    assert result.reached
    assert result.method == "poll"
    assert result.attempts >= 3


def test_unknown_service_waits_until_registered(server: HealthServer) -> None:
    later(0.3, lambda: server.set("late", 1))
    result = watch(options_for(server.address, "late"), timeout=5)
    assert result.reached


def test_server_that_comes_up_late(start_server: Callable[..., HealthServer]) -> None:
    from support.servers import closed_port

    port = closed_port()
    later(1.5, lambda: start_server(port=port))  # after the first attempt, even when loaded
    result = watch(options_for(f"127.0.0.1:{port}"), timeout=6, interval=0.2)
    assert result.reached
    assert result.attempts >= 2
    # A Watch stream waiting for the server made the connection: nobody timed it.
    assert result.connect_time is None


def test_refused_until_deadline_reports_the_connection_error(closed_address: str) -> None:
    result = watch(options_for(closed_address), timeout=0.5, interval=0.1)
    assert not result.reached
    assert result.statuses == {"": None}
    assert isinstance(result.last_error, ConnectFailure)


def test_stream_broken_by_server_restart_reconnects(
    start_server: Callable[..., HealthServer],
) -> None:
    first = start_server(statuses={"": 2})

    def restart() -> None:
        first.stop()
        start_server(port=first.port)

    later(1.5, restart)  # after the first Check, even on a loaded machine
    result = watch(options_for(first.address), timeout=8, interval=0.2)
    assert result.reached
    assert result.method == "watch"


def test_server_without_health_records_the_rpc_error(
    start_server: Callable[..., HealthServer],
) -> None:
    server = start_server(with_health=False)
    result = watch(options_for(server.address), timeout=2.0, interval=0.1)
    assert not result.reached
    assert isinstance(result.last_error, RpcFailure)
    assert result.last_error.code_name == "UNIMPLEMENTED"


def test_connect_time_is_the_connections_own(server: HealthServer) -> None:
    server.set("late", 2)
    later(1.5, lambda: server.set("late", 1))  # after the first Check, even when loaded
    result = watch(options_for(server.address, "late"), timeout=5)
    assert result.reached
    assert result.method == "watch"
    assert result.connect_time is not None
    # The last probe ran on the connection the wait already had: its connect time is
    # only a wait for nothing, and differs from the connection's real one.
    assert result.last_probe is not None
    assert result.connect_time != result.last_probe.connect_time
    assert result.connect_time > result.last_probe.connect_time


def test_an_error_answered_since_is_not_the_last_error(server: HealthServer) -> None:
    result = watch(options_for(server.address, "nope"), timeout=2.0)
    assert not result.reached
    assert result.statuses == {"nope": HealthStatus.SERVICE_UNKNOWN}
    # Check said NOT_FOUND first; Watch answered SERVICE_UNKNOWN since, without error.
    assert result.last_error is None


def test_a_status_the_stream_pushed_keeps_the_checks_rpc_time(server: HealthServer) -> None:
    server.set("a", 1)
    server.set("b", 2)
    result = watch(options_for(server.address, "a", "b"), timeout=1.5)
    assert not result.reached
    assert result.method == "watch"
    assert result.last_probe is not None
    checked = {item.service: item.rpc_time for item in result.last_probe.services}
    assert [(item.service, item.status, item.rpc_time) for item in result.outcomes] == [
        ("a", HealthStatus.SERVING, checked["a"]),
        ("b", HealthStatus.NOT_SERVING, checked["b"]),
    ]
    assert all(item.rpc_time > 0 for item in result.outcomes)
