"""The plugin's discovery modes against real servers: --all-services and --all-addresses.

Backends listen on several loopback addresses (127.0.0.1, 127.0.0.2, 127.0.0.3: all of
127/8 reaches this host) and are named with a static ``ipv4:`` address list.
"""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

from support.paths import BIN
from support.plugin import assert_state, error_for, judge, status_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import TlsMaterial
    from support.servers import HealthServer


def test_all_services_checks_every_listed_service(
    start_server: Callable[..., HealthServer],
) -> None:
    server = start_server(
        reflection=True,
        extra_services=("shop.v1.Orders", "shop.v1.Carts"),
        statuses={"": 1, "shop.v1.Orders": 1, "shop.v1.Carts": 1},
    )
    check = judge("-H", server.address, "--all-services")
    assert_state(
        check,
        "OK",
        f"GRPC_HEALTH OK - {server.address}: 3 services are SERVING in Xs | "
        "'serving_shop.v1.Carts'=1;;;0;1 'serving_shop.v1.Orders'=1;;;0;1 "
        "connect_time=Xs;;;0 rpc_time=Xs;;;0 serving_overall=1;;;0;1 time=Xs;;;0",
    )


def test_all_services_names_the_failing_one(start_server: Callable[..., HealthServer]) -> None:
    server = start_server(
        reflection=True,
        extra_services=("shop.v1.Orders", "shop.v1.Carts"),
        statuses={"": 1, "shop.v1.Orders": 1},
    )
    check = judge("-H", server.address, "--all-services")
    assert str(check.state) == "critical"
    assert status_line(check).startswith(
        f"GRPC_HEALTH CRITICAL - {server.address}: unknown service 'shop.v1.Carts' (NOT_FOUND) | "
    )


def test_all_services_without_reflection_is_unknown(server: HealthServer) -> None:
    check = judge("-H", server.address, "--all-services")
    assert_state(
        check,
        "UNKNOWN",
        f"GRPC_HEALTH UNKNOWN - {server.address} does not offer gRPC server reflection, "
        "so its services cannot be listed",
    )


def test_all_services_on_a_closed_port_is_critical(closed_address: str) -> None:
    check = judge("-H", closed_address, "--all-services")
    assert str(check.state) == "critical"
    assert status_line(check).startswith(
        f"GRPC_HEALTH CRITICAL - failed to connect to {closed_address}: Connection refused"
    )


def three_backends(
    start_server: Callable[..., HealthServer], closed_address: str
) -> tuple[str, list[str]]:
    """Backends on 127.0.0.1-3: serving, serving, NOT_SERVING, plus a refused one."""
    first = start_server()
    second = start_server(host="127.0.0.2")
    third = start_server(host="127.0.0.3", statuses={"": 2})
    addresses = [first.address, second.address, third.address, closed_address]
    return "ipv4:" + ",".join(addresses), addresses


def test_all_addresses_counts_healthy_backends(
    start_server: Callable[..., HealthServer], closed_address: str
) -> None:
    name, addresses = three_backends(start_server, closed_address)
    check = judge("-H", name, "--all-addresses")
    labels = " ".join(
        f"'backend_{address}'={int(index < 2)};;;0;1"
        for index, address in sorted(enumerate(addresses), key=lambda item: item[1])
    )
    assert_state(
        check,
        "WARNING",
        f"GRPC_HEALTH WARNING - {name}: 2 of 4 backends healthy (warning below 100%); "
        f"{addresses[2]}: overall health is NOT_SERVING; "
        f"{addresses[3]}: failed to connect to {addresses[3]}: Connection refused | "
        f"{labels} healthy_backends=2;4:;2:;0;4 time=Xs;;;0",
    )


def test_backend_thresholds_by_count_and_share(
    start_server: Callable[..., HealthServer], closed_address: str
) -> None:
    name, _ = three_backends(start_server, closed_address)
    assert str(judge("-H", name, "--all-addresses", "--backends-warning", "2").state) == "ok"
    critical = judge("-H", name, "--all-addresses", "--backends-critical", "75%")
    assert str(critical.state) == "critical"
    assert "2 of 4 backends healthy (critical below 75%)" in status_line(critical)
    assert "healthy_backends=2;4:;3:;0;4" in status_line(critical)


