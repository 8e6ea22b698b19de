"""Every plugin command in docs/nagios.md, docs/cron.md and contrib/nagios runs as documented.

The docs speak of a demo server on ``localhost:50051`` (overall health and
``app.Orders`` SERVING, ``app.Batch`` NOT_SERVING), a slow one on ``localhost:50052``,
a TLS one on ``localhost:50443`` with its CA in ``/etc/nagios/grpc-ca.pem``, and nothing on
port 50099. The tests start real servers like those on ephemeral ports, put the real
addresses and files into each command, run it with bash, put the documented ones back
into the output, and compare it with the docs (measured durations aside).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from support.paths import BIN, ROOT
from support.servers import NOT_SERVING, SERVING, SlowHealthServicer, closed_port

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import TlsMaterial
    from support.servers import HealthServer

NAGIOS_CFG = ROOT / "contrib" / "nagios" / "check_grpc_health.cfg"
NAGIOS_EXAMPLE_CFG = ROOT / "contrib" / "nagios" / "check_grpc_health_example.cfg"


@dataclass
class Documented:
    """Documented names and the real ones standing in for them, in both directions."""

    forward: dict[str, str]
    backward: dict[str, str]
    directory: Path

    def command(self, text: str) -> str:
        for documented, real in self.forward.items():
            text = text.replace(documented, real)
        return text

    def output(self, text: str) -> str:
        for real, documented in self.backward.items():
            text = text.replace(real, documented)
        return text

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("GRPC_")}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run(
            ["bash", "-c", self.command(command)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=self.directory,
            check=False,
        )


@pytest.fixture
def documented(
    start_server: Callable[..., HealthServer], tls_material: TlsMaterial, tmp_path: Path
) -> Documented:
    main = start_server(
        statuses={"": SERVING, "app.Orders": SERVING, "app.Batch": NOT_SERVING},
        reflection=True,
        extra_services=("app.Orders", "app.Batch"),
    )
    slow = start_server(servicer=SlowHealthServicer(0.3))
    tls = start_server(credentials=tls_material.server_credentials())
    refused = closed_port()
    headers = tmp_path / "grpc-headers"
    headers.write_text("authorization: Bearer example-token\n")
    files = {
        "/etc/nagios/grpc-ca.pem": str(tls_material.ca_cert),
        "/etc/nagios/grpc-headers": str(headers),
        "/etc/nagios/missing.pem": str(tmp_path / "missing.pem"),
        "/usr/lib/nagios/plugins/check_grpc_health": str(BIN / "check_grpc_health"),
    }
    hosts = {
        "localhost:50051": main.address,
        "localhost:50052": slow.address,
        "localhost:50443": tls.address,
        "127.0.0.1:50099": f"127.0.0.1:{refused}",
    }
    forward = {**files, **hosts}
    return Documented(
        forward=forward,
        backward={real: name for name, real in forward.items()},
        directory=tmp_path,
    )


def normalized(text: str) -> str:
    """Measured values vary from run to run: durations and certificate days."""
    text = re.sub(r"(?<![\w.])[0-9]+(\.[0-9]+)?s\b", "<s>", text)
    text = re.sub(r"cert_days=[0-9.]+", "cert_days=<d>", text)
    text = re.sub(r'("(time|connect_time|rpc_time|days_left)": )[0-9.]+', r"\1<n>", text)
    return re.sub(r"expires in [0-9]+\.[0-9] days", "expires in <d> days", text)


@dataclass
class Example:
    command: str
    output: str
    line: int


def console_examples(path: Path) -> list[Example]:
    """``$ command`` lines and the output below them, from ```console blocks."""
    examples: list[Example] = []
    inside = False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("```"):
            inside = line == "```console"
            continue
        if not inside:
            continue
        if line.startswith("$ "):
            examples.append(Example(line[2:], "", number))
        else:
            examples[-1].output += line + "\n"
    return examples


NAGIOS_EXAMPLES = console_examples(ROOT / "docs" / "nagios.md")
CRON_EXAMPLES = console_examples(ROOT / "docs" / "cron.md")


