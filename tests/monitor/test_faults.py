"""The watching fleet when servers fail: killed, back, frozen, not streaming, capped."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from support.health_process import HealthProcess
    from support.watching import WatchingFleet


def test_a_killed_server_is_critical_at_once_and_ok_when_it_returns(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["", "orders"])
    address = server.address
    fleet = watching(
        f"web1!health: -H {address}\nweb1!orders: -H {address} -s orders\n", interval=3600
    )
    fleet.started(["web1!health", "web1!orders"])
    before = len(fleet.events)
    server.kill()
    for name in ("web1!health", "web1!orders"):
        down = fleet.event(name, "CRITICAL", after=before)
        # What the one-shot fleet says, diagnosis included.
        assert down["summary"] == f"failed to connect to {address}: Connection refused"
        assert down["diagnosis"]["kind"] == "refused"
    assert fleet.line("web1!orders: the Watch stream of service 'orders' on")
    # Delivered once: one CRITICAL event per line although two streams broke.
    after_kill = fleet.events[before:]
    assert [e["name"] for e in after_kill if e["state"] == "CRITICAL"].count("web1!health") == 1
    server.start()  # the same port
    for name in ("web1!health", "web1!orders"):
        back = fleet.event(name, "OK", after=before)
        assert back["previous_state"] == "CRITICAL"


def test_a_frozen_server_is_critical_by_the_heartbeat_and_ok_when_it_thaws(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["orders"])
    fleet = watching(f"web1!orders: -H {server.address} -s orders --rpc-timeout 0.5\n", interval=1)
    fleet.started(["web1!orders"])
    before = len(fleet.events)
    server.freeze()
    frozen = fleet.event("web1!orders", "CRITICAL", after=before)
    assert frozen["summary"] == (
        f"{server.address}: service 'orders': no answer within the 0.5s RPC timeout"
    )
    server.thaw()
    fleet.event("web1!orders", "OK", after=before)


def test_a_server_without_watch_is_polled_at_the_interval(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["orders"], watch="unimplemented")
    fleet = watching(f"web1!orders: -H {server.address} -s orders\n", interval=1)
    fleet.started(["web1!orders"])
    assert fleet.line(
        f"web1!orders: Watch is UNIMPLEMENTED for service 'orders' on {server.address}: "
        "polling Check every 1s instead"
    )
    before = len(fleet.events)
    server.set("orders", "NOT_SERVING")
    event = fleet.event("web1!orders", "CRITICAL", after=before)
    assert event["method"] == "poll"
    assert event["summary"] == f"{server.address}: service 'orders' is NOT_SERVING"


def test_a_server_that_ends_watch_after_one_message_is_polled(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["orders"], watch="once")
    fleet = watching(f"web1!orders: -H {server.address} -s orders\n", interval=1)
    fleet.started(["web1!orders"])
    assert fleet.line(
        "web1!orders: the server ends Watch after its first message for service 'orders'"
    )
    before = len(fleet.events)
    server.set("orders", "NOT_SERVING")
    assert fleet.event("web1!orders", "CRITICAL", after=before)["method"] == "poll"


def test_a_server_that_caps_streams_gets_more_connections(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    services = [f"svc{number}" for number in range(10)]
    server = health_process(services, max_streams=4)
    lines = "".join(
        f"web1!{name}: -H {server.address} -s {name} --connect-timeout 0.5 --rpc-timeout 0.5\n"
        for name in services
    )
    fleet = watching(lines, interval=3600)
    fleet.started([f"web1!{name}" for name in services])
    note = fleet.line(f"{server.address} lets")
    assert re.search(r"lets \d+ streams through one connection: at most \d+ per connection", note)
    # Every stream runs: a change of the last service arrives although the first
    # connection is full.
    for name in (services[0], services[-1]):
        before = len(fleet.events)
        server.set(name, "NOT_SERVING")
        assert fleet.event(f"web1!{name}", "CRITICAL", after=before)["method"] == "watch"


def test_a_server_that_stops_in_order_is_critical_at_once(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["orders"])
    fleet = watching(f"web1!orders: -H {server.address} -s orders\n", interval=3600)
    fleet.started(["web1!orders"])
    before = len(fleet.events)
    server.shutdown()  # GOAWAY, then the port closes
    down = fleet.event("web1!orders", "CRITICAL", after=before)
    assert down["summary"] == f"failed to connect to {server.address}: Connection refused"
    server.start()
    fleet.event("web1!orders", "OK", after=before)
