"""Addresses with a URL scheme, socket paths, and one address family, in the core and adapters.

Parsing is pure logic (the first tests); the rest run each console script and the
Ansible module against real servers: ``http://``/``grpc://`` check in plaintext,
``https://``/``grpcs://`` with TLS, and a bare socket path gets the ``unix:`` form.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.hardening import run_cli, run_module_process
from support.paths import PLUGIN, PROBE

from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.core.targets import Target, parse_target
from check_grpc_health.core.tls import TlsOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import TlsMaterial
    from support.servers import HealthServer


@pytest.mark.parametrize(
    ("address", "port", "expected"),
    [
        ("grpc://db:50051", None, Target("db:50051", "grpc://db:50051", "db", 50051, tls=False)),
        ("http://db:8080", None, Target("db:8080", "http://db:8080", "db", 8080, tls=False)),
        ("http://db", None, Target("db:80", "http://db:80", "db", 80, tls=False)),
        ("http://db/", None, Target("db:80", "http://db:80", "db", 80, tls=False)),
        ("https://db", None, Target("db:443", "https://db:443", "db", 443, tls=True)),
        ("grpcs://db:443", None, Target("db:443", "grpcs://db:443", "db", 443, tls=True)),
        ("GRPCS://Db:9", None, Target("Db:9", "GRPCS://Db:9", "Db", 9, tls=True)),
        ("grpc://db", 7, Target("db:7", "grpc://db:7", "db", 7, tls=False)),
        ("http://db", "8080", Target("db:8080", "http://db:8080", "db", 8080, tls=False)),
        ("grpc://[::1]:5", None, Target("[::1]:5", "grpc://[::1]:5", "::1", 5, tls=False)),
        ("https://[::1]", None, Target("[::1]:443", "https://[::1]:443", "::1", 443, tls=True)),
    ],
)
def test_url_forms(address: str, port: int | str | None, expected: Target) -> None:
    assert parse_target(address, port) == expected


@pytest.mark.parametrize(
    ("address", "port", "message"),
    [
        ("grpc://db", None, "invalid address 'grpc://db': missing port (grpc:// has none)"),
        ("grpcs://db/", None, "invalid address 'grpcs://db/': missing port (grpcs:// has none)"),
        (
            "http://db:1/healthz",
            None,
            "invalid address 'http://db:1/healthz': a gRPC address has no path ('/healthz'); "
            "write http://db:1",
        ),
        (
            "https://db/grpc.health.v1.Health/Check",
            None,
            "invalid address 'https://db/grpc.health.v1.Health/Check': a gRPC address has no "
            "path ('/grpc.health.v1.Health/Check'); write https://db",
        ),
        (
            "http://db:1?x=y",
            None,
            "invalid address 'http://db:1?x=y': a gRPC address has no path ('?x=y'); "
            "write http://db:1",
        ),
        (
            "http://db:1",
            2,
            "invalid address 'http://db:1': it names port 1 but port 2 was also given",
        ),
        ("http://", None, "invalid address 'http://': missing host"),
        ("https://:443", None, "invalid address 'https://:443': missing host"),
        ("http://db:0", None, "invalid port '0': must be between 1 and 65535"),
        (
            "tcp://db:1",
            None,
            "invalid address 'tcp://db:1': unknown scheme tcp:// (use host:port, grpc://, "
            "grpcs://, http://, https://, unix:, dns:, ipv4: or ipv6:)",
        ),
        (
            "/tmp/app.sock",
            None,
            "invalid address '/tmp/app.sock': a file path is a unix socket; "
            "write unix:/tmp/app.sock",
        ),
        (
            "./x.sock",
            None,
            "invalid address './x.sock': a file path is a unix socket; write unix:./x.sock",
        ),
        (
            "../run/x",
            None,
            "invalid address '../run/x': a file path is a unix socket; write unix:../run/x",
        ),
        (
            "app.sock",
            None,
            "invalid address 'app.sock': a file path is a unix socket; write unix:app.sock",
        ),
    ],
)
def test_url_and_path_errors_name_the_fix(address: str, port: int | None, message: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_target(address, port)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "address",
    ["https://admin:hunter2@db:443", "ftp://admin:hunter2@db", "admin:hunter2@db:1", "a@hunter2"],
)
def test_user_info_is_refused_without_showing_it(address: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_target(address)
    assert str(error.value) == (
        "invalid address (not shown): it holds user@ or user:password@, "
        "and a gRPC address takes no user name or password"
    )


def test_an_at_sign_in_a_socket_path_is_fine() -> None:
    assert parse_target("unix:/run/a@b.sock").unix_path == "/run/a@b.sock"


@given(st.text(max_size=40))
def test_any_url_like_text_parses_or_is_one_clean_error(rest: str) -> None:
    for scheme in ("grpc", "grpcs", "http", "https", "ftp"):
        try:
            target = parse_target(f"{scheme}://{rest}")
        except InvalidArgument as error:
            assert "\n" not in str(error)
        else:
            assert target.tls is (scheme in ("grpcs", "https"))
            assert target.port is not None


def test_a_tls_scheme_turns_tls_on_and_a_plaintext_one_refuses_tls() -> None:
    assert ProbeOptions(parse_target("https://db")).tls == TlsOptions()
    pinned = ProbeOptions(parse_target("grpcs://db:1"), tls=TlsOptions(ca_cert="/ca.pem"))
    assert pinned.tls == TlsOptions(ca_cert="/ca.pem")
    assert ProbeOptions(parse_target("http://db")).tls is None
    with pytest.raises(InvalidArgument) as error:
        ProbeOptions(parse_target("http://db:1"), tls=TlsOptions())
    assert str(error.value) == (
        "http://db:1 asks for plaintext (http://), but TLS options were given: "
        "write grpcs:// or https:// for TLS"
    )
    with pytest.raises(InvalidArgument) as error:
        ProbeOptions(parse_target("grpcs://db:1"), alts=True)
    assert str(error.value) == "grpcs://db:1 asks for TLS (grpcs://); ALTS cannot be used"


def test_family_is_checked_against_literals() -> None:
    assert ProbeOptions(parse_target("db:1"), family=socket.AF_INET6).family == socket.AF_INET6
    with pytest.raises(InvalidArgument) as error:
        ProbeOptions(parse_target("10.0.0.1:1"), family=socket.AF_INET6)
    assert str(error.value) == "10.0.0.1:1 is an IPv4 address, but IPv6 only was asked for"
    with pytest.raises(InvalidArgument) as error:
        ProbeOptions(parse_target("db:1"), family=99)
    assert str(error.value) == "address family 99 is not IPv4 or IPv6"


# --- the adapters, against real servers ----------------------------------------------


def test_plugin_checks_plaintext_urls(server: HealthServer) -> None:
    for scheme in ("grpc", "http"):
        address = f"{scheme}://localhost:{server.port}"
        done = run_cli(PLUGIN, "-H", address)
        done.assert_clean()
        assert done.code == 0, done.output
        assert done.stdout.startswith(f"GRPC_HEALTH OK - {address}: overall health is SERVING in ")


def test_plugin_and_probe_check_tls_urls_as_with_tls(
    tls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    ca = str(tls_material.ca_cert)
    for scheme in ("grpcs", "https"):
        address = f"{scheme}://localhost:{tls_server.port}"
        done = run_cli(PLUGIN, "-H", address, "--ca-cert", ca, "--cert-warning", "10")
        done.assert_clean()
        assert done.code == 0, done.output
        assert done.stdout.startswith(f"GRPC_HEALTH OK - {address}: overall health is SERVING in ")
        assert "cert_days=" in done.stdout
        probed = run_cli(PROBE, "-addr", address, "-tls-ca-cert", ca)
        assert (probed.code, probed.stdout, probed.stderr) == (0, "", "status: SERVING\n")


def test_a_plaintext_url_with_tls_options_is_an_argument_error(server: HealthServer) -> None:
    address = f"http://localhost:{server.port}"
    message = (
        f"{address} asks for plaintext (http://), but TLS options were given: "
        "write grpcs:// or https:// for TLS"
    )
    done = run_cli(PLUGIN, "-H", address, "--tls")
    assert (done.code, done.stdout) == (3, f"GRPC_HEALTH UNKNOWN - {message}\n")
    probed = run_cli(PROBE, "-addr", address, "-tls")
    assert (probed.code, probed.stdout, probed.stderr) == (1, "", f"error: {message}\n")


def test_socket_paths_get_the_unix_form_everywhere(tmp_path: object) -> None:
    hint = "invalid address '/tmp/app.sock': a file path is a unix socket; write unix:/tmp/app.sock"
    done = run_cli(PLUGIN, "-H", "/tmp/app.sock")
    assert (done.code, done.stdout, done.stderr) == (3, f"GRPC_HEALTH UNKNOWN - {hint}\n", "")
    probed = run_cli(PROBE, "-addr", "/tmp/app.sock")
    assert (probed.code, probed.stdout, probed.stderr) == (
        2,
        "",
        f'error: failed to connect service at "/tmp/app.sock": {hint}\n',
    )
    module = run_module_process({"host": "/tmp/app.sock"})
    assert module.code == 1
    assert module.result["msg"] == hint


def test_module_takes_urls(
    server: HealthServer,
    tls_server: HealthServer,
    tls_material: TlsMaterial,
    start_server: Callable[..., HealthServer],
) -> None:
    plain = run_module_process({"host": f"grpc://localhost:{server.port}"})
    assert plain.code == 0, plain.output
    assert plain.result["status"] == {"": "SERVING"}
    secure = run_module_process(
        {"host": f"https://localhost:{tls_server.port}", "ca_cert": str(tls_material.ca_cert)}
    )
    assert secure.code == 0, secure.output
    unverified = run_module_process(
        {"host": f"grpcs://localhost:{tls_server.port}", "validate_certs": False}
    )
    assert unverified.code == 0, unverified.output
    refused = run_module_process({"host": f"https://localhost:{tls_server.port}", "tls": False})
    assert refused.code == 1
    assert refused.result["msg"] == "host asks for TLS (grpcs:// or https://), but tls is false"


def test_user_info_never_reaches_any_output(server: HealthServer) -> None:
    address = f"https://admin:hunter2@localhost:{server.port}"
    reason = (
        "invalid address (not shown): it holds user@ or user:password@, "
        "and a gRPC address takes no user name or password"
    )
    done = run_cli(PLUGIN, "-H", address, "-vvv")
    assert (done.code, done.stdout) == (3, f"GRPC_HEALTH UNKNOWN - {reason}\n")
    probed = run_cli(PROBE, "-addr", address, "-v")
    assert (probed.code, probed.stdout) == (2, "")
    assert probed.stderr == (
        f'error: failed to connect service at "https://***@localhost:{server.port}": {reason}\n'
    )
    module = run_module_process({"host": address})
    assert module.code == 1
    assert module.result["msg"] == reason
    for text in (done.output, probed.output, module.result["msg"]):
        assert "hunter2" not in text
        assert "admin" not in text
