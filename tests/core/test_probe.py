"""The core probe against real servers: every target form, TLS, mTLS and every error class."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from check_grpc_health import HealthChannel, probe
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import (
    ConnectFailure,
    HealthStatus,
    InvalidArgument,
    ProbeResult,
)
from check_grpc_health.core.targets import parse_target
from check_grpc_health.core.tls import TlsOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import TlsMaterial
    from support.servers import HealthServer, RawListener


def options_for(address: str, **kwargs: object) -> ProbeOptions:
    return ProbeOptions(parse_target(address), **kwargs)  # type: ignore[arg-type]


def statuses(result: ProbeResult) -> dict[str, HealthStatus | None]:
    return {item.service: item.status for item in result.services}


def test_serving_overall_health(server: HealthServer) -> None:
    result = probe(options_for(server.address))
    assert statuses(result) == {"": HealthStatus.SERVING}
    assert result.serving
    assert 0 < result.connect_time <= result.time
    assert 0 < result.rpc_time <= result.time
    assert result.target == server.address
    assert result.certificate is None


def test_a_service_named_twice_is_asked_once_in_the_first_order() -> None:
    options = options_for(":1", services=("b", "", "b", "a", "", "a"))
    assert options.services == ("b", "", "a")


def test_several_services_on_one_channel(server: HealthServer) -> None:
    result = probe(options_for(server.address, services=("", "ready", "down", "unknown", "nope")))
    assert statuses(result) == {
        "": HealthStatus.SERVING,
        "ready": HealthStatus.SERVING,
        "down": HealthStatus.NOT_SERVING,
        "unknown": HealthStatus.UNKNOWN,
        "nope": None,
    }
    missing = result.services[-1].error
    assert missing is not None
    assert missing.code_name == "NOT_FOUND"
    assert missing.message == "unknown service 'nope'"
    assert not result.serving
    assert all(item.rpc_time > 0 for item in result.services)


def test_port_only_means_localhost(server: HealthServer) -> None:
    assert probe(options_for(f":{server.port}")).serving


def test_separate_port_and_dns_scheme(server: HealthServer) -> None:
    assert probe(ProbeOptions(parse_target("127.0.0.1", server.port))).serving
    assert probe(options_for(f"dns:///localhost:{server.port}")).serving
    assert probe(options_for(f"ipv4:127.0.0.1:{server.port}")).serving


def test_ipv6_loopback(start_server: Callable[..., HealthServer]) -> None:
    if not socket.has_ipv6:
        pytest.skip("this host has no IPv6")
    from concurrent import futures

    from grpc_health.v1 import health, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(2))
    servicer = health.HealthServicer(experimental_non_blocking=False)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    try:
        port = server.add_insecure_port("[::1]:0")
    except RuntimeError:
        pytest.skip("cannot bind [::1] here")
    server.start()
    try:
        assert probe(options_for(f"[::1]:{port}")).serving
        assert probe(ProbeOptions(parse_target("::1", port))).serving
    finally:
        server.stop(None)


def test_unix_socket_forms(unix_server: HealthServer) -> None:
    path = unix_server.unix_path
    assert probe(options_for(f"unix:{path}")).serving
    assert probe(options_for(f"unix://{path}")).serving


def test_metadata_user_agent_and_authority_reach_the_server(
    start_server: Callable[..., HealthServer],
) -> None:
    from support.servers import HeaderRecordingServicer

    servicer = HeaderRecordingServicer()
    server = start_server(servicer=servicer)
    probe(
        options_for(
            server.address,
            metadata=(("authorization", "Bearer t0ken"), ("x-tenant", "blue")),
            user_agent="check-test/1.0",
            authority="health.example.test",
            gzip=True,
        )
    )
    seen = servicer.seen[-1]
    assert seen["authorization"] == "Bearer t0ken"
    assert seen["x-tenant"] == "blue"
    assert seen["user-agent"].startswith("check-test/1.0 ")
    assert seen.get(":authority", "health.example.test") == "health.example.test"


def test_not_serving_is_a_result_not_an_error(server: HealthServer) -> None:
    server.set("", 2)
    result = probe(options_for(server.address))
    assert statuses(result) == {"": HealthStatus.NOT_SERVING}
    assert not result.serving


def test_refused_connection_fails_at_once(closed_address: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectFailure) as caught:
        probe(options_for(closed_address, connect_timeout=5))
    assert time.monotonic() - started < 2.0
    assert not caught.value.timed_out
    assert str(caught.value).startswith(f"failed to connect to {closed_address}: ")
    assert "Connection refused" in caught.value.detail


def test_black_hole_times_out_at_the_connect_deadline(black_hole_address: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectFailure) as caught:
        probe(options_for(black_hole_address, connect_timeout=0.3))
    elapsed = time.monotonic() - started
    assert 0.25 < elapsed < 2.0
    assert caught.value.timed_out
    assert str(caught.value) == f"timed out connecting to {black_hole_address} after 0.3s"


@pytest.mark.parametrize("peer", ["http1_address", "random_bytes_address"])
def test_non_grpc_peers_are_connection_failures(peer: str, request: pytest.FixtureRequest) -> None:
    address = request.getfixturevalue(peer)
    with pytest.raises(ConnectFailure) as caught:
        probe(options_for(address, connect_timeout=1.5))
    assert caught.value.target == address


def test_unresolvable_name_is_a_connection_failure() -> None:
    with pytest.raises(ConnectFailure) as caught:
        probe(options_for("no-such-host.invalid:443", connect_timeout=2))
    assert "no-such-host.invalid" in str(caught.value)


def test_server_without_health_service(start_server: Callable[..., HealthServer]) -> None:
    server = start_server(with_health=False)
    result = probe(options_for(server.address))
    error = result.services[0].error
    assert error is not None
    assert error.code_name == "UNIMPLEMENTED"
    assert error.message == "the server does not implement the grpc.health.v1.Health service"


def test_slow_server_hits_the_rpc_deadline(start_server: Callable[..., HealthServer]) -> None:
    from support.servers import SlowHealthServicer

    # The answer comes over 2 s after the deadline: a loaded machine cannot blur the two.
    server = start_server(servicer=SlowHealthServicer(2.5))
    started = time.monotonic()
    result = probe(options_for(server.address, rpc_timeout=0.2))
    assert time.monotonic() - started < 1.5
    error = result.services[0].error
    assert error is not None
    assert error.timed_out
    assert error.message == "health RPC for the server's overall health did not complete in time"


def test_huge_metadata_is_an_rpc_failure(start_server: Callable[..., HealthServer]) -> None:
    from support.servers import BigMetadataHealthServicer

    server = start_server(servicer=BigMetadataHealthServicer())
    error = probe(options_for(server.address)).services[0].error
    assert error is not None
    assert error.code_name == "RESOURCE_EXHAUSTED"


def test_tls_with_ca_bundle(tls_server: HealthServer, tls_material: TlsMaterial) -> None:
    tls = TlsOptions(ca_cert=str(tls_material.ca_cert))
    result = probe(options_for(tls_server.address, tls=tls, certificate_facts=True))
    assert result.serving
    cert = result.certificate
    assert cert is not None
    assert "DNS:health.example.test" in cert.sans
    assert "IP Address:127.0.0.1" in cert.sans
    assert 89.9 < cert.days_left <= 90.0
    assert cert.tls_version == "TLS 1.3"


def test_tls_version_is_the_one_the_handshake_agreed_on(
    tls_material: TlsMaterial, raw_listener: Callable[..., RawListener]
) -> None:
    """A server that stops at TLS 1.2 is reported as TLS 1.2, not as the client's best."""
    import ssl

    from check_grpc_health.core.tls import fetch_peer_certificate

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls_material.server_cert, tls_material.server_key)

    def tls_up_to_1_2(conn: socket.socket, stopping: object) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)  # until the client closes

    listener = raw_listener(tls_up_to_1_2)
    _, info = fetch_peer_certificate(parse_target(listener.address), tls_material.server_name, 5)
    assert info.tls_version == "TLS 1.2"
    assert "DNS:health.example.test" in info.sans


