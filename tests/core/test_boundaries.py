"""The core's boundaries: what it imports, and that it never prints or exits."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from support.servers import HealthServer

CORE_MODULES = [
    "check_grpc_health.core.targets",
    "check_grpc_health.core.results",
    "check_grpc_health.core.tls",
    "check_grpc_health.core.options",
    "check_grpc_health.core.rpc",
    "check_grpc_health.core.connectivity",
    "check_grpc_health.core.channel",
    "check_grpc_health.core.probe",
    "check_grpc_health.core.watch",
    "check_grpc_health.core.discovery",
    "check_grpc_health.core.peek",
    "check_grpc_health.core.handshake",
    "check_grpc_health.core.diagnosis",
    "check_grpc_health.core.proxy",
    "check_grpc_health.core.family",
    "check_grpc_health.core.aio_channel",
]
DIAGNOSIS_MODULES = {
    "check_grpc_health.core.diagnosis",
    "check_grpc_health.core.handshake",
    "check_grpc_health.core.peek",
}


def loaded_modules(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))\n"
    output = subprocess.check_output([sys.executable, "-c", code], text=True)
    return set(json.loads(output))


def test_core_imports_only_stdlib_grpc_and_health() -> None:
    core = loaded_modules("\n".join(f"import {name}" for name in CORE_MODULES))
    floor = loaded_modules(
        "import grpc, grpc.aio\nfrom grpc_health.v1 import health_pb2, health_pb2_grpc"
    )
    extra = {name for name in core - floor if name.split(".")[0] not in sys.stdlib_module_names}
    assert {name.split(".")[0] for name in extra} == {"check_grpc_health"}
    assert not [name for name in core if name.startswith(("nagiosplugin", "ansible"))]
    # Only the adapters need these; the core must not pay for them at start-up.
    assert not {"argparse", "json", "inspect"} & (core - floor)


def test_core_never_prints_or_exits() -> None:
    code = (
        "from check_grpc_health.core.probe import probe\n"
        "from check_grpc_health.core.options import ProbeOptions\n"
        "from check_grpc_health.core.targets import parse_target\n"
        "from check_grpc_health.core.results import HealthCheckError\n"
        "for address in ['127.0.0.1:1', 'bad host:1', 'unix:/nonexistent/sock']:\n"
        "    try:\n"
        "        probe(ProbeOptions(parse_target(address), connect_timeout=0.5))\n"
        "    except HealthCheckError:\n"
        "        pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0
    assert done.stdout == ""
    assert done.stderr == ""


def test_a_healthy_probe_never_loads_the_diagnosis(server: HealthServer) -> None:
    """The diagnosis costs nothing on the healthy path, even when a caller asks for one."""
    statement = (
        "from check_grpc_health.core.probe import probe\n"
        "from check_grpc_health.core.options import ProbeOptions\n"
        "from check_grpc_health.core.targets import parse_target\n"
        f"result = probe(ProbeOptions(parse_target({server.address!r})), diagnose_within=2.0)\n"
        "assert result.serving, result"
    )
    assert not DIAGNOSIS_MODULES & loaded_modules(statement)


def test_a_failed_probe_loads_the_diagnosis_and_explains(closed_address: str) -> None:
    """The control: the same statement against a closed port loads it and says why."""
    statement = (
        "from check_grpc_health.core.probe import probe\n"
        "from check_grpc_health.core.options import ProbeOptions\n"
        "from check_grpc_health.core.results import ConnectFailure\n"
        "from check_grpc_health.core.targets import parse_target\n"
        "try:\n"
        f"    probe(ProbeOptions(parse_target({closed_address!r})), diagnose_within=2.0)\n"
        "except ConnectFailure as failure:\n"
        "    assert failure.diagnosis.kind == 'refused', failure.diagnosis\n"
    )
    assert loaded_modules(statement) >= DIAGNOSIS_MODULES
