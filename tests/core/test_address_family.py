"""-4 / -6 on a single target: connect over that address family only, keep the name for TLS.

Names with one family and with both come from a private ``/etc/hosts``: each run of
the plugin happens in its own mount namespace (``unshare --mount``) with that file
and a ``resolv.conf`` naming a loopback address where no DNS server listens, so no
name ever reaches the machine's resolver. Servers listen on 127.0.0.1 or ::1 only,
so which one answered proves which family the plugin used.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest
import trustme
from support.hardening import Finished, cli_env, run_cli
from support.paths import FLEET, PLUGIN
from support.servers import require_unshare_mount

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from support.servers import HealthServer

HOSTS = """\
127.0.0.1 localhost
127.0.0.1 v4only.test
::1 v6only.test
127.0.0.1 dual.test
::1 dual.test
"""


@pytest.fixture(scope="module")
def private_names(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A hosts file and a resolv.conf whose name server does not exist."""
    require_unshare_mount()
    base = tmp_path_factory.mktemp("names")
    (base / "hosts").write_text(HOSTS)
    (base / "resolv.conf").write_text("nameserver 127.0.0.9\noptions timeout:1 attempts:1\n")
    return base / "hosts", base / "resolv.conf"


def run_named(names: tuple[Path, Path], command: str, *args: str) -> Finished:
    """Run ``command`` in a mount namespace that sees the private hosts and resolv.conf."""
    script = (
        'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"'
    )
    import time

    started = time.monotonic()
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", *map(str, names), command, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
        check=False,
    )
    return Finished(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


@pytest.fixture
def v4_server(start_server: Callable[..., HealthServer]) -> HealthServer:
    return start_server(host="127.0.0.1")


@pytest.fixture
def v6_server(start_server: Callable[..., HealthServer]) -> HealthServer:
    return start_server(host="[::1]")


def ok_line(address: str) -> str:
    return f"GRPC_HEALTH OK - {address}: overall health is SERVING in "


def test_each_family_reaches_only_the_server_of_that_family(
    private_names: tuple[Path, Path], v4_server: HealthServer, v6_server: HealthServer
) -> None:
    for server, good, bad in ((v4_server, "-4", "-6"), (v6_server, "-6", "-4")):
        address = f"dual.test:{server.port}"
        reached = run_named(private_names, PLUGIN, "-H", address, good)
        reached.assert_clean()
        assert reached.code == 0, reached.output
        assert reached.stdout.startswith(ok_line(address))
        missed = run_named(private_names, PLUGIN, "-H", address, bad)
        missed.assert_clean()
        assert missed.code == 2, missed.output
        assert missed.stdout.startswith(f"GRPC_HEALTH CRITICAL - failed to connect to {address}: ")


@pytest.mark.parametrize(
    ("name", "flag", "message"),
    [
        ("v4only.test", "-6", "v4only.test has no IPv6 address (it has 127.0.0.1); "),
        ("v6only.test", "-4", "v6only.test has no IPv4 address (it has ::1); "),
    ],
)
def test_a_name_without_an_address_of_the_family_is_critical_and_says_what_it_has(
    private_names: tuple[Path, Path], name: str, flag: str, message: str
) -> None:
    other = "-4" if flag == "-6" else "-6"
    done = run_named(private_names, PLUGIN, "-H", f"{name}:50051", flag)
    done.assert_clean()
    assert done.code == 2, done.output
    assert done.stdout.startswith(
        f"GRPC_HEALTH CRITICAL - failed to connect to {name}:50051: "
        f"{message}leave out {flag}, or use {other} | time="
    )


def test_an_unknown_name_is_critical(private_names: tuple[Path, Path]) -> None:
    done = run_named(private_names, PLUGIN, "-H", "nosuch.test:50051", "-6")
    done.assert_clean()
    assert done.code == 2, done.output
    assert done.stdout.startswith(
        "GRPC_HEALTH CRITICAL - failed to connect to nosuch.test:50051: cannot resolve "
        "nosuch.test: "
    )


def test_tls_verifies_the_name_while_dialling_the_address(
    private_names: tuple[Path, Path],
    start_server: Callable[..., HealthServer],
    tmp_path: Path,
) -> None:
    import grpc

    ca = trustme.CA()
    # The certificate names dual.test only: verifying against ::1 would fail.
    leaf = ca.issue_cert("dual.test")
    credentials = grpc.ssl_server_credentials(
        [(leaf.private_key_pem.bytes(), leaf.cert_chain_pems[0].bytes())]
    )
    server = start_server(host="[::1]", credentials=credentials)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    address = f"dual.test:{server.port}"
    done = run_named(private_names, PLUGIN, "-H", address, "-6", "--ca-cert", str(ca_file))
    done.assert_clean()
    assert done.code == 0, done.output
    assert done.stdout.startswith(ok_line(address))
    url = f"https://dual.test:{server.port}"
    by_url = run_named(private_names, PLUGIN, "-H", url, "-6", "--ca-cert", str(ca_file))
    assert by_url.code == 0, by_url.output
    assert by_url.stdout.startswith(ok_line(url))


def test_fleet_lines_take_the_family(
    private_names: tuple[Path, Path], v6_server: HealthServer, tmp_path: Path
) -> None:
    address = f"dual.test:{v6_server.port}"
    path = tmp_path / "fleet.txt"
    path.write_text(f"-H {address} -6\n-H {address} -4\n")
    done = run_named(private_names, FLEET, str(path))
    assert done.code == 2, done.output
    rows = [row.split()[:2] for row in done.stdout.splitlines()[1:3]]
    assert rows == [["OK", address], ["CRITICAL", address]]


@pytest.mark.parametrize(
    ("address", "flag", "message"),
    [
        ("127.0.0.1:1", "-6", "127.0.0.1:1 is an IPv4 address, but IPv6 only was asked for"),
        ("[::1]:1", "-4", "[::1]:1 is an IPv6 address, but IPv4 only was asked for"),
        (
            "ipv4:127.0.0.1:1",
            "-6",
            "ipv4:127.0.0.1:1 is an IPv4 address, but IPv6 only was asked for",
        ),
        ("unix:/run/x.sock", "-4", "unix:/run/x.sock is a unix socket: it has no IPv4 address"),
        ("h:1", "-4 -6", "-4/--ipv4 and -6/--ipv6 cannot be combined"),
    ],
)
def test_a_literal_of_the_other_family_is_an_argument_error(
    address: str, flag: str, message: str
) -> None:
    done = run_cli(PLUGIN, "-H", address, *flag.split())
    done.assert_clean()
    assert (done.code, done.stdout, done.stderr) == (3, f"GRPC_HEALTH UNKNOWN - {message}\n", "")


def test_a_literal_of_the_family_is_dialled_as_it_is(v4_server: HealthServer) -> None:
    done = run_cli(PLUGIN, "-H", v4_server.address, "-4")
    assert done.code == 0, done.output
    assert done.stdout.startswith(ok_line(v4_server.address))
