"""Shared fixtures: real servers, hostile peers, trustme certificates and monitoring daemons."""

from __future__ import annotations

import datetime
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import trustme

# Test modules import their helpers as ``support.<module>``. Helpers such as
# support.plugin.assert_state assert for the tests that call them: pytest explains their
# failures as it explains a test's own.
sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("support")

from support.daemons.icinga2_api import Icinga2Api, running_icinga2_api  # noqa: E402
from support.daemons.nagios import Nagios4, running_nagios4  # noqa: E402
from support.daemons.prometheus import (  # noqa: E402
    NodeExporter,
    promtool_binary,
    running_node_exporter,
)
from support.daemons.prometheus import (  # noqa: E402
    promtool_check_metrics as check_metrics,
)
from support.health_process import HealthProcess  # noqa: E402
from support.servers import (  # noqa: E402
    HealthServer,
    HoldingServicer,
    RawListener,
    black_hole,
    http1_responder,
    random_bytes_responder,
    start_health_server,
)
from support.watching import WatchingFleet  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def start_server() -> Iterator[Callable[..., HealthServer]]:
    """Factory: ``start_server(statuses={...}, servicer=..., credentials=...)``."""
    started: list[HealthServer] = []

    def start(**kwargs: Any) -> HealthServer:
        server = start_health_server(**kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., HealthServer]) -> HealthServer:
    """A plaintext server: overall health SERVING, ``ready`` SERVING, ``down`` NOT_SERVING."""
    return start_server(statuses={"": 1, "ready": 1, "down": 2, "unknown": 0})


@pytest.fixture
def held(start_server: Callable[..., HealthServer]) -> Iterator[tuple[HoldingServicer, str]]:
    """A server whose Checks hang until ``servicer.release`` is set; its address."""
    servicer = HoldingServicer()
    server = start_server(servicer=servicer)
    yield servicer, server.address
    servicer.release.set()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temporary directory, for unix socket paths (limited to about 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="cgh-") as name:
        yield Path(name)


@pytest.fixture
def unix_server(start_server: Callable[..., HealthServer], short_tmp: Path) -> HealthServer:
    return start_server(unix_path=str(short_tmp / "health.sock"))


