"""Every row of docs/troubleshooting.md, against a real peer of that kind, in every tool.

Each row names a failure and what the plugin, the probe and the Ansible module print for
it. Here each row gets its peer (gRPC servers with trustme certificates, an HTTP/1.1
server from ``http.server``, a black hole, a closed port, a server without the health
service, a generic handler that answers UNIMPLEMENTED as grpc-go does without gzip),
and each tool must print exactly the row's text, the address aside. The fleet prints
the plugin's summary for the same arguments.
"""

from __future__ import annotations

import datetime
import http.server
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import trustme
from support.connect_proxy import ConnectProxy
from support.hardening import Finished, cli_env, run_cli, run_module
from support.paths import FLEET, PLUGIN, PROBE, ROOT
from support.servers import (
    RawListener,
    SlowHealthServicer,
    black_hole,
    closed_port,
    require_unshare_mount,
    start_health_server,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from support.servers import HealthServer

PAGE = ROOT / "docs/troubleshooting.md"
# The addresses every row of the page shows; each test puts its peer's (and its proxy's).
SHOWN = "127.0.0.1:50051"
SHOWN_PROXY = "127.0.0.1:3128"
PROXY_VARIABLES = ("grpc_proxy", "https_proxy", "http_proxy", "no_grpc_proxy", "no_proxy")
# The DNS rows: tools run in a mount namespace whose resolv.conf names our own DNS server
# (answering NXDOMAIN to everything) or an address where none listens; the machine's
# resolver is never asked. The addresses are this process's own, so that two test runs at
# once (CI runs two Pythons side by side) never bind the same one.
_PID_OCTETS = f"{os.getpid() // 254 % 256}.{os.getpid() % 254 + 1}"
DNS_SERVER = f"127.53.{_PID_OCTETS}"
NO_DNS_SERVER = f"127.54.{_PID_OCTETS}"
UNKNOWN_NAME = "nosuch.test:50051"
MODULE = "ansible_collections.grpc_health.probe.plugins.modules.grpc_health"
NOT_APPLICABLE = "(no such option)"


@dataclass(frozen=True)
class Row:
    """One row of the page: the failure and what each tool prints for it."""

    failure: str
    plugin: str
    probe: str
    module: str
    fix: str


def page_rows() -> dict[str, Row]:
    """The table under "## What each tool prints", by failure."""
    text = PAGE.read_text("utf-8")
    table = text.split("## What each tool prints", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        if not line.startswith("| ") or line.startswith(("| Failure", "| ---")):
            continue
        cells = [cell.strip() for cell in re.split(r" \| ", line.strip()[2:-2])]
        assert len(cells) == 5, line
        failure, plugin, probe, module, fix = (_code(cell) for cell in cells)
        rows[failure] = Row(failure, plugin, probe, module, fix)
    return rows


def _code(cell: str) -> str:
    """A cell's text: the inside of its backticks when it is one code span."""
    if cell.startswith("`") and cell.endswith("`") and cell.count("`") == 2:
        return cell[1:-1]
    return cell


@dataclass
class Lab:
    """The TLS files of the page's peers, written where the tools can read them."""

    base: Path
    ca: trustme.CA
    servers: list[HealthServer] = field(default_factory=list)
    listeners: list[RawListener] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def path(self, name: str) -> str:
        return str(self.base / name)

    def write_pair(self, name: str, cert: trustme.LeafCert) -> grpc.ServerCredentials:
        cert.cert_chain_pems[0].write_to_path(self.path(f"{name}.pem"))
        cert.private_key_pem.write_to_path(self.path(f"{name}.key"))
        return grpc.ssl_server_credentials(
            [(cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes())]
        )

    def grpc_server(self, **kwargs: Any) -> str:
        server = start_health_server(**kwargs)
        self.servers.append(server)
        return server.address

    def proxy(self, credentials: str | None = None) -> str:
        """A real CONNECT proxy; its ``host:port``."""
        started = ConnectProxy(credentials=credentials).start()
        self.closers.append(started.stop)
        return f"127.0.0.1:{started.port}"

    def raw(self, handler: Any) -> str:
        listener = RawListener(handler)
        self.listeners.append(listener)
        return listener.address


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("troubleshooting")
    ca = trustme.CA(organization_name="Example Corp", organization_unit_name="Private CA")
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(base / "other-ca.pem"))
    found = Lab(base, ca)
    # A client certificate from a CA the mTLS server does not trust.
    stranger = trustme.CA().issue_cert("stranger@example.test")
    found.write_pair("stranger", stranger)
    found.write_pair("client", ca.issue_cert("client@example.test"))
    yield found
    for server in found.servers:
        server.stop()
    for listener in found.listeners:
        listener.close()
    for close in found.closers:
        close()


def _tls_peer(lab: Lab, *names: str, **dates: datetime.datetime) -> str:
    cert = lab.ca.issue_cert(*names, **dates)  # type: ignore[arg-type]
    return lab.grpc_server(credentials=lab.write_pair("server", cert))


def _utc(year: int) -> datetime.datetime:
    return datetime.datetime(year, 1, 1, tzinfo=datetime.timezone.utc)


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _http_server(lab: Lab) -> str:
    """Python's own HTTP/1.1 server: a real web server on the port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lab.closers.append(server.shutdown)
    lab.closers.append(server.server_close)
    return f"127.0.0.1:{server.server_address[1]}"


def _without_gzip(lab: Lab) -> str:
    """A server that refuses gzip-compressed requests the way grpc-go does without gzip."""

    def refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            'grpc: Decompressor is not installed for grpc-encoding "gzip"',
        )
        return b""

    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(refuse)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    lab.closers.append(lambda: server.stop(grace=None))
    return f"127.0.0.1:{port}"


def _mtls_peer(lab: Lab) -> str:
    cert = lab.ca.issue_cert("127.0.0.1")
    lab.write_pair("mtls", cert)
    credentials = grpc.ssl_server_credentials(
        [(cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes())],
        root_certificates=lab.ca.cert_pem.bytes(),
        require_client_auth=True,
    )
    return lab.grpc_server(credentials=credentials)


@dataclass(frozen=True)
class Case:
    """How to make a row's failure: its peer and each tool's arguments."""

    peer: Callable[[Lab], str]
    # None where the tool has no option for the case (the row says "(no such option)").
    plugin: tuple[str, ...] | None = ()
    probe: tuple[str, ...] = ()
    module: dict[str, Any] | None = field(default_factory=dict)
    # The HTTP proxy the environment names (``http_proxy``), as ``host:port``.
    proxy: Callable[[Lab], str] | None = None
    # The name server of the tools' resolv.conf (then they run in a mount namespace).
    dns: str | None = None


CA = ("--ca-cert", "{ca}")
PROBE_CA = ("-tls", "-tls-ca-cert={ca}")
MTLS_PEER = "mtls"

CASES: dict[str, Case] = {
    "Plaintext to a TLS server": Case(
        lambda lab: _tls_peer(lab, "127.0.0.1"),
    ),
    "TLS to a plaintext server": Case(
        lambda lab: lab.grpc_server(),
        CA,
        PROBE_CA,
        {"ca_cert": "{ca}"},
    ),
    "Certificate from a private CA": Case(
        lambda lab: _tls_peer(lab, "127.0.0.1"),
        ("--tls",),
        ("-tls",),
        {"tls": True},
    ),
    "Certificate for another name": Case(
        lambda lab: _tls_peer(lab, "api.example.test"),
        CA,
        PROBE_CA,
        {"ca_cert": "{ca}"},
    ),
    "Expired certificate": Case(
        lambda lab: _tls_peer(lab, "127.0.0.1", not_before=_utc(2020), not_after=_utc(2021)),
        CA,
        PROBE_CA,
        {"ca_cert": "{ca}"},
    ),
    "Certificate not valid yet": Case(
        lambda lab: _tls_peer(lab, "127.0.0.1", not_before=_utc(2030), not_after=_utc(2031)),
        CA,
        PROBE_CA,
        {"ca_cert": "{ca}"},
    ),
    "Mutual TLS, no client certificate": Case(
        _mtls_peer,
        CA,
        PROBE_CA,
        {"ca_cert": "{ca}"},
    ),
    "Mutual TLS, client certificate from another CA": Case(
        _mtls_peer,
        (*CA, "--client-cert", "{stranger}.pem", "--client-key", "{stranger}.key"),
        (*PROBE_CA, "-tls-client-cert={stranger}.pem", "-tls-client-key={stranger}.key"),
        {"ca_cert": "{ca}", "client_cert": "{stranger}.pem", "client_key": "{stranger}.key"},
    ),
    "Plaintext to a mutual-TLS server": Case(_mtls_peer),
    "Client certificate without its key": Case(
        lambda lab: _tls_peer(lab, "127.0.0.1"),
        (*CA, "--client-cert", "{client}.pem"),
        (*PROBE_CA, "-tls-client-cert={client}.pem"),
        {"ca_cert": "{ca}", "client_cert": "{client}.pem"},
    ),
    "HTTP/1.1 server on the port": Case(_http_server),
    "Nothing listens": Case(lambda lab: f"127.0.0.1:{closed_port()}"),
    "Connected, but no answer": Case(
        lambda lab: lab.raw(black_hole),
        ("--connect-timeout", "0.5"),
        ("-connect-timeout=500ms",),
        {"connect_timeout": 0.5},
    ),
    "No health service": Case(lambda lab: lab.grpc_server(with_health=False)),
    "No health service, several services": Case(
        lambda lab: lab.grpc_server(with_health=False),
        ("-s", "app.Orders", "-s", "app.Payments"),
        None,  # type: ignore[arg-type]
        {"service": ["app.Orders", "app.Payments"]},
    ),
    "Compression the server cannot read": Case(_without_gzip, ("--gzip",), ("-gzip",), None),
    "HTTP proxy not running": Case(
        lambda lab: lab.grpc_server(),
        proxy=lambda lab: f"127.0.0.1:{closed_port()}",
    ),
    "HTTP proxy wants credentials": Case(
        lambda lab: lab.grpc_server(),
        proxy=lambda lab: lab.proxy(credentials="monitor:secret"),
    ),
    "HTTP proxy cannot reach the server": Case(
        lambda lab: f"127.0.0.1:{closed_port()}",
        proxy=lambda lab: lab.proxy(),
    ),
    "Name not resolved": Case(lambda lab: UNKNOWN_NAME, dns=DNS_SERVER),
    "No DNS server answers": Case(lambda lab: UNKNOWN_NAME, dns=NO_DNS_SERVER),
    "ALTS off Google Cloud": Case(lambda lab: f"127.0.0.1:{closed_port()}", None, ("-alts",), None),
    "Health RPC too slow": Case(
        lambda lab: lab.grpc_server(servicer=SlowHealthServicer(2.0)),
        ("--rpc-timeout", "0.5"),
        ("-rpc-timeout=500ms",),
        {"rpc_timeout": 0.5},
    ),
}


@dataclass(frozen=True)
class Started:
    """A row's peer, running, and the row with the peer's address in it."""

    address: str
    row: Row
    case: Case
    files: dict[str, str]
    proxy: str | None

    def fill(self, text: str) -> str:
        return text.format(**self.files)

    def run(self, command: str, *args: str) -> Finished:
        """Run a tool; for the DNS rows, in a mount namespace with the row's resolv.conf."""
        if self.case.dns is None:
            return run_cli(command, *args, env=self.env())
        return _run_named(self.files[self.case.dns], [command, *args], self.env())

    def env(self) -> dict[str, str]:
        """The tools' environment: no proxy setting but the row's own."""
        env = {key: value for key, value in cli_env().items() if key not in PROXY_VARIABLES}
        if self.proxy is not None:
            env["http_proxy"] = f"http://{self.proxy}"
        return env


@pytest.fixture(scope="module")
def started(lab: Lab) -> dict[str, Started]:
    rows = page_rows()
    files = {
        "ca": lab.path("ca.pem"),
        "stranger": lab.path("stranger"),
        "client": lab.path("client"),
        **_name_files(lab),
    }
    found = {}
    for name, case in CASES.items():
        address = case.peer(lab)
        proxy = case.proxy(lab) if case.proxy is not None else None
        cells = [cell.replace(SHOWN, address) for cell in rows[name].__dict__.values()]
        if proxy is not None:
            cells = [cell.replace(SHOWN_PROXY, proxy) for cell in cells]
        found[name] = Started(address, Row(*cells), case, files, proxy)
    return found


def test_every_row_of_the_page_has_a_case_and_every_case_a_row() -> None:
    assert sorted(page_rows()) == sorted(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_the_plugin_prints_the_row(name: str, started: dict[str, Started]) -> None:
    peer = started[name]
    if peer.case.plugin is None:
        assert peer.row.plugin == NOT_APPLICABLE
        return
    args = [peer.fill(arg) for arg in peer.case.plugin]
    done = peer.run(PLUGIN, "-H", peer.address, *args)
    done.assert_clean()
    first = done.stdout.splitlines()[0].split(" | ", 1)[0]
    assert first == peer.row.plugin
    assert done.code == {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}[first.split()[1]]


@pytest.mark.parametrize("name", list(CASES))
def test_the_fleet_prints_the_plugins_summary(
    name: str, started: dict[str, Started], tmp_path: Path
) -> None:
    peer = started[name]
    if peer.case.plugin is None:
        assert peer.row.plugin == NOT_APPLICABLE
        return
    args = " ".join(peer.fill(arg) for arg in peer.case.plugin)
    path = tmp_path / "fleet.txt"
    path.write_text(f"-H {peer.address} {args}\n", "utf-8")
    done = peer.run(FLEET, str(path), "--json")
    done.assert_clean()
    document = json.loads(done.stdout.splitlines()[0])
    state, _, summary = peer.row.plugin.removeprefix("GRPC_HEALTH ").partition(" - ")
    assert (document["state"], document["summary"]) == (state, summary)


@pytest.mark.parametrize("name", list(CASES))
def test_the_probe_prints_the_row(name: str, started: dict[str, Started]) -> None:
    peer = started[name]
    if peer.case.probe is None:
        assert peer.row.probe == NOT_APPLICABLE
        return
    args = [peer.fill(arg) for arg in peer.case.probe]
    done = peer.run(PROBE, f"-addr={peer.address}", *args)
    done.assert_clean()
    assert done.stderr == peer.row.probe + "\n"
    assert done.code != 0


@pytest.mark.parametrize("name", list(CASES))
def test_the_ansible_module_prints_the_row(
    name: str, started: dict[str, Started], monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = started[name]
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    if peer.proxy is not None:
        monkeypatch.setenv("http_proxy", f"http://{peer.proxy}")
    if peer.case.module is None:
        assert peer.row.module == NOT_APPLICABLE
        return
    args = {
        key: peer.fill(value) if isinstance(value, str) else value
        for key, value in peer.case.module.items()
    }
    if peer.case.dns is None:
        done = run_module({"host": peer.address, **args})
    else:
        done = _module_named(peer, {"host": peer.address, **args})
    assert done.result["failed"] is True
    assert done.result["msg"] == peer.row.module


def _name_files(lab: Lab) -> dict[str, str]:
    """A hosts file and one resolv.conf per DNS row; starts the NXDOMAIN server."""
    require_unshare_mount()
    (lab.base / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    files = {"hosts": str(lab.base / "hosts")}
    for server in (DNS_SERVER, NO_DNS_SERVER):
        path = lab.base / f"resolv-{server}.conf"
        path.write_text(f"nameserver {server}\noptions timeout:1 attempts:1\n")
        files[server] = str(path)
    lab.closers.append(_nxdomain_server(DNS_SERVER))
    return files


def _nxdomain_server(address: str) -> Callable[[], None]:
    """A DNS server on ``address``:53 (UDP) that answers every query: no such name."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((address, 53))
    stopping = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stopping.is_set():
            try:
                query, peer = server.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(query) < 12:
                continue
            count = struct.unpack("!H", query[4:6])[0]
            # Same ID, "response, recursion desired and available, NXDOMAIN", the question.
            server.sendto(
                query[:2] + struct.pack("!HHHHH", 0x8183, count, 0, 0, 0) + query[12:], peer
            )

    thread = threading.Thread(target=serve, name="nxdomain", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(2)
        server.close()

    return stop


_NAMED = (
    'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"'
)


def _run_named(
    resolv: str, command: list[str], env: dict[str, str], cwd: str | None = None
) -> Finished:
    """Run ``command`` where /etc/hosts and /etc/resolv.conf are the test's own."""
    import time

    hosts = str(Path(resolv).parent / "hosts")
    started = time.monotonic()
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", _NAMED, "sh", hosts, resolv, *command],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        check=False,
    )
    return Finished(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def _module_named(peer: Started, args: dict[str, Any]) -> Finished:
    """The module as its own process (as on a node), in the row's name namespace."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cgh-args-") as directory:
        path = Path(directory) / "args.json"
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}), "utf-8")
        env = peer.env()
        env["PYTHONPATH"] = str(ROOT)
        assert peer.case.dns is not None
        done = _run_named(
            peer.files[peer.case.dns], [sys.executable, "-m", MODULE, str(path)], env, directory
        )
    result = json.loads(done.stdout) if done.stdout.strip() else {}
    return Finished(done.code, done.stdout, done.stderr, done.elapsed, result)
