"""Checks through a real HTTP CONNECT proxy, and around it with --no-proxy / use_proxy.

grpcio reads ``http_proxy`` (and ``https_proxy``, ``grpc_proxy``) by itself. These
tests set it for the real console scripts and the Ansible module, run a check, and
read the proxy's own record of the ``CONNECT`` requests it carried: with the variable
set the check goes through the proxy, with ``--no-proxy`` (``-no-proxy``,
``use_proxy: false``) or a ``no_proxy`` entry it does not, and ``-v`` says which.
Proxy credentials reach the proxy and never the output.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest
from support.connect_proxy import ConnectProxy
from support.hardening import cli_env, run_cli, run_module_process
from support.paths import FLEET, PLUGIN, PROBE

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from support.servers import HealthServer

PASSWORD = "pr0xy-pa55-9f3c"


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    started = ConnectProxy().start()
    yield started
    started.stop()


@pytest.fixture
def auth_proxy() -> Iterator[ConnectProxy]:
    started = ConnectProxy(credentials=f"monitor:{PASSWORD}").start()
    yield started
    started.stop()


def proxy_env(url: str, **extra: str) -> dict[str, str]:
    env = cli_env()
    for name in ("grpc_proxy", "https_proxy", "no_grpc_proxy", "no_proxy"):
        env.pop(name, None)
    env["http_proxy"] = url
    env.update(extra)
    return env


def ok_line(address: str) -> str:
    return f"GRPC_HEALTH OK - {address}: overall health is SERVING in "


def test_plugin_goes_through_the_proxy_and_says_so(
    server: HealthServer, proxy: ConnectProxy
) -> None:
    address = f"localhost:{server.port}"
    done = run_cli(PLUGIN, "-H", address, "-v", env=proxy_env(proxy.url))
    done.assert_clean()
    assert done.code == 0, done.output
    assert done.stdout.startswith(ok_line(address))
    assert f"proxy: connecting through the HTTP proxy {proxy.url} (from http_proxy)\n" in (
        done.stdout
    )
    assert proxy.authorities == [address]
    assert proxy.requests[0].status == 200
    assert proxy.requests[0].carried > 0


def test_plugin_no_proxy_connects_directly(server: HealthServer, proxy: ConnectProxy) -> None:
    address = f"localhost:{server.port}"
    done = run_cli(PLUGIN, "-H", address, "--no-proxy", "-v", env=proxy_env(proxy.url))
    done.assert_clean()
    assert done.code == 0, done.output
    assert done.stdout.startswith(ok_line(address))
    assert "proxy: http_proxy not used (proxy use turned off): connecting directly\n" in (
        done.stdout
    )
    assert proxy.authorities == []


def test_plugin_without_a_proxy_variable_prints_no_proxy_line(server: HealthServer) -> None:
    env = cli_env()
    for name in ("grpc_proxy", "https_proxy", "http_proxy"):
        env.pop(name, None)
    done = run_cli(PLUGIN, "-H", server.address, "-v", env=env)
    assert done.code == 0, done.output
    assert "proxy" not in done.stdout


def test_no_proxy_entry_for_the_host_connects_directly(
    server: HealthServer, proxy: ConnectProxy
) -> None:
    address = f"localhost:{server.port}"
    env = proxy_env(proxy.url, no_proxy="example.test, localhost")
    done = run_cli(PLUGIN, "-H", address, "-v", env=env)
    assert done.code == 0, done.output
    assert "proxy: no_proxy lists localhost: connecting directly\n" in done.stdout
    assert proxy.authorities == []


def test_a_refusing_proxy_is_critical_and_no_proxy_gets_around_it(
    server: HealthServer, closed_address: str
) -> None:
    address = f"localhost:{server.port}"
    env = proxy_env(f"http://{closed_address}")
    through = run_cli(PLUGIN, "-H", address, env=env)
    through.assert_clean()
    assert through.code == 2, through.output
    assert through.stdout.startswith("GRPC_HEALTH CRITICAL - ")
    around = run_cli(PLUGIN, "-H", address, "--no-proxy", env=env)
    assert around.code == 0, around.output
    assert around.stdout.startswith(ok_line(address))


def test_proxy_credentials_reach_the_proxy_and_never_the_output(
    server: HealthServer, auth_proxy: ConnectProxy
) -> None:
    address = f"localhost:{server.port}"
    good = f"http://monitor:{PASSWORD}@127.0.0.1:{auth_proxy.port}"
    done = run_cli(PLUGIN, "-H", address, "-vvv", env=proxy_env(good))
    assert done.code == 0, done.output
    assert auth_proxy.requests[0].credentials == f"monitor:{PASSWORD}"
    assert auth_proxy.requests[0].status == 200
    assert f"the HTTP proxy http://127.0.0.1:{auth_proxy.port} (from http_proxy)\n" in done.stdout
    assert PASSWORD not in done.output
    assert "monitor" not in done.output
    wrong = f"http://monitor:{PASSWORD}x@127.0.0.1:{auth_proxy.port}"
    refused = run_cli(PLUGIN, "-H", address, "-vvv", "--json", env=proxy_env(wrong))
    refused.assert_clean()
    assert refused.code == 2, refused.output
    assert auth_proxy.requests[1].status == 407
    assert PASSWORD not in refused.output


def test_probe_goes_through_the_proxy_unless_no_proxy(
    server: HealthServer, proxy: ConnectProxy
) -> None:
    address = f"localhost:{server.port}"
    env = proxy_env(proxy.url)
    through = run_cli(PROBE, "-addr", address, "-v", env=env)
    through.assert_clean()
    assert through.code == 0, through.output
    assert through.stderr.endswith("status: SERVING\n")
    assert f"proxy: connecting through the HTTP proxy {proxy.url} (from http_proxy)\n" in (
        through.stderr
    )
    assert proxy.authorities == [address]
    direct = run_cli(PROBE, "-addr", address, "-no-proxy", env=env)
    assert (direct.code, direct.stdout, direct.stderr) == (0, "", "status: SERVING\n")
    assert proxy.authorities == [address]


def test_probe_without_v_prints_nothing_about_the_proxy(
    server: HealthServer, proxy: ConnectProxy
) -> None:
    done = run_cli(PROBE, "-addr", f"localhost:{server.port}", env=proxy_env(proxy.url))
    assert (done.code, done.stdout, done.stderr) == (0, "", "status: SERVING\n")
    assert len(proxy.authorities) == 1


def test_fleet_lines_take_no_proxy(
    server: HealthServer, proxy: ConnectProxy, tmp_path: Path
) -> None:
    address = f"localhost:{server.port}"
    path = tmp_path / "fleet.txt"
    path.write_text(f"-H {address}\n-H {address} -s '' --no-proxy\n")
    done = subprocess.run(
        [FLEET, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=proxy_env(proxy.url),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert [row.split()[:2] for row in done.stdout.splitlines()[1:3]] == [
        ["OK", address],
        ["OK", address],
    ]
    assert proxy.authorities == [address]


@pytest.mark.parametrize(("use_proxy", "connects"), [(True, 1), (False, 0)])
def test_module_use_proxy(
    server: HealthServer, proxy: ConnectProxy, use_proxy: bool, connects: int
) -> None:
    args = {"host": f"localhost:{server.port}", "use_proxy": use_proxy}
    done = run_module_process(args, env=proxy_env(proxy.url))
    assert done.code == 0, done.output
    assert done.result["status"] == {"": "SERVING"}
    assert len(proxy.authorities) == connects


def test_no_proxy_turns_off_the_address_level_proxy_too(
    server: HealthServer, closed_address: str
) -> None:
    """grpcio's GRPC_ADDRESS_HTTP_PROXY ignores grpc.enable_http_proxy=0; --no-proxy does not."""
    env = proxy_env(
        f"http://{closed_address}",
        GRPC_ADDRESS_HTTP_PROXY=closed_address,
        GRPC_ADDRESS_HTTP_PROXY_ENABLED_ADDRESSES="127.0.0.0/8",
    )
    through = run_cli(PLUGIN, "-H", server.address, env=env)
    assert through.code == 2, through.output
    around = run_cli(PLUGIN, "-H", server.address, "--no-proxy", env=env)
    around.assert_clean()
    assert around.code == 0, around.output
    assert around.stdout.startswith(ok_line(server.address))
