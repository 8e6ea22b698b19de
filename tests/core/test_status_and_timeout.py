"""Core fixes: an unknown status number and a very long connect timeout are not tracebacks.

A server may answer with a status number newer than this client's enum (proto3 enums
are open); it reads as UNKNOWN. A connect timeout longer than grpcio's 32-bit
millisecond channel arguments can hold is capped for that argument only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from check_grpc_health import probe, watch
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import ConnectFailure, HealthStatus
from check_grpc_health.core.targets import parse_target

if TYPE_CHECKING:
    from collections.abc import Callable

    from support.servers import HealthServer


def test_unknown_status_number_reads_as_unknown(start_server: Callable[..., HealthServer]) -> None:
    server = start_server(statuses={"": 1, "future": 7})
    options = ProbeOptions(parse_target(server.address), services=("future", ""))
    result = probe(options)
    assert [(item.service, item.status, item.error) for item in result.services] == [
        ("future", HealthStatus.UNKNOWN, None),
        ("", HealthStatus.SERVING, None),
    ]
    single = probe(ProbeOptions(parse_target(server.address), services=("future",)))
    assert single.services[0].status is HealthStatus.UNKNOWN


def test_watch_records_an_unknown_status_number(start_server: Callable[..., HealthServer]) -> None:
    server = start_server(statuses={"future": 7})
    options = ProbeOptions(parse_target(server.address), services=("future",))
    # Time for the first Check on a loaded machine; the status never becomes SERVING.
    result = watch(options, timeout=1.5, interval=0.1)
    assert result.reached is False
    assert result.statuses == {"future": HealthStatus.UNKNOWN}


def test_connect_timeout_beyond_int32_milliseconds(
    closed_address: str, server: HealthServer
) -> None:
    # 30 days: more milliseconds than a C int holds.
    long = 30 * 86400.0
    assert probe(ProbeOptions(parse_target(server.address), connect_timeout=long)).serving
    try:
        probe(ProbeOptions(parse_target(closed_address), connect_timeout=long))
    except ConnectFailure as failure:
        assert failure.timed_out is False
    else:
        raise AssertionError("a closed port must fail")
