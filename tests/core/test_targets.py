"""Target parsing: every accepted form, every rejection, and a property test."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from check_grpc_health.core.options import ProbeOptions, parse_metadata, parse_seconds
from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.core.targets import Target, parse_port, parse_target
from check_grpc_health.core.tls import TlsOptions


@pytest.mark.parametrize(
    ("address", "port", "expected"),
    [
        (
            "example.com:50051",
            None,
            Target("example.com:50051", "example.com:50051", "example.com", 50051),
        ),
        ("127.0.0.1:8080", None, Target("127.0.0.1:8080", "127.0.0.1:8080", "127.0.0.1", 8080)),
        ("[::1]:5000", None, Target("[::1]:5000", "[::1]:5000", "::1", 5000)),
        (":5000", None, Target("localhost:5000", ":5000", "localhost", 5000)),
        ("::1", 5000, Target("[::1]:5000", "[::1]:5000", "::1", 5000)),
        ("[::1]", "5000", Target("[::1]:5000", "[::1]:5000", "::1", 5000)),
        ("fe80::1", 7, Target("[fe80::1]:7", "[fe80::1]:7", "fe80::1", 7)),
        ("db.internal", "443", Target("db.internal:443", "db.internal:443", "db.internal", 443)),
        ("host:443", 443, Target("host:443", "host:443", "host", 443)),
        (
            "unix:/run/app.sock",
            None,
            Target("unix:/run/app.sock", "unix:/run/app.sock", unix_path="/run/app.sock"),
        ),
        (
            "unix:///run/app.sock",
            None,
            Target("unix:/run/app.sock", "unix:///run/app.sock", unix_path="/run/app.sock"),
        ),
        (
            "unix:relative.sock",
            None,
            Target("unix:relative.sock", "unix:relative.sock", unix_path="relative.sock"),
        ),
        (
            "unix-abstract:health",
            None,
            Target("unix-abstract:health", "unix-abstract:health", unix_path="\0health"),
        ),
        (
            "dns:///api.example.com:443",
            None,
            Target(
                "dns:///api.example.com:443", "dns:///api.example.com:443", "api.example.com", 443
            ),
        ),
        (
            "dns:api.example.com",
            8443,
            Target("dns:api.example.com:8443", "dns:api.example.com:8443", "api.example.com", 8443),
        ),
        (
            "ipv4:10.0.0.1:80,10.0.0.2:80",
            None,
            Target("ipv4:10.0.0.1:80,10.0.0.2:80", "ipv4:10.0.0.1:80,10.0.0.2:80", "10.0.0.1", 80),
        ),
        ("  host:1  ", None, Target("host:1", "  host:1  ", "host", 1)),
    ],
)
def test_accepted_forms(address: str, port: int | str | None, expected: Target) -> None:
    assert parse_target(address, port) == expected


@pytest.mark.parametrize(
    ("address", "port", "message"),
    [
        ("", None, "invalid address '': empty"),
        ("host", None, "invalid address 'host': missing port"),
        ("host:0", None, "invalid port '0': must be between 1 and 65535"),
        ("host:65536", None, "invalid port '65536': must be between 1 and 65535"),
        ("host:http", None, "invalid port 'http': not a number"),
        ("host:-1", None, "invalid port '-1': not a number"),
        ("host:1", 2, "invalid address 'host:1': it names port 1 but port 2 was also given"),
        ("[::1", None, "invalid address '[::1': bad bracketed IPv6 address"),
        ("[nothost]:1", None, "invalid address '[nothost]:1': bad bracketed IPv6 address"),
        ("[::1]x", None, "invalid address '[::1]x': expected ':' after ']'"),
        ("a:b:c", None, "invalid address 'a:b:c': write IPv6 addresses as [addr]:port"),
        ("bad host:1", None, "contains whitespace or control characters"),
        ("host\n:1", None, "contains whitespace or control characters"),
        ("ho\x00st:1", None, "contains whitespace or control characters"),
        ("-bad-:1", None, "bad host name '-bad-'"),
        ("a..b:1", None, "bad host name 'a..b'"),
        ("unix:", None, "empty socket path"),
        ("unix:/x", 5, "a unix socket takes no port"),
        ("unix://host/x", None, "an authority is not allowed"),
        ("unix-abstract:", None, "empty socket name"),
        ("dns:///", None, "missing host after dns:"),
        ("dns:///name", None, "missing port"),
    ],
)
def test_rejected_forms_name_the_value(address: str, port: int | None, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_target(address, port)
    assert message in str(caught.value)


@pytest.mark.parametrize("port", ["1", "65535", 80, " 443 "])
def test_parse_port_accepts(port: str | int) -> None:
    assert 1 <= parse_port(port) <= 65535


@given(st.text(max_size=60), st.one_of(st.none(), st.text(max_size=8), st.integers()))
def test_target_parsing_raises_only_invalid_argument(address: str, port: object) -> None:
    try:
        target = parse_target(address, port)  # type: ignore[arg-type]
    except InvalidArgument as error:
        assert "\n" not in str(error)
    else:
        assert target.grpc_target
        assert not any(ord(ch) < 0x20 for ch in target.grpc_target if ch != "\0")


@given(st.text(max_size=40))
def test_metadata_parsing_never_echoes_the_value(entry: str) -> None:
    secret_value = entry.partition(":")[2]
    try:
        parse_metadata(entry)
    except InvalidArgument as error:
        if len(secret_value.strip()) > 3:
            assert secret_value.strip() not in str(error).replace(
                repr(entry.partition(":")[0].strip().lower()), ""
            )


def test_metadata_parsing() -> None:
    assert parse_metadata("Authorization: Bearer abc") == ("authorization", "Bearer abc")
    assert parse_metadata("x-k:v:w") == ("x-k", "v:w")
    with pytest.raises(InvalidArgument, match="entry #3 has no ':'"):
        parse_metadata("tokenwithoutkey", 3)
    with pytest.raises(InvalidArgument, match="may contain only"):
        parse_metadata("bad key: v")
    with pytest.raises(InvalidArgument, match="reserved or binary"):
        parse_metadata("grpc-timeout: 1")
    with pytest.raises(InvalidArgument, match="value must be printable ASCII") as caught:
        parse_metadata("x: secret\x01value")
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "connect timeout 'abc' is not a number of seconds"),
        ("0", "connect timeout must be a finite number above zero (got 0.0)"),
        ("-1", "connect timeout must be a finite number above zero (got -1.0)"),
        ("nan", "connect timeout must be a finite number above zero (got nan)"),
        ("inf", "connect timeout must be a finite number above zero (got inf)"),
    ],
)
def test_parse_seconds_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_seconds("connect timeout", text)
    assert str(caught.value) == message


def test_options_validate_and_hide_metadata() -> None:
    target = parse_target("h:1")
    options = ProbeOptions(target, metadata=(("authorization", "s3cr3t-token"),))
    assert "s3cr3t-token" not in repr(options)
    with pytest.raises(InvalidArgument, match="at least one service"):
        ProbeOptions(target, services=())
    with pytest.raises(InvalidArgument, match="RPC timeout must be"):
        ProbeOptions(target, rpc_timeout=0)
    with pytest.raises(InvalidArgument, match="TLS and ALTS"):
        ProbeOptions(target, tls=TlsOptions(), alts=True)


def test_huge_timeouts_are_capped_to_what_grpc_can_represent() -> None:
    from check_grpc_health.core.options import MAX_TIMEOUT

    options = ProbeOptions(parse_target("h:1"), connect_timeout=1e308, rpc_timeout=10**12)
    assert options.connect_timeout == MAX_TIMEOUT
    assert options.rpc_timeout == MAX_TIMEOUT
    assert ProbeOptions(parse_target("h:1"), rpc_timeout=2.5).rpc_timeout == 2.5


def test_huge_timeouts_still_probe_a_working_server(server: object) -> None:
    from check_grpc_health import probe

    address = server.address  # type: ignore[attr-defined]
    options = ProbeOptions(parse_target(address), connect_timeout=1e308, rpc_timeout=1e308)
    assert probe(options).serving
