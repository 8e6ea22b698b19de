"""Compatibility suite: the installed ``grpc_health_probe`` against real servers.

One row per line of the Go tool's observed behaviour (flags, messages, argument
errors, behaviour worth knowing). Each row runs the console script as a fresh
process, the way a kubelet or a script runs it, and asserts the exact exit code and
the exact stderr (or, where the text comes from the network stack, its exact start).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import grpc
import pytest
from grpc_health.v1 import health
from support.go_probe import GO_USAGE
from support.paths import PROBE
from support.servers import (
    HealthServer,
    RawListener,
    SlowHealthServicer,
    black_hole,
    closed_port,
    start_health_server,
)

from check_grpc_health import __version__

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import TlsMaterial

USAGE = GO_USAGE + "\n"
# The environment the probe runs in: no SPIFFE socket unless a row sets one.
BASE_ENV = {key: value for key, value in os.environ.items() if key != "SPIFFE_ENDPOINT_SOCKET"}


class Run(NamedTuple):
    code: int
    stdout: str
    stderr: str
    elapsed: float


def run_probe(*args: str, env: dict[str, str] | None = None) -> Run:
    started = time.monotonic()
    completed = subprocess.run(
        [PROBE, *args],
        capture_output=True,
        text=True,
        env={**BASE_ENV, **(env or {})},
        timeout=60,
        check=False,
    )
    return Run(completed.returncode, completed.stdout, completed.stderr, time.monotonic() - started)


class RecordingServicer(health.HealthServicer):
    """Keeps every (key, value) pair of each Check's metadata, duplicates included."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[tuple[str, str]]] = []

    def Check(self, request: Any, context: Any) -> Any:
        self.seen.append([(item.key, item.value) for item in context.invocation_metadata()])
        return super().Check(request, context)


class DenyingServicer(health.HealthServicer):
    def Check(self, request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "not for you")


class World(NamedTuple):
    """Every peer the rows talk to, started once for the module."""

    values: dict[str, str]
    recorder: RecordingServicer


@pytest.fixture(scope="module")
def world(tls_material: TlsMaterial) -> Iterator[World]:
    recorder = RecordingServicer()
    statuses = {"": 1, "ready": 1, "down": 2, "unknown": 0, "gone": 3}
    servers: list[HealthServer] = [
        start_health_server(statuses=statuses),
        start_health_server(with_health=False),
        # Answers 1.5 s after the default 1 s RPC deadline: no stall blurs the two.
        start_health_server(servicer=SlowHealthServicer(2.5)),
        start_health_server(servicer=DenyingServicer()),
        start_health_server(servicer=recorder),
        start_health_server(credentials=tls_material.server_credentials()),
        start_health_server(credentials=tls_material.server_credentials(require_client=True)),
    ]
    hole = RawListener(black_hole)
    names = ["server", "no_health", "slow", "denying", "recording", "tls", "mtls"]
    values = {name: server.address for name, server in zip(names, servers, strict=True)}
    values |= {
        "black_hole": hole.address,
        "closed": f"127.0.0.1:{closed_port()}",
        "ca": str(tls_material.ca_cert),
        "other_ca": str(tls_material.other_ca_cert),
        "client_cert": str(tls_material.client_cert),
        "client_key": str(tls_material.client_key),
        "server_name": tls_material.server_name,
    }
    yield World(values, recorder)
    hole.close()
    for server in servers:
        server.stop()


class Row(NamedTuple):
    """One observed behaviour: arguments, exit code, and exact stderr or its start."""

    args: tuple[str, ...]
    code: int
    stderr: str | None = None
    starts: str | None = None
    env: dict[str, str] | None = None
    stdout: str = ""


def row(*args: str, code: int, **expect: Any) -> Row:
    return Row(args, code, **expect)


SERVING = "status: SERVING\n"

