"""Discovery against real servers: reflection on and off, and addresses behind a name."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

from check_grpc_health.core.discovery import ReflectionUnavailable, list_services, resolve_addresses
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import ConnectFailure, InvalidArgument
from check_grpc_health.core.targets import parse_target

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import TlsMaterial
    from support.servers import HealthServer


def test_lists_services_without_health_and_reflection(
    start_server: Callable[..., HealthServer],
) -> None:
    server = start_server(reflection=True, extra_services=("shop.v1.Orders", "shop.v1.Carts"))
    services = list_services(ProbeOptions(parse_target(server.address)))
    assert services == ("shop.v1.Carts", "shop.v1.Orders")


def test_server_without_reflection_says_so(server: HealthServer) -> None:
    with pytest.raises(ReflectionUnavailable) as caught:
        list_services(ProbeOptions(parse_target(server.address)))
    assert str(caught.value) == (
        f"{server.address} does not offer gRPC server reflection, so its services cannot be listed"
    )


def test_listing_a_closed_port_is_a_connection_failure(closed_address: str) -> None:
    with pytest.raises(ConnectFailure):
        list_services(ProbeOptions(parse_target(closed_address)))


def test_resolves_localhost_to_loopback_addresses() -> None:
    targets = resolve_addresses(parse_target("localhost:50051"), socket.AF_INET)
    assert [t.grpc_target for t in targets] == ["127.0.0.1:50051"]
    assert all(t.port == 50051 for t in targets)


def test_resolving_ip_literals_and_unix_sockets() -> None:
    assert [t.grpc_target for t in resolve_addresses(parse_target("127.0.0.2:7"))] == [
        "127.0.0.2:7"
    ]
    with pytest.raises(InvalidArgument, match="not a host name that can be resolved"):
        resolve_addresses(parse_target("unix:/tmp/x.sock"))


def test_unresolvable_name_is_a_connection_failure() -> None:
    with pytest.raises(ConnectFailure, match=r"cannot resolve no-such-host\.invalid"):
        resolve_addresses(parse_target("no-such-host.invalid:1"))


def test_static_address_lists_yield_one_backend_each() -> None:
    targets = resolve_addresses(parse_target("ipv4:127.0.0.1:80,127.0.0.2:81"))
    assert [t.grpc_target for t in targets] == ["127.0.0.1:80", "127.0.0.2:81"]


def test_probe_addresses_reports_each_backend(
    start_server: Callable[..., HealthServer], closed_address: str
) -> None:
    from check_grpc_health.core.discovery import probe_addresses

    healthy = start_server()
    down = start_server(statuses={"": 2})
    name = f"ipv4:{healthy.address},{down.address},{closed_address}"
    backends = probe_addresses(ProbeOptions(parse_target(name)))
    assert [b.target.grpc_target for b in backends] == [
        healthy.address,
        down.address,
        closed_address,
    ]
    assert [b.healthy for b in backends] == [True, False, False]
    assert backends[1].result is not None
    assert isinstance(backends[2].failure, ConnectFailure)


def test_probe_addresses_verifies_tls_against_the_name(
    start_server: Callable[..., HealthServer], tls_material: TlsMaterial
) -> None:
    import grpc

    from check_grpc_health.core.discovery import probe_addresses
    from check_grpc_health.core.tls import TlsOptions

    # A certificate for the name only: dialling the IP must still verify against the name.
    leaf = tls_material.ca.issue_cert("localhost")
    credentials = grpc.ssl_server_credentials(
        [(leaf.private_key_pem.bytes(), leaf.cert_chain_pems[0].bytes())]
    )
    server = start_server(credentials=credentials)
    options = ProbeOptions(
        parse_target(f"localhost:{server.port}"),
        tls=TlsOptions(ca_cert=str(tls_material.ca_cert)),
    )
    backends = probe_addresses(options, socket.AF_INET)
    assert [b.target.grpc_target for b in backends] == [f"127.0.0.1:{server.port}"]
    assert backends[0].healthy, backends[0].failure
