"""Every entry point against every hostile peer: the right verdict, in time, and clean.

Layer: tests (end to end). The installed ``check_grpc_health`` and ``grpc_health_probe``
run as processes, and the Ansible module runs in-process through ``AnsibleModule``,
against the same set of real peers: a black hole, an HTTP/1.1 server, a random-bytes
peer, a closed port, an unresolvable name, TLS mismatches in both directions, an
expired certificate, a wrong name, an untrusted CA, mTLS without a client certificate,
a server without the health service, slow answers just under and just over each
deadline, oversized metadata, a huge response, a Watch stream reset mid-way and a
status that flips on every call.

Each run must give the exact exit code and state, finish within its deadline plus
``MARGIN`` (process start-up included), print no traceback, and (in-process) leave no
thread behind. Peers that fail at once get generous timeouts, so a regression that
waits them out fails the time bound.
"""

from __future__ import annotations

import re
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health
from support.hardening import live_threads, open_fds, run_cli, run_module, settled_threads
from support.paths import PLUGIN, PROBE
from support.servers import (
    NOT_SERVING,
    SERVING,
    BigMetadataHealthServicer,
    FlappingHealthServicer,
    RawListener,
    SlowHealthServicer,
    WatchResettingServicer,
    black_hole,
    closed_port,
    http1_responder,
    random_bytes_responder,
    start_health_server,
    start_huge_response_server,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import TlsMaterial
    from support.servers import HealthServer

# Process start-up (about 0.3 s, more on a busy machine) plus scheduling slack.
MARGIN = 2.5
SLOW = 0.6  # the slow server's answer time, and the slow relay's delay before connecting
UNRESOLVABLE = "no-such-host.invalid:50051"


@dataclass
class Peers:
    """Addresses of the running peers and the TLS files, by name."""

    values: dict[str, str]

    def fill(self, text: str) -> str:
        return text.format(**self.values)


def delayed_relay(upstream: str, delay: float) -> Callable[[socket.socket, threading.Event], None]:
    """A peer that accepts at once but relays to ``upstream`` only after ``delay`` seconds.

    The client's connection is open, but its HTTP/2 handshake completes ``delay`` seconds
    late: a server that is slow to connect.
    """
    host, port = upstream.rsplit(":", 1)

    def relay(conn: socket.socket, stopping: threading.Event) -> None:
        if stopping.wait(delay):
            return
        with (
            socket.create_connection((host, int(port))) as server,
            selectors.DefaultSelector() as sel,
        ):
            sel.register(conn, selectors.EVENT_READ, server)
            sel.register(server, selectors.EVENT_READ, conn)
            while not stopping.is_set():
                for key, _ in sel.select(0.1):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)

    return relay


@pytest.fixture(scope="module")
def peers(tls_material: TlsMaterial) -> Iterator[Peers]:
    servers: list[HealthServer] = []
    listeners: list[RawListener] = []

    def server(**kwargs: Any) -> str:
        servers.append(start_health_server(**kwargs))
        return servers[-1].address

    def listener(handler: Any) -> str:
        listeners.append(RawListener(handler))
        return listeners[-1].address

    huge, huge_address = start_huge_response_server()
    expired = grpc.ssl_server_credentials(
        [(tls_material.expired_key.read_bytes(), tls_material.expired_cert.read_bytes())]
    )
    values = {
        "plain": server(),
        "tls": server(credentials=tls_material.server_credentials()),
        "mtls": server(credentials=tls_material.server_credentials(require_client=True)),
        "expired": server(credentials=expired),
        "no_health": server(with_health=False),
        "slow": server(servicer=SlowHealthServicer(SLOW)),
        "slow_connect": "",
        "big_metadata": server(servicer=BigMetadataHealthServicer()),
        "huge": huge_address,
        "black_hole": listener(black_hole),
        "http1": listener(http1_responder),
        "random": listener(random_bytes_responder),
        "closed": f"127.0.0.1:{closed_port()}",
        "unresolvable": UNRESOLVABLE,
        "ca": str(tls_material.ca_cert),
        "other_ca": str(tls_material.other_ca_cert),
        "client_cert": str(tls_material.client_cert),
        "client_key": str(tls_material.client_key),
    }
    values["slow_connect"] = listener(delayed_relay(values["plain"], SLOW))
    yield Peers(values)
    huge.stop(None)
    for running in servers:
        running.stop()
    for running_listener in listeners:
        running_listener.close()