def test_all_addresses_all_healthy_is_ok(start_server: Callable[..., HealthServer]) -> None:
    first = start_server()
    second = start_server(host="127.0.0.2")
    name = f"ipv4:{first.address},{second.address}"
    check = judge("-H", name, "--all-addresses", "-s", "")
    assert str(check.state) == "ok"
    assert status_line(check).startswith(f"GRPC_HEALTH OK - {name}: 2 of 2 backends healthy | ")


def test_all_addresses_resolves_a_name_and_verifies_tls_by_it(
    start_server: Callable[..., HealthServer], tls_material: TlsMaterial
) -> None:
    import grpc

    leaf = tls_material.ca.issue_cert("localhost")
    credentials = grpc.ssl_server_credentials(
        [(leaf.private_key_pem.bytes(), leaf.cert_chain_pems[0].bytes())]
    )
    server = start_server(credentials=credentials)
    name = f"localhost:{server.port}"
    check = judge("-H", name, "--all-addresses", "-4", "--ca-cert", str(tls_material.ca_cert))
    assert_state(
        check,
        "OK",
        f"GRPC_HEALTH OK - {name}: 1 of 1 backends healthy | "
        f"'backend_127.0.0.1:{server.port}'=1;;;0;1 healthy_backends=1;1:;1:;0;1 time=Xs;;;0",
    )


def test_all_addresses_json_lists_each_backend(
    start_server: Callable[..., HealthServer], closed_address: str
) -> None:
    name, addresses = three_backends(start_server, closed_address)
    done = subprocess.run(
        [str(BIN / "check_grpc_health"), "-H", name, "--all-addresses", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert (document["state"], document["healthy"], document["total"]) == ("WARNING", 2, 4)
    assert [b["address"] for b in document["backends"]] == addresses
    assert [b["healthy"] for b in document["backends"]] == [True, True, False, False]
    services = document["backends"][2]["services"]
    assert 0 < services[0].pop("rpc_time") < 30
    assert services == [{"service": "", "status": "NOT_SERVING", "state": None, "error": None}]
    assert document["backends"][3]["error"] == (
        f"failed to connect to {addresses[3]}: Connection refused"
    )


def test_discovery_argument_errors() -> None:
    cases = {
        ("-H", "h:1", "--backends-warning", "2"): "--backends-warning and "
        "--backends-critical need --all-addresses",
        ("-H", "h:1", "-4", "-6", "--all-addresses"): "-4/--ipv4 and -6/--ipv6 cannot be combined",
        ("-H", "h:1", "--all-services", "-s", "x"): "--all-services checks every service: "
        "leave out -s/--service",
        ("-H", "h:1", "--all-services", "--all-addresses"): "--all-services and "
        "--all-addresses cannot be combined",
        ("-H", "unix:/x.sock", "--all-addresses"): "--all-addresses needs a host name, "
        "not a unix socket",
        ("-H", "h:1", "--all-addresses", "--backends-critical", "150%"): "--backends-critical "
        "'150%' is not a number of backends or a percentage (e.g. 2 or 50%)",
        ("-H", "h:1", "--all-addresses", "--backends-warning", "1.5"): "--backends-warning "
        "'1.5' is not a number of backends or a percentage (e.g. 2 or 50%)",
    }
    for argv, message in cases.items():
        assert error_for(*argv) == message


def test_negative_numbers_stay_values_beside_minus_four_and_six() -> None:
    assert error_for("-H", "h:1", "--rpc-timeout", "-1") == (
        "--rpc-timeout must be a finite number above zero (got -1.0)"
    )
    assert error_for("-H", "h:1", "-w", "-1") == (
        "-w/--warning '-1' is not a Nagios range (e.g. 0.5, 10:, ~:1 or @0.2:0.4)"
    )


def test_sub_millisecond_thresholds_stay_plain_decimals(server: HealthServer) -> None:
    check = judge("-H", server.address, "-w", "0.000001", "-c", "1")
    assert str(check.state) == "warning"
    assert status_line(check).endswith(" time=Xs;0.000001;1;0")
