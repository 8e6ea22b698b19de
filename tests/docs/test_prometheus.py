"""docs/prometheus.md works as written: the real Prometheus server scrapes the monitor's
``/metrics`` and ``/probe`` with the page's scrape configuration, the page's commands and
files work, and the shipped rules pass their unit tests.
"""

from __future__ import annotations

import re
import signal
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from support.daemons.prometheus import PrometheusServer, promtool_binary
from support.exporting import SERVING, RunningExporter
from support.health_process import HealthProcess
from support.pages import fenced
from support.paths import ROOT
from support.watching import WatchingFleet

from check_grpc_health.exporter.metrics import LINES, MONITOR, PROBE
from check_grpc_health.exporter.modules import read_modules
from check_grpc_health.exporter.webconfig import read_web_config

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from conftest import TlsMaterial

PAGE = ROOT / "docs" / "prometheus.md"
FLEET_PAGE = ROOT / "docs" / "fleet.md"
RULES = ROOT / "contrib" / "prometheus"
DOCUMENTED_EXPORTER = "monitor.example.internal:9116"
DOCUMENTED_TARGETS = ["api-1.example.internal:50051", "api-2.example.internal:50051"]


def blocks(kind: str) -> list[str]:
    return fenced(PAGE, kind)


def scrape_config(exporter: str, target: str) -> dict[str, Any]:
    """The page's scrape configuration, pointed at this test's monitor and server, with a
    scrape every second."""
    config = yaml.safe_load(next(block for block in blocks("yaml") if "scrape_configs" in block))
    text = yaml.safe_dump(config).replace(DOCUMENTED_EXPORTER, exporter)
    config = yaml.safe_load(text)
    probe = next(job for job in config["scrape_configs"] if job["job_name"] == "grpc-probe")
    assert probe["static_configs"][0]["targets"] == DOCUMENTED_TARGETS
    probe["static_configs"][0]["targets"] = [target]
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s"}
    return config


@pytest.fixture
def prometheus_scraping(tmp_path: Path) -> Iterator[tuple[HealthProcess, PrometheusServer]]:
    """A health server (``orders``) watched by a monitor with --listen and --modules, and
    Prometheus scraping the monitor's /metrics and /probe as the page configures them."""
    server = HealthProcess(["orders"])
    fleet = None
    prometheus = None
    try:
        (tmp_path / "fleet.txt").write_text(f"web1!orders: -H {server.address} -s orders\n")
        (tmp_path / "modules.txt").write_text("grpc: -s orders\n")
        fleet = WatchingFleet(
            tmp_path / "fleet.txt",
            "--listen",
            "127.0.0.1:0",
            "--modules",
            str(tmp_path / "modules.txt"),
            "--allow-target",
            "127.0.0.1:*",
            interval=3600,
        )
        fleet.started(["web1!orders"])
        match = SERVING.search(fleet.line("serving /metrics"))
        assert match is not None
        exporter = match.group(2).removeprefix("http://")
        prometheus = PrometheusServer(tmp_path, scrape_config(exporter, server.address))
        yield server, prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        if fleet is not None:
            assert fleet.stop() == 0
            assert fleet.tracebacks() == []
        server.stop()


def value(prometheus: PrometheusServer, expression: str, expected: float) -> None:
    """Wait until ``expression`` is one series of value ``expected``."""
    prometheus.wait_for(
        expression,
        lambda result: [found for _, found in result] == [expected],
        f"{expression} == {expected}",
    )


def test_prometheus_scrapes_the_monitor_and_probe_and_sees_flips_and_blips(
    prometheus_scraping: tuple[HealthProcess, PrometheusServer],
) -> None:
    server, prometheus = prometheus_scraping
    monitor = 'job="grpc-health-monitor",name="web1!orders",service="orders"'
    probe = f'job="grpc-probe",instance="{server.address}"'
    serving = f'grpc_health_serving_status{{{monitor},status="SERVING"}}'
    changes = f"grpc_health_status_changes_total{{{monitor}}}"
    value(prometheus, serving, 1)
    value(prometheus, changes, 0)
    value(prometheus, f"probe_success{{{probe}}}", 1)
    value(prometheus, f'grpc_health_serving_status{{{probe},status="SERVING"}}', 1)
    # Through the relabelling, /probe's series are the target's, on the exporter's scrape.
    (labels, _), *_ = prometheus.query(f"probe_success{{{probe}}}")
    assert labels == {"__name__": "probe_success", "instance": server.address, "job": "grpc-probe"}
    # A flip: both endpoints see it.
    server.set("orders", "NOT_SERVING")
    value(prometheus, f'grpc_health_serving_status{{{monitor},status="NOT_SERVING"}}', 1)
    value(prometheus, 'grpc_health_nagios_state{job="grpc-health-monitor"}', 2)
    value(prometheus, f"probe_success{{{probe}}}", 0)
    value(prometheus, changes, 1)
    server.set("orders", "SERVING")
    value(prometheus, serving, 1)
    value(prometheus, f"probe_success{{{probe}}}", 1)
    value(prometheus, changes, 2)
    # A blip far shorter than the scrape interval: the counter shows it.
    server.set("orders", "NOT_SERVING")
    server.set("orders", "SERVING")
    value(prometheus, changes, 4)
    value(prometheus, serving, 1)
    # The exporter's own figures are on /metrics, counted per module.
    prometheus.wait_for(
        'grpc_health_exporter_probes_total{job="grpc-health-monitor",module="grpc",result="success"}',
        lambda result: bool(result) and result[0][1] >= 2,
        "probes counted on /metrics",
    )