@dataclass(frozen=True)
class Case:
    """One hostile peer as each entry point meets it.

    ``*_args`` come after generous default timeouts, so they override them. The
    messages are regular expressions for the plugin's status message (before any
    perfdata), the probe's one stderr line and the Ansible module's ``msg``.
    ``deadline`` is the timeout that should end the run (0 when it fails at once).
    """

    plugin_args: tuple[str, ...]
    plugin_state: str
    plugin_message: str
    probe_args: tuple[str, ...]
    probe_code: int
    probe_line: str
    module_args: dict[str, Any]
    module_message: str
    deadline: float = 0.0


CONNECT_FAILED = r"failed to connect to {addr}: "
PROBE_CONNECT_FAILED = r'error: failed to connect service at "{addr}": '
TLS_CA = ("--ca-cert", "{ca}")
EXPIRED = r"the server's certificate expired on 2021-01-01 00:00 UTC"
WRONG_NAME = (
    r"the certificate is not valid for other\.example\.test; it names health\.example\.test, "
    r"127\.0\.0\.1, ::1, localhost; use "
)
WITH_ONE = r" with one of its names"
UNTRUSTED = (
    r"the server's certificate \(issued by O=trustme v[0-9.]+,OU=Testing CA #[^)]+\) is not "
    r"signed by the CA file given; give {ca} the CA that issued it, or use {insecure} to skip "
    r"verification, unsafe"
)
PROBE_TLS_CA = ("-tls", "-tls-ca-cert={ca}")


# The core reports a silent peer as a timeout (grpc's own attempt deadline runs past the
# connect timeout, and its "timed out" reads the same), with the diagnosis in each
# tool's spelling.
def silent(seconds: str, connect_timeout: str = "--connect-timeout", address: str = "-H") -> str:
    return (
        rf"timed out connecting to {{addr}} after {seconds}s: the server accepted the TCP "
        r"connection but sent no HTTP/2 settings \(overloaded, or not a gRPC server\); "
        rf"use a longer {connect_timeout}, or check the port in {address}"
    )


def module_silent(seconds: str) -> str:
    return silent(seconds, "connect_timeout", "host")


SILENT = silent(r"0\.5")

