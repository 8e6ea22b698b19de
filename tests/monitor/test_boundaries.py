"""The watching fleet stays out of the one-shot tools' way: nothing of it loads for them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ONE_SHOT = [
    "check_grpc_health.plugin.main",
    "check_grpc_health.probe_cli.main",
    "check_grpc_health.fleet.main",
    "check_grpc_health.fleet.run",
    "check_grpc_health.fleet.sinks.icinga2_api",
    "check_grpc_health.fleet.sinks.command_file",
]


@pytest.mark.parametrize("module", ONE_SHOT)
def test_a_one_shot_module_loads_nothing_of_the_monitor(module: str) -> None:
    code = f"import sys, json\nimport {module}\nprint(json.dumps(sorted(sys.modules)))\n"
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert module in loaded
    resident = [
        name
        for name in loaded
        if name.startswith(("check_grpc_health.monitor", "grpc.aio", "asyncio"))
        or name == "check_grpc_health.core.aio_channel"
    ]
    assert resident == []


def test_the_monitors_modules_load_without_an_event_loop() -> None:
    code = "import check_grpc_health.monitor.main, check_grpc_health.monitor.monitor\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stderr) == (0, "")
