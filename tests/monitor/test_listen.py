"""The monitor's ``--listen``: its live state on ``/metrics``, and ``/probe`` beside it.

The monitor runs as its users run it (``check_grpc_health_fleet --watch``), against
health servers in processes of their own; the tests scrape it over HTTP as Prometheus
would, and read its JSON events to know when a change has arrived.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from typing import TYPE_CHECKING

import pytest
from support.exporting import SERVING, get, probe_url, samples, scrape_until, series
from support.paths import FLEET

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.health_process import HealthProcess
    from support.watching import WatchingFleet

LISTEN = ("--listen", "127.0.0.1:0")


def metrics_url(fleet: WatchingFleet) -> str:
    match = SERVING.search(fleet.line("serving /metrics"))
    assert match is not None
    return f"{match.group(2)}/metrics"


def test_a_flip_and_a_blip_between_two_scrapes_show_on_metrics(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["orders"])
    address = server.address
    fleet = watching(f"web1!orders: -H {address} -s orders\n", *LISTEN, interval=3600)
    fleet.started(["web1!orders"])
    url = metrics_url(fleet)
    line = {"name": "web1!orders", "target": address}
    service = {**line, "service": "orders"}
    changes = series("grpc_health_status_changes_total", **service)
    serving = series("grpc_health_serving_status", **service, status="SERVING")
    first = samples(get(url).text)
    assert first[changes] == 0
    assert first[serving] == 1
    assert first[series("grpc_health_nagios_state", **line)] == 0
    assert first[series("grpc_health_watched", **service)] == 1
    # A flip: the scrape shows the new status, its state, and one change.
    before = len(fleet.events)
    server.set("orders", "NOT_SERVING")
    fleet.event("web1!orders", "CRITICAL", after=before)
    flipped = samples(get(url).text)
    assert flipped[series("grpc_health_serving_status", **service, status="NOT_SERVING")] == 1
    assert flipped[serving] == 0
    assert flipped[series("grpc_health_nagios_state", **line)] == 2
    assert flipped[changes] == 1
    assert (
        flipped[series("grpc_health_last_change_timestamp_seconds", **line)]
        > first[series("grpc_health_last_change_timestamp_seconds", **line)]
    )
    # A blip between two scrapes: back to SERVING, then NOT_SERVING and SERVING again
    # before the next scrape. The status reads as before; the counter does not.
    before = len(fleet.events)
    server.set("orders", "SERVING")
    fleet.event("web1!orders", "OK", after=before)
    steady = samples(get(url).text)
    assert steady[changes] == 2
    before = len(fleet.events)
    server.set("orders", "NOT_SERVING")
    server.set("orders", "SERVING")
    fleet.event("web1!orders", "OK", after=before + 1)
    after = samples(get(url).text)
    assert after[serving] == 1
    assert after[series("grpc_health_nagios_state", **line)] == 0
    assert after[changes] == 4


def test_the_monitors_own_figures_and_the_staleness_times(
    health_process: Callable[..., HealthProcess],
    watching: Callable[..., WatchingFleet],
    tmp_path: Path,
) -> None:
    server = health_process(["", "orders"])
    address = server.address
    pipe = tmp_path / "icinga2.cmd"
    os.mkfifo(pipe)  # nobody reads it: every delivery fails and stays pending
    fleet = watching(
        f"web1!orders: -H {address} -s orders -s ''\n-H {address}\n",
        *LISTEN,
        "--command-file",
        str(pipe),
        interval=30,
    )
    fleet.started(["web1!orders", None])
    url = metrics_url(fleet)
    pending = series("grpc_health_monitor_deliveries_pending", sink="command-file")
    faults = series("grpc_health_monitor_delivery_faults_total", sink="command-file")
    found = scrape_until(url, lambda s: s.get(faults, 0) >= 1, "a delivery fault")
    assert found[pending] == 1  # the labelled line's latest result
    assert found[series("grpc_health_monitor_deliveries_total", sink="command-file")] == 0
    assert found["grpc_health_monitor_lines"] == 2
    assert found["grpc_health_monitor_watch_streams"] == 3
    assert found["grpc_health_monitor_heartbeat_interval_seconds"] == 30
    assert found["grpc_health_monitor_reconnects_total"] == 0
    beats = [
        value
        for key, value in found.items()
        if key.startswith("grpc_health_last_heartbeat_timestamp_seconds{")
    ]
    assert len(beats) == 2
    assert found["grpc_health_last_run_timestamp_seconds"] == min(beats)
    assert found["grpc_health_monitor_start_time_seconds"] <= min(beats)
    # A killed server breaks its three streams: each is opened again, and counted.
    before = len(fleet.events)
    server.kill()
    fleet.event("web1!orders", "CRITICAL", after=before)
    scrape_until(url, lambda s: s["grpc_health_monitor_reconnects_total"] >= 3, "reconnects")


def test_probe_is_served_beside_metrics_with_modules(
    health_process: Callable[..., HealthProcess],
    watching: Callable[..., WatchingFleet],
    tmp_path: Path,
) -> None:
    server = health_process(["orders"])
    modules = tmp_path / "modules.txt"
    modules.write_text("orders: -s orders\n")
    fleet = watching(
        f"-H {server.address}\n",
        *LISTEN,
        "--modules",
        str(modules),
        "--allow-target",
        "127.0.0.1:*",
    )
    fleet.started([None])
    base = metrics_url(fleet).removesuffix("/metrics")
    answer = get(probe_url(base, server.address, "orders"))
    assert answer.status == 200
    found = samples(answer.text)
    assert found["probe_success"] == 1
    # /probe carries the probed line only: none of the monitor's state.
    assert not [key for key in found if key.startswith("grpc_health_monitor_")]
    refused = get(probe_url(base, "192.0.2.1:50051", "orders"))
    assert (refused.status, refused.text) == (
        403,
        "target '192.0.2.1:50051' matches no --allow-target pattern\n",
    )
    on_metrics = samples(get(f"{base}/metrics").text)
    assert (
        on_metrics[series("grpc_health_exporter_probes_total", module="orders", result="success")]
        == 1
    )
    assert (
        on_metrics[
            series("grpc_health_exporter_requests_refused_total", reason="target_not_allowed")
        ]
        == 1
    )


def test_without_modules_probe_is_off(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process([""])
    fleet = watching(f"-H {server.address}\n", *LISTEN)
    fleet.started([None])
    assert fleet.line("serving ").endswith(" on " + metrics_url(fleet).removesuffix("/metrics"))
    base = metrics_url(fleet).removesuffix("/metrics")
    answer = get(probe_url(base, server.address, "grpc"))
    assert (answer.status, answer.text) == (
        404,
        "/probe is off: start with --modules FILE and --allow-target\n",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--modules", "m.txt"], "--modules needs --listen HOST:PORT"),
        (["--allow-target", "*"], "--allow-target needs --listen HOST:PORT"),
        (["--listen", "127.0.0.1"], "--listen '127.0.0.1' is not HOST:PORT (e.g. 127.0.0.1:9115)"),
        (["--listen", "127.0.0.1:0", "--allow-target", "*"], "--allow-target needs --modules FILE"),
    ],
)
def test_bad_listen_options_get_one_line_and_unknown(
    tmp_path: Path, options: list[str], message: str
) -> None:
    path = tmp_path / "fleet.txt"
    path.write_text("-H 127.0.0.1:1\n")
    done = subprocess.run(
        [FLEET, "--watch", str(path), *options],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.startswith(f"check_grpc_health_fleet: {message}")
    assert done.stderr.count("\n") == 1


def test_a_listen_address_in_use_is_one_line_and_unknown(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "fleet.txt"
    path.write_text("-H 127.0.0.1:1\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [FLEET, "--watch", str(path), "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 3
    assert done.stderr == (
        f"check_grpc_health_fleet: --listen 127.0.0.1:{port}: cannot listen: "
        "Address already in use\n"
    )


def test_a_loop_that_does_not_answer_makes_the_scrape_fail_not_hang() -> None:
    from check_grpc_health.exporter.collector import SnapshotUnavailable, snapshot_reader

    idle = asyncio.new_event_loop()  # never run: nothing takes the snapshot
    try:
        read = snapshot_reader(idle, monitor=None, within=0.2)  # type: ignore[arg-type]
        with pytest.raises(SnapshotUnavailable, match=r"did not answer within 0\.2s"):
            read()
        idle.run_until_complete(asyncio.sleep(0))  # the abandoned request ends cancelled
    finally:
        idle.close()
    with pytest.raises(SnapshotUnavailable, match="the monitor is stopping"):
        read()
