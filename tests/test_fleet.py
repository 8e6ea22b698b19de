"""check_grpc_health_fleet: many targets from one file, against real servers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from servers import HealthServer

FLEET = str(Path(sys.executable).parent / "check_grpc_health_fleet")
SECRET = "Bearer fleet-s3cr3t-7d1e"


def run_fleet(
    path: Path, *extra: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLEET, str(path), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        check=False,
    )


def mixed_fleet(
    tmp_path: Path, start_server: Callable[..., HealthServer], closed_address: str
) -> tuple[Path, dict[str, str]]:
    healthy = start_server(statuses={"": 1, "orders": 1})
    down = start_server(statuses={"": 2})
    slow_backend = start_server(host="127.0.0.2")
    path = tmp_path / "fleet.txt"
    path.write_text(
        "# the production fleet\n"
        f"-H {healthy.address}\n"
        "\n"
        f"-H {healthy.address} -s orders -w 0.5 -c 1 -m 'authorization: {SECRET}'\n"
        f"-H {down.address}\n"
        f"-H {closed_address}\n"
        "-H 'bad host'\n"
        f"-H ipv4:{healthy.address},{slow_backend.address} --all-addresses\n"
    )
    names = {
        "healthy": healthy.address,
        "down": down.address,
        "closed": closed_address,
        "pair": f"ipv4:{healthy.address},{slow_backend.address}",
    }
    return path, names


def test_table_lists_every_target_and_exits_with_the_worst_state(
    tmp_path: Path, start_server: Callable[..., HealthServer], closed_address: str
) -> None:
    path, names = mixed_fleet(tmp_path, start_server, closed_address)
    done = run_fleet(path)
    assert done.returncode == 3  # UNKNOWN (a bad line) ranks above CRITICAL
    assert done.stderr == ""
    rows = [row.split(None, 2) for row in done.stdout.splitlines()]
    assert rows[0] == ["STATE", "TARGET", "SUMMARY"]
    assert [row[:2] for row in rows[1:-1]] == [
        ["OK", names["healthy"]],
        ["OK", names["healthy"]],
        ["CRITICAL", names["down"]],
        ["CRITICAL", names["closed"]],
        ["UNKNOWN", "(line"],
        ["OK", names["pair"]],
    ]
    assert rows[3][2] == f"{names['down']}: overall health is NOT_SERVING"
    assert rows[4][2] == f"failed to connect to {names['closed']}: Connection refused"
    assert done.stdout.splitlines()[5].endswith(
        "line 7: invalid address 'bad host': contains whitespace or control characters"
    )
    assert rows[6][2] == f"{names['pair']}: 2 of 2 backends healthy"
    assert done.stdout.splitlines()[-1] == "6 targets: 3 OK, 2 CRITICAL, 1 UNKNOWN"
    assert SECRET not in done.stdout


def test_json_lines_carry_the_plugin_document_and_the_line(
    tmp_path: Path, start_server: Callable[..., HealthServer], closed_address: str
) -> None:
    path, names = mixed_fleet(tmp_path, start_server, closed_address)
    done = run_fleet(path, "--json")
    assert done.returncode == 3
    documents = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(d["line"], d["state"], d["exit_code"]) for d in documents] == [
        (2, "OK", 0),
        (4, "OK", 0),
        (5, "CRITICAL", 2),
        (6, "CRITICAL", 2),
        (7, "UNKNOWN", 3),
        (8, "OK", 0),
    ]
    assert documents[1]["services"][0]["status"] == "SERVING"
    assert documents[1]["perfdata"].endswith(";0.5;1;0")
    assert documents[3]["error"] == f"failed to connect to {names['closed']}: Connection refused"
    assert documents[4]["target"] is None
    assert documents[5]["healthy"] == 2
    assert SECRET not in done.stdout


def test_quiet_lists_only_problems_and_nothing_when_all_is_well(
    tmp_path: Path, start_server: Callable[..., HealthServer], closed_address: str
) -> None:
    path, _ = mixed_fleet(tmp_path, start_server, closed_address)
    problems = run_fleet(path, "-q")
    assert [line.split()[0] for line in problems.stdout.splitlines()[1:-1]] == [
        "CRITICAL",
        "CRITICAL",
        "UNKNOWN",
    ]
    server = start_server()
    calm = tmp_path / "calm.txt"
    calm.write_text(f"-H {server.address}\n-H {server.address} -s ''\n")
    done = run_fleet(calm, "-q")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_one_overall_deadline_bounds_the_fleet(
    tmp_path: Path, black_hole_address: str, server: HealthServer
) -> None:
    path = tmp_path / "fleet.txt"
    path.write_text(f"-H {black_hole_address} -t 60\n-H {server.address}\n")
    started = time.monotonic()
    done = run_fleet(path, "-t", "1")
    assert time.monotonic() - started < 4
    assert done.returncode == 2
    rows = done.stdout.splitlines()
    assert rows[1].split()[:2] == ["CRITICAL", black_hole_address]
    assert rows[1].endswith(
        "after 0.5s: the server accepted the TCP connection but sent no HTTP/2 settings "
        "(overloaded, or not a gRPC server); use a longer --connect-timeout, or check the "
        "port in -H"
    )
    assert rows[2].split()[:2] == ["OK", server.address]


def test_standard_input_and_argument_errors(server: HealthServer, tmp_path: Path) -> None:
    done = run_fleet(Path("-"), stdin=f"-H {server.address}\n")
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == "1 targets: 1 OK"
    missing = run_fleet(tmp_path / "nope.txt")
    assert (missing.returncode, missing.stdout) == (3, "")
    assert missing.stderr == (
        f"check_grpc_health_fleet: cannot read fleet file '{tmp_path / 'nope.txt'}': "
        "No such file or directory\n"
    )
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert run_fleet(empty).stderr == (
        f"check_grpc_health_fleet: fleet file '{empty}' names no target\n"
    )
    bad_timeout = run_fleet(empty, "-t", "nan")
    assert bad_timeout.returncode == 3
    assert bad_timeout.stderr == (
        "check_grpc_health_fleet: -t/--timeout must be a finite number above zero (got nan)\n"
    )


def test_a_signal_ends_the_fleet_at_once_with_unknown(
    tmp_path: Path, black_hole_address: str
) -> None:
    import signal

    path = tmp_path / "fleet.txt"
    path.write_text(f"-H {black_hole_address} --connect-timeout 20\n")
    process = subprocess.Popen(
        [FLEET, str(path), "-t", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(1.0)  # any moment works: the signals are held until the handler is in place
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=10)
    assert time.monotonic() - sent < 2
    assert (process.returncode, stdout) == (3, "")
    assert stderr == "check_grpc_health_fleet: interrupted by SIGTERM\n"
