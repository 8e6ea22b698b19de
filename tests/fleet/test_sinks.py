"""The fleet's deliveries, each proven against its real daemon: Icinga 2's API and command
pipe, Nagios 4's command file, node_exporter's textfile collector and promtool."""

from __future__ import annotations

import os
import re
import threading
import time
from typing import TYPE_CHECKING

import pytest
from support.fleet import PREFIX, api_options, fleet, fleet_file, timing

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import TlsMaterial
    from support.daemons.icinga2_api import Icinga2Api
    from support.daemons.nagios import Nagios4
    from support.daemons.prometheus import NodeExporter
    from support.servers import HealthServer

# -- Icinga 2 REST API ---------------------------------------------------------------------


def test_icinga2_api_gets_each_labelled_result_with_output_and_perfdata(
    icinga2_api: Icinga2Api, tmp_path: Path, start_server: Callable[..., HealthServer]
) -> None:
    server = start_server(statuses={"": 1, "orders": 2})
    path = fleet_file(
        tmp_path,
        f"web1!grpc-orders: -H {server.address} -s orders\n"
        f"web1!grpc-payments: -H {server.address} -w 5 -c 10\n"
        "web1!grpc-users: -H 'bad host'\n",
    )
    done = fleet(str(path), "--check-source", "fleet-7", "--ttl", "120", *api_options(icinga2_api))
    assert (done.returncode, done.stderr) == (3, "")  # the bad line is UNKNOWN
    orders = icinga2_api.service("web1!grpc-orders")
    assert (orders.state, orders.state_type, orders.active) == (2, 1, False)
    assert orders.output == (
        f"GRPC_HEALTH CRITICAL - {server.address}: service 'orders' is NOT_SERVING"
    )
    assert orders.check_source == "fleet-7"
    assert orders.check_result is not None
    assert orders.check_result["ttl"] == 120
    assert orders.next_check - orders.last_check == pytest.approx(120, abs=2)
    payments = icinga2_api.service("web1!grpc-payments")
    assert payments.state == 0
    assert (
        timing(payments.output)
        == f"GRPC_HEALTH OK - {server.address}: overall health is SERVING in Ts"
    )
    assert [timing(item) for item in payments.performance_data] == [
        "connect_time=Ts;;;0",
        "rpc_time=Ts;;;0",
        "time=Ts;5;10;0",
    ]
    users = icinga2_api.service("web1!grpc-users")
    assert users.state == 3
    assert users.output == (
        "GRPC_HEALTH UNKNOWN - line 3: invalid address 'bad host': contains whitespace "
        "or control characters"
    )


def test_icinga2_api_faults_are_one_line_each_and_the_other_outputs_still_run(
    icinga2_api: Icinga2Api, tmp_path: Path, start_server: Callable[..., HealthServer]
) -> None:
    server = start_server()
    path = fleet_file(
        tmp_path,
        f"web1!grpc-orders: -H {server.address}\n"
        f"web1!nope: -H {server.address}\n"
        f"web1!passive-disabled: -H {server.address}\n"
        f"-H {server.address}\n",
    )
    textfile = tmp_path / "fleet.prom"
    done = fleet(str(path), "--textfile", str(textfile), *api_options(icinga2_api))
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"{PREFIX}icinga2-api: line 4 without a HOST!SERVICE: label, so naming no service "
        "(1 result not delivered)",
        f"{PREFIX}icinga2-api: web1!nope (line 2) rejected: 404 No objects found. "
        "(1 result not delivered)",
        f"{PREFIX}icinga2-api: web1!passive-disabled (line 3) rejected: 403 Passive checks "
        "are disabled for object 'web1!passive-disabled'. (1 result not delivered)",
    ]
    assert icinga2_api.service("web1!grpc-orders").state == 0
    assert 'name="web1!grpc-orders"' in textfile.read_text()
    assert done.stdout.splitlines()[-1] == "4 targets: 4 OK"

    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    options = api_options(icinga2_api)
    options[options.index("--icinga2-password-file") + 1] = str(wrong)
    refused = fleet(str(path), *options)
    assert refused.stderr.splitlines()[1:] == [
        f"{PREFIX}icinga2-api: {icinga2_api.url}: 401 Unauthorized: wrong user or password "
        f"for '{icinga2_api.user}' (3 results not delivered)"
    ]
    assert refused.returncode == 3

    other_ca = icinga2_api.other_ca_file
    untrusted = fleet(str(path), *api_options(icinga2_api, ca=other_ca))
    assert untrusted.stderr.splitlines()[1:] == [
        f"{PREFIX}icinga2-api: {icinga2_api.url}: certificate not trusted (self-signed "
        f"certificate in certificate chain); --icinga2-ca '{other_ca}' did not issue it "
        "(3 results not delivered)"
    ]


