"""prometheus_client loads only where it is used: never on the one-shot tools' path.

Each tool runs whole, as a monitoring core runs it, in a fresh interpreter against a real
server; what it loaded is read at its exit (``sys.exit`` or ``os._exit``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from support.servers import HealthServer

# Runs one console script's entry point, and writes sys.modules to a file at the exit.
RUNNER = """
import atexit, json, os, sys
out, tool = sys.argv[1], sys.argv[2]
sys.argv = [tool, *sys.argv[3:]]
def dump():
    with open(out, "w") as handle:
        json.dump(sorted(sys.modules), handle)
real_exit = os._exit
def exit_now(code):
    dump()
    real_exit(code)
os._exit = exit_now
atexit.register(dump)
from check_grpc_health import entry
getattr(entry, tool)()
"""


def loaded(tmp_path: Path, tool: str, *arguments: str) -> set[str]:
    out = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", RUNNER, str(out), tool, *arguments],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return set(json.loads(out.read_text()))


def prometheus(modules: set[str]) -> set[str]:
    return {name for name in modules if name.split(".")[0] in ("prometheus_client", "bcrypt")}


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("plugin", ["-H", "{address}"]),
        ("plugin", ["-H", "{address}", "--json"]),
        ("probe", ["-addr", "{address}"]),
        ("fleet", ["{fleet}"]),
        ("fleet", ["{fleet}", "--format", "json"]),
    ],
)
def test_the_one_shot_tools_never_load_prometheus_client(
    tmp_path: Path, server: HealthServer, tool: str, arguments: list[str]
) -> None:
    fleet = tmp_path / "fleet.txt"
    fleet.write_text(f"-H {server.address}\n")
    values = {"address": server.address, "fleet": str(fleet)}
    modules = loaded(tmp_path, tool, *(item.format(**values) for item in arguments))
    assert "check_grpc_health.core.channel" in modules  # it did run a check
    assert prometheus(modules) == set()
    assert not [name for name in modules if name.startswith("check_grpc_health.exporter")]


@pytest.mark.parametrize("output", [["--format", "prometheus"], ["--textfile", "{textfile}"]])
def test_the_fleets_prometheus_outputs_load_it(
    tmp_path: Path, server: HealthServer, output: list[str]
) -> None:
    """The control: the same run with a Prometheus output loads it (and not bcrypt)."""
    fleet = tmp_path / "fleet.txt"
    fleet.write_text(f"-H {server.address}\n")
    textfile = str(tmp_path / "grpc_health.prom")
    arguments = [item.format(textfile=textfile) for item in output]
    modules = loaded(tmp_path, "fleet", str(fleet), *arguments)
    assert "prometheus_client" in modules
    assert "bcrypt" not in modules
