"""The shipped Icinga 2 CheckCommand, run by a real Icinga 2 daemon against real gRPC servers.

The daemon runs in the foreground with a configuration folder of its own. A
PerfdataWriter records, for every service, the state, the exit status, the output and
the perfdata exactly as Icinga stored them, plus every perfdata value after Icinga's
own ``parse_performance_data()``. The test reads those records back.

Locally the tests skip when icinga2 is not installed; with ``CI`` set they fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.daemons.icinga2 import (
    icinga2_binary,
    make_data_dir,
    quoted,
    start_daemon,
    validate,
)
from support.paths import BIN, ROOT
from support.servers import (
    NOT_SERVING,
    SERVING,
    HeaderRecordingServicer,
    HealthServer,
    SlowHealthServicer,
    closed_port,
    start_health_server,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import TlsMaterial

pytestmark = pytest.mark.slow

COMMAND_FILE = ROOT / "contrib" / "icinga2" / "grpc_health.conf"
SECRET = "Bearer icinga-s3cr3t-token"


# One record per check: tab-separated NAME::value fields.
TEMPLATE = "\t".join(
    [
        "NAME::$service.name$",
        "STATE::$service.state$",
        "EXIT::$service.last_check_result.exit_status$",
        "OUTPUT::$record_output$",
        "PARSED::$record_parsed$",
        "PERFDATA::$service.perfdata$",
    ]
)

PREAMBLE = """
const NodeName = "check-grpc-health-test"
const ZoneName = NodeName
const PluginDir = "/usr/lib/nagios/plugins"
const PluginContribDir = {plugin_dir}
include <itl>
include <plugins>
include {command_file}
"""

WRITER = r"""
object CheckerComponent "checker" {}

object PerfdataWriter "perfdata" {
  service_perfdata_path = {spool} + "/service-perfdata"
  service_temp_path = {spool} + "/tmp/service-perfdata"
  host_perfdata_path = {spool} + "/host-perfdata"
  host_temp_path = {spool} + "/tmp/host-perfdata"
  service_format_template = {template}
  rotation_interval = 1s
}

object Host "grpc" {
  check_command = "dummy"
  address = "127.0.0.1"
  check_interval = 1h
}

object Host "grpc-dual" {
  check_command = "dummy"
  address = "127.0.0.1"
  address6 = "::1"
  check_interval = 1h
}

