"""Each tool's last line is out within its time limit, counted from the process's start.

Layer: tests (end to end). A monitoring core, cron or the kubelet starts its clock when
it starts the process and kills it at the limit; a line printed after that is lost. Each
tool here runs as its console script against a peer that never lets it finish early (a
server that takes the health call and never answers, or a listener that never speaks).
The time from spawning the process to its exit must stay below the limit, and the line
must be the tool's own, word for word.

The limits: ``-t`` for the plugin and the fleet; for the probe the Go tool's own,
``-connect-timeout`` plus ``-rpc-timeout``, or ``-wait``. Each tool means to be done a
margin before it; ``bench/time_limits.py`` measures how late a machine loaded by busy
processes runs it, and these tests hold with the suite itself running on two loaded
cores. The limits are 2 s: start-up may take over a second of that on a loaded machine.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from support.hardening import Finished, run_cli
from support.paths import FLEET, PLUGIN, PROBE
from support.servers import black_hole

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.servers import HoldingServicer, RawListener

LIMIT = 2.0
# Deadlines far past -t: only -t can end the check.
NO_DEADLINES = ["--connect-timeout", "60", "--rpc-timeout", "60"]


@pytest.fixture(params=["never-answers", "silent"])
def peer(
    request: pytest.FixtureRequest,
    held: tuple[HoldingServicer, str],
    black_hole_address: str,
) -> tuple[str, str]:
    """Which peer, and its address: a held health call, or a listener that never speaks."""
    return request.param, held[1] if request.param == "never-answers" else black_hole_address


def within(limit: float, done: Finished) -> Finished:
    """``done``, once it is known to have ended before ``limit`` with no traceback."""
    done.assert_clean()
    assert done.elapsed < limit, (done.elapsed, done.stdout, done.stderr)
    return done


def test_the_plugin_prints_its_timeout_line_within_t(peer: tuple[str, str]) -> None:
    _, address = peer
    done = within(LIMIT, run_cli(PLUGIN, "-H", address, *NO_DEADLINES, "-t", "2"))
    assert (done.code, done.stderr) == (2, "")
    line = re.fullmatch(
        r"GRPC_HEALTH CRITICAL - no result within the 2s timeout \(-t\) \| "
        r"time=([0-9.]+)s;;;0\n",
        done.stdout,
    )
    assert line is not None, done.stdout
    # The time counts from the process's start: the line is out before -t.
    assert float(line.group(1)) < LIMIT


def test_the_plugin_prints_its_json_timeout_document_within_t(black_hole_address: str) -> None:
    args = ["-H", black_hole_address, *NO_DEADLINES, "-t", "2", "--json"]
    done = within(LIMIT, run_cli(PLUGIN, *args))
    assert (done.code, done.stderr, done.stdout.count("\n")) == (2, "", 1)
    assert '"summary": "no result within the 2s timeout (-t)"' in done.stdout


def test_the_fleet_prints_its_table_within_t(
    peer: tuple[str, str], raw_listener: Callable[..., RawListener], tmp_path: Path
) -> None:
    name, address = peer
    # Lines on one target share its connection, and so its failed connect: the silent
    # peer's second line gets a listener of its own.
    second = address if name == "never-answers" else raw_listener(black_hole).address
    path = tmp_path / "fleet.txt"
    # One line after the other: the second runs into the fleet's own -t.
    path.write_text(
        f"first!check: -H {address} {' '.join(NO_DEADLINES)}\n"
        f"second!check: -H {second} {' '.join(NO_DEADLINES)}\n"
    )
    done = within(LIMIT, run_cli(FLEET, "--concurrency", "1", "-t", "2", str(path)))
    assert (done.code, done.stderr) == (2, "")
    rows = done.stdout.splitlines()
    assert rows[0].split() == ["STATE", "TARGET", "SUMMARY"]
    assert rows[2].split(None, 2) == [
        "CRITICAL",
        "second!check",
        "no result within the fleet's 2s deadline (-t)",
    ]
    assert rows[1].split()[:2] == ["CRITICAL", "first!check"]
    assert rows[3:] == ["2 targets: 2 CRITICAL"]


def test_the_probe_ends_within_its_connect_and_rpc_timeouts(peer: tuple[str, str]) -> None:
    """The Go tool's limit: -connect-timeout plus -rpc-timeout, start-up included."""
    name, address = peer
    if name == "never-answers":
        # Connected in time; the RPC gets what start-up and the dial left of the two.
        timeouts = ("-connect-timeout=500ms", "-rpc-timeout=1.5s")
        done = within(LIMIT, run_cli(PROBE, f"-addr={address}", *timeouts))
        assert (done.code, done.stdout) == (3, "")
        assert done.stderr == "timeout: health rpc did not complete within 1.5s\n"
    else:
        timeouts = ("-connect-timeout=1.9s", "-rpc-timeout=100ms")
        done = within(LIMIT, run_cli(PROBE, f"-addr={address}", *timeouts))
        assert (done.code, done.stdout) == (2, "")
        assert done.stderr == f'timeout: failed to connect service "{address}" within 1.9s\n'


def test_the_probe_ends_within_wait(black_hole_address: str) -> None:
    done = within(LIMIT, run_cli(PROBE, f"-addr={black_hole_address}", "-wait=2s"))
    assert (done.code, done.stdout) == (2, "")
    assert done.stderr == f'timeout: failed to connect service "{black_hole_address}" within 1s\n'