def test_the_docs_have_examples() -> None:
    assert len(NAGIOS_EXAMPLES) >= 10
    assert len(CRON_EXAMPLES) >= 3


@pytest.mark.parametrize(
    "example",
    NAGIOS_EXAMPLES + CRON_EXAMPLES,
    ids=[f"{example.line}:{example.command[:40]}" for example in NAGIOS_EXAMPLES + CRON_EXAMPLES],
)
def test_documented_command_prints_what_the_docs_show(
    documented: Documented, example: Example
) -> None:
    done = documented.run(example.command)
    assert done.stderr == ""
    assert normalized(documented.output(done.stdout)) == normalized(example.output)


def crontab_commands(path: Path) -> list[str]:
    commands = []
    inside = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            inside = line == "```crontab"
            continue
        if inside and line and not line.startswith("#") and "=" not in line.split()[0]:
            commands.append(line.split(None, 5)[5])
    return commands


def test_crontab_lines_are_silent_while_all_is_well(documented: Documented) -> None:
    commands = crontab_commands(ROOT / "docs" / "cron.md")
    assert len(commands) >= 2
    for command in commands:
        done = documented.run(command)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), command


def nagios_objects(kind: str, path: Path = NAGIOS_CFG) -> list[dict[str, str]]:
    found = re.findall(rf"define {kind} \{{\n(.*?)\n\}}", path.read_text(), re.DOTALL)
    return [
        dict(line.strip().split(None, 1) for line in body.splitlines() if line.strip())
        for body in found
    ]


def test_the_command_file_defines_commands_only() -> None:
    text = NAGIOS_CFG.read_text()
    assert re.findall(r"^define (\w+)", text, re.MULTILINE) == ["command"] * 10
    example = NAGIOS_EXAMPLE_CFG.read_text()
    assert set(re.findall(r"^define (\w+)", example, re.MULTILINE)) == {"host", "service"}


def test_nagios_example_services_run_through_their_command_definitions(
    documented: Documented, start_server: Callable[..., HealthServer]
) -> None:
    commands = {item["command_name"]: item["command_line"] for item in nagios_objects("command")}
    hosts = {
        item["host_name"]: item["address"] for item in nagios_objects("host", NAGIOS_EXAMPLE_CFG)
    }
    ports = {
        documented_port: real.rpartition(":")[2]
        for documented_port, real in (
            ("50051", documented.forward["localhost:50051"]),
            ("50443", documented.forward["localhost:50443"]),
        )
    }
    with tempfile.TemporaryDirectory(prefix="cgh-") as short:
        socket_path = f"{short}/health.sock"
        start_server(unix_path=socket_path)
        ports["/run/grpc-api/health.sock"] = socket_path
        run_example_services(documented, commands, hosts, ports)


def run_example_services(
    documented: Documented,
    commands: dict[str, str],
    hosts: dict[str, str],
    ports: dict[str, str],
) -> None:
    expected = {
        "gRPC health": 0,
        "gRPC orders": 0,
        "gRPC response time": 0,
        "gRPC TLS": 0,
        "gRPC with token": 0,
        "gRPC batch": 1,
        "gRPC health within 3s": 0,
        # app.Batch is NOT_SERVING: every listed service is judged on its own.
        "gRPC every service": 2,
        "gRPC backends": 0,
        "gRPC on a unix socket": 0,
    }
    services = nagios_objects("service", NAGIOS_EXAMPLE_CFG)
    assert {service["service_description"] for service in services} == set(expected)
    used = set()
    for service in services:
        name, *arguments = service["check_command"].split("!")
        used.add(name)
        line = commands[name].replace("$USER1$", str(BIN))
        line = line.replace("$HOSTADDRESS$", hosts[service["host_name"]])
        for number, argument in enumerate(arguments, start=1):
            line = line.replace(f"${f'ARG{number}'}$", ports.get(argument, argument))
        assert "$" not in line
        done = documented.run(line)
        description = service["service_description"]
        assert done.returncode == expected[description], (description, done.stdout)
        state = ["OK", "WARNING", "CRITICAL"][expected[description]]
        assert done.stdout.startswith(f"GRPC_HEALTH {state} - "), done.stdout
    assert used == set(commands)