template Service "recorded" {
  host_name = "grpc"
  check_command = "grpc_health"
  check_interval = 1s
  retry_interval = 1s
  max_check_attempts = 1
  // One record per line: the output's newlines become a visible marker.
  vars.record_output = {{ return macro("$service.output$").replace("\n", "<NL>") }}
  // Every perfdata value as Icinga itself parses it; an unparsable one fails here.
  vars.record_parsed = {{
    var checked = get_service(macro("$host.name$"), macro("$service.name$"))
    var parsed = []
    for (item in checked.last_check_result.performance_data) {
      var value = parse_performance_data(item)
      parsed.add(value.label + "=" + value.value)
    }
    return parsed.join(" ")
  }}
}
"""


@dataclass
class Record:
    """What Icinga recorded for one service check."""

    state: str
    exit_status: int
    output: list[str]
    perfdata: str
    parsed: dict[str, float]


@dataclass
class Scenario:
    name: str
    variables: dict[str, object]
    host: str = "grpc"


def render_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[ " + ", ".join(render_value(item) for item in value) + " ]"
    return quoted(str(value))


def service_config(scenario: Scenario) -> str:
    lines = [f"object Service {quoted(scenario.name)} {{", '  import "recorded"']
    if scenario.host != "grpc":
        lines.append(f"  host_name = {quoted(scenario.host)}")
    for key, value in scenario.variables.items():
        lines.append(f"  vars.{key} = {render_value(value)}")
    lines.append("}")
    return "\n".join(lines)


def read_records(spool: Path) -> dict[str, Record]:
    records: dict[str, Record] = {}
    for path in sorted(spool.glob("service-perfdata.*")):
        for line in path.read_text().splitlines():
            fields = dict(part.split("::", 1) for part in line.split("\t"))
            parsed = {}
            for item in fields["PARSED"].split():
                label, _, value = item.rpartition("=")
                parsed[label] = float(value)
            records[fields["NAME"]] = Record(
                state=fields["STATE"],
                exit_status=int(float(fields["EXIT"])),
                output=fields["OUTPUT"].split("<NL>"),
                perfdata=fields["PERFDATA"],
                parsed=parsed,
            )
    return records


def run_icinga(base: Path, scenarios: list[Scenario], wait: float = 40.0) -> dict[str, Record]:
    """Start the daemon, wait until every service has a record, stop it, return them."""
    icinga2_binary()
    data = make_data_dir(base)
    spool = data / "spool"
    config = base / "icinga2.conf"
    config.write_text(
        PREAMBLE.format(plugin_dir=quoted(str(BIN)), command_file=quoted(str(COMMAND_FILE)))
        + WRITER.replace("{spool}", quoted(str(spool))).replace("{template}", quoted(TEMPLATE))
        + "\n".join(service_config(scenario) for scenario in scenarios)
        + "\n"
    )
    checked = validate(config, data)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    wanted = {scenario.name for scenario in scenarios}
    daemon = start_daemon(config, data)
    try:
        deadline = time.monotonic() + wait
        records = read_records(spool)
        # Icinga writes a file per second; there is nothing to wait on but the files.
        while not wanted <= records.keys() and time.monotonic() < deadline:
            daemon.check_alive()
            time.sleep(0.2)
            records = read_records(spool)
    finally:
        daemon.stop(timeout=20)
    missing = wanted - records.keys()
    assert not missing, f"no check result from Icinga for {sorted(missing)}"
    return records


PERFDATA_ITEM = re.compile(
    r"(?P<label>'[^'=]+'|[^'= ]+)=(?P<value>-?[0-9]+(\.[0-9]+)?)(?P<uom>s|%|B|c)?"
    r"(;[@~:0-9.-]*){0,4}"
)


def perfdata_values(perfdata: str) -> dict[str, float]:
    """Parse perfdata strictly (Icinga is lenient); labels lose their quotes."""
    values = {}
    for item in perfdata.split():
        match = PERFDATA_ITEM.fullmatch(item)
        assert match, f"perfdata item {item!r} is not to spec"
        values[match["label"].strip("'")] = float(match["value"])
    return values


@pytest.fixture(scope="module")
def icinga(tls_material: TlsMaterial) -> Iterator[tuple[dict[str, Record], dict[str, object]]]:
    icinga2_binary()
    servers: list[HealthServer] = []

    def start(**kwargs: object) -> HealthServer:
        server = start_health_server(**kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server

    recording = HeaderRecordingServicer()
    with tempfile.TemporaryDirectory(prefix="cgh-icinga-") as name:
        base = Path(name)
        serving = start(statuses={"": SERVING, "app.Ready": SERVING, "down": NOT_SERVING})
        not_serving = start(statuses={"": NOT_SERVING})
        slow = start(servicer=SlowHealthServicer(0.6))
        tls = start(credentials=tls_material.server_credentials())
        secret = start(servicer=recording)
        unix = start(unix_path=str(base / "health.sock"))
        over_ipv6 = start(host="[::1]")
        refused = closed_port()
        scenarios = [
            Scenario("serving", {"grpc_health_port": serving.port}),
            Scenario("not-serving", {"grpc_health_port": not_serving.port}),
            Scenario(
                "slow",
                {
                    "grpc_health_port": slow.port,
                    "grpc_health_warning": "0.3",
                    "grpc_health_critical": "5",
                },
            ),
            Scenario("refused", {"grpc_health_port": refused}),
            Scenario(
                "tls",
                {
                    "grpc_health_port": tls.port,
                    "grpc_health_ca_cert": str(tls_material.ca_cert),
                    "grpc_health_server_name": tls_material.server_name,
                    "grpc_health_cert_warning": "30",
                    "grpc_health_cert_critical": "7",
                },
            ),
            Scenario(
                "several",
                {
                    "grpc_health_port": serving.port,
                    "grpc_health_service": ["", "app.Ready", "down"],
                    "grpc_health_map_status": "NOT_SERVING=WARNING",
                },
            ),
            Scenario(
                "secret",
                {
                    "grpc_health_port": secret.port,
                    "grpc_health_secret_header": "authorization",
                    "grpc_health_secret": SECRET,
                    "grpc_health_verbose": True,
                },
            ),
            Scenario("unix", {"grpc_health_address": f"unix:{unix.unix_path}"}),
            # check_ipv6 picks the host's address6, and -6 reaches the plugin.
            Scenario(
                "ipv6", {"grpc_health_port": over_ipv6.port, "grpc_health_ipv6": True}, "grpc-dual"
            ),
            Scenario(
                "ipv4", {"grpc_health_port": serving.port, "grpc_health_ipv4": True}, "grpc-dual"
            ),
            Scenario(
                "ipv6-literal-v4",
                {
                    "grpc_health_address": "127.0.0.1",
                    "grpc_health_port": serving.port,
                    "grpc_health_ipv6": True,
                },
            ),
        ]
        try:
            records = run_icinga(base, scenarios)
        finally:
            for server in servers:
                server.stop()
        yield (
            records,
            {
                "serving": serving.address,
                "not-serving": not_serving.address,
                "slow": slow.address,
                "refused": f"127.0.0.1:{refused}",
                "tls": tls.address,
                "unix": unix.address,
                "over-ipv6": over_ipv6.port,
                "seen": recording.seen,
            },
        )


def first_line(record: Record) -> str:
    return record.output[0].rstrip()


def assert_perfdata_parsed(record: Record, labels: set[str]) -> None:
    """Our strict reading and Icinga's own parser agree on every value."""
    strict = perfdata_values(record.perfdata)
    assert set(strict) == labels
    assert record.parsed.keys() == strict.keys()
    for label, value in strict.items():
        assert record.parsed[label] == pytest.approx(value)


