"""What reaches a real Icinga 2, and when: each result as its check ends, with the check's
own times, never under a label another line owns, beside a stalled sink; and a
certificate that names another host explained."""

from __future__ import annotations

import re
import subprocess
import time
from typing import TYPE_CHECKING

import pytest
from support.fleet import PREFIX, FifoReader, api_options, fleet, fleet_file
from support.paths import FLEET

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.daemons.icinga2_api import Icinga2Api
    from support.servers import HealthServer, HoldingServicer

pytestmark = pytest.mark.slow


def test_icinga2_drops_a_result_whose_check_started_before_its_own_last_one(
    icinga2_api: Icinga2Api,
) -> None:
    """Why a result must reach Icinga 2 soon after its check: Icinga 2 (2.13, as
    ``Checkable::ProcessCheckResult``) keeps a result only when its ``execution_start`` is
    not older than that of the last result it has, and still answers 200."""
    name = icinga2_api.create_service("order!grpc-late")
    now = time.time()

    def submit(output: str, started: float) -> int:
        body = {
            "type": "Service",
            "service": name,
            "exit_status": 0,
            "plugin_output": output,
            "execution_start": started,
            "execution_end": started + 0.01,
        }
        answer = icinga2_api.request("POST", "/v1/actions/process-check-result", body)
        return answer.status

    assert submit("checked second", now - 5) == 200
    assert submit("checked first, sent late", now - 10) == 200
    assert icinga2_api.service(name).output == "checked second"