def test_icinga2_api_down_is_one_line_and_the_password_appears_nowhere(
    tmp_path: Path, server: HealthServer, closed_address: str
) -> None:
    password = "fleet-pa55word-4c1e"
    path = fleet_file(tmp_path, f"web1!grpc-orders: -H {server.address}\n")
    url = f"https://{closed_address}"
    done = fleet(
        str(path),
        "-v",
        "--icinga2-api",
        url,
        "--icinga2-user",
        "fleet",
        env={"ICINGA2_API_PASSWORD": password},
    )
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"{PREFIX}icinga2-api: cannot reach {url}: Connection refused (1 result not delivered)",
        f"{PREFIX}icinga2-api: 0 results delivered",
    ]
    assert password not in done.stdout + done.stderr
    missing = fleet(str(path), "--icinga2-api", url, "--icinga2-user", "fleet")
    assert (missing.returncode, missing.stdout) == (3, "")
    assert missing.stderr == (
        f"{PREFIX}--icinga2-api needs a password: --icinga2-password-file PATH or the "
        "environment variable ICINGA2_API_PASSWORD\n"
    )
    plain = fleet(str(path), "--icinga2-api", "http://localhost:5665", "--icinga2-user", "x")
    assert plain.stderr == (
        f"{PREFIX}--icinga2-api 'http://localhost:5665' is not https://HOST[:PORT] "
        "(the API speaks only HTTPS)\n"
    )


def test_several_services_go_in_with_the_plugins_long_output(
    icinga2_api: Icinga2Api,
    nagios4: Nagios4,
    tmp_path: Path,
    start_server: Callable[..., HealthServer],
) -> None:
    server = start_server(statuses={"": 1, "orders": 2})
    name = icinga2_api.create_service("web3!grpc-all")
    path = fleet_file(tmp_path, f"{name}: -H {server.address} -s orders -s ''\n")
    done = fleet(str(path), *api_options(icinga2_api))
    assert (done.returncode, done.stderr) == (2, "")
    stored = icinga2_api.service(name)
    assert timing(stored.output) == (
        f"GRPC_HEALTH CRITICAL - {server.address}: service 'orders' is NOT_SERVING\n"
        "CRITICAL: service 'orders' is NOT_SERVING (Ts)\n"
        "OK: overall health is SERVING (Ts)"
    )
    assert [item.split("=")[0] for item in stored.performance_data] == [
        "connect_time",
        "rpc_time",
        "serving_orders",
        "serving_overall",
        "time",
    ]
    path.write_text(f"web1!grpc-payments: -H {server.address} -s orders -s ''\n")
    piped = fleet(str(path), "--command-file", str(nagios4.command_file))
    assert (piped.returncode, piped.stderr) == (2, "")
    result = nagios4.wait_for_result("web1!grpc-payments")
    assert (
        result.output == f"GRPC_HEALTH CRITICAL - {server.address}: service 'orders' is NOT_SERVING"
    )
    assert timing(result.long_output) == (
        "CRITICAL: service 'orders' is NOT_SERVING (Ts)\\nOK: overall health is SERVING (Ts)"
    )
    assert result.perfdata.split()[2].startswith("serving_orders=0;")