TIMINGS = {"time", "connect_time", "rpc_time"}


def test_serving_is_ok(icinga: tuple[dict[str, Record], dict[str, object]]) -> None:
    records = icinga[0]
    record = records["serving"]
    assert (record.state, record.exit_status) == ("OK", 0)
    assert re.fullmatch(
        r"GRPC_HEALTH OK - 127\.0\.0\.1:[0-9]+: overall health is SERVING in [0-9.]+s",
        first_line(record),
    )
    assert record.output == [record.output[0]]
    assert_perfdata_parsed(record, TIMINGS)


def test_not_serving_is_critical(icinga: tuple[dict[str, Record], dict[str, object]]) -> None:
    records, facts = icinga
    record = records["not-serving"]
    assert (record.state, record.exit_status) == ("CRITICAL", 2)
    address = facts["not-serving"]
    assert first_line(record) == f"GRPC_HEALTH CRITICAL - {address}: overall health is NOT_SERVING"
    assert_perfdata_parsed(record, TIMINGS)


def test_slow_server_fires_the_latency_threshold(
    icinga: tuple[dict[str, Record], dict[str, object]],
) -> None:
    record = icinga[0]["slow"]
    assert (record.state, record.exit_status) == ("WARNING", 1)
    assert re.fullmatch(
        r"GRPC_HEALTH WARNING - 127\.0\.0\.1:[0-9]+: "
        r"time is 0\.[6-9][0-9]*s \(outside range 0:0\.3\)",
        first_line(record),
    )
    assert_perfdata_parsed(record, TIMINGS)
    assert re.search(r"(^| )time=0\.[6-9][0-9]*s;0\.3;5;0( |$)", record.perfdata)
    assert record.parsed["time"] > 0.6


def test_refused_connection_is_critical(
    icinga: tuple[dict[str, Record], dict[str, object]],
) -> None:
    records, facts = icinga
    record = records["refused"]
    assert (record.state, record.exit_status) == ("CRITICAL", 2)
    line = first_line(record)
    assert line.startswith(f"GRPC_HEALTH CRITICAL - failed to connect to {facts['refused']}: ")
    assert "Connection refused" in line
    assert_perfdata_parsed(record, {"time"})


def test_tls_with_certificate_days(icinga: tuple[dict[str, Record], dict[str, object]]) -> None:
    record = icinga[0]["tls"]
    assert (record.state, record.exit_status) == ("OK", 0)
    assert re.fullmatch(
        r"GRPC_HEALTH OK - 127\.0\.0\.1:[0-9]+: overall health is SERVING in [0-9.]+s, "
        r"server certificate expires in [0-9]+\.[0-9] days",
        first_line(record),
    )
    assert_perfdata_parsed(record, {*TIMINGS, "cert_days"})
    assert re.search(r"(^| )cert_days=[0-9.]+;30:;7:( |$)", record.perfdata)
    assert record.parsed["cert_days"] > 30


def test_several_services_mapped_state_and_long_output(
    icinga: tuple[dict[str, Record], dict[str, object]],
) -> None:
    records, facts = icinga
    record = records["several"]
    assert (record.state, record.exit_status) == ("WARNING", 1)
    address = facts["serving"]
    assert first_line(record) == f"GRPC_HEALTH WARNING - {address}: service 'down' is NOT_SERVING"
    assert [re.sub(r"\([0-9.]+s\)$", "(T)", line) for line in record.output[1:]] == [
        "OK: overall health is SERVING (T)",
        "OK: service 'app.Ready' is SERVING (T)",
        "WARNING: service 'down' is NOT_SERVING (T)",
    ]
    labels = {"serving_overall", "serving_app.Ready", "serving_down"}
    assert_perfdata_parsed(record, TIMINGS | labels)
    assert {label: record.parsed[label] for label in labels} == {
        "serving_overall": 1,
        "serving_app.Ready": 1,
        "serving_down": 0,
    }


