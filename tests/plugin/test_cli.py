"""The installed ``check_grpc_health`` console script, end to end, as a monitoring core runs it.

Each test starts the real executable against real servers and asserts stdout, stderr
and the exit code: plugin output, JSON, quiet mode, signals, the overall timeout, and
secrets that must never be printed.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
from grpc_health.v1 import health
from support.paths import PLUGIN
from support.plugin import plugin_env, run
from support.servers import NOT_SERVING, HeaderRecordingServicer

from check_grpc_health.plugin.options import BACKSTOP_LEAD

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import TlsMaterial
    from support.servers import HealthServer, HoldingServicer

SECRET = "Bearer s3cret-token-value"


class EchoingDenyServicer(health.HealthServicer):
    """A careless server that echoes the caller's token in its error details."""

    def Check(self, request: Any, context: Any) -> Any:
        token = dict(context.invocation_metadata()).get("authorization", "")
        context.abort(__import__("grpc").StatusCode.PERMISSION_DENIED, f"token {token} denied")


def test_exit_codes_and_status_lines(server: HealthServer) -> None:
    ok = run("-H", server.address)
    assert ok.returncode == 0
    assert ok.stdout.startswith(f"GRPC_HEALTH OK - {server.address}: overall health is SERVING")
    assert ok.stdout.count("\n") == 1
    assert ok.stderr == ""
    warning = run("-H", server.address, "-s", "down", "--map-status", "NOT_SERVING=WARNING")
    assert warning.returncode == 1
    assert warning.stdout.startswith(
        f"GRPC_HEALTH WARNING - {server.address}: service 'down' is NOT_SERVING | "
    )
    critical = run("-H", server.address, "-s", "down")
    assert critical.returncode == 2
    assert critical.stdout.startswith(
        f"GRPC_HEALTH CRITICAL - {server.address}: service 'down' is NOT_SERVING | "
    )
    unknown = run("-H", server.address, "-t", "soon")
    assert (unknown.returncode, unknown.stdout, unknown.stderr) == (
        3,
        "GRPC_HEALTH UNKNOWN - -t/--timeout 'soon' is not a number of seconds\n",
        "",
    )


def test_bad_arguments_never_exit_2_or_print_usage() -> None:
    missing = run()
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        3,
        "GRPC_HEALTH UNKNOWN - the following arguments are required: -H/--host\n",
        "",
    )
    positional = run("-H", ":1", "-m", "authorization: Bearer", "s3cret")
    assert positional.returncode == 3
    assert "s3cret" not in positional.stdout
    assert positional.stderr == ""


def test_refused_is_critical_and_grpc_logs_nothing_to_stderr(
    closed_address: str, server: HealthServer
) -> None:
    refused = run("-H", closed_address)
    assert refused.returncode == 2
    assert refused.stdout.startswith(
        f"GRPC_HEALTH CRITICAL - failed to connect to {closed_address}"
    )
    assert refused.stderr == ""
    # A failed TLS handshake makes grpc log on stderr unless told not to.
    tls = run("-H", server.address, "--tls")
    assert tls.returncode == 2
    assert tls.stderr == ""


def test_help_and_version() -> None:
    version = run("-V")
    assert (version.returncode, version.stdout) == (0, "check_grpc_health 0.1.0\n")
    helped = run("--help")
    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: check_grpc_health [-h] -H ADDRESS")
    for option in ("--map-status", "--metadata-env", "--cert-warning", "--json", "--quiet"):
        assert option in helped.stdout


def test_json_output(server: HealthServer) -> None:
    done = run("-H", server.address, "-s", "", "-s", "down", "-s", "gone", "--json")
    assert done.returncode == 2
    assert done.stdout.count("\n") == 1
    document = json.loads(done.stdout)
    assert document["state"] == "CRITICAL"
    assert document["exit_code"] == 2
    assert document["target"] == server.address
    assert document["summary"] == (
        f"{server.address}: service 'down' is NOT_SERVING, unknown service 'gone' (NOT_FOUND)"
    )
    services = [{k: v for k, v in item.items() if k != "rpc_time"} for item in document["services"]]
    assert services == [
        {"service": "", "status": "SERVING", "state": "OK", "error": None},
        {"service": "down", "status": "NOT_SERVING", "state": "CRITICAL", "error": None},
        {
            "service": "gone",
            "status": None,
            "state": "CRITICAL",
            "error": {"code": "NOT_FOUND", "message": "unknown service 'gone' (NOT_FOUND)"},
        },
    ]
    assert 0 < document["connect_time"] <= document["time"]
    assert 0 < document["rpc_time"] <= document["time"]
    assert document["certificate"] is None
    assert document["error"] is None
    assert "serving_down=0;;;0;1" in document["perfdata"]