ROWS: dict[str, Row] = {
    # --- Parsing ---
    "form -x=v": row("-addr={server}", code=0, stderr=SERVING),
    "form -x v": row("-addr", "{server}", code=0, stderr=SERVING),
    "form --x": row("--addr", "{server}", code=0, stderr=SERVING),
    "form --x=v": row("--addr={server}", code=0, stderr=SERVING),
    "boolean -tls": row("-addr={tls}", "-tls", "-tls-ca-cert={ca}", code=0, stderr=SERVING),
    "boolean -tls=true": row(
        "-addr={tls}", "-tls=true", "-tls-ca-cert={ca}", code=0, stderr=SERVING
    ),
    "stops at first non-flag": row(
        "-addr={server}", "positional", "-service=down", code=0, stderr=SERVING
    ),
    "go duration 1.5s echoed": row(
        "-addr={black_hole}",
        "-connect-timeout=1.5s",
        code=2,
        stderr='timeout: failed to connect service "{black_hole}" within 1.5s\n',
    ),
    "bare number is a parse error": row(
        "-addr={server}",
        "-connect-timeout",
        "5",
        code=1,
        stderr='invalid value "5" for flag -connect-timeout: parse error\n' + USAGE,
    ),
    "parse error prints usage": row(
        "-addr={server}",
        "-x",
        code=1,
        stderr="flag provided but not defined: -x\n" + USAGE,
    ),
    "-h prints usage": row("-h", code=1, stderr=USAGE),
    "-version before -addr": row("-version", code=0, stderr="", stdout=__version__ + "\n"),
    "parse error before -version": row(
        "-version", "-addr", code=1, stderr="flag needs an argument: -addr\n" + USAGE
    ),
    "-addr before timeouts": row(
        "-connect-timeout=0", code=1, stderr="error: -addr not specified\n"
    ),
    "timeouts before tls combinations": row(
        "-addr=x:1",
        "-rpc-timeout=0",
        "-tls-no-verify",
        code=1,
        stderr="error: -rpc-timeout must be greater than zero (specified: 0s)\n",
    ),
    # --- Flags and defaults ---
    "default service is overall health": row("-addr={server}", code=0, stderr=SERVING),
    "-service": row(
        "-addr={server}",
        "-service=down",
        code=4,
        stderr='service unhealthy (responded with "NOT_SERVING")\n',
    ),
    "default connect timeout 1s": row(
        "-addr={black_hole}",
        code=2,
        stderr='timeout: failed to connect service "{black_hole}" within 1s\n',
    ),
    # The slow server's rows give the connection time of its own: on a loaded machine a
    # connection to it once took more than the default 1 s, and these rows are about the RPC.
    "default rpc timeout 1s": row(
        "-addr={slow}",
        "-connect-timeout=10s",
        code=3,
        stderr="timeout: health rpc did not complete within 1s\n",
    ),
    "-tls default false (plaintext)": row("-addr={server}", code=0, stderr=SERVING),
    "-tls-no-verify": row("-addr={tls}", "-tls", "-tls-no-verify", code=0, stderr=SERVING),
    "-tls-ca-cert": row("-addr={tls}", "-tls", "-tls-ca-cert={ca}", code=0, stderr=SERVING),
    "-tls-client-cert/-tls-client-key": row(
        "-addr={mtls}",
        "-tls",
        "-tls-ca-cert={ca}",
        "-tls-client-cert={client_cert}",
        "-tls-client-key={client_key}",
        code=0,
        stderr=SERVING,
    ),
    "-tls-server-name": row(
        "-addr={tls}",
        "-tls",
        "-tls-ca-cert={ca}",
        "-tls-server-name={server_name}",
        code=0,
        stderr=SERVING,
    ),
    "-gzip": row("-addr={server}", "-gzip", code=0, stderr=SERVING),
    # --- Messages ---
    "serving": row("-addr={server}", "-service=ready", code=0, stderr=SERVING),
    "not serving": row(
        "-addr={server}",
        "-service=down",
        code=4,
        stderr='service unhealthy (responded with "NOT_SERVING")\n',
    ),
    "unknown": row(
        "-addr={server}",
        "-service=unknown",
        code=4,
        stderr='service unhealthy (responded with "UNKNOWN")\n',
    ),
    "service unknown": row(
        "-addr={server}",
        "-service=gone",
        code=4,
        stderr='service unhealthy (responded with "SERVICE_UNKNOWN")\n',
    ),
    "dial deadline 250ms": row(
        "-addr={black_hole}",
        "-connect-timeout=250ms",
        code=2,
        stderr='timeout: failed to connect service "{black_hole}" within 250ms\n',
    ),
    "other dial error (refused)": row(
        "-addr={closed}",
        code=2,
        starts='error: failed to connect service at "{closed}": ',
    ),
    "rpc deadline": row(
        "-addr={slow}",
        "-connect-timeout=10s",
        "-rpc-timeout=300ms",
        code=3,
        stderr="timeout: health rpc did not complete within 300ms\n",
    ),
    "unimplemented": row(
        "-addr={no_health}",
        code=3,
        stderr="error: this server does not implement the grpc health protocol "
        "(grpc.health.v1.Health): Method not found!\n",
    ),
    "other rpc error: NOT_FOUND": row(
        "-addr={server}",
        "-service=missing",
        code=3,
        stderr="error: health rpc failed: rpc error: code = NotFound desc = \n",
    ),
    "other rpc error: PERMISSION_DENIED": row(
        "-addr={denying}",
        code=3,
        stderr="error: health rpc failed: rpc error: code = PermissionDenied desc = not for you\n",
    ),
    "tls material unreadable (CA)": row(
        "-addr={tls}",
        "-tls",
        "-tls-ca-cert=/nonexistent/ca.pem",
        code=1,
        stderr="failed to initialize tls credentials. error=cannot read CA certificate "
        "'/nonexistent/ca.pem': No such file or directory\n",
    ),
    "tls material unreadable (client pair)": row(
        "-addr={tls}",
        "-tls",
        "-tls-client-cert=/nonexistent/c.pem",
        "-tls-client-key={client_key}",
        code=1,
        stderr="failed to initialize tls credentials. error=cannot read client certificate "
        "'/nonexistent/c.pem': No such file or directory\n",
    ),
    "tls material not PEM": row(
        "-addr={tls}",
        "-tls",
        "-tls-ca-cert={client_key}",
        code=1,
        stderr="failed to initialize tls credentials. error=CA certificate '{client_key}' "
        "holds no usable certificate\n",
    ),
    "spiffe: socket not configured": row(
        "-addr={server}",
        "-spiffe",
        code=20,
        stderr="failed to initialize tls credentials with spiffe. "
        "error=workload endpoint socket address is not configured\n",
    ),
    "spiffe: socket set": row(
        "-addr={server}",
        "-spiffe",
        code=20,
        starts="failed to initialize tls credentials with spiffe. error=",
        env={"SPIFFE_ENDPOINT_SOCKET": "unix:///nonexistent/agent.sock"},
    ),
    # --- Argument errors ---
    "-addr not specified": row(code=1, stderr="error: -addr not specified\n"),
    "-connect-timeout zero": row(
        "-addr=x:1",
        "-connect-timeout=0",
        code=1,
        stderr="error: -connect-timeout must be greater than zero (specified: 0s)\n",
    ),
    "-rpc-timeout negative": row(
        "-addr=x:1",
        "-rpc-timeout=-250ms",
        code=1,
        stderr="error: -rpc-timeout must be greater than zero (specified: -250ms)\n",
    ),
    "-tls-no-verify without -tls": row(
        "-addr=x:1",
        "-tls-no-verify",
        code=1,
        stderr="error: specified -tls-no-verify without specifying -tls\n",
    ),
    "-tls-ca-cert without -tls": row(
        "-addr=x:1",
        "-tls-ca-cert=ca.pem",
        code=1,
        stderr="error: specified -tls-ca-cert without specifying -tls\n",
    ),
    "-tls-client-cert without -tls": row(
        "-addr=x:1",
        "-tls-client-cert=c.pem",
        "-tls-client-key=k.pem",
        code=1,
        stderr="error: specified -tls-client-cert without specifying -tls\n",
    ),
    "-tls-server-name without -tls": row(
        "-addr=x:1",
        "-tls-server-name=n",
        code=1,
        stderr="error: specified -tls-server-name without specifying -tls\n",
    ),
    "-tls-client-cert without key": row(
        "-addr=x:1",
        "-tls",
        "-tls-client-cert=c.pem",
        code=1,
        stderr="error: specified -tls-client-cert without specifying -tls-client-key\n",
    ),
    "-tls-client-key without cert": row(
        "-addr=x:1",
        "-tls",
        "-tls-client-key=k.pem",
        code=1,
        stderr="error: specified -tls-client-key without specifying -tls-client-cert\n",
    ),
    "-tls-ca-cert with -tls-no-verify": row(
        "-addr=x:1",
        "-tls",
        "-tls-no-verify",
        "-tls-ca-cert=ca.pem",
        code=1,
        stderr="error: cannot specify -tls-ca-cert with -tls-no-verify "
        "(CA cert would not be used)\n",
    ),
    "-tls-server-name with -tls-no-verify": row(
        "-addr=x:1",
        "-tls",
        "-tls-no-verify",
        "-tls-server-name=n",
        code=1,
        stderr="error: cannot specify -tls-server-name with -tls-no-verify "
        "(server name would not be used)\n",
    ),
    "-tls with -alts": row(
        "-addr=x:1", "-tls", "-alts", code=1, stderr="error: cannot specify -tls with -alts\n"
    ),
    "-alts with -spiffe": row(
        "-addr=x:1",
        "-alts",
        "-spiffe",
        code=1,
        stderr="error: -alts and -spiffe are mutually incompatible\n",
    ),
    "-tls with -spiffe (no prefix)": row(
        "-addr=x:1",
        "-tls",
        "-spiffe",
        code=1,
        stderr="-tls and -spiffe are mutually incompatible\n",
    ),
    # --- Behaviour worth knowing: all of these are exit 2, none exit 3 ---
    "plaintext client, TLS server": row(
        "-addr={tls}", code=2, starts='error: failed to connect service at "{tls}": '
    ),
    "TLS client, plaintext server": row(
        "-addr={server}",
        "-tls",
        "-tls-ca-cert={ca}",
        code=2,
        starts='error: failed to connect service at "{server}": ',
    ),
    "name mismatch": row(
        "-addr={tls}",
        "-tls",
        "-tls-ca-cert={ca}",
        "-tls-server-name=wrong.example.test",
        code=2,
        starts='error: failed to connect service at "{tls}": ',
    ),
    "untrusted CA": row(
        "-addr={tls}",
        "-tls",
        "-tls-ca-cert={other_ca}",
        code=2,
        starts='error: failed to connect service at "{tls}": ',
    ),
    "mTLS server, no client certificate": row(
        "-addr={mtls}",
        "-tls",
        "-tls-ca-cert={ca}",
        code=2,
        starts='error: failed to connect service at "{mtls}": ',
    ),
    "missing port": row(
        "-addr=127.0.0.1",
        code=2,
        stderr='error: failed to connect service at "127.0.0.1": '
        "invalid address '127.0.0.1': missing port\n",
    ),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_reference_row(name: str, world: World) -> None:
    expected = ROWS[name]
    args = [arg.format(**world.values) for arg in expected.args]
    result = run_probe(*args, env=expected.env)
    assert "Traceback" not in result.stderr
    assert result.code == expected.code, result.stderr
    assert result.stdout == expected.stdout
    if expected.stderr is not None:
        assert result.stderr == expected.stderr.format(**world.values)
    if expected.starts is not None:
        assert result.stderr.startswith(expected.starts.format(**world.values))
        assert result.stderr.count("\n") == 1, "one line"


def test_unresolvable_host_is_a_connection_failure(world: World) -> None:
    result = run_probe("-addr=nonexistent.invalid:50051", "-connect-timeout=2s")
    assert result.code == 2
    assert result.stderr.startswith(
        (
            'error: failed to connect service at "nonexistent.invalid:50051": ',
            'timeout: failed to connect service "nonexistent.invalid:50051" within 2s',
        )
    )


def test_refused_connection_fails_at_once(world: World) -> None:
    # Go waits out the whole connect timeout here; the exit code is the same.
    result = run_probe(f"-addr={world.values['closed']}", "-connect-timeout=30s")
    assert result.code == 2
    assert result.elapsed < 10


def test_dial_deadline_is_kept(world: World) -> None:
    result = run_probe(f"-addr={world.values['black_hole']}", "-connect-timeout=500ms")
    assert result.code == 2
    assert result.elapsed < 3


def test_no_verify_pin_shares_the_connect_timeout(world: World) -> None:
    result = run_probe(
        f"-addr={world.values['black_hole']}", "-tls", "-tls-no-verify", "-connect-timeout=500ms"
    )
    assert result.stderr == (
        f'timeout: failed to connect service "{world.values["black_hole"]}" within 500ms\n'
    )
    assert result.code == 2
    assert result.elapsed < 3


def test_verbose_success_lines(world: World) -> None:
    address = world.values["server"]
    result = run_probe(f"-addr={address}", "-v")
    assert result.code == 0
    lines = result.stderr.splitlines()
    assert lines[:6] == [
        "parsed options:",
        f"> addr={address} conn_timeout=1s rpc_timeout=1s",
        "> tls=false",
        "> alts=false",
        "> spiffe=false",
        "establishing connection",
    ]
    duration = r"[0-9.]+(ns|\u00b5s|ms|s)"
    assert re.fullmatch(rf"connection established \(took {duration}\)", lines[6])
    assert re.fullmatch(rf"time elapsed: connect={duration} rpc={duration}", lines[7])
    assert lines[8:] == ["status: SERVING"]


def test_verbose_tls_file_failure_comes_before_dialling(world: World) -> None:
    result = run_probe(f"-addr={world.values['tls']}", "-v", "-tls", "-tls-ca-cert=/nonexistent")
    assert result.code == 1
    assert result.stderr.splitlines()[-2:] == [
        "> spiffe=false",
        "failed to initialize tls credentials. error=cannot read CA certificate "
        "'/nonexistent': No such file or directory",
    ]


def test_user_agent_default_and_override(world: World) -> None:
    address = world.values["recording"]
    assert run_probe(f"-addr={address}").code == 0
    assert run_probe(f"-addr={address}", "-user-agent", "probe-e2e/1.0").code == 0
    first, second = (dict(seen)["user-agent"] for seen in world.recorder.seen[-2:])
    assert first.startswith("grpc_health_probe ")
    assert second.startswith("probe-e2e/1.0 ")


def test_rpc_headers_repeat_split_and_trim(world: World, tmp_path: Path) -> None:
    header_file = tmp_path / "headers"
    header_file.write_text("# from a mounted secret\n\nauthorization: Bearer s3cr3t\n")
    result = run_probe(
        f"-addr={world.values['recording']}",
        "-rpc-header",
        "foo: bar",
        "-rpc-header",
        "foo:baz",
        "-rpc-header",
        "X-Other: \t1: 2",
        f"-rpc-header-file={header_file}",
        "-v",
    )
    assert result.code == 0, result.stderr
    seen = [item for item in world.recorder.seen[-1] if item[0] != "user-agent"]
    assert ("foo", "bar") in seen
    assert ("foo", "baz") in seen
    assert ("x-other", "1: 2") in seen
    assert ("authorization", "Bearer s3cr3t") in seen
    assert "s3cr3t" not in result.stderr
    assert "> headers: map[authorization:[<redacted>] foo:[<redacted> <redacted>] " in (
        result.stderr
    )


def test_header_file_errors_name_the_line_not_the_value(tmp_path: Path) -> None:
    header_file = tmp_path / "headers"
    header_file.write_text("ok: 1\nBearer s3cr3t\n")
    result = run_probe("-addr=x:1", f"-rpc-header-file={header_file}")
    assert result.code == 1
    assert result.stderr.splitlines()[0] == (
        f'invalid value "{header_file}" for flag -rpc-header-file: line 2: '
        "invalid RPC header, expected 'key: value'"
    )
    assert "s3cr3t" not in result.stderr


def test_unix_socket_address(unix_server: HealthServer) -> None:
    assert unix_server.unix_path is not None
    for address in (f"unix:{unix_server.unix_path}", f"unix://{unix_server.unix_path}"):
        result = run_probe(f"-addr={address}")
        assert (result.code, result.stderr) == (0, SERVING)


def test_port_only_address_means_localhost(start_server: Any) -> None:
    server = start_server()
    result = run_probe(f"-addr=:{server.port}")
    assert (result.code, result.stderr) == (0, SERVING)


def test_grpc_core_logging_stays_off_stderr(world: World) -> None:
    # grpcio logs failed handshakes at INFO by default; the Go tool prints one line.
    result = run_probe(f"-addr={world.values['server']}", "-tls")
    assert result.code == 2
    assert result.stderr.count("\n") == 1


def test_alts_off_google_cloud_is_one_line_that_says_why(world: World) -> None:
    product = Path("/sys/class/dmi/id/product_name")
    if product.exists() and "Google" in product.read_text():
        pytest.skip("a Google Cloud machine: grpcio's ALTS is available here")
    address = world.values["server"]
    result = run_probe(f"-addr={address}", "-alts")
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr == (
        f'error: failed to connect service at "{address}": ALTS is unavailable: grpcio '
        "offers ALTS only on Google Cloud machines, and this is not one\n"
    )
