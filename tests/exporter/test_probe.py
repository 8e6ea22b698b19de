"""``/probe``: blackbox_exporter's multi-target way, answered by the plugin's own check.

Each test runs the installed ``check_grpc_health_exporter`` and asks it over HTTP, as
Prometheus does, against real servers on 127.0.0.1.
"""

from __future__ import annotations

import concurrent.futures
import re
import signal
from typing import TYPE_CHECKING

import pytest
from support.exporting import EXPORTER, get, probe_url, samples, series

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.exporting import RunningExporter
    from support.servers import HealthServer

ALLOW = ("--allow-target", "127.0.0.1:*")
MODULES = "grpc: -t 5\norders: -s orders\nstrict: -w 0:0.000001\n"
TIMEOUT = {"X-Prometheus-Scrape-Timeout-Seconds": "10"}


def test_a_serving_target_is_probe_success_with_the_one_metric_set(
    exporter: Callable[..., RunningExporter], server: HealthServer
) -> None:
    running = exporter(MODULES, *ALLOW)
    answer = get(probe_url(running.url, server.address, "grpc"), TIMEOUT)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(answer.text)
    line = {"name": server.address, "target": server.address}
    assert found[series("probe_success")] == 1
    assert found[series("grpc_health_check_success", **line)] == 1
    assert found[series("grpc_health_nagios_state", **line)] == 0
    status = {**line, "service": ""}
    assert found[series("grpc_health_serving_status", **status, status="SERVING")] == 1
    assert found[series("grpc_health_serving_status", **status, status="NOT_SERVING")] == 0
    assert found[series("grpc_health_rpc_status_code", **status)] == 0
    assert found[series("probe_duration_seconds")] > 0
    # The exporter's own figures are on /metrics, never on /probe.
    assert not [key for key in found if key.startswith(("grpc_health_exporter_", "process_"))]


def test_services_from_the_request_replace_the_modules(
    exporter: Callable[..., RunningExporter], server: HealthServer
) -> None:
    running = exporter(MODULES, *ALLOW)
    url = probe_url(running.url, server.address, "orders", service=["ready", "down", "gone"])
    found = samples(get(url, TIMEOUT).text)
    line = {"name": f"{server.address} -s ready,down,gone", "target": server.address}
    assert found[series("probe_success")] == 0
    assert found[series("grpc_health_check_success", **line)] == 0  # "gone": NOT_FOUND
    assert found[series("grpc_health_nagios_state", **line)] == 2
    for service, status, code in (("ready", "SERVING", 0), ("down", "NOT_SERVING", 0)):
        labels = {**line, "service": service}
        assert found[series("grpc_health_serving_status", **labels, status=status)] == 1
        assert found[series("grpc_health_rpc_status_code", **labels)] == code
    assert found[series("grpc_health_rpc_status_code", **line, service="gone")] == 5
    assert not [key for key in found if 'service="orders"' in key]


def test_a_closed_port_is_a_failed_probe_not_an_error(
    exporter: Callable[..., RunningExporter], closed_address: str
) -> None:
    running = exporter(MODULES, *ALLOW)
    answer = get(probe_url(running.url, closed_address, "grpc"), TIMEOUT)
    assert answer.status == 200
    found = samples(answer.text)
    line = {"name": closed_address, "target": closed_address}
    assert found[series("probe_success")] == 0
    assert found[series("grpc_health_check_success", **line)] == 0
    assert found[series("grpc_health_nagios_state", **line)] == 2


def test_the_modules_thresholds_judge_the_state_but_not_probe_success(
    exporter: Callable[..., RunningExporter], server: HealthServer
) -> None:
    running = exporter(MODULES, *ALLOW)
    found = samples(get(probe_url(running.url, server.address, "strict"), TIMEOUT).text)
    line = {"name": server.address, "target": server.address}
    assert found[series("grpc_health_nagios_state", **line)] == 1  # -w 0:0.000001
    assert found[series("probe_success")] == 1  # SERVING, as blackbox_exporter judges


