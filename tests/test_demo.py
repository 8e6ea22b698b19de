"""The README's demo: an embedded server, the real tools against it, and a Watch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DEMO = str(Path(sys.executable).parent / "check-grpc-health-demo")


def test_demo_shows_real_results_from_a_real_server() -> None:
    done = subprocess.run([DEMO], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    text = re.sub(r"127\.0\.0\.1:\d{3,}", "ADDR", done.stdout)
    text = re.sub(r"\d+\.\d+s\b", "Xs", text)
    blocks = text.split("\n\n")
    assert blocks[0].splitlines()[0] == "Embedded health server on ADDR with services:"
    expected = [
        ("$ check_grpc_health -H ADDR", "GRPC_HEALTH OK - ADDR: overall health is SERVING", 0),
        (
            "$ check_grpc_health -H ADDR -s orders -s payments",
            "GRPC_HEALTH CRITICAL - ADDR: service 'payments' is NOT_SERVING",
            2,
        ),
        (
            "$ check_grpc_health -H ADDR -w 0.000001 -c 1",
            "GRPC_HEALTH WARNING - ADDR: time is Xs (outside range 0:0.000001)",
            1,
        ),
        (
            "$ check_grpc_health -H 127.0.0.1:1",
            "GRPC_HEALTH CRITICAL - failed to connect to 127.0.0.1:1: Connection refused",
            2,
        ),
        ("$ grpc_health_probe -addr=ADDR", "status: SERVING", 0),
        (
            "$ grpc_health_probe -addr=ADDR -service=payments",
            'service unhealthy (responded with "NOT_SERVING")',
            4,
        ),
        (
            "$ grpc_health_probe -addr=ADDR -service=nope",
            "error: health rpc failed: rpc error: code = NotFound desc = ",
            3,
        ),
    ]
    for block, (command, first, code) in zip(blocks[1:], expected, strict=False):
        lines = block.splitlines()
        assert lines[0] == command
        assert lines[1].startswith(f"  {first}"), lines[1]
        assert lines[-1] == f"  [exit code {code}]"
    last = blocks[len(expected) + 1].splitlines()
    assert last[0] == "Waiting on the Watch stream until 'search' is SERVING ..."
    assert re.fullmatch(
        r"  reached after 2\.\d\d s via watch, \d+\.\d ms after the server flipped", last[1]
    )
