"""The plugin's state table, row by row, against real servers and hostile peers.

Every row asserts the state, the exit code and the exact status line (with measured
times replaced by ``X``). The same table is in docs/nagios.md.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2
from support.plugin import assert_critical, assert_state, judge, output_lines, status_line
from support.servers import NOT_SERVING, SERVING, SlowHealthServicer

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import nagiosplugin
    from conftest import TlsMaterial
    from support.servers import HealthServer

TIMINGS = "connect_time=Xs;;;0 rpc_time=Xs;;;0 time=Xs;;;0"


class ServiceUnknownServicer(health.HealthServicer):
    """Answers Check with SERVICE_UNKNOWN, which servers normally send only on Watch."""

    def Check(self, request: Any, context: Any) -> Any:
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)


class DenyingServicer(health.HealthServicer):
    """Rejects every Check as unauthenticated."""

    def Check(self, request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing token")


# --- health statuses ----------------------------------------------------------------


def test_serving_is_ok(server: HealthServer) -> None:
    assert_state(
        judge("-H", server.address),
        "OK",
        f"GRPC_HEALTH OK - {server.address}: overall health is SERVING in Xs | {TIMINGS}",
    )


def test_not_serving_is_critical(server: HealthServer) -> None:
    assert_critical(
        judge("-H", server.address, "-s", "down"),
        f"GRPC_HEALTH CRITICAL - {server.address}: service 'down' is NOT_SERVING | {TIMINGS}",
    )


def test_unknown_is_critical(server: HealthServer) -> None:
    assert_critical(
        judge("-H", server.address, "-s", "unknown"),
        f"GRPC_HEALTH CRITICAL - {server.address}: service 'unknown' is UNKNOWN | {TIMINGS}",
    )


def test_service_unknown_is_critical(start_server: Callable[..., HealthServer]) -> None:
    address = start_server(servicer=ServiceUnknownServicer()).address
    assert_critical(
        judge("-H", address),
        f"GRPC_HEALTH CRITICAL - {address}: overall health is SERVICE_UNKNOWN | {TIMINGS}",
    )


# --- RPC errors ---------------------------------------------------------------------


def test_unknown_service_not_found_is_critical_and_named(server: HealthServer) -> None:
    assert_critical(
        judge("-H", server.address, "-s", "no.such.Service"),
        f"GRPC_HEALTH CRITICAL - {server.address}: unknown service 'no.such.Service' "
        f"(NOT_FOUND) | {TIMINGS}",
    )


def test_missing_health_service_unimplemented_is_critical(
    start_server: Callable[..., HealthServer],
) -> None:
    address = start_server(with_health=False).address
    assert_critical(
        judge("-H", address),
        f"GRPC_HEALTH CRITICAL - {address}: the server lacks the grpc.health.v1.Health service "
        f"(UNIMPLEMENTED) | {TIMINGS}",
    )


def test_rpc_deadline_exceeded_is_critical(start_server: Callable[..., HealthServer]) -> None:
    address = start_server(servicer=SlowHealthServicer(2.0)).address
    check = judge("-H", address, "--rpc-timeout", "0.3")
    assert_critical(
        check,
        f"GRPC_HEALTH CRITICAL - {address}: overall health: no answer within the 0.3s "
        f"RPC timeout | {TIMINGS}",
    )
    assert check.resources[0].result.rpc_time < 1.5  # type: ignore[attr-defined]


def test_other_rpc_error_is_critical_with_code_and_details(
    start_server: Callable[..., HealthServer],
) -> None:
    address = start_server(servicer=DenyingServicer()).address
    assert_critical(
        judge("-H", address),
        f"GRPC_HEALTH CRITICAL - {address}: overall health: health RPC failed with "
        f"UNAUTHENTICATED: missing token | {TIMINGS}",
    )


# --- connection trouble: CRITICAL, never UNKNOWN --------------------------------------


def test_refused_connection_is_critical(closed_address: str) -> None:
    line = status_line(judge("-H", closed_address))
    assert line.startswith(f"GRPC_HEALTH CRITICAL - failed to connect to {closed_address}: ")
    assert "Connection refused" in line
    assert line.endswith(" | time=Xs;;;0")


def test_connect_timeout_is_critical(black_hole_address: str) -> None:
    check = judge("-H", black_hole_address, "--connect-timeout", "0.3")
    assert_critical(
        check,
        f"GRPC_HEALTH CRITICAL - timed out connecting to {black_hole_address} after 0.3s: "
        "the server accepted the TCP connection but sent no HTTP/2 settings (overloaded, or "
        "not a gRPC server); use a longer --connect-timeout, or check the port in -H"
        " | time=Xs;;;0",
    )
    assert check.resources[0].elapsed < 2.0  # type: ignore[attr-defined]


def test_unresolvable_host_is_critical() -> None:
    check = judge("-H", "no-such-host.invalid:50051", "--connect-timeout", "2")
    assert str(check.state) == "critical"
    assert status_line(check).startswith(
        "GRPC_HEALTH CRITICAL - failed to connect to no-such-host.invalid:50051: "
    )


@pytest.mark.parametrize("peer", ["http1_address", "random_bytes_address"])
def test_a_peer_that_is_not_grpc_is_critical(peer: str, request: pytest.FixtureRequest) -> None:
    address = request.getfixturevalue(peer)
    check = judge("-H", address)
    assert str(check.state) == "critical"
    line = status_line(check)
    assert line.startswith(f"GRPC_HEALTH CRITICAL - failed to connect to {address}: ")
    assert "HTTP/2" in line
    assert line.endswith(" | time=Xs;;;0")


# --- TLS ----------------------------------------------------------------------------


def test_tls_verified_with_ca_is_ok(tls_server: HealthServer, tls_material: TlsMaterial) -> None:
    check = judge(
        "-H",
        tls_server.address,
        "--ca-cert",
        str(tls_material.ca_cert),
        "--server-name",
        tls_material.server_name,
    )
    assert_state(
        check,
        "OK",
        f"GRPC_HEALTH OK - {tls_server.address}: overall health is SERVING in Xs | {TIMINGS}",
    )


def test_untrusted_certificate_is_critical(
    tls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    check = judge("-H", tls_server.address, "--ca-cert", str(tls_material.other_ca_cert))
    assert str(check.state) == "critical"
    line = status_line(check)
    assert line.startswith(f"GRPC_HEALTH CRITICAL - failed to connect to {tls_server.address}: ")
    assert line.endswith(" | time=Xs;;;0")


def test_name_mismatch_is_critical(tls_server: HealthServer, tls_material: TlsMaterial) -> None:
    check = judge(
        "-H",
        tls_server.address,
        "--ca-cert",
        str(tls_material.ca_cert),
        "--server-name",
        "other.example.test",
    )
    assert str(check.state) == "critical"
    assert status_line(check).startswith("GRPC_HEALTH CRITICAL - failed to connect to ")


def test_tls_against_a_plaintext_server_is_critical(server: HealthServer) -> None:
    check = judge("-H", server.address, "--tls")
    assert str(check.state) == "critical"
    assert status_line(check).startswith(
        f"GRPC_HEALTH CRITICAL - failed to connect to {server.address}: "
    )


def test_plaintext_against_a_tls_server_is_critical(tls_server: HealthServer) -> None:
    check = judge("-H", tls_server.address, "--connect-timeout", "2")
    assert str(check.state) == "critical"
    assert "connect" in status_line(check)


def test_mtls_without_client_certificate_is_critical(
    mtls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    check = judge(
        "-H",
        mtls_server.address,
        "--ca-cert",
        str(tls_material.ca_cert),
        "--server-name",
        tls_material.server_name,
    )
    assert str(check.state) == "critical"


def test_mtls_with_client_certificate_is_ok(
    mtls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    check = judge(
        "-H",
        mtls_server.address,
        "--ca-cert",
        str(tls_material.ca_cert),
        "--server-name",
        tls_material.server_name,
        "--client-cert",
        str(tls_material.client_cert),
        "--client-key",
        str(tls_material.client_key),
        "--cert-warning",
        "30",
    )
    assert str(check.state) == "ok"
    assert "cert_days" in check.results


def test_insecure_pins_the_certificate_and_reports_its_days(tls_server: HealthServer) -> None:
    check = judge("-H", tls_server.address, "--insecure")
    line = status_line(check)
    assert re.fullmatch(
        rf"GRPC_HEALTH OK - {re.escape(tls_server.address)}: overall health is SERVING in Xs, "
        r"server certificate expires in [0-9]+\.[0-9] days \| "
        r"cert_days=[0-9.]+ connect_time=Xs;;;0 rpc_time=Xs;;;0 time=Xs;;;0",
        line,
    )


# --- cannot judge: UNKNOWN ----------------------------------------------------------


def test_unreadable_ca_file_is_unknown(server: HealthServer, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    assert_state(
        judge("-H", server.address, "--ca-cert", str(missing)),
        "UNKNOWN",
        f"GRPC_HEALTH UNKNOWN - cannot read CA certificate '{missing}': No such file or directory",
    )


def test_ca_file_that_is_not_pem_is_unknown(server: HealthServer, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert_state(
        judge("-H", server.address, "--ca-cert", str(junk)),
        "UNKNOWN",
        f"GRPC_HEALTH UNKNOWN - CA certificate '{junk}' is not a PEM file",
    )


def test_client_key_that_does_not_match_is_unknown(
    tls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    check = judge(
        "-H",
        tls_server.address,
        "--client-cert",
        str(tls_material.client_cert),
        "--client-key",
        str(tls_material.server_key),
    )
    assert_state(
        check,
        "UNKNOWN",
        f"GRPC_HEALTH UNKNOWN - client key '{tls_material.server_key}' does not match "
        f"client certificate '{tls_material.client_cert}'",
    )


# --- thresholds ---------------------------------------------------------------------


@pytest.fixture
def slow_address(start_server: Callable[..., HealthServer]) -> str:
    return start_server(servicer=SlowHealthServicer(0.4)).address


def time_line(check: nagiosplugin.Check) -> str:
    # At least the server's 0.4 s; a loaded machine may take over a second.
    return re.sub(r"is (0\.[4-9]|[1-9])[0-9.]*s", "is Ts", status_line(check))


def test_total_time_above_warning_is_warning(slow_address: str) -> None:
    check = judge("-H", slow_address, "-w", "0.2", "-c", "5")
    assert str(check.state) == "warning"
    assert time_line(check) == (
        f"GRPC_HEALTH WARNING - {slow_address}: time is Ts (outside range 0:0.2) | "
        "connect_time=Xs;;;0 rpc_time=Xs;;;0 time=Xs;0.2;5;0"
    )


def test_total_time_above_critical_is_critical(slow_address: str) -> None:
    check = judge("-H", slow_address, "-w", "0.1", "-c", "0.2")
    assert str(check.state) == "critical"
    assert time_line(check) == (
        f"GRPC_HEALTH CRITICAL - {slow_address}: time is Ts (outside range 0:0.2) | "
        "connect_time=Xs;;;0 rpc_time=Xs;;;0 time=Xs;0.1;0.2;0"
    )


def test_time_inside_the_ranges_is_ok(server: HealthServer) -> None:
    check = judge("-H", server.address, "-w", "~:5", "-c", "@10:20")
    assert str(check.state) == "ok"
    assert status_line(check).endswith("time=Xs;~:5;@10:20;0")


def test_rpc_phase_threshold(slow_address: str) -> None:
    check = judge("-H", slow_address, "--rpc-warning", "0.2", "--connect-critical", "5")
    assert str(check.state) == "warning"
    line = re.sub(r"is 0\.[4-9][0-9]*s", "is Ts", status_line(check))
    assert line == (
        f"GRPC_HEALTH WARNING - {slow_address}: rpc_time is Ts (outside range 0:0.2) | "
        "connect_time=Xs;;5;0 rpc_time=Xs;0.2;;0 time=Xs;;;0"
    )


def test_connect_phase_threshold(server: HealthServer) -> None:
    # No connection takes less than nothing: an inverted range that always fires.
    check = judge("-H", server.address, "--connect-critical", "@0:100")
    assert str(check.state) == "critical"
    assert "connect_time is " in status_line(check)
    assert "(outside range @0:100)" in status_line(check)


def test_certificate_days_below_warning_and_critical(
    tls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    base = ["-H", tls_server.address, "--ca-cert", str(tls_material.ca_cert)]
    base += ["--server-name", tls_material.server_name]
    warning = judge(*base, "--cert-warning", "100000", "--cert-critical", "7")
    assert str(warning.state) == "warning"
    assert re.search(
        r": server certificate expires in [0-9.]+ days \(warning below 100000\) \| "
        r"cert_days=[0-9.]+;100000:;7: ",
        status_line(warning),
    )
    critical = judge(*base, "--cert-critical", "99999")
    assert str(critical.state) == "critical"
    assert "(critical below 99999)" in status_line(critical)
    fine = judge(*base, "--cert-warning", "30", "--cert-critical", "7")
    assert str(fine.state) == "ok"


# --- status-to-state overrides ------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "mapping", "state"),
    [
        ("down", "NOT_SERVING=WARNING", "WARNING"),
        ("down", "not_serving=ok", "OK"),
        ("down", "NOT_SERVING:1", "WARNING"),
        ("unknown", "UNKNOWN=WARNING", "WARNING"),
        ("unknown", "NOT_SERVING=WARNING", "CRITICAL"),
        ("", "SERVING=CRITICAL", "CRITICAL"),
        ("down", "NOT_SERVING=UNKNOWN", "UNKNOWN"),
    ],
)
def test_map_status(server: HealthServer, service: str, mapping: str, state: str) -> None:
    check = judge("-H", server.address, "-s", service, "--map-status", mapping)
    assert str(check.state).upper() == state


def test_mapped_ok_summary_still_names_the_status(server: HealthServer) -> None:
    check = judge("-H", server.address, "-s", "down", "--map-status", "NOT_SERVING=OK")
    assert status_line(check) == (
        f"GRPC_HEALTH OK - {server.address}: service 'down' is NOT_SERVING in Xs | {TIMINGS}"
    )


# --- several services ---------------------------------------------------------------


def test_several_services_worst_wins_and_failing_ones_are_named(server: HealthServer) -> None:
    server.set("maintenance", NOT_SERVING)
    check = judge(
        "-H",
        server.address,
        *("-s", "", "-s", "ready", "-s", "maintenance", "-s", "gone"),
        *("--map-status", "NOT_SERVING=WARNING"),
    )
    assert str(check.state) == "critical"
    lines = output_lines(check)
    assert status_line(check) == (
        f"GRPC_HEALTH CRITICAL - {server.address}: unknown service 'gone' (NOT_FOUND), "
        "service 'maintenance' is NOT_SERVING | connect_time=Xs;;;0 rpc_time=Xs;;;0 "
        "serving_gone=0;;;0;1 serving_maintenance=0;;;0;1 serving_overall=1;;;0;1 "
        "serving_ready=1;;;0;1 time=Xs;;;0"
    )
    assert [re.sub(r"\([0-9.]+s\)$", "(T)", line) for line in lines[1:]] == [
        "OK: overall health is SERVING (T)",
        "OK: service 'ready' is SERVING (T)",
        "WARNING: service 'maintenance' is NOT_SERVING (T)",
        "CRITICAL: unknown service 'gone' (NOT_FOUND) (T)",
    ]


def test_several_services_all_serving(server: HealthServer) -> None:
    server.set("b", SERVING)
    check = judge("-H", server.address, "-s", "ready", "-s", "b")
    assert status_line(check).startswith(
        f"GRPC_HEALTH OK - {server.address}: 2 services are SERVING in Xs | "
    )
    assert len(output_lines(check)) == 3


def test_a_service_named_twice_is_checked_once(server: HealthServer) -> None:
    check = judge("-H", server.address, "-s", "ready", "-s", "ready")
    assert_state(
        check,
        "OK",
        f"GRPC_HEALTH OK - {server.address}: service 'ready' is SERVING in Xs | {TIMINGS}",
    )
    assert [
        result.metric.name for result in check.results if result.metric.context == "health"
    ] == ["serving_ready"]
    repeated = judge("-H", server.address, "-s", "ready", "-s", "", "-s", "ready", "-s", "")
    assert status_line(repeated) == (
        f"GRPC_HEALTH OK - {server.address}: 2 services are SERVING in Xs | "
        "connect_time=Xs;;;0 rpc_time=Xs;;;0 serving_overall=1;;;0;1 serving_ready=1;;;0;1 "
        "time=Xs;;;0"
    )


def test_each_service_line_names_its_service_on_a_server_without_health(
    start_server: Callable[..., HealthServer],
) -> None:
    address = start_server(with_health=False).address
    check = judge("-H", address, "-s", "app.Orders", "-s", "app.Batch")
    assert_critical(
        check,
        f"GRPC_HEALTH CRITICAL - {address}: the server lacks the grpc.health.v1.Health service "
        "(UNIMPLEMENTED) (services 'app.Orders', 'app.Batch') | 'serving_app.Batch'=0;;;0;1 "
        f"'serving_app.Orders'=0;;;0;1 {TIMINGS}",
    )
    lacks = "the server lacks the grpc.health.v1.Health service (UNIMPLEMENTED)"
    assert [re.sub(r" \([0-9.]+s\)$", "", line) for line in output_lines(check)[1:]] == [
        f"CRITICAL: service 'app.Orders': {lacks}",
        f"CRITICAL: service 'app.Batch': {lacks}",
    ]


def test_an_expired_certificate_fails_even_with_insecure_as_the_docs_say(
    expired_tls_server: HealthServer,
) -> None:
    from support.paths import ROOT

    address = expired_tls_server.address
    expired = "the server's certificate expired on 2021-01-01 00:00 UTC"
    assert_critical(
        judge("-H", address, "--insecure"),
        f"GRPC_HEALTH CRITICAL - failed to connect to {address}: {expired} | time=Xs;;;0",
    )
    rows = (ROOT / "docs" / "nagios.md").read_text("utf-8").splitlines()
    row = next(line for line in rows if line.startswith("| certificate expired "))
    assert "`--insecure`" in row
    assert row.endswith(f"| CRITICAL | `failed to connect to localhost:50443: {expired}` |")
