"""The documented example servers: probe-ready, and draining in the right order on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from support.paths import BIN, ROOT

from check_grpc_health import watch
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import HealthStatus
from check_grpc_health.core.targets import parse_target

EXAMPLES = ROOT / "docs" / "examples"


def start_example(name: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), "--port", "0", "--drain-seconds", "1.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line.startswith("listening on 127.0.0.1:"), line
    return process, line.removeprefix("listening on ")


def probe_cli(address: str, service: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "grpc_health_probe"), f"-addr={address}", f"-service={service}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("example", ["server.py", "server_asyncio.py"])
def test_example_is_probe_ready_and_drains_before_closing(example: str) -> None:
    process, address = start_example(example)
    try:
        ready = probe_cli(address, "readiness")
        assert (ready.returncode, ready.stderr) == (0, "status: SERVING\n")
        plugin = subprocess.run(
            [str(BIN / "check_grpc_health"), "-H", address, "-s", "liveness", "-s", "readiness"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert plugin.returncode == 0, plugin.stdout
        assert plugin.stdout.startswith("GRPC_HEALTH OK - ")

        options = ProbeOptions(parse_target(address), services=("readiness",))
        process.send_signal(signal.SIGTERM)
        drained = watch(options, wanted=HealthStatus.NOT_SERVING, timeout=10)
        assert drained.reached
        # Readiness says NOT_SERVING while the port still answers: probes drain traffic
        # before connections are refused.
        during = probe_cli(address, "readiness")
        assert process.poll() is None
        assert (during.returncode, during.stderr) == (
            4,
            'service unhealthy (responded with "NOT_SERVING")\n',
        )
        assert process.wait(timeout=15) == 0
        after = probe_cli(address, "readiness")
        assert after.returncode == 2
        assert after.stderr.startswith(f'error: failed to connect service at "{address}": ')
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    out = process.stdout.read() if process.stdout else ""
    assert out == "draining: all services NOT_SERVING\nstopped\n"
    stderr = process.stderr.read() if process.stderr else ""
    assert "Traceback" not in stderr


@pytest.mark.parametrize("example", ["server.py", "server_asyncio.py"])
def test_example_refuses_a_port_another_server_holds(example: str) -> None:
    # Without grpc.so_reuseport=0 the second server would share the port with the first.
    first, address = start_example(example)
    try:
        second = subprocess.run(
            [sys.executable, str(EXAMPLES / example), "--port", address.rpartition(":")[2]],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"a second {example} served on {address} beside the first")
    finally:
        first.kill()
        first.wait()
    assert (second.returncode, second.stdout) == (1, "")
    assert second.stderr.splitlines()[-1] == (
        f"cannot listen on {address}: the port is in use or the address is not local"
    )
    assert "Traceback" not in second.stderr
