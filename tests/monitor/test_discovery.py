"""The watching fleet's discovery lines: services and addresses found again at each heartbeat."""

from __future__ import annotations

from typing import TYPE_CHECKING

from support.servers import require_unshare_mount

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.health_process import HealthProcess
    from support.watching import WatchingFleet

# Runs the monitor where /etc/hosts and /etc/resolv.conf are the test's own files.
PRIVATE_NAMES = [
    "unshare",
    "--mount",
    "sh",
    "-c",
    'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"',
    "sh",
]


def test_all_services_follows_the_services_the_server_lists_at_each_heartbeat(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["", "shop.Orders", "shop.Carts"], reflect=["shop.Orders"])
    fleet = watching(f"web1!all: -H {server.address} --all-services\n", interval=1)
    first = fleet.event("web1!all", "OK")
    assert [item["service"] for item in first["services"]] == ["", "shop.Orders"]
    # The server now lists one more service: the next heartbeat follows it.
    server.reflect = ("shop.Orders", "shop.Carts")
    server.restart()
    assert fleet.line("web1!all: following 1 more services")
    before = len(fleet.events)
    server.set("shop.Carts", "NOT_SERVING")
    down = fleet.event("web1!all", "CRITICAL", after=before)
    assert down["summary"] == f"{server.address}: service 'shop.Carts' is NOT_SERVING"
    assert down["method"] == "watch"


def test_all_addresses_follows_the_names_addresses_at_each_heartbeat(
    tmp_path: Path,
    health_process: Callable[..., HealthProcess],
    watching: Callable[..., WatchingFleet],
) -> None:
    require_unshare_mount()
    first = health_process([""])
    second = health_process([""], host="127.0.0.2", port=first.port)
    hosts, resolv = tmp_path / "hosts", tmp_path / "resolv.conf"
    hosts.write_text("127.0.0.1 pool.test\n")
    resolv.write_text("nameserver 127.0.0.9\noptions timeout:1 attempts:1\n")
    name = f"pool.test:{first.port}"
    fleet = watching(
        f"web1!pool: -H {name} --all-addresses\n",
        interval=1,
        prefix=[*PRIVATE_NAMES, str(hosts), str(resolv)],
    )
    start = fleet.event("web1!pool", "OK")
    assert start["summary"] == f"{name}: 1 of 1 backends healthy"
    # Written in place: the bind mount shows the same file.
    with hosts.open("w") as rewrite:
        rewrite.write("127.0.0.1 pool.test\n127.0.0.2 pool.test\n")
    assert fleet.line(f"web1!pool: following the new address 127.0.0.2:{first.port}")
    grown = fleet.event("web1!pool", "OK", after=1)
    assert grown["summary"] == f"{name}: 2 of 2 backends healthy"
    before = len(fleet.events)
    second.set("", "NOT_SERVING")
    shrunk = fleet.event("web1!pool", "WARNING", after=before)
    assert shrunk["summary"] == (
        f"{name}: 1 of 2 backends healthy (warning below 100%); "
        f"127.0.0.2:{first.port}: overall health is NOT_SERVING"
    )