CASES: dict[str, Case] = {
    "black hole": Case(
        ("--connect-timeout", "0.5"),
        "CRITICAL",
        SILENT,
        ("-connect-timeout=500ms",),
        2,
        r'timeout: failed to connect service "{addr}" within 500ms',
        {"connect_timeout": 0.5},
        module_silent(r"0\.5"),
        deadline=0.5,
    ),
    "HTTP/1.1 server": Case(
        (),
        "CRITICAL",
        CONNECT_FAILED + r".*HTTP/2.*",
        (),
        2,
        PROBE_CONNECT_FAILED + r".*HTTP/2.*",
        {},
        CONNECT_FAILED + r".*HTTP/2.*",
    ),
    "random bytes": Case(
        (),
        "CRITICAL",
        CONNECT_FAILED + r".+",
        (),
        2,
        PROBE_CONNECT_FAILED + r".+",
        {},
        CONNECT_FAILED + r".+",
    ),
    "closed port": Case(
        (),
        "CRITICAL",
        CONNECT_FAILED + r".*Connection refused",
        (),
        2,
        PROBE_CONNECT_FAILED + r".*Connection refused",
        {},
        CONNECT_FAILED + r".*Connection refused",
    ),
    "unresolvable name": Case(
        (),
        "CRITICAL",
        CONNECT_FAILED + r".+",
        (),
        2,
        PROBE_CONNECT_FAILED + r".+",
        {},
        CONNECT_FAILED + r".+",
    ),
    "TLS to a plaintext server": Case(
        TLS_CA,
        "CRITICAL",
        CONNECT_FAILED + r"the server speaks plaintext gRPC, not TLS; leave out --tls",
        PROBE_TLS_CA,
        2,
        PROBE_CONNECT_FAILED + r"the server speaks plaintext gRPC, not TLS; leave out -tls",
        {"ca_cert": "{ca}"},
        CONNECT_FAILED + r"the server speaks plaintext gRPC, not TLS; set tls: false",
    ),
    "plaintext to a TLS server": Case(
        (),
        "CRITICAL",
        CONNECT_FAILED + r"the server speaks TLS; add --tls",
        (),
        2,
        PROBE_CONNECT_FAILED + r"the server speaks TLS; add -tls",
        {},
        CONNECT_FAILED + r"the server speaks TLS; add tls: true",
    ),
    "expired certificate": Case(
        TLS_CA,
        "CRITICAL",
        CONNECT_FAILED + EXPIRED,
        PROBE_TLS_CA,
        2,
        PROBE_CONNECT_FAILED + EXPIRED,
        {"ca_cert": "{ca}"},
        CONNECT_FAILED + EXPIRED,
    ),
    "wrong name": Case(
        (*TLS_CA, "--server-name", "other.example.test"),
        "CRITICAL",
        CONNECT_FAILED + WRONG_NAME + "--server-name" + WITH_ONE,
        (*PROBE_TLS_CA, "-tls-server-name=other.example.test"),
        2,
        PROBE_CONNECT_FAILED + WRONG_NAME + "-tls-server-name" + WITH_ONE,
        {"ca_cert": "{ca}", "server_name": "other.example.test"},
        CONNECT_FAILED + WRONG_NAME + "server_name" + WITH_ONE,
    ),
    "untrusted CA": Case(
        ("--ca-cert", "{other_ca}"),
        "CRITICAL",
        CONNECT_FAILED + UNTRUSTED.format(ca="--ca-cert", insecure="--insecure"),
        ("-tls", "-tls-ca-cert={other_ca}"),
        2,
        PROBE_CONNECT_FAILED + UNTRUSTED.format(ca="-tls-ca-cert", insecure="-tls-no-verify"),
        {"ca_cert": "{other_ca}"},
        CONNECT_FAILED + UNTRUSTED.format(ca="ca_cert", insecure="validate_certs: false"),
    ),
    "mTLS without a client certificate": Case(
        TLS_CA,
        "CRITICAL",
        CONNECT_FAILED + r"the server wants a client certificate \(mutual TLS\); "
        r"add --client-cert FILE and --client-key FILE",
        PROBE_TLS_CA,
        2,
        PROBE_CONNECT_FAILED + r"the server wants a client certificate \(mutual TLS\); "
        r"add -tls-client-cert FILE and -tls-client-key FILE",
        {"ca_cert": "{ca}"},
        CONNECT_FAILED + r"the server wants a client certificate \(mutual TLS\); "
        r"add client_cert FILE and client_key FILE",
    ),
    "no health service": Case(
        (),
        "CRITICAL",
        r"{addr}: the server lacks the grpc\.health\.v1\.Health service \(UNIMPLEMENTED\)",
        (),
        3,
        r"error: this server does not implement the grpc health protocol "
        r"\(grpc\.health\.v1\.Health\): Method not found!",
        {},
        r"{addr} is not SERVING: overall health UNIMPLEMENTED \(.+\)",
    ),
    "slow, just under the RPC deadline": Case(
        ("--rpc-timeout", "1.2"),
        "OK",
        r"{addr}: overall health is SERVING in [0-9.]+s",
        ("-rpc-timeout=1200ms",),
        0,
        r"status: SERVING",
        {"rpc_timeout": 1.2},
        r"{addr} is SERVING",
        deadline=1.2,
    ),
    "slow, just over the RPC deadline": Case(
        ("--rpc-timeout", "0.4"),
        "CRITICAL",
        r"{addr}: overall health: no answer within the 0\.4s RPC timeout",
        ("-rpc-timeout=400ms",),
        3,
        r"timeout: health rpc did not complete within 400ms",
        {"rpc_timeout": 0.4},
        r"{addr} is not SERVING: overall health DEADLINE_EXCEEDED \(.+\)",
        deadline=0.4,
    ),
    "slow to connect, just under the connect deadline": Case(
        ("--connect-timeout", "1.5"),
        "OK",
        r"{addr}: overall health is SERVING in [0-9.]+s",
        ("-connect-timeout=1500ms",),
        0,
        r"status: SERVING",
        {"connect_timeout": 1.5},
        r"{addr} is SERVING",
        deadline=1.5,
    ),
    "slow to connect, just over the connect deadline": Case(
        ("--connect-timeout", "0.3"),
        "CRITICAL",
        silent(r"0\.3"),
        ("-connect-timeout=300ms",),
        2,
        r'timeout: failed to connect service "{addr}" within 300ms',
        {"connect_timeout": 0.3},
        module_silent(r"0\.3"),
        deadline=0.3,
    ),
    "very large metadata": Case(
        (),
        "CRITICAL",
        r"{addr}: overall health: health RPC failed with RESOURCE_EXHAUSTED: .*metadata.*",
        (),
        3,
        r"error: health rpc failed: rpc error: code = ResourceExhausted desc = .*metadata.*",
        {},
        r"{addr} is not SERVING: overall health RESOURCE_EXHAUSTED \(.*metadata.*\)",
    ),
    "huge response": Case(
        (),
        "CRITICAL",
        r"{addr}: overall health: health RPC failed with RESOURCE_EXHAUSTED: .*larger than max.*",
        (),
        3,
        r"error: health rpc failed: rpc error: code = ResourceExhausted desc = .*larger than max.*",
        {},
        r"{addr} is not SERVING: overall health RESOURCE_EXHAUSTED \(.*larger than max.*\)",
    ),
}
PEER_OF = {
    "black hole": "black_hole",
    "HTTP/1.1 server": "http1",
    "random bytes": "random",
    "closed port": "closed",
    "unresolvable name": "unresolvable",
    "TLS to a plaintext server": "plain",
    "plaintext to a TLS server": "tls",
    "expired certificate": "expired",
    "wrong name": "tls",
    "untrusted CA": "tls",
    "mTLS without a client certificate": "mtls",
    "no health service": "no_health",
    "slow, just under the RPC deadline": "slow",
    "slow, just over the RPC deadline": "slow",
    "slow to connect, just under the connect deadline": "slow_connect",
    "slow to connect, just over the connect deadline": "slow_connect",
    "very large metadata": "big_metadata",
    "huge response": "huge",
}
CODES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