def test_a_result_that_stops_coming_turns_unknown_after_its_ttl(
    icinga2_api: Icinga2Api, tmp_path: Path, server: HealthServer
) -> None:
    path = fleet_file(tmp_path, f"web2!grpc-stale: -H {server.address} -s ready\n")
    password = icinga2_api.password_file.read_text().strip()
    options = [o for o in api_options(icinga2_api) if o != str(icinga2_api.password_file)]
    options.remove("--icinga2-password-file")
    done = fleet(str(path), "-v", "--ttl", "1", *options, env={"ICINGA2_API_PASSWORD": password})
    assert (done.returncode, done.stdout.splitlines()[-1]) == (0, "1 target: 1 OK")
    assert done.stderr.splitlines() == [
        f"{PREFIX}icinga2-api: POST /v1/actions/process-check-result web2!grpc-stale: 200",
        f"{PREFIX}icinga2-api: 1 results delivered",
    ]
    assert password not in done.stdout + done.stderr
    fresh = icinga2_api.service("web2!grpc-stale")
    assert (fresh.state, fresh.active) == (0, False)
    stale = icinga2_api.wait_for_result("web2!grpc-stale", after=fresh, timeout=15)
    assert (stale.state, stale.active) == (3, True)
    assert stale.output == "No Passive Check Result Received."


def test_icinga2_api_takes_a_thousand_results(
    icinga2_api: Icinga2Api, tmp_path: Path, server: HealthServer
) -> None:
    names = [icinga2_api.create_service(f"bulk{n % 10}!grpc-{n}") for n in range(1000)]
    path = fleet_file(tmp_path, "".join(f"{name}: -H {server.address}\n" for name in names))
    done = fleet(str(path), "-t", "20", "-q", *api_options(icinga2_api))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    for name in (names[0], names[499], names[999]):
        assert icinga2_api.service(name).state == 0


# -- command pipes -----------------------------------------------------------------------


def test_icinga2_command_pipe_gets_each_labelled_result(
    icinga2_api: Icinga2Api, tmp_path: Path, start_server: Callable[..., HealthServer]
) -> None:
    server = start_server(statuses={"": 1, "orders": 2})
    before = icinga2_api.service("web2!grpc-orders")
    path = fleet_file(tmp_path, f"web2!grpc-orders: -H {server.address} -s orders -w 5\n")
    done = fleet(str(path), "--command-file", str(icinga2_api.command_pipe))
    assert (done.returncode, done.stderr) == (2, "")
    after = icinga2_api.wait_for_result("web2!grpc-orders", after=before)
    assert (after.state, after.active) == (2, False)
    assert after.output == (
        f"GRPC_HEALTH CRITICAL - {server.address}: service 'orders' is NOT_SERVING"
    )
    assert [timing(item) for item in after.performance_data] == [
        "connect_time=Ts;;;0",
        "rpc_time=Ts;;;0",
        "time=Ts;5;;0",
    ]


def test_nagios4_command_file_gets_each_labelled_result(
    nagios4: Nagios4, tmp_path: Path, start_server: Callable[..., HealthServer]
) -> None:
    server = start_server(statuses={"": 1, "users": 2})
    path = fleet_file(
        tmp_path,
        f"web1!grpc-orders: -H {server.address} -c 5\n"
        f"web1!grpc-users: -H {server.address} -s users --map-status NOT_SERVING=WARNING\n",
    )
    done = fleet(str(path), "--command-file", str(nagios4.command_file))
    assert (done.returncode, done.stderr) == (1, "")
    orders = nagios4.wait_for_result("web1!grpc-orders")
    assert (orders.state, orders.check_type) == (0, "PASSIVE")
    assert timing(orders.output) == (
        f"GRPC_HEALTH OK - {server.address}: overall health is SERVING in Ts"
    )
    assert timing(orders.perfdata) == "connect_time=Ts;;;0 rpc_time=Ts;;;0 time=Ts;;5;0"
    users = nagios4.wait_for_result("web1!grpc-users")
    assert users.state == 1
    assert users.output == f"GRPC_HEALTH WARNING - {server.address}: service 'users' is NOT_SERVING"