def test_the_probe_ends_within_the_scrape_timeout_less_the_offset(
    exporter: Callable[..., RunningExporter], held: tuple[object, str]
) -> None:
    """A server that never answers: the check's deadline is the header's 3 s less 0.5 s,
    not the module's -t 5, so Prometheus gets the failure, not a scrape timeout."""
    _, address = held
    running = exporter(MODULES, *ALLOW)
    url = probe_url(running.url, address, "grpc")
    answer = get(url, {"X-Prometheus-Scrape-Timeout-Seconds": "3"}, timeout=10)
    assert answer.status == 200
    found = samples(answer.text)
    line = {"name": address, "target": address, "service": ""}
    assert found[series("probe_success")] == 0
    assert found[series("grpc_health_rpc_status_code", **line)] == 4  # DEADLINE_EXCEEDED
    # The RPC had half of the 2.5 s: its deadline, not the module's 2.5 s (-t 5).
    rpc = found[series("grpc_health_duration_seconds", name=address, target=address, phase="rpc")]
    assert 1.2 <= rpc < 2.5


@pytest.mark.parametrize(
    ("query", "headers", "status", "line"),
    [
        ("", {}, 400, "the target parameter is missing (?target=HOST:PORT)"),
        ("?target=127.0.0.1:1", {}, 400, "the module parameter is missing (&module=NAME)"),
        (
            "?target=127.0.0.1:1&module=nope",
            {},
            400,
            "unknown module 'nope' (known: grpc, orders, strict)",
        ),
        (
            "?target=10.1.2.3:50051&module=grpc",
            {},
            403,
            "target '10.1.2.3:50051' matches no --allow-target pattern",
        ),
        (
            "?target=127.0.0.1:1&module=grpc",
            {"X-Prometheus-Scrape-Timeout-Seconds": "soon"},
            400,
            "X-Prometheus-Scrape-Timeout-Seconds 'soon' is not a positive number of seconds",
        ),
        (
            "?target=127.0.0.1:1&module=grpc",
            {"X-Prometheus-Scrape-Timeout-Seconds": "-1"},
            400,
            "X-Prometheus-Scrape-Timeout-Seconds '-1' is not a positive number of seconds",
        ),
        (
            "?target=127.0.0.1:1&target=127.0.0.1:2&module=grpc",
            {},
            400,
            "the target parameter is given 2 times",
        ),
        (
            "?target=127.0.0.1:99999&module=grpc",
            {},
            400,
            "invalid port '99999': must be between 1 and 65535",
        ),
    ],
)
def test_a_bad_request_is_a_4xx_with_one_clear_line(
    exporter: Callable[..., RunningExporter],
    query: str,
    headers: dict[str, str],
    status: int,
    line: str,
) -> None:
    running = exporter(MODULES, *ALLOW)
    answer = get(f"{running.url}/probe{query}", headers)
    assert (answer.status, answer.text) == (status, line + "\n")
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"


def test_other_pages_and_methods_are_refused_and_counted_on_metrics(
    exporter: Callable[..., RunningExporter],
) -> None:
    running = exporter(MODULES, *ALLOW)
    assert get(f"{running.url}/nope").status == 404
    assert get(f"{running.url}/metrics", method="POST").status == 405
    assert get(f"{running.url}/probe?module=grpc").status == 400
    landing = get(f"{running.url}/")
    assert landing.status == 200
    assert '<a href="metrics">' in landing.text
    found = samples(get(f"{running.url}/metrics").text)
    for reason, count in (("not_found", 1), ("method_not_allowed", 1), ("bad_request", 1)):
        assert found[series("grpc_health_exporter_requests_refused_total", reason=reason)] == count
    assert found["grpc_health_exporter_modules"] == 3
    assert found["process_cpu_seconds_total"] > 0