def expected(pattern: str, peers: Peers, address: str) -> str:
    return pattern.replace("{addr}", re.escape(address)).format(**peers.values)


@pytest.mark.parametrize("name", list(CASES))
def test_plugin_against_hostile_peer(name: str, peers: Peers) -> None:
    case = CASES[name]
    address = peers.values[PEER_OF[name]]
    args = [peers.fill(arg) for arg in case.plugin_args]
    done = run_cli(PLUGIN, "-H", address, "-t", "20", *args)
    done.assert_clean()
    assert done.code == CODES[case.plugin_state], done.output
    assert done.stderr == ""
    first = done.stdout.splitlines()[0]
    message = expected(case.plugin_message, peers, address)
    assert re.fullmatch(rf"GRPC_HEALTH {case.plugin_state} - {message}( \| .*)?", first), first
    assert done.elapsed < case.deadline + MARGIN


@pytest.mark.parametrize("name", list(CASES))
def test_probe_against_hostile_peer(name: str, peers: Peers) -> None:
    case = CASES[name]
    address = peers.values[PEER_OF[name]]
    args = [peers.fill(arg) for arg in case.probe_args]
    done = run_cli(PROBE, f"-addr={address}", "-connect-timeout=10s", "-rpc-timeout=10s", *args)
    done.assert_clean()
    assert done.code == case.probe_code, done.output
    assert done.stdout == ""
    assert re.fullmatch(expected(case.probe_line, peers, address) + "\n", done.stderr), done.stderr
    assert done.elapsed < case.deadline + MARGIN


def settled_fds(limit: int) -> int:
    """Open descriptors, once closed sockets have been released (grpc closes them async)."""
    deadline = time.monotonic() + 3
    while open_fds() > limit and time.monotonic() < deadline:
        time.sleep(0.05)
    return open_fds()


@pytest.fixture
def thread_baseline(peers: Peers) -> int:
    """Live threads once grpc's own process-wide threads exist (one warm-up check)."""
    run_module({"host": peers.values["plain"]})
    return len(settled_threads(0, wait=0))


@pytest.mark.parametrize("name", list(CASES))
def test_ansible_module_against_hostile_peer(name: str, peers: Peers, thread_baseline: int) -> None:
    case = CASES[name]
    address = peers.values[PEER_OF[name]]
    args: dict[str, Any] = {"host": address, "connect_timeout": 10, "rpc_timeout": 10}
    for key, value in case.module_args.items():
        args[key] = peers.fill(value) if isinstance(value, str) else value
    fds = open_fds()
    done = run_module(args)
    done.assert_clean()
    passed = case.plugin_state == "OK"
    assert done.code == (0 if passed else 1), done.result
    assert done.result.get("failed", False) is not passed
    assert done.result["changed"] is False
    message = expected(case.module_message, peers, address)
    assert re.fullmatch(message, done.result["msg"]), done.result["msg"]
    assert "\n" not in done.result["msg"]
    assert done.elapsed < case.deadline + MARGIN
    live = settled_threads(thread_baseline)
    assert len(live) <= thread_baseline, live
    # Silent peers keep their end of the connection (a fixture's socket, not ours).
    kept = 1 if PEER_OF[name] in ("black_hole", "slow_connect") else 0
    assert settled_fds(fds + kept) <= fds + kept