def test_a_pipe_without_reader_is_an_error_at_once_not_a_hang(
    tmp_path: Path, server: HealthServer
) -> None:
    pipe = tmp_path / "icinga2.cmd"
    os.mkfifo(pipe)
    path = fleet_file(tmp_path, f"web1!grpc-orders: -H {server.address}\n-H {server.address}\n")
    done = fleet(str(path), "-t", "5", "--command-file", str(pipe), "--format", "json")
    assert done.returncode == 3
    assert len(done.stdout.splitlines()) == 2  # the printed output still ran
    assert done.stderr.splitlines() == [
        f"{PREFIX}command-file: line 2 without a HOST!SERVICE: label, so naming no service "
        "(1 result not delivered)",
        f"{PREFIX}command-file: cannot open '{pipe}': no process reads the pipe (is the "
        "monitoring daemon running?) (1 result not delivered)",
    ]


@pytest.mark.parametrize("summary_size", [10, 3990, 4100, 20000])
@pytest.mark.parametrize("details", [(), ("CRITICAL: service 'a' is NOT_SERVING (0.1s)",)])
def test_a_long_command_is_shortened_to_one_atomic_write(
    summary_size: int, details: tuple[str, ...]
) -> None:
    import select

    import nagiosplugin

    from check_grpc_health.fleet.file import Entry, Label
    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.fleet.sinks.command_file import ATOMIC, command_line

    summary = ("é" * summary_size)[:summary_size]
    entry = Entry(1, "", None, None, Label("web1", "grpc-orders"))
    perfdata = ("time=0.5s;1;2;0", "rpc_time=0.1s;;;0")
    outcome = Outcome(
        entry, nagiosplugin.Critical, summary, {}, perfdata, 1.0, 1767225600.5, details
    )
    line = command_line(outcome)
    assert ATOMIC == select.PIPE_BUF
    assert len(line) <= ATOMIC
    text = line.decode("utf-8")  # never half a character
    head = "[1767225600] PROCESS_SERVICE_CHECK_RESULT;web1;grpc-orders;2;GRPC_HEALTH CRITICAL - "
    assert text.startswith(head)
    long_output = "".join(f"\\n{item}" for item in details)
    assert text.endswith(
        f"|time=0.5s;1;2;0 rpc_time=0.1s;;;0{long_output if summary_size < 100 else ''}\n"
    )
    if len(head) + 2 * summary_size + 40 <= ATOMIC:
        assert text == f"{head}{summary}|time=0.5s;1;2;0 rpc_time=0.1s;;;0{long_output}\n"
    else:
        assert text.count("\n") == 1
        assert "é...|time=" in text
        assert len(line) >= ATOMIC - 1  # shortened no more than needed


# -- Prometheus --------------------------------------------------------------------------


def prometheus_text(promtool_check_metrics: Callable[[str], tuple[int, str]], path: Path) -> str:
    """The fleet's ``--format prometheus`` output of a healthy fleet, which promtool accepts."""
    printed = fleet(str(path), "--format", "prometheus")
    assert (printed.returncode, printed.stderr) == (0, "")
    assert promtool_check_metrics(printed.stdout) == (0, "")
    return printed.stdout