def test_fifty_concurrent_scrapes_each_get_their_verdict(
    exporter: Callable[..., RunningExporter], server: HealthServer
) -> None:
    running = exporter(MODULES, *ALLOW)

    def scrape(number: int) -> tuple[int, float]:
        service = ["ready", "down"][number % 2]
        answer = get(probe_url(running.url, server.address, "orders", service=service), TIMEOUT)
        return answer.status, samples(answer.text).get("probe_success", -1)

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(scrape, range(50)))
    assert results == [(200, 1.0), (200, 0.0)] * 25
    found = samples(get(f"{running.url}/metrics").text)
    success = series("grpc_health_exporter_probes_total", module="orders", result="success")
    failure = series("grpc_health_exporter_probes_total", module="orders", result="failure")
    assert (found[success], found[failure]) == (25, 25)
    assert found[series("grpc_health_exporter_probe_duration_seconds_count", module="orders")] == 50


def test_sighup_reads_the_modules_again_and_a_bad_file_keeps_the_old_ones(
    exporter: Callable[..., RunningExporter], server: HealthServer, tmp_path: Path
) -> None:
    running = exporter(MODULES, *ALLOW)
    path = tmp_path / "modules-0.txt"
    path.write_text("fresh: -t 3\n")
    before = len(running.lines)
    running.signal(signal.SIGHUP)
    assert running.line("reload:", after=before).endswith("reload: 1 modules for /probe")
    assert get(probe_url(running.url, server.address, "fresh"), TIMEOUT).status == 200
    assert get(probe_url(running.url, server.address, "grpc"), TIMEOUT).status == 400
    path.write_text("broken -t 3\n")
    before = len(running.lines)
    running.signal(signal.SIGHUP)
    assert running.line("reload:", after=before).endswith(
        f"reload: {path}, line 1: a module line is NAME: OPTIONS, where NAME has letters, "
        "digits, '_', '.' or '-'; the modules from before stay"
    )
    assert get(probe_url(running.url, server.address, "fresh"), TIMEOUT).status == 200


@pytest.mark.parametrize(
    ("modules", "options", "message"),
    [
        (
            "grpc: -t 5\n",
            [],
            "--modules needs --allow-target PATTERN: /probe dials whatever a "
            "scraper names, so list the targets it may dial ('*' allows any)",
        ),
        (
            "grpc: -H 127.0.0.1:1\n",
            ["--allow-target", "*"],
            "{path}, line 1: module grpc: -H "
            "has no place in a module: the target comes from the request's target parameter",
        ),
        (
            "grpc: -t 5\ngrpc: -t 3\n",
            ["--allow-target", "*"],
            "{path}, line 2: module grpc is already defined on line 1",
        ),
        (
            "grpc: --bogus\n",
            ["--allow-target", "*"],
            "{path}, line 1: module grpc: unknown option '--bogus'",
        ),
        ("# nothing\n", ["--allow-target", "*"], "modules file '{path}' defines no module"),
        (
            "grpc: -t 5\n",
            ["--allow-target", "*", "--listen", "127.0.0.1"],
            "--listen '127.0.0.1' is not HOST:PORT (e.g. 127.0.0.1:9115)",
        ),
        ("grpc: -t 5\n", ["--allow-target", "*", "--timeout-offset", "x"], "--timeout-offset"),
    ],
)
def test_bad_arguments_and_modules_are_one_line_and_exit_code_3(
    tmp_path: Path, modules: str, options: list[str], message: str
) -> None:
    import subprocess

    path = tmp_path / "modules.txt"
    path.write_text(modules)
    done = subprocess.run(
        [EXPORTER, "--listen", "127.0.0.1:0", "--modules", str(path), *options],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 3
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("check_grpc_health_exporter: " + message.format(path=path))


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket
    import subprocess

    path = tmp_path / "modules.txt"
    path.write_text("grpc:\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                EXPORTER,
                "--listen",
                f"127.0.0.1:{port}",
                "--modules",
                str(path),
                "--allow-target",
                "*",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 3
    assert done.stderr == (
        f"check_grpc_health_exporter: --listen 127.0.0.1:{port}: cannot listen: "
        "Address already in use\n"
    )
    assert re.fullmatch(r"\d+", str(port))
