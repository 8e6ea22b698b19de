"""Core fix: a service name or address that is not UTF-8 is an InvalidArgument, not a crash.

Text from argv may hold lone surrogates (bytes that are not UTF-8, decoded with
surrogateescape). protobuf and grpcio cannot encode them: such a service name or
unix socket path used to raise UnicodeEncodeError out of ``probe()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from check_grpc_health import probe
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.core.targets import parse_target

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.servers import HealthServer


def test_a_service_name_that_is_not_utf8_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as caught:
        ProbeOptions(parse_target("localhost:50051"), services=("ok", "a\udcffb"))
    assert str(caught.value) == "service 'a\\udcffb' is not valid UTF-8"


def test_a_non_ascii_service_name_still_reaches_the_server(server: HealthServer) -> None:
    server.set("café", 1)
    result = probe(ProbeOptions(parse_target(server.address), services=("café",)))
    assert result.serving


@pytest.mark.parametrize("address", ["unix:/run/a\udcffb.sock", "unix-abstract:\udcff"])
def test_an_address_that_is_not_utf8_is_an_invalid_argument(address: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_target(address)
    assert str(caught.value) == f"invalid address {address!r}: not valid UTF-8"


def test_a_non_ascii_unix_path_still_works(
    start_server: Callable[..., HealthServer], short_tmp: Path
) -> None:
    path = short_tmp / "santé.sock"
    server = start_server(unix_path=str(path))
    assert probe(ProbeOptions(parse_target(server.address))).serving