def test_secret_header_travels_in_the_environment_only(
    icinga: tuple[dict[str, Record], dict[str, object]], tmp_path: Path
) -> None:
    records, facts = icinga
    record = records["secret"]
    assert (record.state, record.exit_status) == ("OK", 0)
    seen = facts["seen"]
    assert isinstance(seen, list)
    assert seen
    assert seen[-1]["authorization"] == SECRET
    for each in records.values():
        assert "s3cr3t" not in " ".join([*each.output, each.perfdata])
    assert_perfdata_parsed(record, TIMINGS)
    # -v (grpc_health_verbose) adds the service line and the timings.
    assert record.output[1].startswith("OK: overall health is SERVING (")
    assert record.output[2].startswith("connect_time ")


def test_unix_socket_address(icinga: tuple[dict[str, Record], dict[str, object]]) -> None:
    records, facts = icinga
    record = records["unix"]
    assert (record.state, record.exit_status) == ("OK", 0)
    assert first_line(record).startswith(f"GRPC_HEALTH OK - {facts['unix']}: overall health is")


def test_shipped_command_validates_and_maps_every_option(tmp_path: Path) -> None:
    """``icinga2 daemon -C`` accepts the file, and it maps every option the plugin has."""
    icinga2_binary()
    data = make_data_dir(tmp_path)
    config = tmp_path / "icinga2.conf"
    config.write_text(
        PREAMBLE.format(plugin_dir=quoted(str(BIN)), command_file=quoted(str(COMMAND_FILE)))
    )
    checked = validate(config, data)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Instantiated" in checked.stdout

    from check_grpc_health.plugin.arguments import _parser

    mapped = set(re.findall(r'^\t\t"(-[^"]+)" = \{', COMMAND_FILE.read_text(), re.MULTILINE))
    options = {action.option_strings[0] for action in _parser()._actions}
    # Help, version, JSON and quiet mode are for humans and cron, not for a core; --wait
    # is for scripts that start a server, and a core retries by itself.
    assert mapped == options - {"-h", "-V", "--json", "-q", "--wait"}


DOC = ROOT / "docs" / "icinga2.md"


def test_documented_configuration_validates(tmp_path: Path) -> None:
    """Every ```icinga2 block of docs/icinga2.md, together, passes ``icinga2 daemon -C``."""
    icinga2_binary()
    blocks = re.findall(r"^```icinga2\n(.*?)^```$", DOC.read_text(), re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 6
    data = make_data_dir(tmp_path)
    config = tmp_path / "icinga2.conf"
    config.write_text(
        PREAMBLE.format(plugin_dir=quoted(str(BIN)), command_file=quoted(str(COMMAND_FILE)))
        + "\n".join(blocks)
    )
    checked = validate(config, data)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The apply rules really produce services, one per named gRPC service.
    assert "Instantiated 11 Services." in checked.stdout


def test_every_custom_variable_is_documented() -> None:
    variables = set(re.findall(r"\$(grpc_health_[a-z_]+)\$", COMMAND_FILE.read_text()))
    assert len(variables) >= 25
    documented = set(re.findall(r"`(grpc_health_[a-z_]+)`", DOC.read_text()))
    assert variables <= documented
    assert documented <= variables


def test_a_missing_icinga2_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os.path, "exists", lambda path: False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run this test"):
        icinga2_binary()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="icinga2 is not installed"):
        icinga2_binary()


def test_check_ipv4_and_check_ipv6_pick_the_address_and_pass_the_family(
    icinga: tuple[dict[str, Record], dict[str, object]],
) -> None:
    """As with the ITL's tcp command: grpc_health_ipv6 checks the host's address6 with -6."""
    records, facts = icinga
    over_ipv6 = records["ipv6"]
    assert (over_ipv6.state, over_ipv6.exit_status) == ("OK", 0)
    assert first_line(over_ipv6).startswith(
        f"GRPC_HEALTH OK - [::1]:{facts['over-ipv6']}: overall health is SERVING in "
    )
    over_ipv4 = records["ipv4"]
    assert (over_ipv4.state, over_ipv4.exit_status) == ("OK", 0)
    assert first_line(over_ipv4).startswith(
        f"GRPC_HEALTH OK - {facts['serving']}: overall health is SERVING in "
    )
    literal = records["ipv6-literal-v4"]
    assert (literal.state, literal.exit_status) == ("UNKNOWN", 3)
    assert first_line(literal) == (
        f"GRPC_HEALTH UNKNOWN - {facts['serving']} is an IPv4 address, but IPv6 only was asked for"
    )
