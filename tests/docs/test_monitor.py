"""docs/monitor.md and the systemd unit it ships: the page's example against the demo
server, the unit accepted by systemd-analyze, and the unit's command line delivering to a
real Icinga 2."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from typing import TYPE_CHECKING

from support.daemons.process import find_binary
from support.pages import fenced
from support.paths import BIN, FLEET, ROOT
from support.servers import closed_port, demo_serving

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.daemons.icinga2_api import Icinga2Api
    from support.health_process import HealthProcess

DOC = ROOT / "docs" / "monitor.md"
UNIT = ROOT / "contrib" / "systemd" / "grpc-health-monitor.service"
DURATION = re.compile(r"\d+\.\d+s\b")


def blocks(kind: str) -> list[str]:
    return fenced(DOC, kind)


def test_the_pages_example_prints_what_the_page_shows(tmp_path: Path) -> None:
    port = str(closed_port())
    serve, watch = (block.replace("50051", port) for block in blocks("sh")[:2])
    with demo_serving(serve.strip()):
        done = subprocess.run(
            ["bash", "-c", watch],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={"PATH": f"{BIN}:/usr/bin:/bin"},
            check=False,
        )
    # timeout's own exit code: the monitor ran until timeout stopped it.
    assert done.returncode == 124, done.stderr
    shown = blocks("")[0].replace("50051", port)
    got = DURATION.sub("#s", done.stderr)
    # The two first results may come in either order.
    assert sorted(got.splitlines()) == sorted(DURATION.sub("#s", shown).splitlines())


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = find_binary("systemd-analyze", "systemd", "/usr/bin/systemd-analyze")
    # The documented path, pointed at this installation.
    (tmp_path / UNIT.name).write_text(
        UNIT.read_text().replace("/usr/local/bin/check_grpc_health_fleet", FLEET)
    )
    checked = subprocess.run(
        [analyze, "verify", str(tmp_path / UNIT.name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "grpc-health-monitor" not in checked.stderr, checked.stderr


def test_the_units_command_line_delivers_to_icinga2(
    icinga2_api: Icinga2Api, tmp_path: Path, health_process: Callable[..., HealthProcess]
) -> None:
    """The unit's ExecStart, with the credentials and address of a real Icinga 2."""
    name = icinga2_api.create_service("unit!grpc-orders")
    server = health_process(["orders"])
    command = re.search(r"^ExecStart=((?:.*\\\n)*.*)$", UNIT.read_text(), re.MULTILINE)
    assert command is not None
    argv = command.group(1).replace("\\\n", " ").split()
    fleet = tmp_path / "fleet.txt"
    fleet.write_text(f"{name}: -H {server.address} -s orders\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "icinga2-password").write_text(icinga2_api.password_file.read_text())
    (credentials / "icinga2-ca").write_text(icinga2_api.ca_file.read_text())
    url = re.search(r"https://\S+:5665", command.group(1))
    assert url is not None
    replacements = {
        "/usr/local/bin/check_grpc_health_fleet": FLEET,
        url.group(0): icinga2_api.url,
        "grpc-fleet": icinga2_api.user,
        "%d": str(credentials),
        "/etc/grpc-health/fleet.txt": str(fleet),
    }
    for old, new in replacements.items():
        argv = [item.replace(old, new) for item in argv]
    monitor = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            service = icinga2_api.service(name)
            if service.check_result is not None and service.state == 0:
                break
            assert time.monotonic() < deadline, "no result in Icinga 2"
            time.sleep(0.05)
        assert service.check_result["ttl"] == 180
        assert service.output.startswith(f"GRPC_HEALTH OK - {server.address}: service 'orders'")
    finally:
        monitor.send_signal(signal.SIGTERM)
        out, err = monitor.communicate(timeout=10)
    assert (monitor.returncode, out, err) == (0, "", "")