def test_prometheus_counts_backends_only_for_all_addresses(
    promtool_check_metrics: Callable[[str], tuple[int, str]],
    tmp_path: Path,
    start_server: Callable[..., HealthServer],
) -> None:
    server = start_server()
    port = server.address.rpartition(":")[2]
    text = prometheus_text(
        promtool_check_metrics,
        fleet_file(
            tmp_path,
            f"web1!backends: -H 127.0.0.1:{port} --all-addresses -4\n"
            f"web1!single: -H {server.address}\n",
        ),
    )
    lines = text.splitlines()
    backends = 'name="web1!backends",target="127.0.0.1:' + port + '"'
    single = f'name="web1!single",target="{server.address}"'
    # prometheus_client writes every value as a float, as Go's client does.
    for sample in (
        f"grpc_health_check_success{{{backends}}} 1.0",
        f"grpc_health_backends{{{backends}}} 1.0",
        f"grpc_health_backends_healthy{{{backends}}} 1.0",
        f"grpc_health_check_success{{{single}}} 1.0",
    ):
        assert sample in lines, sample
    assert not [
        line for line in lines if line.startswith("grpc_health_backends") and single in line
    ]


def test_prometheus_text_passes_promtool_and_node_exporter_serves_the_textfile(
    node_exporter: NodeExporter,
    promtool_check_metrics: Callable[[str], tuple[int, str]],
    tmp_path: Path,
    start_server: Callable[..., HealthServer],
    closed_address: str,
) -> None:
    server = start_server(statuses={"": 1, "orders": 2})
    path = fleet_file(
        tmp_path,
        f"web1!grpc-orders: -H {server.address} -s orders -s ''\n"
        f"-H {closed_address}\n"
        f"-H {server.address}\n"
        f"-H {server.address} -w 5\n",
    )
    printed = fleet(str(path), "--format", "prometheus")
    assert printed.returncode == 2
    assert promtool_check_metrics(printed.stdout) == (0, "")
    textfile = node_exporter.textfile_dir / "grpc_health.prom"
    written = fleet(str(path), "-q", "--textfile", str(textfile))
    assert (written.returncode, written.stderr) == (2, "")
    assert sorted(p.name for p in node_exporter.textfile_dir.iterdir()) == ["grpc_health.prom"]
    scraped = node_exporter.scrape()
    assert "node_textfile_scrape_error 0" in scraped
    orders = f'name="web1!grpc-orders",target="{server.address}"'
    closed = f'name="{closed_address}",target="{closed_address}"'
    named = 'name="web1!grpc-orders"'
    target = f'target="{server.address}"'
    for sample in (
        f"grpc_health_check_success{{{orders}}} 1",
        f"grpc_health_check_success{{{closed}}} 0",
        f'grpc_health_serving_status{{{named},service="orders",status="NOT_SERVING",{target}}} 1',
        f'grpc_health_serving_status{{{named},service="orders",status="SERVING",{target}}} 0',
        f'grpc_health_serving_status{{{named},service="",status="SERVING",{target}}} 1',
        f"grpc_health_nagios_state{{{orders}}} 2",
        f"grpc_health_nagios_state{{{closed}}} 2",
        f'grpc_health_nagios_state{{name="{server.address} #3",target="{server.address}"}} 0',
        f'grpc_health_nagios_state{{name="{server.address} #4",target="{server.address}"}} 0',
    ):
        assert sample in scraped.splitlines(), sample
    assert re.search(
        rf'^grpc_health_duration_seconds\{{{named},phase="rpc",{target}\}} [0-9.e-]+$',
        scraped,
        re.MULTILINE,
    )
    assert re.search(r"^grpc_health_last_run_timestamp_seconds \d\.\d+e\+09$", scraped, re.M)


