"""The commands in docs/discovery.md, run against the demo server the page starts."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

import pytest
from support.paths import BIN, ROOT
from support.servers import closed_port, demo_serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DOC = ROOT / "docs" / "discovery.md"


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)


@pytest.fixture
def demo_port() -> Iterator[int]:
    """The page's demo server, started as the page says but on a free port."""
    port = closed_port()
    with demo_serving(shell_blocks()[0].strip().replace("50051", str(port))):
        yield port


def run(command: str, port: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command.replace("50051", str(port))],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"PATH": f"{BIN}:/usr/bin:/bin"},
        check=False,
    )


def test_all_services_example(demo_port: int, tmp_path: Path) -> None:
    done = run(shell_blocks()[1], demo_port, tmp_path)
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        f"GRPC_HEALTH CRITICAL - 127.0.0.1:{demo_port}: service 'shop.v1.Carts' is NOT_SERVING | "
        "'serving_shop.v1.Carts'=0;;;0;1 'serving_shop.v1.Orders'=1;;;0;1 connect_time="
    )
    assert [line.split(" (")[0] for line in lines[1:]] == [
        "OK: overall health is SERVING",
        "CRITICAL: service 'shop.v1.Carts' is NOT_SERVING",
        "OK: service 'shop.v1.Orders' is SERVING",
    ]


def test_all_addresses_example(demo_port: int, tmp_path: Path) -> None:
    done = run(shell_blocks()[2], demo_port, tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith(
        f"GRPC_HEALTH OK - localhost:{demo_port}: 1 of 1 backends healthy | "
        f"'backend_127.0.0.1:{demo_port}'=1;;;0;1 healthy_backends=1;1:;1:;0;1 time="
    )


def test_fleet_example(demo_port: int, tmp_path: Path) -> None:
    done = run(shell_blocks()[4], demo_port, tmp_path)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    start, end = lines[0].index("TARGET"), lines[0].index("SUMMARY")
    rows = [(line[:start].strip(), line[start:end].strip()) for line in lines[:-1]]
    address, local = f"127.0.0.1:{demo_port}", f"localhost:{demo_port}"
    assert rows == [
        ("STATE", "TARGET"),
        ("OK", address),
        ("OK", f"{address} -s shop.v1.Orders"),
        ("WARNING", f"{address} -s shop.v1.Carts --map-status NOT_SERVING=WARNING"),
        ("OK", f"{local} --all-addresses"),
    ]
    assert done.stdout.splitlines()[-1] == "4 targets: 3 OK, 1 WARNING"
    json_lines = run(shell_blocks()[5].replace("/var/tmp/", ""), demo_port, tmp_path)
    assert json_lines.returncode == 1
    assert len((tmp_path / "grpc-fleet.jsonl").read_text().splitlines()) == 4
