"""The core's ``watch()`` as the command line uses it: events, following, the last state."""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING

from support.servers import NOT_SERVING, SERVING, closed_port

from check_grpc_health import watch
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import ConnectFailure, HealthStatus, RpcFailure
from check_grpc_health.core.targets import parse_target

if TYPE_CHECKING:
    from collections.abc import Callable

    from support.servers import HealthServer

    from check_grpc_health.core.results import WatchEvent


def later(seconds: float, action: Callable[[], object]) -> None:
    threading.Timer(seconds, action).start()


def options_for(address: str, *services: str) -> ProbeOptions:
    return ProbeOptions(parse_target(address), services=services or ("",))


def test_observer_sees_every_status_in_order(server: HealthServer) -> None:
    server.set("app", NOT_SERVING)
    events: list[WatchEvent] = []
    later(1.5, lambda: server.set("app", SERVING))  # after the first Check, even when loaded
    result = watch(options_for(server.address, "app"), timeout=5, observer=events.append)
    assert result.reached
    statuses = [event.status for event in events]
    assert statuses[0] is HealthStatus.NOT_SERVING
    assert statuses[-1] is HealthStatus.SERVING
    assert all(event.service == "app" and event.error is None for event in events)
    assert all(a.time <= b.time for a, b in itertools.pairwise(events))


def test_following_with_nothing_wanted_runs_to_the_deadline(server: HealthServer) -> None:
    server.set("app", SERVING)
    events: list[WatchEvent] = []
    # A second apart: the stream is open before the first change, and the last one
    # arrives before the deadline, even on a loaded machine.
    later(1.0, lambda: server.set("app", NOT_SERVING))
    later(2.0, lambda: server.set("app", SERVING))
    started = time.monotonic()
    result = watch(
        options_for(server.address, "app"), wanted=None, timeout=3.0, observer=events.append
    )
    assert time.monotonic() - started >= 3.0
    assert not result.reached
    assert result.wanted is None
    changes = [event.status for event in events]
    assert HealthStatus.NOT_SERVING in changes
    assert changes[-1] is HealthStatus.SERVING
    assert result.connect_failure is None
    assert [outcome.status for outcome in result.outcomes] == [HealthStatus.SERVING]


def test_a_failed_wait_keeps_the_latest_outcome_per_service(server: HealthServer) -> None:
    result = watch(options_for(server.address, "down", "nope"), timeout=1.5, interval=0.1)
    assert not result.reached
    assert result.connect_failure is None
    down, nope = result.outcomes
    assert down.status is HealthStatus.NOT_SERVING
    # Watch says SERVICE_UNKNOWN; the outcome keeps what Check said: NOT_FOUND.
    assert nope.status is None
    assert isinstance(nope.error, RpcFailure)
    assert nope.error.code_name == "NOT_FOUND"
    assert result.statuses["nope"] is HealthStatus.SERVICE_UNKNOWN


def test_a_server_gone_at_the_end_is_a_connection_failure(
    start_server: Callable[..., HealthServer],
) -> None:
    server = start_server(statuses={"": NOT_SERVING})
    events: list[WatchEvent] = []
    later(1.0, server.stop)  # once the stream is open, even on a loaded machine
    result = watch(options_for(server.address), timeout=2.5, interval=0.1, observer=events.append)
    assert isinstance(result.connect_failure, ConnectFailure)
    assert not result.connect_failure.timed_out
    broken = [event for event in events if isinstance(event.error, RpcFailure)]
    assert broken
    assert broken[0].error is not None
    assert broken[0].error.code_name in ("UNAVAILABLE", "CANCELLED")
    assert isinstance(events[-1].error, ConnectFailure)
    assert events[-1].service is None


def test_never_up_reports_the_refusal_within_the_deadline() -> None:
    address = f"127.0.0.1:{closed_port()}"
    started = time.monotonic()
    result = watch(options_for(address), timeout=0.6, interval=0.1)
    elapsed = time.monotonic() - started
    assert isinstance(result.connect_failure, ConnectFailure)
    assert "Connection refused" in str(result.connect_failure)
    assert result.outcomes == ()
    assert 0.6 <= elapsed < 2.0
