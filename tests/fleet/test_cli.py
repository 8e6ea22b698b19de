"""check_grpc_health_fleet: many targets from one file, against real servers."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.paths import FLEET

if TYPE_CHECKING:
    from collections.abc import Callable

    from support.servers import HealthServer

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


def table_rows(text: str) -> list[tuple[str, ...]]:
    """The table's rows as (state, target, summary), cut at the header's columns."""
    lines = text.splitlines()
    start, end = lines[0].index("TARGET"), lines[0].index("SUMMARY")
    return [(line[:start].strip(), line[start:end].strip(), line[end:]) for line in lines[:-1]]


def seconds(summary: str) -> str:
    """The time a summary ends with (``in 0.0021s``), which varies from run to run."""
    return summary.rpartition(" in ")[2]


def test_table_lists_every_target_and_exits_with_the_worst_state(
    tmp_path: Path, start_server: Callable[..., HealthServer], closed_address: str
) -> None:
    path, names = mixed_fleet(tmp_path, start_server, closed_address)
    done = run_fleet(path)
    assert done.returncode == 3  # UNKNOWN (a bad line) ranks above CRITICAL
    assert done.stderr == ""
    rows = table_rows(done.stdout)
    assert rows[0] == ("STATE", "TARGET", "SUMMARY")
    healthy, pair = names["healthy"], names["pair"]
    assert rows[1:] == [
        ("OK", healthy, f"{healthy}: overall health is SERVING in {seconds(rows[1][2])}"),
        (
            "OK",
            f"{healthy} -s orders",
            f"{healthy}: service 'orders' is SERVING in {seconds(rows[2][2])}",
        ),
        ("CRITICAL", names["down"], f"{names['down']}: overall health is NOT_SERVING"),
        (
            "CRITICAL",
            names["closed"],
            f"failed to connect to {names['closed']}: Connection refused",
        ),
        (
            "UNKNOWN",
            "(line 7)",
            "line 7: invalid address 'bad host': contains whitespace or control characters",
        ),
        ("OK", f"{pair} --all-addresses", f"{pair}: 2 of 2 backends healthy"),
    ]
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
    # The line's connect deadline, half of the fleet's -t, ends well before it.
    done = run_fleet(path, "-t", "4")
    assert time.monotonic() - started < 4
    assert done.returncode == 2
    rows = done.stdout.splitlines()
    assert rows[1].split()[:2] == ["CRITICAL", black_hole_address]
    assert rows[1].endswith(
        "after 2s: the server accepted the TCP connection but sent no HTTP/2 settings "
        "(overloaded, or not a gRPC server); use a longer --connect-timeout, or check the "
        "port in -H"
    )
    assert rows[2].split()[:2] == ["OK", server.address]


def test_standard_input_and_argument_errors(server: HealthServer, tmp_path: Path) -> None:
    done = run_fleet(Path("-"), stdin=f"-H {server.address}\n")
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == "1 target: 1 OK"
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


def test_a_line_asking_for_help_or_the_version_is_unknown_and_the_others_still_run(
    tmp_path: Path, start_server: Callable[..., HealthServer], closed_address: str
) -> None:
    server = start_server()
    path = tmp_path / "fleet.txt"
    path.write_text(
        f"-H {server.address} -V\n"
        f"-H {server.address} --help\n"
        f"-H {server.address} -qV\n"
        f"web1!grpc: -H {server.address} --version\n"
        f"-H {closed_address} -t 1\n"
        f"-H {server.address}\n"
    )
    done = run_fleet(path, "-t", "3")
    assert (done.returncode, done.stderr) == (3, "")
    assert "usage" not in done.stdout
    assert "check_grpc_health " not in done.stdout  # no version line
    why = (
        "-h/--help and -V/--version print text and exit instead of checking: "
        "they have no place in a fleet line"
    )
    rows = table_rows(done.stdout)
    assert rows[1:5] == [
        ("UNKNOWN", "(line 1)", f"line 1: {why}"),
        ("UNKNOWN", "(line 2)", f"line 2: {why}"),
        ("UNKNOWN", "(line 3)", f"line 3: {why}"),
        ("UNKNOWN", "web1!grpc", f"line 4: {why}"),
    ]
    assert rows[5] == (
        "CRITICAL",
        closed_address,
        f"failed to connect to {closed_address}: Connection refused",
    )
    assert rows[6][:2] == ("OK", server.address)
    assert done.stdout.splitlines()[-1] == "6 targets: 1 OK, 1 CRITICAL, 4 UNKNOWN"


def test_labels_name_lines_in_the_table_and_the_json(
    tmp_path: Path, start_server: Callable[..., HealthServer]
) -> None:
    server = start_server(statuses={"": 1, "orders": 2})
    path = tmp_path / "fleet.txt"
    path.write_text(
        f"web1!grpc-health: -H {server.address}\n"
        f"web1!grpc-orders: -H {server.address} -s orders -w 0.5\n"
        f"'web1!grpc-orders': -H {server.address}\n"
        f"web1:grpc: -H {server.address}\n"
        f"-H {server.address}\n"
    )
    table = run_fleet(path)
    assert table.returncode == 3
    assert [row[:2] for row in table_rows(table.stdout)[1:]] == [
        ("OK", "web1!grpc-health"),
        ("CRITICAL", "web1!grpc-orders #2"),
        ("UNKNOWN", "web1!grpc-orders #3"),
        ("UNKNOWN", "(line 4)"),
        ("OK", server.address),
    ]
    documents = [json.loads(line) for line in run_fleet(path, "--json").stdout.splitlines()]
    assert [(d["line"], d["name"], d["state"]) for d in documents] == [
        (1, "web1!grpc-health", "OK"),
        (2, "web1!grpc-orders", "CRITICAL"),
        (3, "web1!grpc-orders", "UNKNOWN"),
        (4, None, "UNKNOWN"),
        (5, None, "OK"),
    ]
    assert documents[1]["summary"] == f"{server.address}: service 'orders' is NOT_SERVING"
    assert documents[2]["error"] == "line 3: label web1!grpc-orders is already used on line 2"
    assert documents[3]["error"] == (
        "line 4: label 'web1:grpc:' is not HOST!SERVICE: "
        "(one '!', no spaces, quotes, semicolons or vertical bars)"
    )


def test_the_target_column_tells_lines_for_one_host_apart(
    tmp_path: Path, start_server: Callable[..., HealthServer]
) -> None:
    server = start_server(statuses={"": 1, "orders": 2, "users": 1})
    address = server.address
    path = tmp_path / "fleet.txt"
    path.write_text(
        f"-H {address}\n"
        f"-H {address} -s orders\n"
        f"-H {address} -s orders --map-status NOT_SERVING=WARNING\n"
        f"-H {address} -s orders -s users\n"
        f"-H {address} -w 5\n"
        f"-H ipv4:{address} --all-addresses\n"
    )
    done = run_fleet(path)
    assert [row[:2] for row in table_rows(done.stdout)[1:]] == [
        ("OK", f"{address} #1"),
        ("CRITICAL", f"{address} -s orders"),
        ("WARNING", f"{address} -s orders --map-status NOT_SERVING=WARNING"),
        ("CRITICAL", f"{address} -s orders,users"),
        ("OK", f"{address} #5"),
        ("OK", f"ipv4:{address} --all-addresses"),
    ]


def test_lines_on_one_unreachable_target_share_its_one_failed_connect(
    tmp_path: Path, black_hole_address: str, server: HealthServer
) -> None:
    # 40 lines each waiting out its own 1.5 s connect timeout would need 7.5 s with 8
    # at once: past the fleet's 4 s deadline. Sharing the connection, they need 1.5 s.
    path = tmp_path / "fleet.txt"
    lines = [f"-H {black_hole_address} -s svc{n} --connect-timeout 1.5\n" for n in range(40)]
    path.write_text("".join(lines) + f"-H {server.address} -s ready\n")
    done = run_fleet(path, "-t", "4", "--json")
    assert done.returncode == 2
    documents = [json.loads(line) for line in done.stdout.splitlines()]
    assert [d["error"] for d in documents[:40]] == [
        f"timed out connecting to {black_hole_address} after 1.5s: the server accepted the TCP "
        "connection but sent no HTTP/2 settings (overloaded, or not a gRPC server); use a "
        "longer --connect-timeout, or check the port in -H"
    ] * 40
    assert documents[40]["summary"].startswith(f"{server.address}: service 'ready' is SERVING")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=60), min_size=1, max_size=5))
def test_any_fleet_text_parses_to_entries_or_clean_errors(lines: list[str]) -> None:
    import contextlib
    import io

    from check_grpc_health.fleet.file import _parse_lines

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        entries = _parse_lines("\n".join(lines), {}, 10.0)
    assert printed.getvalue() == ""
    for entry in entries:
        assert (entry.options is None) == (entry.error is not None)
        if entry.error is not None:
            assert entry.error.startswith(f"line {entry.line}: ")
            assert "\n" not in entry.error


def test_a_line_may_end_in_a_comment(
    tmp_path: Path, start_server: Callable[..., HealthServer]
) -> None:
    server = start_server(statuses={"": 1, "orders": 1})
    path = tmp_path / "fleet.txt"
    path.write_text(
        f"web1!grpc-orders: -H {server.address} -s orders  # the shop's orders\n"
        f"-H {server.address} #overall, as a shell reads it\n"
        f"-H {server.address} -m 'x-note: #1' -s orders # a quoted # is no comment\n"
    )
    done = run_fleet(path, "--json")
    assert (done.returncode, done.stderr) == (0, "")
    documents = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(d["name"], d["services"][0]["service"]) for d in documents] == [
        ("web1!grpc-orders", "orders"),
        (None, ""),
        (None, "orders"),
    ]


def test_a_line_with_the_plugins_own_output_options_is_unknown(
    tmp_path: Path, server: HealthServer
) -> None:
    path = tmp_path / "fleet.txt"
    path.write_text(
        f"-H {server.address} --json\n-H {server.address} -q\n-H {server.address} --quiet\n"
        f"-H {server.address}\n"
    )
    done = run_fleet(path)
    assert (done.returncode, done.stderr) == (3, "")
    json_line = (
        "--json changes nothing in a fleet line: give check_grpc_health_fleet --format json "
        "for JSON lines"
    )
    quiet_line = (
        "-q/--quiet changes nothing in a fleet line: give check_grpc_health_fleet -q to list "
        "only the lines that are not OK"
    )
    assert table_rows(done.stdout)[1:] == [
        ("UNKNOWN", "(line 1)", f"line 1: {json_line}"),
        ("UNKNOWN", "(line 2)", f"line 2: {quiet_line}"),
        ("UNKNOWN", "(line 3)", f"line 3: {quiet_line}"),
        ("OK", server.address, table_rows(done.stdout)[4][2]),
    ]
