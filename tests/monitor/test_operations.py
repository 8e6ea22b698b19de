"""The watching fleet as a service: reload, stop, systemd's notifications, bad input."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from typing import TYPE_CHECKING

import pytest
from support.paths import FLEET

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.health_process import HealthProcess
    from support.watching import WatchingFleet


def test_sighup_reloads_the_file_and_keeps_unchanged_lines(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["a", "b", "c"])
    address = server.address
    kept = f"web1!a: -H {address} -s a"
    fleet = watching(f"{kept}\nweb1!b: -H {address} -s b\n", interval=3600)
    fleet.started(["web1!a", "web1!b"])
    fleet.path.write_text(f"{kept}\nweb1!c: -H {address} -s c\n")
    before, lines = len(fleet.events), len(fleet.lines)
    fleet.signal(signal.SIGHUP)
    assert fleet.line("reload: ", after=lines) == (
        "check_grpc_health_fleet: reload: 1 lines kept, 1 started, 1 stopped"
    )
    started = fleet.event("web1!c", "OK", after=before)
    assert started["previous_state"] is None
    # The kept line kept its stream and state: no new first event, and its changes still come.
    assert all(event["name"] != "web1!a" for event in fleet.events[before:])
    server.set("a", "NOT_SERVING")
    assert fleet.event("web1!a", "CRITICAL", after=before)["previous_state"] == "OK"
    # The removed line's stream stopped: its changes are no longer reported.
    server.set("b", "NOT_SERVING")
    server.set("c", "NOT_SERVING")
    fleet.event("web1!c", "CRITICAL", after=before)
    assert all(event["name"] != "web1!b" for event in fleet.events[before:])


def test_a_reload_of_an_unreadable_file_keeps_the_old_lines(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["a"])
    fleet = watching(f"web1!a: -H {server.address} -s a\n", interval=3600)
    fleet.started(["web1!a"])
    fleet.path.write_bytes(b"web1!a: -H \xff\n")
    lines = len(fleet.lines)
    fleet.signal(signal.SIGHUP)
    assert fleet.line("reload: ", after=lines) == (
        f"check_grpc_health_fleet: reload: fleet file {str(fleet.path)!r} is not UTF-8 text; "
        "the 1 lines from before keep running"
    )
    before = len(fleet.events)
    server.set("a", "NOT_SERVING")
    fleet.event("web1!a", "CRITICAL", after=before)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_stop_it_cleanly(
    health_process: Callable[..., HealthProcess],
    watching: Callable[..., WatchingFleet],
    signum: int,
) -> None:
    server = health_process(["a"])
    fleet = watching(f"web1!a: -H {server.address} -s a\n", interval=3600)
    fleet.started(["web1!a"])
    fleet.signal(signum)
    assert fleet.process.wait(10) == 0
    assert fleet.line(f"stopped by {signal.Signals(signum).name}")


def test_it_tells_systemd_when_it_is_ready_reloading_and_stopping(
    tmp_path: Path,
    health_process: Callable[..., HealthProcess],
    watching: Callable[..., WatchingFleet],
) -> None:
    server = health_process(["a"])
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(20)
        fleet = watching(
            f"web1!a: -H {server.address} -s a\n", interval=3600, env={"NOTIFY_SOCKET": path}
        )
        assert listener.recv(4096).decode() == "READY=1\nSTATUS=watching 1 lines"
        fleet.signal(signal.SIGHUP)
        assert listener.recv(4096).decode().startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert listener.recv(4096).decode() == "READY=1\nSTATUS=watching 1 lines"
        fleet.signal(signal.SIGTERM)
        assert listener.recv(4096).decode() == "STOPPING=1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--interval", "0.5"], "--interval 0.5 must be at least 1 second"),
        (["--interval", "soon"], "--interval"),
        (["--textfile", "x.prom"], "--textfile is for one-shot runs"),
        (["--threads", "0"], "--threads 0 must be at least 1"),
    ],
)
def test_bad_options_get_one_line_and_unknown(
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
    )
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.startswith(f"check_grpc_health_fleet: {message}")
    assert done.stderr.count("\n") == 1


def test_a_reader_that_stops_reading_never_stalls_the_monitor(
    health_process: Callable[..., HealthProcess], watching: Callable[..., WatchingFleet]
) -> None:
    server = health_process(["a"])
    read_end, write_end = os.pipe()
    try:
        fleet = watching(f"web1!a: -H {server.address} -s a\n", interval=3600, stdout=write_end)
        os.close(write_end)
        fleet.line("web1!a: (start) -> OK")
        # About 600 bytes of JSON per change: 400 changes fill the 64 KiB pipe many times.
        for number in range(400):
            server.set("a", "NOT_SERVING" if number % 2 == 0 else "SERVING")
        # A status the flood never used: its line comes only if the monitor got through.
        server.set("a", "SERVICE_UNKNOWN")
        assert fleet.line("service 'a' is SERVICE_UNKNOWN")
    finally:
        os.close(read_end)
