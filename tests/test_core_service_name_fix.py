"""Core fix: a service name protobuf cannot encode is an InvalidArgument, not a crash.

A service name from argv may hold lone surrogates (bytes that are not UTF-8, decoded
with surrogateescape). Sending it used to raise UnicodeEncodeError out of ``probe()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from check_grpc_health.options import ProbeOptions
from check_grpc_health.probe import probe
from check_grpc_health.results import InvalidArgument
from check_grpc_health.targets import parse_target

if TYPE_CHECKING:
    from servers import HealthServer


def test_a_service_name_that_is_not_utf8_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as caught:
        ProbeOptions(parse_target("localhost:50051"), services=("ok", "a\udcffb"))
    assert str(caught.value) == "service 'a\\udcffb' is not valid UTF-8"


def test_a_non_ascii_service_name_still_reaches_the_server(server: HealthServer) -> None:
    server.set("café", 1)
    result = probe(ProbeOptions(parse_target(server.address), services=("café",)))
    assert result.serving