def test_the_documented_commands_start_and_stop(tls_material: TlsMaterial, tmp_path: Path) -> None:
    files = documented_files(tls_material, tmp_path)
    for command in [line for block in blocks("sh") for line in block.splitlines()]:
        if not command.startswith(("check_grpc_health_exporter", "check_grpc_health_fleet")):
            continue
        words = command.replace("/etc/grpc-health", str(files)).replace("9116", "0").split()
        words = [word.strip("'") for word in words]
        if words[0] == "check_grpc_health_exporter":
            running = RunningExporter(*words[1:])
            assert running.stop() == 0
            assert running.lines[-1] == "check_grpc_health_exporter: stopped by SIGTERM"
        else:
            fleet = WatchingFleet(files / "fleet.txt", *words[3:], json_events=False)
            fleet.line("serving /metrics on http://127.0.0.1:")
            fleet.signal(signal.SIGTERM)
            assert fleet.stop() == 0


def documented_files(tls_material: TlsMaterial, tmp_path: Path) -> Path:
    """The files the page names, under ``tmp_path``: the modules, a fleet file, a CA, a token."""
    files = tmp_path / "etc"
    files.mkdir()
    modules = next(block for block in blocks("text") if block.startswith("# NAME: OPTIONS"))
    (files / "modules.txt").write_text(modules.replace("/etc/grpc-health", str(files)))
    (files / "ca.pem").write_bytes(tls_material.ca_cert.read_bytes())
    (files / "token.hdr").write_text("authorization: Bearer documented\n")
    (files / "fleet.txt").write_text("-H 127.0.0.1:1\n")
    return files


def test_the_documented_modules_file_reads(tls_material: TlsMaterial, tmp_path: Path) -> None:
    files = documented_files(tls_material, tmp_path)
    modules = read_modules(str(files / "modules.txt"), {})
    assert sorted(modules) == ["grpc", "grpc_tls", "orders"]
    options = modules["orders"].options("api-1.example.internal:50051", (), {})
    assert options.probe.services == ("orders", "payments")
    assert options.probe.metadata == (("authorization", "Bearer documented"),)
    assert modules["grpc"].options("api-1:50051", ("orders",), {}).probe.services == ("orders",)


def test_the_documented_web_config_reads(tls_material: TlsMaterial, tmp_path: Path) -> None:
    text = next(block for block in blocks("yaml") if "tls_server_config" in block)
    for name, path in (
        ("exporter.crt", tls_material.server_cert),
        ("exporter.key", tls_material.server_key),
        ("prometheus-ca.crt", tls_material.ca_cert),
    ):
        text = text.replace(f"/etc/grpc-health/{name}", str(path))
    config = tmp_path / "web-config.yml"
    config.write_text(text)
    web = read_web_config(str(config))
    assert web.tls is not None
    assert web.users is not None
    assert web.users.allows("Basic cHJvbWV0aGV1czpjaGFuZ2UgbWU=")  # prometheus:change me
    assert not web.users.allows("Basic cHJvbWV0aGV1czpjaGFuZ2UgeW91")


def test_the_rules_pass_their_unit_tests_and_match_the_page() -> None:
    done = subprocess.run(
        [promtool_binary(), "test", "rules", "grpc_health_fleet.rules.test.yml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=RULES,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    rules = yaml.safe_load((RULES / "grpc_health_fleet.rules.yml").read_text())
    alerts = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    documented = re.findall(r"^\| `(Grpc\w+)` \|", PAGE.read_text(), re.M)
    assert sorted(documented) == sorted(alerts)
    tests = yaml.safe_load((RULES / "grpc_health_fleet.rules.test.yml").read_text())
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert tested >= {
        "GrpcServiceNotServing",
        "GrpcServiceStatusChanged",
        "GrpcHealthMonitorLineStale",
        "GrpcHealthFleetStale",
        "GrpcCertificateExpiresSoon",
        "GrpcHealthCheckFailing",
    }


def test_every_metric_is_documented_with_its_blackbox_exporter_name() -> None:
    page = PAGE.read_text()
    fleet = FLEET_PAGE.read_text()
    for family in (*LINES, *MONITOR, *PROBE):
        name = family.name + ("_total" if family.kind == "counter" else "")
        assert f"`{name}" in page, name
    for family in LINES:
        assert f"`{family.name}" in fleet, family.name
