"""``check_grpc_health --wait``: wait for SERVING inside ``-t``, then judge as the plugin does.

The checks run in-process through ``build_check`` against real servers that flip, come up
late or never answer; one end-to-end run of the console script checks the printed line.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from typing import TYPE_CHECKING

import nagiosplugin
import pytest
from support.paths import PLUGIN
from support.plugin import output_lines
from support.servers import NOT_SERVING, SERVING, closed_port

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.plugin.arguments import parse_arguments
from check_grpc_health.plugin.check import build_check

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import TlsMaterial
    from support.servers import HealthServer


def judge(*argv: str) -> nagiosplugin.Check:
    check = build_check(parse_arguments(argv))
    check()
    return check


def perfdata(check: nagiosplugin.Check) -> dict[str, float]:
    values = {}
    for item in check.perfdata:
        label, _, rest = item.partition("=")
        values[label] = float(re.match(r"[0-9.]+", rest).group())  # type: ignore[union-attr]
    return values


def later(seconds: float, action: Callable[[], object]) -> None:
    threading.Timer(seconds, action).start()


def test_waits_for_the_flip_and_reports_how_long(server: HealthServer) -> None:
    server.set("app", NOT_SERVING)
    later(1.5, lambda: server.set("app", SERVING))  # a second after the wait starts
    check = judge("-H", server.address, "-s", "app", "--wait", "10", "-t", "15")
    assert check.state == nagiosplugin.Ok
    values = perfdata(check)
    assert set(values) == {"connect_time", "rpc_time", "time", "wait"}
    assert 0.5 <= values["wait"] < 10
    assert re.fullmatch(
        rf"{re.escape(server.address)}: service 'app' is SERVING in [0-9.]+s "
        r"after waiting [0-9.]+s",
        check.summary_str,
    )


def test_a_server_that_comes_up_late(start_server: Callable[..., HealthServer]) -> None:
    port = closed_port()
    later(1.0, lambda: start_server(port=port))
    check = judge("-H", f"127.0.0.1:{port}", "--wait", "10", "-t", "15")
    assert check.state == nagiosplugin.Ok


def test_still_not_serving_when_the_wait_runs_out_is_critical(server: HealthServer) -> None:
    started = time.monotonic()
    check = judge("-H", server.address, "-s", "down", "--wait", "1", "-t", "5")
    assert time.monotonic() - started >= 1.0
    assert check.state == nagiosplugin.Critical
    assert check.summary_str.startswith(f"{server.address}: service 'down' is NOT_SERVING")
    assert 1.0 <= perfdata(check)["wait"] < 2.0


def test_map_status_and_thresholds_are_the_plugins(server: HealthServer) -> None:
    check = judge(
        "-H", server.address, "-s", "down", "--wait", "1.5", "--map-status", "NOT_SERVING=WARNING"
    )
    assert check.state == nagiosplugin.Warn
    slow = judge("-H", server.address, "--wait", "1", "-w", "0.0000001")
    assert slow.state == nagiosplugin.Warn
    assert "wait=" in " ".join(slow.perfdata)


def test_refused_until_the_end_is_critical_with_the_reason(closed_address: str) -> None:
    check = judge("-H", closed_address, "--wait", "0.7", "-t", "3")
    assert check.state == nagiosplugin.Critical
    assert check.summary_str.startswith(f"failed to connect to {closed_address}: ")
    assert "Connection refused after waiting " in check.summary_str


def test_unknown_service_is_critical_as_without_wait(server: HealthServer) -> None:
    waited = judge("-H", server.address, "-s", "nope", "--wait", "0.5")
    once = judge("-H", server.address, "-s", "nope")
    assert waited.state == once.state == nagiosplugin.Critical
    assert waited.summary_str.startswith(once.summary_str)


def test_certificate_days_still_come_with_wait(
    tls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    check = judge(
        "-H",
        tls_server.address,
        "--ca-cert",
        str(tls_material.ca_cert),
        "--server-name",
        tls_material.server_name,
        "--cert-warning",
        "30",
        "--wait",
        "2",
    )
    assert check.state == nagiosplugin.Ok
    assert 88 < perfdata(check)["cert_days"] <= 90


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--wait", "10"], "--wait '10' must be less than -t/--timeout (10 seconds)"),
        (["--wait", "5", "-t", "4"], "--wait '5' must be less than -t/--timeout (4 seconds)"),
        (["--wait", "0"], "--wait must be a finite number above zero (got 0.0)"),
        (["--wait", "soon"], "--wait 'soon' is not a number of seconds"),
        (
            ["--wait", "3", "-t", "5", "--rpc-timeout", "3"],
            "--wait 3 plus --rpc-timeout 3 exceed -t 5: the last Check would not fit",
        ),
        (["--wait", "1", "--all-services"], "--wait waits for the services named with -s"),
        (["--wait", "1", "--all-addresses"], "--wait waits for the services named with -s"),
    ],
)
def test_bad_wait_is_an_argument_error(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_arguments(["-H", "127.0.0.1:1", *argv])
    assert str(caught.value).startswith(message)


def test_wait_shares_what_is_left_of_t_between_the_deadlines() -> None:
    options = parse_arguments(["-H", "127.0.0.1:1", "--wait", "6", "-t", "10"])
    assert options.wait == 6
    assert (options.probe.connect_timeout, options.probe.rpc_timeout) == (2, 2)


def test_console_script_prints_one_line_with_wait_perfdata(server: HealthServer) -> None:
    server.set("app", NOT_SERVING)
    later(0.5, lambda: server.set("app", SERVING))
    done = subprocess.run(
        [PLUGIN, "-H", server.address, "-s", "app", "--wait", "10", "-t", "12"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    pattern = (
        rf"GRPC_HEALTH OK - {re.escape(server.address)}: service 'app' is SERVING in "
        r"[0-9.]+s after waiting [0-9.]+s \| connect_time=[0-9.]+s;;;0 rpc_time=[0-9.]+s;;;0 "
        r"time=[0-9.]+s;;;0 wait=[0-9.]+s;;;0\n"
    )
    assert re.fullmatch(pattern, done.stdout), done.stdout


def test_json_says_how_long_the_check_waited(server: HealthServer) -> None:
    from check_grpc_health.plugin.document import json_document

    server.set("app", NOT_SERVING)
    later(1.5, lambda: server.set("app", SERVING))  # a second after the wait starts
    waited = json_document(judge("-H", server.address, "-s", "app", "--wait", "10", "-t", "12"))
    assert waited["state"] == "OK"
    assert 0.3 <= waited["wait"] < 10
    assert f"wait={waited['wait']:.6f}".rstrip("0") in waited["perfdata"]
    assert json_document(judge("-H", server.address, "-s", "app"))["wait"] is None


def test_each_services_rpc_time_is_its_checks_when_the_wait_runs_out(server: HealthServer) -> None:
    from check_grpc_health.plugin.document import json_document

    server.set("app", SERVING)
    server.set("batch", NOT_SERVING)
    check = judge("-H", server.address, "-s", "app", "-s", "batch", "--wait", "1.5", "-t", "5")
    document = json_document(check)
    assert document["state"] == "CRITICAL"
    services = {item["service"]: item for item in document["services"]}
    assert [services[name]["status"] for name in ("app", "batch")] == ["SERVING", "NOT_SERVING"]
    assert all(item["rpc_time"] > 0 for item in services.values()), services
    details = output_lines(check)[1:]
    assert [re.sub(r" \([0-9.]+s\)$", "", line) for line in details] == [
        "OK: service 'app' is SERVING",
        "CRITICAL: service 'batch' is NOT_SERVING",
    ]
    assert not any(line.endswith("(0s)") for line in details)
