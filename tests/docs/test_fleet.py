"""docs/fleet.md and the files it ships in contrib/: the page's fleet run against the demo
server, and each configuration accepted by its real program (icinga2 daemon -C, nagios4 -v,
promtool check rules, systemd-analyze verify), and the systemd unit's command line
submitting to a real Icinga 2."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

import pytest
from support.daemons.icinga2 import icinga2_binary, make_data_dir, validate
from support.daemons.nagios import OBJECTS, _main_config, nagios4_binary
from support.daemons.process import find_binary
from support.daemons.prometheus import promtool_binary
from support.pages import fenced
from support.paths import BIN, FLEET, ROOT
from support.servers import closed_port, demo_serving

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from support.daemons.icinga2_api import Icinga2Api
    from support.servers import HealthServer

DOC = ROOT / "docs" / "fleet.md"
CONTRIB = ROOT / "contrib"


def blocks(kind: str) -> list[str]:
    return fenced(DOC, kind)


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def demo_port() -> Iterator[int]:
    """The page's demo server, started as the page says but on a free port."""
    port = closed_port()
    with demo_serving(blocks("sh")[0].strip().replace("50051", str(port))):
        yield port


def test_the_labelled_fleet_example(demo_port: int, tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", "-c", blocks("sh")[1].replace("50051", str(demo_port))],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": f"{BIN}:/usr/bin:/bin"},
        check=False,
    )
    assert (done.returncode, done.stderr) == (1, "")
    shown = re.sub(r"in [0-9.]+s", "in Ts", done.stdout).replace(str(demo_port), "50051")
    documented = re.sub(r"in [0-9.]+s", "in Ts", blocks("")[0])
    assert shown.split() == documented.split()  # the same words; the widths may differ


def test_the_icinga2_template_and_the_documented_objects_validate(tmp_path: Path) -> None:
    icinga2_binary()
    data = make_data_dir(tmp_path)
    config = tmp_path / "icinga2.conf"
    config.write_text(
        'const NodeName = "fleet-docs"\nconst ZoneName = NodeName\n'
        'const PluginDir = "/usr/lib/nagios/plugins"\ninclude <itl>\ninclude <plugins>\n'
        + (CONTRIB / "icinga2" / "grpc_fleet.conf").read_text()
        + "\n".join(blocks("icinga2"))
    )
    checked = validate(config, data)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Instantiated 1 Service." in checked.stdout
    assert "Instantiated 1 ApiUser." in checked.stdout


def test_the_nagios_template_validates(tmp_path: Path) -> None:
    config = tmp_path / "nagios.cfg"
    config.write_text(_main_config(tmp_path))
    (tmp_path / "objects.cfg").write_text(
        OBJECTS
        + (CONTRIB / "nagios" / "grpc_fleet.cfg").read_text()
        + "define host {\n host_name web1\n address 127.0.0.1\n max_check_attempts 1\n"
        " check_period always\n contacts nobody\n}\n"
        "define service {\n use grpc-fleet\n host_name web1\n service_description grpc-orders\n"
        " check_interval 1\n retry_interval 1\n check_period always\n"
        " notification_period always\n contacts nobody\n}\n"
    )
    checked = run([nagios4_binary(), "-v", str(config)])
    assert checked.returncode == 0, checked.stdout
    assert "Total Errors:   0" in checked.stdout


def test_the_alerting_rules_pass_promtool() -> None:
    rules = CONTRIB / "prometheus" / "grpc_health_fleet.rules.yml"
    checked = run([promtool_binary(), "check", "rules", str(rules)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    for snippet in blocks("yaml"):
        for expression in re.findall(r"expr: (.*)", snippet):
            assert f"expr: {expression}" in rules.read_text()


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    analyze = find_binary("systemd-analyze", "systemd", "/usr/bin/systemd-analyze")
    for name in ("grpc-health-fleet.service", "grpc-health-fleet.timer"):
        text = (CONTRIB / "systemd" / name).read_text()
        # The documented path, pointed at this installation.
        (tmp_path / name).write_text(text.replace("/usr/local/bin/check_grpc_health_fleet", FLEET))
    checked = run(
        [
            analyze,
            "verify",
            str(tmp_path / "grpc-health-fleet.timer"),
            str(tmp_path / "grpc-health-fleet.service"),
        ]
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "grpc-health-fleet" not in checked.stderr, checked.stderr


def exec_start(unit: str) -> list[str]:
    """A unit's ExecStart, with its ``${NAME}`` set from its ``Environment=`` lines as
    systemd sets them."""
    text = (CONTRIB / "systemd" / unit).read_text()
    command = re.search(r"^ExecStart=((?:.*\\\n)*.*)$", text, re.MULTILINE)
    assert command is not None
    environment = dict(re.findall(r"^Environment=([A-Z0-9_]+)=(.*)$", text, re.MULTILINE))
    words = command.group(1).replace("\\\n", " ").split()
    return [
        re.sub(r"\$\{([A-Z0-9_]+)\}", lambda name: environment[name.group(1)], word)
        for word in words
    ]


def test_both_units_name_the_api_by_the_nodes_name() -> None:
    """Icinga's CA issues a node's certificate for the node's name: not localhost."""
    for unit in ("grpc-health-fleet.service", "grpc-health-monitor.service"):
        argv = exec_start(unit)
        assert argv[argv.index("--icinga2-api") + 1] == "https://icinga2-node.example.com:5665"


def test_the_systemd_command_line_submits_to_icinga2(
    icinga2_api: Icinga2Api, tmp_path: Path, start_server: Callable[..., HealthServer]
) -> None:
    """The unit's ExecStart, with the credentials and address of a real Icinga 2."""
    server = start_server()
    argv = exec_start("grpc-health-fleet.service")
    fleet = tmp_path / "fleet.txt"
    fleet.write_text(f"web1!grpc-users: -H {server.address}\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "icinga2-password").write_text(icinga2_api.password_file.read_text())
    (credentials / "icinga2-ca").write_text(icinga2_api.ca_file.read_text())
    replacements = {
        "/usr/local/bin/check_grpc_health_fleet": FLEET,
        "https://icinga2-node.example.com:5665": icinga2_api.url,
        "grpc-fleet": icinga2_api.user,
        "%d": str(credentials),
        "/etc/grpc-health/fleet.txt": str(fleet),
    }
    for old, new in replacements.items():
        argv = [item.replace(old, new) for item in argv]
    done = run(argv)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    service = icinga2_api.service("web1!grpc-users")
    assert service.state == 0
    assert service.check_result is not None
    assert service.check_result["ttl"] == 180