def test_json_for_failures_and_bad_arguments(closed_address: str) -> None:
    refused = run("-H", closed_address, "--json")
    assert refused.returncode == 2
    document = json.loads(refused.stdout)
    assert document["state"] == "CRITICAL"
    assert document["services"] == []
    assert document["connect_time"] is None
    assert document["error"] == f"failed to connect to {closed_address}: Connection refused"
    assert document["diagnosis"] == {
        "kind": "refused",
        "cause": "Connection refused",
        "hint": None,
        "proxy": None,
    }
    assert document["time"] > 0
    bad = run("-H", closed_address, "--json", "-w", "x")
    assert bad.returncode == 3
    assert json.loads(bad.stdout) == {
        "state": "UNKNOWN",
        "exit_code": 3,
        "summary": "-w/--warning 'x' is not a Nagios range (e.g. 0.5, 10:, ~:1 or @0.2:0.4)",
        "error": "-w/--warning 'x' is not a Nagios range (e.g. 0.5, 10:, ~:1 or @0.2:0.4)",
        "target": None,
        "services": [],
        "time": None,
        "connect_time": None,
        "rpc_time": None,
        "wait": None,
        "certificate": None,
        "perfdata": "",
        "diagnosis": None,
        "backends": [],
        "healthy": None,
        "total": None,
    }


def test_json_certificate_facts(tls_server: HealthServer, tls_material: TlsMaterial) -> None:
    done = run(
        "-H",
        tls_server.address,
        "--ca-cert",
        str(tls_material.ca_cert),
        "--server-name",
        tls_material.server_name,
        "--cert-warning",
        "30",
        "--json",
    )
    assert done.returncode == 0, done.stdout
    certificate = json.loads(done.stdout)["certificate"]
    assert certificate["subject"].startswith("O=trustme")
    assert certificate["issuer"].startswith("O=trustme")
    assert "DNS:health.example.test" in certificate["sans"]
    assert certificate["days_left"] > 30
    assert certificate["not_after"].endswith("+00:00")
    assert certificate["tls_version"] == "TLS 1.3"


