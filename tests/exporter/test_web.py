"""TLS and basic auth on the endpoints, from exporter-toolkit's web config file.

The exporter runs with ``--web-config-file`` as node_exporter or blackbox_exporter would
(``tls_server_config``, ``basic_auth_users`` with bcrypt hashes); the tests speak HTTPS
with the trustme CA's certificates, with and without a client certificate.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from typing import TYPE_CHECKING

import bcrypt
import pytest
from support.exporting import EXPORTER, get, probe_url, samples

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import TlsMaterial
    from support.exporting import RunningExporter
    from support.servers import HealthServer

ALLOW = ("--allow-target", "127.0.0.1:*")
PASSWORD = "correct horse battery staple"


def htpasswd_hash(password: str) -> str:
    """What ``htpasswd -nBC 10`` writes: a bcrypt hash with the $2y$ prefix."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    return "$2y$" + hashed[4:]


def client_context(tls: TlsMaterial, *, client: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    if client:
        context.load_cert_chain(str(tls.client_cert), str(tls.client_key))
    return context


def web_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "web-config.yml"
    path.write_text(text)
    return str(path)


def test_tls_serves_https_and_a_silent_client_holds_up_nobody(
    exporter: Callable[..., RunningExporter], tls_material: TlsMaterial, tmp_path: Path
) -> None:
    config = web_config(
        tmp_path,
        f"tls_server_config:\n  cert_file: {tls_material.server_cert}\n"
        f"  key_file: {tls_material.server_key}\n",
    )
    running = exporter("grpc:\n", *ALLOW, "--web-config-file", config)
    assert running.url.startswith("https://127.0.0.1:")
    port = int(running.url.rpartition(":")[2])
    # A client that connects and never starts its handshake: handshakes run in each
    # connection's thread, so the next client is served meanwhile.
    with socket.create_connection(("127.0.0.1", port)):
        answer = get(f"{running.url}/metrics", context=client_context(tls_material))
        assert answer.status == 200
        assert "grpc_health_exporter_modules 1.0" in answer.text.splitlines()
    # Plain HTTP to the TLS port gets no answer, and costs the server nothing.
    with pytest.raises((ConnectionError, OSError)):
        get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert get(f"{running.url}/", context=client_context(tls_material)).status == 200


def test_client_certificates_are_required_when_the_file_says_so(
    exporter: Callable[..., RunningExporter], tls_material: TlsMaterial, tmp_path: Path
) -> None:
    config = web_config(
        tmp_path,
        "tls_server_config:\n"
        f"  cert_file: {tls_material.server_cert}\n  key_file: {tls_material.server_key}\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        f"  client_ca_file: {tls_material.ca_cert}\n  min_version: TLS13\n",
    )
    running = exporter("grpc:\n", *ALLOW, "--web-config-file", config)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        get(f"{running.url}/metrics", context=client_context(tls_material), timeout=10)
    answer = get(f"{running.url}/metrics", context=client_context(tls_material, client=True))
    assert answer.status == 200


def test_basic_auth_needs_a_known_user_and_its_password(
    exporter: Callable[..., RunningExporter], server: HealthServer, tmp_path: Path
) -> None:
    config = web_config(tmp_path, f"basic_auth_users:\n  prometheus: '{htpasswd_hash(PASSWORD)}'\n")
    running = exporter("grpc:\n", *ALLOW, "--web-config-file", config)
    probe = probe_url(running.url, server.address, "grpc")
    refused = get(probe)
    assert (refused.status, refused.text) == (
        401,
        "unauthorized: basic auth with a known user needed\n",
    )
    assert refused.headers["www-authenticate"] == 'Basic realm="check_grpc_health"'
    assert get(probe, auth=("prometheus", "wrong")).status == 401
    assert get(probe, auth=("nobody", PASSWORD)).status == 401
    for _ in range(2):  # the second one is remembered: bcrypt runs once per login
        answer = get(probe, auth=("prometheus", PASSWORD))
        assert answer.status == 200
        assert samples(answer.text)["probe_success"] == 1
    found = samples(get(f"{running.url}/metrics", auth=("prometheus", PASSWORD)).text)
    assert found['grpc_health_exporter_requests_refused_total{reason="unauthorized"}'] == 3
    assert not [line for line in running.lines if PASSWORD in line]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tls_server_config:\n  cert_file: a.pem\n  key_file: a.key\n  ciphers: [x]\n",
            "{path}: unknown key tls_server_config.ciphers",
        ),
        (
            "tls_server_config:\n  cert_file: a.pem\n  key_file: a.key\n  cipher_suites: [x]\n",
            "{path}: tls_server_config.cipher_suites is not supported here",
        ),
        (
            "tls_server_config:\n  cert_file: a.pem\n  key_file: a.key\n"
            "  client_auth_type: RequireAnyClientCert\n",
            "{path}: client_auth_type RequireAnyClientCert accepts client certificates without "
            "verifying them, which Python's ssl cannot do",
        ),
        (
            "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
            "{path}: cannot load cert_file 'missing.pem' with key_file 'missing.key': "
            "No such file or directory",
        ),
        (
            "basic_auth_users:\n  prometheus: plain-text-secret\n",
            "{path}: basic_auth_users: the password of 'prometheus' is not a bcrypt hash ($2y$...)",
        ),
        (
            "basic_auth_users: [a, b]\n",
            "{path}: basic_auth_users must map user names to bcrypt hashes",
        ),
        ("tls_server_config: [\n", "web config file '{path}' is not YAML: "),
        ("listen: 1\n", "{path}: unknown key listen"),
    ],
)
def test_a_bad_web_config_file_is_one_line_and_exit_code_3(
    tmp_path: Path, text: str, message: str
) -> None:
    path = web_config(tmp_path, text)
    modules = tmp_path / "modules.txt"
    modules.write_text("grpc:\n")
    done = subprocess.run(
        [
            EXPORTER,
            "--listen",
            "127.0.0.1:0",
            "--modules",
            str(modules),
            *ALLOW,
            "--web-config-file",
            path,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("check_grpc_health_exporter: " + message.format(path=path))
    assert "plain-text-secret" not in done.stderr