@dataclass
class TlsMaterial:
    """trustme certificates written to files, as a user would have them."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path
    expired_cert: Path
    expired_key: Path
    server_name: str
    ca: trustme.CA

    @property
    def server_expires(self) -> datetime.datetime:
        """When the server certificate expires (UTC), read from the file."""
        from cryptography import x509

        pem = self.server_cert.read_bytes()
        return x509.load_pem_x509_certificate(pem).not_valid_after_utc

    def server_credentials(self, *, require_client: bool = False) -> grpc.ServerCredentials:
        root = self.ca_cert.read_bytes() if require_client else None
        return grpc.ssl_server_credentials(
            [(self.server_key.read_bytes(), self.server_cert.read_bytes())],
            root_certificates=root,
            require_client_auth=require_client,
        )


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    base = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    # 90 days, like a typical ACME certificate, so certificate-expiry thresholds have
    # something real to judge.
    not_after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=90)
    server = ca.issue_cert(
        "health.example.test", "127.0.0.1", "::1", "localhost", not_after=not_after
    )
    client = ca.issue_cert("client@example.test")
    expired = ca.issue_cert(
        "health.example.test",
        "127.0.0.1",
        not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
        not_after=datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc),
    )
    other = trustme.CA()
    paths = {
        "ca_cert": base / "ca.pem",
        "server_cert": base / "server.pem",
        "server_key": base / "server.key",
        "client_cert": base / "client.pem",
        "client_key": base / "client.key",
        "other_ca_cert": base / "other-ca.pem",
        "expired_cert": base / "expired.pem",
        "expired_key": base / "expired.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca_cert"]))
    server.cert_chain_pems[0].write_to_path(str(paths["server_cert"]))
    server.private_key_pem.write_to_path(str(paths["server_key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    other.cert_pem.write_to_path(str(paths["other_ca_cert"]))
    expired.cert_chain_pems[0].write_to_path(str(paths["expired_cert"]))
    expired.private_key_pem.write_to_path(str(paths["expired_key"]))
    return TlsMaterial(server_name="health.example.test", ca=ca, **paths)


@pytest.fixture
def tls_server(
    start_server: Callable[..., HealthServer], tls_material: TlsMaterial
) -> HealthServer:
    return start_server(credentials=tls_material.server_credentials())


@pytest.fixture
def expired_tls_server(
    start_server: Callable[..., HealthServer], tls_material: TlsMaterial
) -> HealthServer:
    """A TLS server whose certificate expired on 2021-01-01."""
    credentials = grpc.ssl_server_credentials(
        [(tls_material.expired_key.read_bytes(), tls_material.expired_cert.read_bytes())]
    )
    return start_server(credentials=credentials)


@pytest.fixture
def mtls_server(
    start_server: Callable[..., HealthServer], tls_material: TlsMaterial
) -> HealthServer:
    return start_server(credentials=tls_material.server_credentials(require_client=True))


@pytest.fixture
def raw_listener() -> Iterator[Callable[..., RawListener]]:
    listeners: list[RawListener] = []

    def start(handler: Any) -> RawListener:
        listener = RawListener(handler)
        listeners.append(listener)
        return listener

    yield start
    for listener in listeners:
        listener.close()


@pytest.fixture
def black_hole_address(raw_listener: Callable[..., RawListener]) -> str:
    return raw_listener(black_hole).address


@pytest.fixture
def http1_address(raw_listener: Callable[..., RawListener]) -> str:
    return raw_listener(http1_responder).address


@pytest.fixture
def random_bytes_address(raw_listener: Callable[..., RawListener]) -> str:
    return raw_listener(random_bytes_responder).address


@pytest.fixture
def closed_address() -> Iterator[str]:
    """An address that refuses connections for the whole test.

    The port stays bound (never listening) until the test ends: a port that was only
    found free could be given to a server of another test run on this machine meanwhile.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


# Monitoring daemons (tests/support/daemons/). One per test module: each starts in well
# under a second, and a module's tests share its objects.


@pytest.fixture(scope="module")
def icinga2_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Icinga2Api]:
    """Icinga 2 with the API, the command pipe, an API user and passive services."""
    yield from running_icinga2_api(tmp_path_factory.mktemp("icinga2-api"))


@pytest.fixture(scope="module")
def nagios4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nagios4]:
    """Nagios 4 reading a command file, with passive services."""
    yield from running_nagios4(tmp_path_factory.mktemp("nagios4"))


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[NodeExporter]:
    """node_exporter with only its textfile collector, reading ``textfile_dir``."""
    yield from running_node_exporter(tmp_path)


@pytest.fixture
def promtool_check_metrics() -> Callable[[str], tuple[int, str]]:
    """``promtool check metrics`` on a text: (exit code, output)."""
    promtool_binary()
    return check_metrics


# The watching fleet (tests/monitor/, tests/daemons/): servers in processes of their own,
# and monitors that are stopped, and checked for a clean stop, after each test.


@pytest.fixture
def health_process() -> Iterator[Callable[..., HealthProcess]]:
    """Factory: ``health_process(services, watch=..., max_streams=...)``; killed after."""
    started: list[HealthProcess] = []

    def start(*args: Any, **kwargs: Any) -> HealthProcess:
        server = HealthProcess(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Callable[..., WatchingFleet]]:
    """Factory: ``watching("line\\nline", *options, interval=...)``.

    Each monitor is stopped after the test, which checks that it stopped cleanly and
    never printed a traceback.
    """
    started: list[WatchingFleet] = []

    def start(text: str, *options: str, **kwargs: Any) -> WatchingFleet:
        path = tmp_path / f"fleet-{len(started)}.txt"
        path.write_text(text)
        monitor = WatchingFleet(path, *options, **kwargs)
        started.append(monitor)
        return monitor

    yield start
    for monitor in started:
        code = monitor.stop()
        assert monitor.tracebacks() == [], "\n".join(monitor.lines)
        assert code == 0, monitor.lines[-10:]