def test_verbose_names_the_certificate_and_tls_version(
    tls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    expires = tls_material.server_expires
    ca = str(tls_material.ca_cert)
    done = run("-H", tls_server.address, "--ca-cert", ca, "--cert-warning", "30", "-v")
    assert done.returncode == 0, done.stdout
    line = next(item for item in done.stdout.splitlines() if item.startswith("certificate: "))
    assert line.startswith("certificate: subject O=trustme")
    assert line.endswith(f"expires {expires:%Y-%m-%d %H:%M:%S} UTC, TLS 1.3")


def test_quiet_prints_nothing_when_ok(server: HealthServer) -> None:
    ok = run("-H", server.address, "--quiet")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    critical = run("-H", server.address, "-s", "down", "-q")
    assert critical.returncode == 2
    assert critical.stdout.startswith("GRPC_HEALTH CRITICAL - ")


def test_verbosity_levels(server: HealthServer) -> None:
    quiet_lines = run("-H", server.address).stdout.splitlines()
    assert len(quiet_lines) == 1
    one = run("-H", server.address, "-v").stdout.splitlines()
    assert one[1].startswith("OK: overall health is SERVING (")
    assert one[2].startswith("connect_time ")
    assert len(one) == 3
    two = run("-H", server.address, "-vv", "-m", "x-team: sre").stdout.splitlines()
    assert two[3:] == [
        f"target {server.address}, plaintext",
        "timeouts: connect 5s, rpc 5s, overall 10s",
        "services: ''",
        "metadata keys (values hidden): x-team",
    ]
    three = run("-H", server.address, "-vvv").stdout.splitlines()
    assert f"probing {server.address} (grpc target {server.address})" in three
    assert "service '': SERVING" in three


def test_secrets_never_appear_at_any_verbosity(
    start_server: Callable[..., HealthServer], tmp_path: Path
) -> None:
    recording = HeaderRecordingServicer()
    address = start_server(servicer=recording).address
    headers = tmp_path / "headers"
    headers.write_text(f"x-file-token: {SECRET}-file\n")
    env = plugin_env(API_TOKEN=f"{SECRET}-env")
    common = ["-H", address, "-m", f"authorization: {SECRET}"]
    common += ["--metadata-file", str(headers), "--metadata-env", "x-env-token:API_TOKEN"]
    for extra in ([], ["-v"], ["-vv"], ["-vvv"], ["--json"]):
        done = run(*common, *extra, env=env)
        assert done.returncode == 0, done.stdout
        assert "s3cret" not in done.stdout + done.stderr
    seen = recording.seen[-1]
    assert seen["authorization"] == SECRET
    assert seen["x-file-token"] == f"{SECRET}-file"
    assert seen["x-env-token"] == f"{SECRET}-env"


def test_a_server_echoing_the_token_does_not_leak_it(
    start_server: Callable[..., HealthServer],
) -> None:
    address = start_server(servicer=EchoingDenyServicer()).address
    for extra in ([], ["--json"]):
        done = run("-H", address, "-m", f"authorization: {SECRET}", *extra)
        assert done.returncode == 2
        assert "s3cret" not in done.stdout
        assert "token <hidden> denied" in done.stdout


def test_user_agent_reaches_the_server_and_gzip_works(
    start_server: Callable[..., HealthServer],
) -> None:
    recording = HeaderRecordingServicer()
    address = start_server(servicer=recording).address
    done = run("-H", address, "--user-agent", "nagios-check/1.0", "--gzip")
    assert done.returncode == 0
    assert recording.seen[-1]["user-agent"].startswith("nagios-check/1.0")


@pytest.mark.parametrize(("sig", "name"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_signal_during_the_rpc_prints_one_line_and_exits_unknown(
    held: tuple[HoldingServicer, str], sig: signal.Signals, name: str
) -> None:
    servicer, address = held
    process = subprocess.Popen(
        [PLUGIN, "-H", address, "-t", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=plugin_env(),
    )
    assert servicer.entered.wait(20)
    started = time.monotonic()
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=10)
    assert time.monotonic() - started < 3
    assert (process.returncode, stdout, stderr) == (
        3,
        f"GRPC_HEALTH UNKNOWN - interrupted by {name}\n",
        "",
    )


def test_signal_in_json_mode_prints_json(held: tuple[HoldingServicer, str]) -> None:
    servicer, address = held
    process = subprocess.Popen(
        [PLUGIN, "-H", address, "--json"], stdout=subprocess.PIPE, text=True, env=plugin_env()
    )
    assert servicer.entered.wait(20)
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=10)
    assert process.returncode == 3
    document = json.loads(stdout)
    assert (document["state"], document["exit_code"], document["summary"]) == (
        "UNKNOWN",
        3,
        "interrupted by SIGTERM",
    )


def test_overall_timeout_is_a_hard_backstop(held: tuple[HoldingServicer, str]) -> None:
    _, address = held
    started = time.monotonic()
    done = run("-H", address, "-t", "0.5", "--rpc-timeout", "20")
    assert time.monotonic() - started < 3
    assert (done.returncode, done.stderr) == (2, "")
    # The elapsed time goes to the graphs, as the plugin's normal time perfdata.
    line = re.fullmatch(
        r"GRPC_HEALTH CRITICAL - no result within the 0\.5s timeout \(-t\) \| "
        r"time=(0\.[0-9]{1,6})s;;;0\n",
        done.stdout,
    )
    assert line is not None, done.stdout
    # The backstop fires a margin before -t, which counts from the process's start.
    assert 0.5 - BACKSTOP_LEAD <= float(line.group(1)) < 3


def test_overall_timeout_line_carries_time_with_the_thresholds(
    held: tuple[HoldingServicer, str],
) -> None:
    _, address = held
    done = run("-H", address, "-t", "0.5", "--rpc-timeout", "20", "-w", "0.2", "-c", "@0.1:0.3")
    assert done.returncode == 2
    assert re.fullmatch(
        r"GRPC_HEALTH CRITICAL - no result within the 0\.5s timeout \(-t\) \| "
        r"time=0\.[0-9]{1,6}s;0\.2;@0\.1:0\.3;0\n",
        done.stdout,
    ), done.stdout
    as_json = run("-H", address, "-t", "0.5", "--rpc-timeout", "20", "-w", "0.2", "--json")
    assert as_json.returncode == 2
    document = json.loads(as_json.stdout)
    assert (document["state"], document["exit_code"], document["summary"]) == (
        "CRITICAL",
        2,
        "no result within the 0.5s timeout (-t)",
    )
    assert document["target"] == address
    assert 0.5 - BACKSTOP_LEAD <= document["time"] < 3
    assert document["perfdata"] == f"time={document['time']}s;0.2;;0"


def test_overall_timeout_sets_the_grpc_deadlines(black_hole_address: str) -> None:
    # The connect deadline, half of -t, ends well before -t on a loaded machine too.
    started = time.monotonic()
    done = run("-H", black_hole_address, "-t", "4")
    assert time.monotonic() - started < 4
    assert done.returncode == 2
    assert done.stdout.startswith(
        f"GRPC_HEALTH CRITICAL - timed out connecting to {black_hole_address} after 2s: "
        "the server accepted the TCP connection but sent no HTTP/2 settings (overloaded, or "
        "not a gRPC server); use a longer --connect-timeout, or check the port in -H | time="
    )


def test_several_services_get_one_long_output_line_each(server: HealthServer) -> None:
    server.set("batch", NOT_SERVING)
    done = run("-H", server.address, "-s", "ready", "-s", "batch")
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"GRPC_HEALTH CRITICAL - {server.address}: service 'batch' is")
    assert " | " in lines[0]
    assert [line.split(" (")[0] for line in lines[1:]] == [
        "OK: service 'ready' is SERVING",
        "CRITICAL: service 'batch' is NOT_SERVING",
    ]


def test_unix_socket(unix_server: HealthServer) -> None:
    done = run("-H", unix_server.address)
    assert done.returncode == 0
    assert done.stdout.startswith(f"GRPC_HEALTH OK - {unix_server.address}: overall health is")


BROKEN_CHECK = """
import sys
import check_grpc_health.plugin.main as plugin
from check_grpc_health import entry

def broken(options):
    raise RuntimeError("an unexpected bug, with a s3cr3t")

plugin.build_check = broken
sys.argv[0] = "check_grpc_health"
entry.plugin()
"""
INTERNAL_ERROR = (
    r"internal error: RuntimeError in check_grpc_health\.plugin\.main line \d+ "
    r"\(a bug: please report it\)"
)


@pytest.mark.parametrize("extra", [[], ["-vvv"], ["--json"]])
def test_an_unexpected_error_is_one_unknown_line_in_every_mode(
    server: HealthServer, extra: list[str]
) -> None:
    """The console script's last resort: no traceback, even with -vvv, and not the
    exception's message (it could hold a value the plugin never prints)."""
    done = subprocess.run(
        [sys.executable, "-c", BROKEN_CHECK, "-H", server.address, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=plugin_env(),
        check=False,
    )
    assert (done.returncode, done.stderr) == (3, "")
    assert "s3cr3t" not in done.stdout
    if extra == ["--json"]:
        document = json.loads(done.stdout)
        assert document["state"] == "UNKNOWN"
        assert re.fullmatch(INTERNAL_ERROR, document["error"]), document["error"]
    else:
        assert re.fullmatch(f"GRPC_HEALTH UNKNOWN - {INTERNAL_ERROR}\n", done.stdout), done.stdout


SLOW_EXIT = """
import sys, time
import nagiosplugin.runtime
import check_grpc_health.plugin.main as plugin

exit_now = nagiosplugin.runtime.Runtime.sysexit

def slow_exit(self):
    time.sleep(2.5)  # a teardown that outlasts -t
    exit_now(self)

nagiosplugin.runtime.Runtime.sysexit = slow_exit
plugin.main(sys.argv[1:])
"""


def test_once_the_result_is_printed_the_timeout_cannot_add_a_line(server: HealthServer) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SLOW_EXIT, "-H", server.address, "-t", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=plugin_env(),
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith(f"GRPC_HEALTH OK - {server.address}: ")
    assert done.stdout.count("\n") == 1