@pytest.mark.parametrize(("budget", "state"), [("3", "OK"), ("0.3", "CRITICAL")])
def test_plugin_overall_timeout_just_under_and_over(peers: Peers, budget: str, state: str) -> None:
    # The phase deadlines are out of the way: only -t can end the slow answer early.
    address = peers.values["slow"]
    done = run_cli(PLUGIN, "-H", address, "-t", budget, "--rpc-timeout", "20")
    done.assert_clean()
    assert done.code == CODES[state]
    if state == "OK":
        assert done.stdout.startswith(f"GRPC_HEALTH OK - {address}: overall health is SERVING")
    else:
        assert re.fullmatch(
            rf"GRPC_HEALTH CRITICAL - no result within the {budget}s timeout \(-t\) "
            r"\| time=[0-9.]+s;;;0\n",
            done.stdout,
        ), done.stdout
    assert done.elapsed < float(budget) + MARGIN


# --- peers whose answer changes from call to call --------------------------------------


@pytest.fixture
def flapping(start_server: Callable[..., HealthServer]) -> HealthServer:
    return start_server(servicer=FlappingHealthServicer())


def test_flapping_server_gives_each_entry_point_the_status_of_its_own_call(
    flapping: HealthServer,
) -> None:
    address = flapping.address
    # The server alternates SERVING and NOT_SERVING on every Check, starting with
    # SERVING, and every entry point makes exactly one Check per run.
    plugin = [run_cli(PLUGIN, "-H", address) for _ in range(2)]
    probe = [run_cli(PROBE, f"-addr={address}") for _ in range(2)]
    module = [run_module({"host": address}) for _ in range(2)]
    for done in (*plugin, *probe, *module):
        done.assert_clean()
    assert [done.code for done in plugin] == [0, 2]
    assert plugin[0].stdout.startswith(f"GRPC_HEALTH OK - {address}: overall health is SERVING")
    assert plugin[1].stdout.startswith(
        f"GRPC_HEALTH CRITICAL - {address}: overall health is NOT_SERVING | "
    )
    assert [(done.code, done.stderr) for done in probe] == [
        (0, "status: SERVING\n"),
        (4, 'service unhealthy (responded with "NOT_SERVING")\n'),
    ]
    assert [done.result["status"] for done in module] == [{"": "SERVING"}, {"": "NOT_SERVING"}]
    assert [done.code for done in module] == [0, 1]


def test_ansible_gate_waits_through_a_flapping_server(flapping: HealthServer) -> None:
    # Check 1 (SERVING) goes to this first run, so the gate's own first Check is
    # NOT_SERVING. Watch then pushes the servicer's stored SERVING, and the gate
    # confirms it with Check 3, which is SERVING again.
    assert run_module({"host": flapping.address}).code == 0
    done = run_module({"host": flapping.address, "timeout": 5, "sleep": 0.2})
    done.assert_clean()
    assert done.elapsed < MARGIN
    assert done.code == 0, done.result
    assert done.result["status"] == {"": "SERVING"}
    assert done.result["method"] == "watch"
    assert flapping.servicer.calls == 3  # type: ignore[attr-defined]


def test_ansible_gate_survives_a_watch_stream_reset_mid_way(
    start_server: Callable[..., HealthServer], thread_baseline: int
) -> None:
    servicer = WatchResettingServicer()
    server = start_server(servicer=servicer, statuses={"": NOT_SERVING})
    baseline = len(live_threads())  # the new server's own threads included
    done = run_module({"host": server.address, "timeout": 1, "sleep": 0.2})
    done.assert_clean()
    assert done.code == 1
    assert done.elapsed < 1 + MARGIN
    assert servicer.watches >= 2, "a reset stream is opened again"
    assert done.result["status"] == {"": "NOT_SERVING"}
    assert done.result["msg"] == (
        f"{server.address} did not reach SERVING within 1s: overall health NOT_SERVING "
        "(last RPC error: health RPC for the server's overall health failed: "
        "UNAVAILABLE: stream reset by peer)"
    )
    live = settled_threads(baseline)
    assert len(live) <= baseline, live


class TurningServicer(health.HealthServicer):
    """NOT_SERVING on Check; turns SERVING shortly after the first Watch opens."""

    def __init__(self) -> None:
        super().__init__()
        self.timer: threading.Timer | None = None

    def Watch(self, request: Any, context: Any, send_response_callback: Any = None) -> Any:
        if self.timer is None:
            self.timer = threading.Timer(0.2, self.set, ("", SERVING))
            self.timer.start()
        return super().Watch(request, context, send_response_callback)


def test_ansible_gate_passes_on_a_pushed_change_well_before_its_deadline(
    start_server: Callable[..., HealthServer],
) -> None:
    server = start_server(servicer=TurningServicer(), statuses={"": NOT_SERVING})
    started = time.monotonic()
    done = run_module({"host": server.address, "timeout": 20, "sleep": 5})
    assert time.monotonic() - started < MARGIN
    assert done.code == 0
    assert done.result["method"] == "watch"
