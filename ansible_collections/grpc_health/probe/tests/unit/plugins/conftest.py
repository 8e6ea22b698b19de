"""Fixtures for the collection's unit tests: real gRPC health servers on loopback.

Layer: test support. Every server binds 127.0.0.1 on a free port and is stopped when the
test ends; nothing is mocked, the module under test speaks to a real socket.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import grpc
import pytest
from ansible.module_utils import basic
from grpc_health.v1 import health, health_pb2_grpc

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19, which has no data tagging to encode for

    @contextlib.contextmanager
    def patch_module_args(args=None):
        """Expose ``args`` to the AnsibleModule created within this context."""
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", payload):
            yield


from ansible_collections.grpc_health.probe.plugins.modules import grpc_health

SERVING, NOT_SERVING = 1, 2
# Every servicer here uses the blocking Watch. grpcio's default non-blocking Watch deadlocks
# when a watcher disconnects while set() is sending to it (grpc/grpc pull request 43403), and
# the flag is stored on the shared Watch function, so one default servicer would switch all back.
BLOCKING = {"experimental_non_blocking": False}


class NoWatchHealthServicer(health.HealthServicer):
    """A health service whose Watch is UNIMPLEMENTED, as in many older servers."""

    def Watch(self, request, context, send_response_callback=None):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")


class HeaderRecordingServicer(health.HealthServicer):
    """Remembers the request metadata of every Check."""

    def __init__(self) -> None:
        super().__init__(**BLOCKING)
        self.seen: list[dict[str, str]] = []

    def Check(self, request, context):
        self.seen.append(dict(context.invocation_metadata()))
        return super().Check(request, context)


@dataclass
class Server:
    """A running health server; ``set`` changes a service's status, ``later`` on a timer."""

    server: grpc.Server
    servicer: health.HealthServicer
    port: int
    timers: list[threading.Timer] = field(default_factory=list)

    def set(self, service: str, status: int) -> None:
        self.servicer.set(service, status)

    def later(self, seconds: float, service: str, status: int) -> None:
        timer = threading.Timer(seconds, self.set, (service, status))
        self.timers.append(timer)
        timer.start()

    def stop(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.server.stop(grace=None)


@dataclass
class Tls:
    """trustme material as files, as a user would have them."""

    ca_cert: str
    other_ca_cert: str
    client_cert: str
    client_key: str
    server_credentials: Any
    mtls_credentials: Any


@pytest.fixture
def start_server():
    """Factory: ``start_server(statuses={"": 1}, servicer=None, credentials=None,
    reflection=("service.Names",))``."""
    started: list[Server] = []

    def start(statuses=None, servicer=None, credentials=None, reflection=()) -> Server:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        servicer = servicer or health.HealthServicer(**BLOCKING)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        if reflection:
            # Lists the health service, reflection itself and the given service names.
            from grpc_reflection.v1alpha import reflection as grpc_reflection

            names = ["grpc.health.v1.Health", grpc_reflection.SERVICE_NAME, *reflection]
            grpc_reflection.enable_server_reflection(names, server)
        for service, status in (statuses if statuses is not None else {"": SERVING}).items():
            servicer.set(service, status)
        if credentials is None:
            port = server.add_insecure_port("127.0.0.1:0")
        else:
            port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        started.append(Server(server, servicer, port))
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> Tls:
    import trustme

    base = tmp_path_factory.mktemp("tls")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("health.example.test", "127.0.0.1", "localhost")
    client = ca.issue_cert("client@example.test")
    paths = {
        "ca_cert": base / "ca.pem",
        "other_ca_cert": base / "other-ca.pem",
        "client_cert": base / "client.pem",
        "client_key": base / "client.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca_cert"]))
    other.cert_pem.write_to_path(str(paths["other_ca_cert"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    pair = [(server.private_key_pem.bytes(), server.cert_chain_pems[0].bytes())]
    return Tls(
        **{name: str(path) for name, path in paths.items()},
        server_credentials=grpc.ssl_server_credentials(pair),
        mtls_credentials=grpc.ssl_server_credentials(
            pair, root_certificates=ca.cert_pem.bytes(), require_client_auth=True
        ),
    )


@pytest.fixture
def run_module(capsys):
    """Run the module with ``args``; return (exit code, the JSON it printed, its raw text)."""

    def run(args: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        with patch_module_args(args), pytest.raises(SystemExit) as exited:
            grpc_health.main()
        text = capsys.readouterr().out
        return exited.value.code, json.loads(text), text

    return run