def test_a_result_goes_in_when_its_check_ends_not_when_the_slowest_does(
    icinga2_api: Icinga2Api,
    tmp_path: Path,
    server: HealthServer,
    held: tuple[HoldingServicer, str],
) -> None:
    # A new service's first check (the template's "passive": UNKNOWN) comes at a random
    # moment within a minute of its creation. Here it is due 4 s from now, while a slow
    # line still holds the fleet: a result sent only after that line would be older than
    # Icinga's own and dropped (see the test above). A result sent when its check ends
    # moves the next check a ttl away before it is due.
    servicer, slow = held
    fast_name = icinga2_api.create_service("order!grpc-fast")
    slow_name = icinga2_api.create_service("order!grpc-slow")
    path = fleet_file(tmp_path, f"{fast_name}: -H {server.address}\n{slow_name}: -H {slow} -t 20\n")
    own_check = time.time() + 4
    icinga2_api.request(
        "POST",
        "/v1/actions/reschedule-check",
        {"type": "Service", "service": fast_name, "next_check": own_check},
    )
    process = subprocess.Popen(
        [FLEET, "-t", "30", *api_options(icinga2_api), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert servicer.entered.wait(20)
        while time.time() < own_check + 2:  # Icinga's own check is due, and then some
            time.sleep(0.1)
    finally:
        servicer.release.set()
    _, stderr = process.communicate(timeout=60)
    assert (process.returncode, stderr) == (0, "")
    fast = icinga2_api.service(fast_name)
    assert (fast.state, fast.active) == (0, False)
    assert fast.output.startswith(f"GRPC_HEALTH OK - {server.address}: overall health is SERVING")
    assert fast.next_check - fast.last_check == pytest.approx(300, abs=5)  # the ttl's
    assert icinga2_api.service(slow_name).output.startswith(f"GRPC_HEALTH OK - {slow}: ")


def test_the_execution_times_are_the_checks_own(
    icinga2_api: Icinga2Api, tmp_path: Path, start_server: Callable[..., HealthServer]
) -> None:
    server = start_server(statuses={"": 1, "a": 1, "b": 1})
    name = icinga2_api.create_service("times!grpc-a")
    path = fleet_file(tmp_path, f"{name}: -H {server.address} -s a -s b\n")
    before = time.time()
    done = fleet(str(path), *api_options(icinga2_api))
    assert (done.returncode, done.stderr) == (0, "")
    stored = icinga2_api.service(name)
    assert stored.check_result is not None
    started = stored.check_result["execution_start"]
    ended = stored.check_result["execution_end"]
    took = next(item for item in stored.performance_data if item.startswith("time="))
    measured = float(re.fullmatch(r"time=([0-9.]+)s;;;0", took)[1])  # type: ignore[index]
    assert before < started < ended
    # Icinga's execution time is the perfdata's time (rounded to a microsecond), not
    # that plus the time the fleet took to judge and word the result.
    assert ended - started == pytest.approx(measured, abs=2e-6)


def test_a_repeated_label_is_reported_and_submits_nothing(
    icinga2_api: Icinga2Api, tmp_path: Path, server: HealthServer
) -> None:
    name = icinga2_api.create_service("dup!grpc-orders")
    path = fleet_file(
        tmp_path,
        f"{name}: -H {server.address} -s ready\n"
        f"{name}: -H {server.address} -s down\n"
        f"{name}: -H {server.address} -s unknown\n",
    )
    done = fleet(str(path), *api_options(icinga2_api))
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"{PREFIX}icinga2-api: lines 2, 3 repeat the label of an earlier line, so their "
        "results are not submitted (2 results not delivered)"
    ]
    rows = [line.split(None, 2) for line in done.stdout.splitlines()[1:-1]]
    assert [row[0] for row in rows] == ["OK", "UNKNOWN", "UNKNOWN"]
    assert rows[1][2].endswith(f"line 2: label {name} is already used on line 1")
    stored = icinga2_api.service(name)
    assert (stored.state, stored.active) == (0, False)
    assert stored.output.startswith(f"GRPC_HEALTH OK - {server.address}: service 'ready'")


def test_a_stalled_command_pipe_does_not_starve_the_api_beside_it(
    icinga2_api: Icinga2Api, tmp_path: Path, start_server: Callable[..., HealthServer]
) -> None:
    # 60 commands of about 2 KiB each: more than the pipe holds, and its reader never reads.
    services = [f"shop.v1.{'Orders' * 25}{n}" for n in range(5)]
    server = start_server(statuses={"": 1, **dict.fromkeys(services, 1)})
    names = [icinga2_api.create_service(f"stall!grpc-{n}") for n in range(60)]
    each = " ".join(f"-s {service}" for service in services)
    path = fleet_file(tmp_path, "".join(f"{name}: -H {server.address} {each}\n" for name in names))
    fifo = FifoReader(tmp_path / "icinga2.cmd")
    try:
        done = fleet(
            "-q", "-t", "10", "--command-file", str(fifo.path), *api_options(icinga2_api), str(path)
        )
    finally:
        fifo.close()
    assert (done.returncode, done.stdout) == (3, "")
    problems = done.stderr.splitlines()
    assert len(problems) == 2
    assert re.fullmatch(
        rf"{PREFIX}command-file: writing to '{fifo.path}': the pipe stayed full until the "
        r"fleet's deadline \(-t\) \([0-9]+ results not delivered\)",
        problems[0],
    )
    assert problems[1].startswith(
        f"{PREFIX}command-file: still unread in '{fifo.path}' at the fleet's deadline (-t): "
    )
    for name in names:
        stored = icinga2_api.service(name)
        assert (stored.state, stored.active) == (0, False), name


def test_a_certificate_for_another_name_is_explained(
    icinga2_api: Icinga2Api, tmp_path: Path, server: HealthServer
) -> None:
    """Icinga's CA issues a node's certificate for the node's name alone: ``localhost``
    fails the host name check although the CA given is the right one."""
    path = fleet_file(tmp_path, f"web1!grpc-orders: -H {server.address}\n")
    url = f"https://localhost:{icinga2_api.port}"
    done = fleet(str(path), *api_options(icinga2_api, url=url))
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"{PREFIX}icinga2-api: {url}: the API's certificate is not valid for localhost; it "
        f"names {icinga2_api.node_name}, 127.0.0.1. Icinga's CA issues a node's certificate "
        "for the node's name: use that name in --icinga2-api (1 result not delivered)"
    ]


def test_trace_lines_from_parallel_connections_stay_whole(
    icinga2_api: Icinga2Api, tmp_path: Path, server: HealthServer
) -> None:
    # Services that do not exist: Icinga answers 404 at once, and the trace is the same.
    path = fleet_file(
        tmp_path, "".join(f"ghost{n % 7}!grpc-{n}: -H {server.address}\n" for n in range(400))
    )
    done = fleet("-q", "-v", str(path), *api_options(icinga2_api))
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    traced = [line for line in lines if " POST " in line]
    pattern = re.compile(
        rf"{PREFIX}icinga2-api: POST /v1/actions/process-check-result ghost[0-9]!grpc-[0-9]+: 404"
    )
    assert [line for line in traced if not pattern.fullmatch(line)] == []
    assert len(traced) == 400
    assert lines[-1] == f"{PREFIX}icinga2-api: 0 results delivered"
