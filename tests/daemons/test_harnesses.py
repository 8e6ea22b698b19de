"""The monitoring daemons of tests/support/daemons/, proven with nothing but the daemons themselves.

Each test speaks a daemon's own protocol by hand (http.client for the Icinga 2 API, a
``write()`` to a command pipe, a textfile for node_exporter) and reads the result back
from the daemon. These are the contracts that the fleet's outputs must meet.

Locally the tests skip when a daemon is not installed; with ``CI`` set they fail instead.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import ssl
import time
from typing import TYPE_CHECKING

import pytest
from support.daemons.icinga2 import icinga2_binary
from support.daemons.icinga2_api import (
    ICINGA2_PASSIVE_DISABLED,
    ICINGA2_SERVICES,
    ICINGA2_WITHOUT_FRESHNESS,
    Icinga2Api,
)
from support.daemons.nagios import (
    NAGIOS_PASSIVE_DISABLED,
    NAGIOS_SERVICES,
    NAGIOS_STALE_OUTPUT,
    NAGIOS_STALE_SERVICE,
    Nagios4,
    nagios4_binary,
)
from support.daemons.prometheus import NodeExporter, node_exporter_binary, promtool_binary

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.slow

SUBMIT = "/v1/actions/process-check-result"


# -- Icinga 2: the REST API ----------------------------------------------------------------


def api_connection(api: Icinga2Api, ca_file: Path | None = None) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(ca_file or api.ca_file))
    return http.client.HTTPSConnection("127.0.0.1", api.port, context=context, timeout=10)


def fleet_headers(api: Icinga2Api, password: str | None = None) -> dict[str, str]:
    if password is None:
        password = api.password_file.read_text().rstrip("\n")
    token = base64.b64encode(f"{api.user}:{password}".encode()).decode()
    return {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Authorization": f"Basic {token}",
    }


def post(
    connection: http.client.HTTPConnection, path: str, body: object, headers: dict[str, str]
) -> tuple[int, dict[str, str], str]:
    connection.request("POST", path, json.dumps(body), headers)
    answer = connection.getresponse()
    return answer.status, dict(answer.getheaders()), answer.read().decode()


def processed(name: str) -> dict[str, object]:
    return {
        "results": [
            {"code": 200, "status": f"Successfully processed check result for object '{name}'."}
        ]
    }


def test_icinga2_api_stores_a_passive_result_as_submitted(icinga2_api: Icinga2Api) -> None:
    name = "web1!grpc-orders"
    start = time.time() - 0.25
    end = time.time()
    connection = api_connection(icinga2_api)
    status, _, text = post(
        connection,
        SUBMIT,
        {
            "type": "Service",
            "service": name,
            "exit_status": 1,
            "plugin_output": "GRPC_HEALTH WARNING - web1:50051: slow\nOK: service 'a' is SERVING",
            "performance_data": ["time=0.25s;0.2;1;0", "'connect time'=0.01s", "serving_a=1"],
            "check_source": "fleet-runner-1",
            "check_command": ["check_grpc_health_fleet", "--file", "fleet.txt"],
            "execution_start": start,
            "execution_end": end,
            "ttl": 300,
        },
        fleet_headers(icinga2_api),
    )
    assert (status, json.loads(text)) == (200, processed(name))

    service = icinga2_api.service(name)
    assert (service.state, service.state_type) == (1, 1)
    assert service.output == "GRPC_HEALTH WARNING - web1:50051: slow\nOK: service 'a' is SERVING"
    assert service.performance_data == ["time=0.25s;0.2;1;0", "'connect time'=0.01s", "serving_a=1"]
    assert service.check_source == "fleet-runner-1"
    assert service.active is False
    result = service.check_result
    assert result is not None
    assert result["state"] == 1
    # Icinga 2.13 does not copy exit_status into the stored result: read "state".
    assert result["exit_status"] == 0
    assert result["command"] == ["check_grpc_health_fleet", "--file", "fleet.txt"]
    assert (result["execution_start"], result["execution_end"]) == pytest.approx((start, end))
    assert result["ttl"] == 300
    # The ttl moves the next (freshness) check; the service's own interval is a day.
    assert service.next_check == pytest.approx(time.time() + 300, abs=5)


def test_icinga2_api_keeps_the_connection_alive(icinga2_api: Icinga2Api) -> None:
    connection = api_connection(icinga2_api)
    sockets = []
    for index, name in enumerate(ICINGA2_SERVICES):
        status, headers, text = post(
            connection,
            SUBMIT,
            {"type": "Service", "service": name, "exit_status": 0, "plugin_output": f"ok {index}"},
            fleet_headers(icinga2_api),
        )
        assert (status, json.loads(text)) == (200, processed(name))
        assert "Connection" not in headers
        sockets.append(connection.sock)
    assert len(set(map(id, sockets))) == 1
    assert [icinga2_api.service(name).output for name in ICINGA2_SERVICES] == [
        f"ok {index}" for index in range(len(ICINGA2_SERVICES))
    ]


def test_icinga2_api_filter_addresses_the_same_service(icinga2_api: Icinga2Api) -> None:
    connection = api_connection(icinga2_api)
    status, _, text = post(
        connection,
        SUBMIT,
        {
            "type": "Service",
            "filter": "host.name == h && service.name == s",
            "filter_vars": {"h": "web2", "s": "grpc-orders"},
            "exit_status": 2,
            "plugin_output": "by filter",
            "performance_data": "time=1s rpc_time=0.5s",
        },
        fleet_headers(icinga2_api),
    )
    assert (status, json.loads(text)) == (200, processed("web2!grpc-orders"))
    service = icinga2_api.service("web2!grpc-orders")
    assert (service.state, service.output) == (2, "by filter")
    # A string is split as a plugin's perfdata would be.
    assert service.performance_data == ["time=1s", "rpc_time=0.5s"]


def test_icinga2_api_refusals(icinga2_api: Icinga2Api) -> None:
    connection = api_connection(icinga2_api)
    headers = fleet_headers(icinga2_api)
    result = {"exit_status": 0, "plugin_output": "x"}

    unknown = post(
        connection, SUBMIT, {"type": "Service", "service": "web1!nope", **result}, headers
    )
    assert (unknown[0], json.loads(unknown[2])) == (
        404,
        {"error": 404, "status": "No objects found."},
    )
    no_match = {"type": "Service", "filter": 'service.name == "nope"', **result}
    nothing = post(connection, SUBMIT, no_match, headers)
    assert (nothing[0], json.loads(nothing[2])) == (500, {"results": []})
    refused = post(
        connection,
        SUBMIT,
        {"type": "Service", "service": ICINGA2_PASSIVE_DISABLED, **result},
        headers,
    )
    assert (refused[0], json.loads(refused[2])) == (
        403,
        {
            "results": [
                {
                    "code": 403,
                    "status": "Passive checks are disabled for object 'web1!passive-disabled'.",
                }
            ]
        },
    )
    incomplete = post(
        connection,
        SUBMIT,
        {"type": "Service", "service": "web1!grpc-users", "plugin_output": "x"},
        headers,
    )
    assert (incomplete[0], json.loads(incomplete[2])) == (
        400,
        {"results": [{"code": 400, "status": "Parameter 'exit_status' is required."}]},
    )
    # The fleet's user lacks the permission: Icinga answers as for an unknown object.
    denied = post(
        connection,
        "/v1/actions/reschedule-check",
        {"type": "Service", "service": "web1!grpc-users"},
        headers,
    )
    assert (denied[0], json.loads(denied[2])) == (
        404,
        {"error": 404, "status": "No objects found."},
    )
    # All of these kept the connection open.
    assert "Connection" not in denied[1]


def test_icinga2_api_wrong_password_is_401_and_closes(icinga2_api: Icinga2Api) -> None:
    connection = api_connection(icinga2_api)
    status, headers, text = post(
        connection,
        SUBMIT,
        {"type": "Service", "service": "web1!grpc-users", "exit_status": 0, "plugin_output": "x"},
        fleet_headers(icinga2_api, password="not-the-password"),
    )
    assert (status, headers["Connection"]) == (401, "close")
    assert json.loads(text) == {
        "error": 401,
        "status": "Unauthorized. Please check your user credentials.",
    }


def test_icinga2_api_without_accept_json_is_400_and_closes(icinga2_api: Icinga2Api) -> None:
    connection = api_connection(icinga2_api)
    headers = {**fleet_headers(icinga2_api), "Accept": "*/*"}
    body = {"type": "Service", "service": "web1!grpc-users", "exit_status": 0, "plugin_output": "x"}
    status, answer_headers, text = post(connection, SUBMIT, body, headers)
    assert (status, answer_headers["Connection"]) == (400, "close")
    assert text == "<h1>Accept header is missing or not set to 'application/json'.</h1>"


def test_icinga2_api_untrusted_certificate_fails_the_handshake(icinga2_api: Icinga2Api) -> None:
    connection = api_connection(icinga2_api, ca_file=icinga2_api.other_ca_file)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        connection.request("GET", "/v1/status")


def test_icinga2_password_file_is_private_and_ends_with_a_newline(icinga2_api: Icinga2Api) -> None:
    assert icinga2_api.password_file.read_text() == icinga2_api.password + "\n"
    assert icinga2_api.password_file.stat().st_mode & 0o777 == 0o600


def test_icinga2_ttl_runs_out_into_the_freshness_check(icinga2_api: Icinga2Api) -> None:
    stale, silent = "web2!grpc-stale", ICINGA2_WITHOUT_FRESHNESS
    connection = api_connection(icinga2_api)
    for name in (stale, silent):
        body = {
            "type": "Service",
            "service": name,
            "exit_status": 0,
            "plugin_output": "fresh",
            "ttl": 1,
        }
        assert post(connection, SUBMIT, body, fleet_headers(icinga2_api))[0] == 200
    fresh = icinga2_api.service(stale)
    expired = icinga2_api.wait_for_result(stale, after=fresh, timeout=15)
    assert (expired.state, expired.output, expired.active) == (
        3,
        "No Passive Check Result Received.",
        True,
    )
    assert expired.performance_data == []
    # The same ttl, but active checks off: nothing ever replaces the last result.
    kept = icinga2_api.service(silent)
    assert (kept.state, kept.output, kept.active) == (0, "fresh", False)


def test_icinga2_create_service_at_run_time(icinga2_api: Icinga2Api) -> None:
    name = icinga2_api.create_service("web7!grpc-created")
    # Icinga would run the first check within a minute; the harness moved it a day on.
    assert icinga2_api.service(name).next_check > time.time() + 23 * 3600
    connection = api_connection(icinga2_api)
    body = {"type": "Service", "service": name, "exit_status": 2, "plugin_output": "created"}
    assert post(connection, SUBMIT, body, fleet_headers(icinga2_api))[0] == 200
    service = icinga2_api.service(name)
    assert (service.name, service.state, service.output) == (name, 2, "created")


# -- Icinga 2: the command pipe ------------------------------------------------------------


def write_command(pipe: Path, line: str) -> None:
    """One write() of one line, as a sink must do it (no reader: ENXIO, not a hang)."""
    fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    try:
        assert os.write(fd, line.encode()) == len(line.encode())
    finally:
        os.close(fd)


def test_icinga2_command_pipe_processes_a_passive_result(icinga2_api: Icinga2Api) -> None:
    name = "web1!grpc-payments"
    before = icinga2_api.service(name)
    write_command(
        icinga2_api.command_pipe,
        f"[{int(time.time())}] PROCESS_SERVICE_CHECK_RESULT;web1;grpc-payments;2;"
        "GRPC_HEALTH CRITICAL - down; really|time=0.5s;0.3;5;0 rpc_time=0.1s"
        "\\nsecond line|serving=0\n",
    )
    service = icinga2_api.wait_for_result(name, after=before)
    assert (service.state, service.active) == (2, False)
    # Text before each '|' is output (';' kept, the space before '|' too); the escaped
    # newline is a newline; perfdata from every line is joined.
    assert service.output == "GRPC_HEALTH CRITICAL - down; really\nsecond line"
    assert service.performance_data == ["time=0.5s;0.3;5;0", "rpc_time=0.1s", "serving=0"]
    assert service.check_source == icinga2_api.node_name


def test_icinga2_command_pipe_reports_an_unknown_service_in_its_log(
    icinga2_api: Icinga2Api,
) -> None:
    write_command(
        icinga2_api.command_pipe,
        f"[{int(time.time())}] PROCESS_SERVICE_CHECK_RESULT;web1;no-such-service;0;OK\n",
    )
    line = icinga2_api.daemon.wait_for(r"External command failed: .*no-such-service", timeout=10)
    assert line.string.endswith(
        "warning/ExternalCommandListener: External command failed: Error: Cannot process "
        "passive service check result for non-existent service 'no-such-service' on host 'web1'"
    )


def test_a_pipe_without_reader_refuses_a_non_blocking_open(tmp_path: Path) -> None:
    pipe = tmp_path / "icinga2.cmd"
    os.mkfifo(pipe)
    with pytest.raises(OSError, match="No such device or address"):
        write_command(pipe, "[0] PROCESS_SERVICE_CHECK_RESULT;h;s;0;x\n")


# -- Nagios 4 ------------------------------------------------------------------------------


def test_nagios4_command_file_processes_a_passive_result(nagios4: Nagios4) -> None:
    write_command(
        nagios4.command_file,
        f"[{int(time.time())}] PROCESS_SERVICE_CHECK_RESULT;web1;grpc-orders;1;"
        "GRPC_HEALTH WARNING - slow; very\\nsecond line|time=0.5s;0.3;5;0 rpc_time=0.1s\n",
    )
    result = nagios4.wait_for_result("web1!grpc-orders")
    assert (result.state, result.check_type) == (1, "PASSIVE")
    # Nagios turns each ';' in the output into ':'.
    assert result.output == "GRPC_HEALTH WARNING - slow: very"
    assert result.long_output == "second line"
    assert result.perfdata == "time=0.5s;0.3;5;0 rpc_time=0.1s"


def test_nagios4_status_file_follows(nagios4: Nagios4) -> None:
    write_command(
        nagios4.command_file,
        f"[{int(time.time())}] PROCESS_SERVICE_CHECK_RESULT;web2;grpc-orders;2;down|time=1s\n",
    )
    record = nagios4.wait_for_result("web2!grpc-orders")
    # status.dat is rewritten every second: the one wait here that has to poll a file.
    deadline = time.monotonic() + 10
    status = nagios4.status()["web2!grpc-orders"]
    while status != record and time.monotonic() < deadline:
        time.sleep(0.1)
        status = nagios4.status()["web2!grpc-orders"]
    assert status == record
    assert set(nagios4.status()) >= set(NAGIOS_SERVICES)


def test_nagios4_long_line_in_one_write(nagios4: Nagios4) -> None:
    """A line longer than PIPE_BUF (4096) is still whole when it goes in one write()
    and nobody else writes at the same time; Nagios 4.4 keeps all of it."""
    output = "OK " + "x" * 6000
    write_command(
        nagios4.command_file,
        f"[{int(time.time())}] PROCESS_SERVICE_CHECK_RESULT;web1;grpc-users;0;{output}|a=1\n",
    )
    result = nagios4.wait_for_result("web1!grpc-users")
    assert (result.state, result.output, result.perfdata) == (0, output, "a=1")


def test_nagios4_refusals_go_to_its_log(nagios4: Nagios4) -> None:
    now = int(time.time())
    host, _, service = NAGIOS_PASSIVE_DISABLED.partition("!")
    write_command(
        nagios4.command_file,
        f"[{now}] PROCESS_SERVICE_CHECK_RESULT;web1;no-such-service;0;OK\n"
        f"[{now}] PROCESS_SERVICE_CHECK_RESULT;{host};{service};0;OK\n"
        f"[{now}] PROCESS_SERVICE_CHECK_RESULT;web1;grpc-payments;9;odd\n",
    )
    # Commands are processed in order: once the last one has a result, the others are logged.
    assert nagios4.wait_for_result("web1!grpc-payments").state == 3
    log = nagios4.log_file.read_text()
    for refused in ("web1;no-such-service", f"{host};{service}"):
        assert f"Error: External command failed -> PROCESS_SERVICE_CHECK_RESULT;{refused};" in log


def test_nagios4_freshness_check(nagios4: Nagios4) -> None:
    result = nagios4.wait_for_result(NAGIOS_STALE_SERVICE, timeout=15)
    assert (result.state, result.check_type, result.output) == (3, "ACTIVE", NAGIOS_STALE_OUTPUT)


# -- node_exporter and promtool ------------------------------------------------------------

GOOD = """\
# HELP grpc_health_up Whether the check reached a verdict.
# TYPE grpc_health_up gauge
grpc_health_up{name="web1!grpc-orders"} 1
grpc_health_up{name="web2!grpc-orders"} 0
"""


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


def samples(exposition: str, prefix: str) -> list[str]:
    return [line for line in exposition.splitlines() if line.startswith(prefix)]


def test_node_exporter_serves_a_textfile(node_exporter: NodeExporter) -> None:
    path = node_exporter.textfile_dir / "grpc_health.prom"
    write_atomically(path, GOOD)
    # A file that does not end in .prom is not read: a temporary file is safe.
    (node_exporter.textfile_dir / "grpc_health.prom.tmp").write_text("half a fi")
    text = node_exporter.scrape()
    assert samples(text, "grpc_health_up") == [
        'grpc_health_up{name="web1!grpc-orders"} 1',
        'grpc_health_up{name="web2!grpc-orders"} 0',
    ]
    assert "# HELP grpc_health_up Whether the check reached a verdict." in text
    assert samples(text, "node_textfile_scrape_error") == ["node_textfile_scrape_error 0"]
    mtime = samples(text, "node_textfile_mtime_seconds")
    assert len(mtime) == 1
    assert re.fullmatch(
        rf'node_textfile_mtime_seconds\{{file="{re.escape(str(path))}"\}} [0-9.e+]+', mtime[0]
    )


def test_node_exporter_reports_a_malformed_textfile(node_exporter: NodeExporter) -> None:
    write_atomically(node_exporter.textfile_dir / "good.prom", GOOD)
    write_atomically(node_exporter.textfile_dir / "bad.prom", 'grpc_health_bad{name="x" 1\n')
    text = node_exporter.scrape()
    assert samples(text, "node_textfile_scrape_error") == ["node_textfile_scrape_error 1"]
    assert len(samples(text, "grpc_health_up{")) == 2
    assert samples(text, "grpc_health_bad") == []
    line = node_exporter.daemon.wait_for(r"failed to collect textfile data", timeout=10)
    assert 'file=bad.prom err="failed to parse textfile data' in line.string


def test_promtool_accepts_a_good_exposition(
    promtool_check_metrics: Callable[[str], tuple[int, str]],
) -> None:
    assert promtool_check_metrics(GOOD) == (0, "")


def test_promtool_rejects_lint_and_parse_errors(
    promtool_check_metrics: Callable[[str], tuple[int, str]],
) -> None:
    counter = "# HELP grpc_checks Checks.\n# TYPE grpc_checks counter\ngrpc_checks 3\n"
    assert promtool_check_metrics(counter) == (
        3,
        'grpc_checks counter metrics should have "_total" suffix\n',
    )
    milliseconds = "# HELP grpc_rpc_ms Time.\n# TYPE grpc_rpc_ms gauge\ngrpc_rpc_ms 3\n"
    assert promtool_check_metrics(milliseconds) == (
        3,
        "grpc_rpc_ms metric names should not contain abbreviated units\n",
    )
    code, output = promtool_check_metrics('grpc_bad{name="x" 1\n')
    assert (code, output) == (
        1,
        "error while linting: text format parsing error in line 1: "
        'unexpected end of label value "x"\n',
    )


# -- A missing daemon ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lookup", "name"),
    [
        (icinga2_binary, "icinga2"),
        (nagios4_binary, "nagios4"),
        (node_exporter_binary, "prometheus-node-exporter"),
        (promtool_binary, "promtool"),
    ],
)
def test_a_missing_daemon_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, lookup: Callable[[], str], name: str
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os.path, "exists", lambda path: False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"{name} is missing, and CI must run this"):
        lookup()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=f"{name} is not installed"):
        lookup()