def test_prometheus_carries_the_certificate_expiry_and_tls_version_where_known(
    promtool_check_metrics: Callable[[str], tuple[int, str]],
    tmp_path: Path,
    tls_server: HealthServer,
    server: HealthServer,
    tls_material: TlsMaterial,
) -> None:
    expires = tls_material.server_expires.timestamp()
    ca = tls_material.ca_cert
    text = prometheus_text(
        promtool_check_metrics,
        fleet_file(
            tmp_path,
            f"web1!tls: -H {tls_server.address} --ca-cert {ca} --cert-warning 30\n"
            f"web1!plain: -H {server.address}\n",
        ),
    )
    tls = f'name="web1!tls",target="{tls_server.address}"'
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line[0] != "#")
    assert float(samples[f"grpc_health_tls_certificate_expiry_timestamp_seconds{{{tls}}}"]) == (
        expires
    )
    version = f'grpc_health_tls_version_info{{name="web1!tls",target="{tls_server.address}",'
    assert samples[f'{version}version="TLS 1.3"}}'] == "1.0"
    # Without TLS facts there is neither series for the line.
    assert [key for key in samples if "web1!plain" in key and "_tls_" in key] == []


def test_an_unwritable_textfile_folder_is_one_line_and_the_table_still_prints(
    tmp_path: Path, server: HealthServer
) -> None:
    path = fleet_file(tmp_path, f"-H {server.address}\n")
    missing = tmp_path / "no-such-folder" / "grpc_health.prom"
    done = fleet(str(path), "--textfile", str(missing))
    assert done.returncode == 3
    assert done.stdout.splitlines()[-1] == "1 target: 1 OK"
    assert done.stderr == (
        f"{PREFIX}textfile: cannot write '{missing}': No such file or directory; "
        "no metrics were written\n"
    )
    not_a_folder = tmp_path / "fleet.txt" / "grpc_health.prom"
    assert "Not a directory" in fleet(str(path), "--textfile", str(not_a_folder)).stderr


def test_the_textfile_is_replaced_whole_while_being_read(
    tmp_path: Path, server: HealthServer
) -> None:
    path = fleet_file(tmp_path, "".join(f"-H {server.address} -s s{n}\n" for n in range(200)))
    textfile = tmp_path / "grpc_health.prom"
    textfile.write_text("# old\n")
    torn: list[str] = []
    stop = threading.Event()
    last = re.compile(r"\ngrpc_health_last_run_timestamp_seconds \S+\n\Z")

    def read() -> None:
        while not stop.is_set():
            text = textfile.read_text()
            if text != "# old\n" and not last.search(text):
                torn.append(text[-80:])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        done = fleet(str(path), "-q", "--textfile", str(textfile))
    finally:
        stop.set()
        reader.join()
    assert done.returncode == 2  # the services do not exist: CRITICAL, not a delivery error
    assert torn == []
    assert last.search(textfile.read_text())


def test_a_connection_stopped_by_anothers_failure_counts_its_results_under_it(
    tmp_path: Path,
) -> None:
    # Which connection meets a fatal problem first is a race; the count must not be.
    import nagiosplugin

    from check_grpc_health.fleet.file import read_fleet
    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.fleet.sinks.icinga2_api import Icinga2Delivery
    from check_grpc_health.fleet.sinks.icinga2_settings import Icinga2Api

    path = fleet_file(tmp_path, "web1!a: -H 127.0.0.1:1\nweb1!b: -H 127.0.0.1:1\n")
    outcomes = [
        Outcome(entry, nagiosplugin.Ok, "ok", {}) for entry in read_fleet(str(path), {}, 10.0)
    ]
    api = Icinga2Api("https://127.0.0.1:1", "127.0.0.1", 1, "fleet", "secret", None, "x", 60)
    delivery = Icinga2Delivery(api, time.monotonic() + 10, None)
    delivery.stopped_by = "https://127.0.0.1:1: certificate not trusted"
    delivery.stop.set()
    for outcome in outcomes:
        delivery.offer(outcome)
    report = delivery.finish()
    assert delivery.fatal == {"https://127.0.0.1:1: certificate not trusted": 2}
    assert (report.delivered, report.undelivered) == (0, 2)
    assert report.problems == [
        "icinga2-api: https://127.0.0.1:1: certificate not trusted (2 results not delivered)"
    ]
