"""The watching fleet against real servers in other processes: changes, as they happen."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

from support.paths import FLEET, PLUGIN

if TYPE_CHECKING:
    from collections.abc import Callable

    from support.health_process import HealthProcess
    from support.watching import WatchingFleet

DURATION = re.compile(r"\d+(?:\.\d+)?s\b")


def without_timings(text: str) -> str:
    return DURATION.sub("#s", text)


def plugin_line(*arguments: str) -> str:
    """The one-shot plugin's first line, without its perfdata."""
    done = subprocess.run(
        [PLUGIN, *arguments], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.splitlines()[0].partition("|")[0].strip()


def test_every_pushed_change_is_judged_and_reported_once(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["", "orders", "carts"])
    address = server.address
    fleet = watching(
        f"web1!grpc-orders: -H {address} -s orders\n"
        f"web1!grpc-both: -H {address} -s orders -s carts\n"
        f"-H {address}\n"
    )
    fleet.started(["web1!grpc-orders", "web1!grpc-both", None])
    before = len(fleet.events)
    server.set("orders", "NOT_SERVING")
    orders = fleet.event("web1!grpc-orders", "CRITICAL", after=before)
    both = fleet.event("web1!grpc-both", "CRITICAL", after=before)
    assert orders["previous_state"] == "OK"
    assert orders["summary"] == f"{address}: service 'orders' is NOT_SERVING"
    assert orders["exit_code"] == 2
    assert orders["method"] == "watch"
    assert both["summary"] == f"{address}: service 'orders' is NOT_SERVING"
    assert [item["status"] for item in both["services"]] == ["NOT_SERVING", "SERVING"]
    assert fleet.line(f"web1!grpc-orders: OK -> CRITICAL: {address}: service 'orders' is")
    server.set("orders", "SERVING")
    back = fleet.event("web1!grpc-orders", "OK", after=before)
    assert back["previous_state"] == "CRITICAL"
    assert re.fullmatch(
        rf"{re.escape(address)}: service 'orders' is SERVING in [0-9.]+s", back["summary"]
    )
    # The overall health did not change: no event for the unlabelled line after its first.
    assert [event["name"] for event in fleet.events[before:]].count(None) == 0


def test_a_line_is_judged_as_the_plugin_judges_it(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["orders"])
    arguments = ["-H", server.address, "-s", "orders", "--map-status", "NOT_SERVING=WARNING"]
    fleet = watching(f"web1!orders: {' '.join(arguments)}\n")
    fleet.started(["web1!orders"])
    server.set("orders", "NOT_SERVING")
    event = fleet.event("web1!orders", "WARNING")
    assert event["exit_code"] == 1
    plugin = plugin_line(*arguments)
    assert plugin == f"GRPC_HEALTH WARNING - {event['summary']}"
    server.set("orders", "SERVICE_UNKNOWN")
    event = fleet.event("web1!orders", "CRITICAL")
    assert without_timings(plugin_line(*arguments)) == without_timings(
        f"GRPC_HEALTH CRITICAL - {event['summary']}"
    )


def test_a_blip_shorter_than_any_interval_is_seen(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["orders"])
    fleet = watching(f"web1!orders: -H {server.address} -s orders\n", interval=3600)
    fleet.started(["web1!orders"])
    # The first state comes from the first Check: the blip must wait for the stream.
    assert server.watched("orders") == 1
    before = len(fleet.events)
    server.set("orders", "NOT_SERVING")
    server.set("orders", "SERVING")
    # Both changes arrive, in order, although no heartbeat runs within the test.
    fleet.event("web1!orders", "CRITICAL", after=before)
    fleet.event("web1!orders", "OK", after=before + 1)


def test_the_table_format_is_refused_with_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "fleet.txt"
    path.write_text("-H 127.0.0.1:1\n")
    for format_ in ("table", "prometheus"):
        done = subprocess.run(
            [FLEET, "--watch", str(path), "--format", format_],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 3
        assert done.stdout == ""
        assert done.stderr == (
            f"check_grpc_health_fleet: --format {format_} is a one-shot summary and makes no "
            "sense with --watch; --format json prints one line per change\n"
        )
