"""The core's boundaries: what it imports, and that it never prints or exits."""

from __future__ import annotations

import json
import subprocess
import sys

CORE_MODULES = [
    "check_grpc_health.core.targets",
    "check_grpc_health.core.results",
    "check_grpc_health.core.tls",
    "check_grpc_health.core.options",
    "check_grpc_health.core.rpc",
    "check_grpc_health.core.channel",
    "check_grpc_health.core.probe",
    "check_grpc_health.core.watch",
    "check_grpc_health.core.discovery",
]


def loaded_modules(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))\n"
    output = subprocess.check_output([sys.executable, "-c", code], text=True)
    return set(json.loads(output))


def test_core_imports_only_stdlib_grpc_and_health() -> None:
    core = loaded_modules("\n".join(f"import {name}" for name in CORE_MODULES))
    floor = loaded_modules("import grpc\nfrom grpc_health.v1 import health_pb2, health_pb2_grpc")
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
