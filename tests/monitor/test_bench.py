"""bench/monitor.py, run small: every phase reports, and nothing is lost, wrong or a traceback.

Layer: tests (end to end, slow). Runs the watching fleet's benchmark with 2 servers of 20
services, a few seconds per phase and a 20 s soak, against a real Icinga 2, so that the
benchmark itself keeps working. Only what must hold at any speed is asserted: each phase
printed its figures, no change went missing, every final state in Icinga 2 is right and
the monitor never printed a traceback. The timing goals are the benchmark's business.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from support.daemons.icinga2 import icinga2_binary
from support.hardening import cli_env
from support.paths import ROOT

SMALL = [
    "--servers",
    "2",
    "--services",
    "20",
    "--rate",
    "10",
    "--changes-for",
    "3",
    "--idle",
    "2",
    "--beat-interval",
    "2",
    "--beat-window",
    "4",
    "--soak",
    "20",
    "--restart-every",
    "5",
    "--sample-every",
    "2",
]


@pytest.mark.slow
def test_the_watching_fleet_benchmark_runs_every_phase_and_loses_nothing() -> None:
    icinga2_binary()  # skips without Icinga 2, fails under CI
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench/monitor.py"), *SMALL],
        capture_output=True,
        text=True,
        timeout=600,
        env=cli_env(),
        check=False,
    )
    report = done.stdout
    assert done.returncode == 0, report + done.stderr
    assert done.stderr == ""
    titles = [line.split(":")[0] for line in report.splitlines() if line and line[0] != " "]
    assert titles[1:] == [
        "Start-up",
        "Idle",
        "Changes",
        "Killed server",
        "Memory floor",
        "Start-up",
        "Heartbeats",
        "Frozen server",
        "Start-up",
        "Heartbeats",
        "Start-up",
        "Soak",
        "faults",
    ]
    assert report.count("a first result of all 40 ") == 4
    assert re.search(r"\n  30 changes \(0 skipped: no service free\), told the server", report)
    assert "\n  lost (never in Icinga 2): 0\n" in report
    assert "\n  all 20 CRITICAL in Icinga 2 " in report
    assert re.search(r"\n  40 streams, 100 to a connection: RSS [0-9.]+ MiB", report)
    assert re.search(r"\n  [0-9]+ changes, [0-9]+ restarts; latency .*; lost 0 \(load", report)
    assert "\n  final states: 40 of 40 right in Icinga 2 " in report
    assert report.count("; exit code 0; tracebacks 0\n") == 4
    assert report.endswith("\nfaults: 0\n")