def test_tls_server_name_override(tls_server: HealthServer, tls_material: TlsMaterial) -> None:
    address = f"localhost:{tls_server.port}"
    tls = TlsOptions(ca_cert=str(tls_material.ca_cert), server_name="health.example.test")
    assert probe(options_for(address, tls=tls)).serving


def test_tls_wrong_name_fails_to_connect(
    tls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    tls = TlsOptions(ca_cert=str(tls_material.ca_cert), server_name="wrong.example.test")
    with pytest.raises(ConnectFailure) as caught:
        probe(options_for(tls_server.address, tls=tls))
    assert not caught.value.timed_out


def test_tls_untrusted_ca_fails_to_connect(
    tls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    tls = TlsOptions(ca_cert=str(tls_material.other_ca_cert))
    with pytest.raises(ConnectFailure):
        probe(options_for(tls_server.address, tls=tls))


def test_tls_no_verify_pins_the_presented_certificate(tls_server: HealthServer) -> None:
    result = probe(options_for(tls_server.address, tls=TlsOptions(verify=False)))
    assert result.serving
    assert result.certificate is not None
    assert "DNS:health.example.test" in result.certificate.sans


def test_plaintext_to_tls_and_tls_to_plaintext_fail(
    tls_server: HealthServer, server: HealthServer, tls_material: TlsMaterial
) -> None:
    with pytest.raises(ConnectFailure):
        probe(options_for(tls_server.address, connect_timeout=1.5))
    tls = TlsOptions(ca_cert=str(tls_material.ca_cert))
    with pytest.raises(ConnectFailure):
        probe(options_for(server.address, tls=tls, connect_timeout=1.5))


def test_mtls(mtls_server: HealthServer, tls_material: TlsMaterial) -> None:
    tls = TlsOptions(
        ca_cert=str(tls_material.ca_cert),
        client_cert=str(tls_material.client_cert),
        client_key=str(tls_material.client_key),
    )
    assert probe(options_for(mtls_server.address, tls=tls)).serving


def test_mtls_without_client_certificate_fails(
    mtls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    tls = TlsOptions(ca_cert=str(tls_material.ca_cert))
    with pytest.raises(ConnectFailure):
        probe(options_for(mtls_server.address, tls=tls, connect_timeout=1.5))


def test_tls_over_unix_socket(
    start_server: Callable[..., HealthServer], tls_material: TlsMaterial, short_tmp: Path
) -> None:
    server = start_server(
        credentials=tls_material.server_credentials(), unix_path=str(short_tmp / "tls.sock")
    )
    tls = TlsOptions(ca_cert=str(tls_material.ca_cert), server_name="localhost")
    result = probe(options_for(server.address, tls=tls, certificate_facts=True))
    assert result.serving
    assert result.certificate is not None
    assert probe(options_for(server.address, tls=TlsOptions(verify=False))).serving


@pytest.mark.parametrize(
    ("field", "make_path", "message"),
    [
        (
            "ca_cert",
            lambda m, tmp: tmp / "missing.pem",
            "cannot read CA certificate '{path}': No such file or directory",
        ),
        ("ca_cert", lambda m, tmp: tmp, "cannot read CA certificate '{path}': Is a directory"),
        ("ca_cert", lambda m, tmp: m.server_key, "CA certificate '{path}' holds no usable"),
        (
            "ca_cert",
            lambda m, tmp: _write(tmp / "junk.pem", "hello"),
            "CA certificate '{path}' is not a PEM file",
        ),
    ],
)
def test_unusable_ca_file_is_an_argument_error(
    tls_server: HealthServer,
    tls_material: TlsMaterial,
    tmp_path: Path,
    field: str,
    make_path: Callable[[TlsMaterial, Path], Path],
    message: str,
) -> None:
    path = make_path(tls_material, tmp_path)
    with pytest.raises(InvalidArgument) as caught:
        probe(options_for(tls_server.address, tls=TlsOptions(**{field: str(path)})))
    assert message.format(path=path) in str(caught.value)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_mismatched_client_key_names_both_files(
    mtls_server: HealthServer, tls_material: TlsMaterial, tmp_path: Path
) -> None:
    other = tls_material.ca.issue_cert("other@example.test")
    other_key = tmp_path / "other.key"
    other.private_key_pem.write_to_path(str(other_key))
    tls = TlsOptions(client_cert=str(tls_material.client_cert), client_key=str(other_key))
    with pytest.raises(InvalidArgument) as caught:
        probe(options_for(mtls_server.address, tls=tls))
    assert str(caught.value) == (
        f"client key '{other_key}' does not match client certificate '{tls_material.client_cert}'"
    )


def test_client_certificate_without_key(tls_material: TlsMaterial) -> None:
    tls = TlsOptions(client_cert=str(tls_material.client_cert))
    with pytest.raises(InvalidArgument, match="a client key is required for mutual TLS"):
        probe(options_for("127.0.0.1:1", tls=tls))


def test_reused_channel_probes_many_times(server: HealthServer) -> None:
    with HealthChannel(options_for(server.address)) as channel:
        first = channel.probe()
        results = [channel.probe() for _ in range(20)]
    assert first.serving
    assert all(result.serving for result in results)
    assert all(result.connect_time < first.connect_time + 0.05 for result in results)


def test_a_string_of_services_is_one_name(server: HealthServer) -> None:
    server.set("shop.v1.Orders", HealthStatus.SERVING)
    options = options_for(server.address, services="shop.v1.Orders")
    assert options.services == ("shop.v1.Orders",)
    assert statuses(probe(options)) == {"shop.v1.Orders": HealthStatus.SERVING}


@pytest.mark.parametrize(
    ("services", "message"),
    [
        ((), "at least one service is required"),
        ("", None),
        ([b"shop"], "a service name must be text, not b'shop'"),
        (("a", None), "a service name must be text, not None"),
        (None, "services must be a sequence of names, not NoneType"),
        (7, "services must be a sequence of names, not int"),
    ],
)
def test_services_must_be_names(services: object, message: str | None) -> None:
    if message is None:
        assert options_for(":1", services=services).services == ("",)
        return
    with pytest.raises(InvalidArgument) as caught:
        options_for(":1", services=services)
    assert str(caught.value) == message


def test_a_closed_channel_raises_the_cores_error(server: HealthServer) -> None:
    channel = HealthChannel(options_for(server.address))
    assert channel.probe().serving
    channel.close()
    message = f"the channel to {server.address} is closed"
    uses: list[Callable[[], object]] = [
        channel.probe,
        lambda: channel.connect(1.0),
        lambda: channel.check_one(""),
        channel.connection_problem,
        lambda: channel.watch_stream("", 1.0),
    ]
    for use in uses:
        with pytest.raises(InvalidArgument) as caught:
            use()
        assert str(caught.value) == message


def test_alts_off_google_cloud_says_so(server: HealthServer) -> None:
    # grpcio makes ALTS credentials only on a Google Cloud machine, by its DMI product name.
    product = Path("/sys/class/dmi/id/product_name")
    if product.exists() and "Google" in product.read_text():
        pytest.skip("a Google Cloud machine: grpcio's ALTS is available here")
    with pytest.raises(ConnectFailure) as caught:
        probe(options_for(server.address, alts=True), diagnose_within=1.0)
    unavailable = (
        "ALTS is unavailable: grpcio offers ALTS only on Google Cloud machines, and this is not one"
    )
    assert str(caught.value) == f"failed to connect to {server.address}: {unavailable}"
    assert caught.value.diagnosis is not None
    assert caught.value.diagnosis[:2] == ("alts_unavailable", unavailable)
