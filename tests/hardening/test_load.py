"""Many ``check_grpc_health`` processes at once against one server all answer correctly.

Layer: tests (end to end, slow). Runs ``bench/concurrent_checks.py`` with a smaller
count than its default 200, so the benchmark itself is exercised on every run: each of
the processes must exit with the right code and status line (half ask for a
NOT_SERVING service), and the server must have answered exactly one Check each.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.hardening import cli_env
from support.paths import ROOT

COUNT = 50


@pytest.mark.slow
def test_fifty_concurrent_plugin_processes_all_answer_correctly() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench/concurrent_checks.py"), "--count", str(COUNT)],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert f"  correct answers   {COUNT}/{COUNT}" in lines
    assert f"  Checks answered   {COUNT}" in lines
    assert "FAILED" not in done.stdout
    assert done.stderr == ""
