"""The core against hostile and odd peers not covered by the basic probe tests."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from check_grpc_health import probe, watch
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import ConnectFailure, HealthStatus, RpcFailure
from check_grpc_health.core.targets import parse_target
from check_grpc_health.core.tls import TlsOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import TlsMaterial
    from support.servers import HealthServer


def test_expired_certificate_fails_to_connect(
    expired_tls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    tls = TlsOptions(ca_cert=str(tls_material.ca_cert))
    started = time.monotonic()
    with pytest.raises(ConnectFailure) as caught:
        probe(ProbeOptions(parse_target(expired_tls_server.address), tls=tls, connect_timeout=3))
    assert time.monotonic() - started < 2.5
    assert not caught.value.timed_out


def test_expired_certificate_facts_show_negative_days(expired_tls_server: HealthServer) -> None:
    from check_grpc_health.core.tls import fetch_peer_certificate

    _, info = fetch_peer_certificate(parse_target(expired_tls_server.address), None, 2)
    assert info.not_after.year == 2021
    assert info.days_left < -1000


def test_stream_reset_mid_watch_is_retried_until_the_deadline(
    start_server: Callable[..., HealthServer],
) -> None:
    from support.servers import WatchResettingServicer

    servicer = WatchResettingServicer()
    server = start_server(servicer=servicer, statuses={"": 2})
    started = time.monotonic()
    result = watch(ProbeOptions(parse_target(server.address)), timeout=1.0, interval=0.2)
    assert time.monotonic() - started < 2.5
    assert not result.reached
    assert result.statuses == {"": HealthStatus.NOT_SERVING}
    assert servicer.watches >= 3
    assert isinstance(result.last_error, RpcFailure)
    assert result.last_error.code_name == "UNAVAILABLE"


# A second between answer and deadline: a loaded machine's stalls cannot swap them.
@pytest.mark.parametrize(("delay", "timeout"), [(0.2, 1.2), (1.4, 0.4)])
def test_slow_server_just_under_and_over_the_rpc_deadline(
    start_server: Callable[..., HealthServer], delay: float, timeout: float
) -> None:
    from support.servers import SlowHealthServicer

    server = start_server(servicer=SlowHealthServicer(delay))
    started = time.monotonic()
    result = probe(ProbeOptions(parse_target(server.address), rpc_timeout=timeout))
    elapsed = time.monotonic() - started
    assert elapsed < timeout + 1.0
    if delay < timeout:
        assert result.serving
        assert result.rpc_time >= delay
    else:
        error = result.services[0].error
        assert error is not None
        assert error.code_name == "DEADLINE_EXCEEDED"


def test_huge_response_is_refused_not_buffered() -> None:
    from support.servers import start_huge_response_server

    server, address = start_huge_response_server()
    try:
        error = probe(ProbeOptions(parse_target(address))).services[0].error
    finally:
        server.stop(None)
    assert error is not None
    assert error.code_name == "RESOURCE_EXHAUSTED"


def test_flapping_server_gives_a_valid_result_every_time(
    start_server: Callable[..., HealthServer],
) -> None:
    from support.servers import FlappingHealthServicer

    server = start_server(servicer=FlappingHealthServicer())
    seen = [probe(ProbeOptions(parse_target(server.address))).services[0].status for _ in range(6)]
    assert seen == [HealthStatus.SERVING, HealthStatus.NOT_SERVING] * 3
