"""Planted secrets never reach any output channel, and secret files are read exactly once.

Layer: tests (end to end). A unique token is planted through every way each entry
point takes one (plugin: ``-m``, ``--metadata-file``, ``--metadata-env``; probe:
``-rpc-header``, ``-rpc-header-file``; Ansible: ``metadata``), then each runs against
a serving server, a refused port, and two careless servers that echo the request's
metadata back (in the error details of an aborted call, and in initial and trailing
metadata), at every verbosity and in JSON mode, and with bad input. Every channel is
grepped: stdout, stderr, the JSON document, the Ansible result and
``ansible-playbook -vvv``'s whole output. A private key (trustme's) gets the same
treatment: no line of its base64 body may appear, even when it does not match its
certificate or is given where a certificate or a header file belongs.

"Read once" uses FIFOs: a FIFO yields its content to the first open only, and a second
open blocks, so a tool that reads a secret file twice hangs (and fails its deadline)
instead of succeeding. Runs also get an empty ``TMPDIR`` that must stay empty: nothing
copies a secret to a file.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import uuid
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health
from support.ansible_tools import tool as ansible_tool
from support.hardening import (
    Finished,
    ansible_env,
    cli_env,
    run_cli,
    run_module,
    run_module_process,
)
from support.paths import PLUGIN, PROBE
from support.servers import NOT_SERVING, SERVING, HeaderRecordingServicer, closed_port

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from conftest import TlsMaterial
    from support.servers import HealthServer

RUN = uuid.uuid4().hex
TOKEN = f"s3cr3t-{RUN}"  # what must never appear; every planted value contains it
HEADER = f"Bearer {TOKEN}-arg"
FILE_HEADER = f"Bearer {TOKEN}-file"
ENV_HEADER = f"Bearer {TOKEN}-env"


def all_metadata(context: Any) -> str:
    return "; ".join(f"{key}={value}" for key, value in context.invocation_metadata())


class EchoInErrorServicer(health.HealthServicer):
    """Aborts Check and Watch with every request header, values included, as details."""

    def Check(self, request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.INTERNAL, all_metadata(context))

    def Watch(self, request: Any, context: Any, send_response_callback: Any = None) -> Any:
        context.abort(grpc.StatusCode.INTERNAL, all_metadata(context))


class EchoInMetadataServicer(health.HealthServicer):
    """Sends every request header back in initial and trailing metadata, then answers."""

    def Check(self, request: Any, context: Any) -> Any:
        echoed = [
            (f"echo-{key}", value)
            for key, value in context.invocation_metadata()
            if not key.startswith(":")
        ]
        context.send_initial_metadata(echoed)
        context.set_trailing_metadata(echoed)
        return super().Check(request, context)


@pytest.fixture
def targets(start_server: Callable[..., HealthServer]) -> dict[str, str]:
    """Where the secrets go: a recording server, a refused port and two echoing servers."""
    statuses = {"": SERVING, "down": NOT_SERVING}
    return {
        "serving": start_server(servicer=HeaderRecordingServicer(), statuses=statuses).address,
        "refused": f"127.0.0.1:{closed_port()}",
        "echo in error": start_server(servicer=EchoInErrorServicer(), statuses=statuses).address,
        "echo in metadata": start_server(
            servicer=EchoInMetadataServicer(), statuses=statuses
        ).address,
    }


def assert_hidden(done: Finished, *secrets: str) -> None:
    done.assert_clean()
    for secret in secrets:
        assert secret not in done.stdout, done.stdout
        assert secret not in done.stderr, done.stderr


# --- the plugin --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "mode"),
    [
        *(("", mode) for mode in ([], ["-v"], ["-vv"], ["-vvv"], ["--json"], ["-q"])),
        ("down", ["-vvv"]),
        ("down", ["--json"]),
    ],
)
def test_plugin_never_prints_a_header_value(
    targets: dict[str, str], tmp_path: Path, mode: list[str], service: str
) -> None:
    headers = tmp_path / "headers"
    headers.write_text(f"# for the health check\nx-file-token: {FILE_HEADER}\n")
    env = cli_env(HEALTH_TOKEN=ENV_HEADER)
    common = ["-m", f"authorization: {HEADER}", "--metadata-file", str(headers)]
    common += ["--metadata-env", "x-env-token:HEALTH_TOKEN", "-s", service]
    codes = {}
    for name, address in targets.items():
        done = run_cli(PLUGIN, "-H", address, *common, *mode, env=env)
        assert_hidden(done, TOKEN)
        codes[name] = done.code
    expected = 0 if service == "" else 2
    assert codes == {
        "serving": expected,
        "refused": 2,
        "echo in error": 2,
        "echo in metadata": expected,
    }


def test_plugin_sends_every_planted_header(
    start_server: Callable[..., HealthServer], tmp_path: Path
) -> None:
    # The test above proves nothing unless the secrets really travel.
    recording = HeaderRecordingServicer()
    address = start_server(servicer=recording).address
    headers = tmp_path / "headers"
    headers.write_text(f"x-file-token: {FILE_HEADER}\n")
    done = run_cli(
        PLUGIN,
        "-H",
        address,
        "-m",
        f"authorization: {HEADER}",
        "--metadata-file",
        str(headers),
        "--metadata-env",
        "x-env-token:HEALTH_TOKEN",
        env=cli_env(HEALTH_TOKEN=ENV_HEADER),
    )
    assert done.code == 0
    seen = recording.seen[-1]
    assert (seen["authorization"], seen["x-file-token"], seen["x-env-token"]) == (
        HEADER,
        FILE_HEADER,
        ENV_HEADER,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", f"Bad Key: {HEADER}"],
        ["-m", f"grpc-reserved: {HEADER}"],
        ["-m", f"authorization: {HEADER}\x01"],
        ["-m", f"authorization: {HEADER}", "-t", "nan"],
        ["-m", "authorization:", HEADER],  # unquoted: the value became a positional
        ["-m", f"authorization: {HEADER}", "-H", "bad\nhost:1"],
    ],
    ids=["key", "reserved key", "control character", "bad timeout", "unquoted", "bad host"],
)
@pytest.mark.parametrize("json_mode", [False, True])
def test_plugin_bad_input_never_echoes_a_header_value(argv: list[str], json_mode: bool) -> None:
    done = run_cli(PLUGIN, "-H", "127.0.0.1:1", *argv, *(["--json"] if json_mode else []))
    assert_hidden(done, TOKEN)
    assert done.code == 3
    assert done.stdout.count("\n") == 1


@pytest.mark.parametrize("value", [TOKEN, HEADER])
def test_plugin_metadata_env_given_a_value_instead_of_a_name_does_not_echo_it(
    value: str,
) -> None:
    done = run_cli(PLUGIN, "-H", "127.0.0.1:1", "--metadata-env", f"x-token:{value}")
    assert done.code == 3
    assert_hidden(done, TOKEN)


def test_plugin_bad_metadata_file_line_is_named_not_shown(tmp_path: Path) -> None:
    headers = tmp_path / "headers"
    headers.write_text(f"authorization: {FILE_HEADER}\nBroken {FILE_HEADER}\n")
    done = run_cli(PLUGIN, "-H", "127.0.0.1:1", "--metadata-file", str(headers), "-vvv")
    assert_hidden(done, TOKEN)
    assert done.code == 3
    assert done.stdout == (
        f"GRPC_HEALTH UNKNOWN - metadata file {str(headers)!r} line 2: metadata entry #2 "
        "has no ':' between key and value\n"
    )


# --- the drop-in probe -------------------------------------------------------------------


@pytest.mark.parametrize("mode", [[], ["-v"]])
@pytest.mark.parametrize("service", ["", "down"])
def test_probe_never_prints_a_header_value(
    targets: dict[str, str], tmp_path: Path, mode: list[str], service: str
) -> None:
    headers = tmp_path / "headers"
    headers.write_text(f"x-file-token: {FILE_HEADER}\n")
    codes = {}
    for name, address in targets.items():
        done = run_cli(
            PROBE,
            f"-addr={address}",
            f"-service={service}",
            f"-rpc-header=authorization: {HEADER}",
            f"-rpc-header-file={headers}",
            *mode,
        )
        assert_hidden(done, TOKEN)
        codes[name] = done.code
    expected = 0 if service == "" else 4
    assert codes == {
        "serving": expected,
        "refused": 2,
        "echo in error": 3,
        "echo in metadata": expected,
    }


def test_probe_shows_that_an_echoing_server_hid_a_header(targets: dict[str, str]) -> None:
    done = run_cli(PROBE, f"-addr={targets['echo in error']}", f"-rpc-header=x-token: {HEADER}")
    assert done.code == 3
    assert done.stderr.startswith("error: health rpc failed: rpc error: code = Internal desc = ")
    assert "x-token=<redacted>" in done.stderr


@pytest.mark.parametrize(
    "flag",
    [
        f"-rpc-header={HEADER}",
        f"-rpc-header=Bad Key: {HEADER}",
        f"-rpc-header=grpc-timeout: {HEADER}",
        f"-rpc-header=x-token: {HEADER}\x7f",
    ],
    ids=["no colon", "key", "reserved key", "control character"],
)
def test_probe_bad_header_never_echoes_its_value(flag: str) -> None:
    done = run_cli(PROBE, "-addr=127.0.0.1:1", flag, "-v")
    assert_hidden(done, TOKEN)
    assert done.code == 1


def test_probe_bad_header_file_line_is_named_not_shown(tmp_path: Path) -> None:
    headers = tmp_path / "headers"
    headers.write_text(f"x-token: {FILE_HEADER}\nBroken {FILE_HEADER}\n")
    done = run_cli(PROBE, "-addr=127.0.0.1:1", f"-rpc-header-file={headers}")
    assert_hidden(done, TOKEN)
    assert done.code == 1
    assert done.stderr.splitlines()[0] == (
        f'invalid value "{headers}" for flag -rpc-header-file: line 2: '
        "invalid RPC header, expected 'key: value'"
    )


# --- the Ansible module ------------------------------------------------------------------


@pytest.mark.parametrize("wait", [0, 0.3])
def test_ansible_module_never_returns_a_header_value(targets: dict[str, str], wait: float) -> None:
    codes = {}
    for name, address in targets.items():
        done = run_module(
            {
                "host": address,
                "metadata": {"authorization": HEADER},
                "timeout": wait,
                "sleep": 0.1,
                "connect_timeout": 2,
            }
        )
        assert_hidden(done, TOKEN)
        codes[name] = done.code
    assert codes == {"serving": 0, "refused": 1, "echo in error": 1, "echo in metadata": 0}


@pytest.mark.parametrize(
    "metadata",
    [
        {"Bad Key": HEADER},
        {"grpc-timeout": HEADER},
        {"x-token": f"{HEADER}\n"},
        {"x-token": [HEADER]},
    ],
    ids=["key", "reserved key", "control character", "list value"],
)
def test_ansible_bad_metadata_never_echoes_its_value(metadata: dict[str, Any]) -> None:
    done = run_module({"host": "127.0.0.1:1", "metadata": metadata})
    assert_hidden(done, TOKEN)
    assert done.code == 1
    assert "\n" not in done.result["msg"]


PLAYBOOK = """\
- name: Planted secrets against every kind of peer
  hosts: localhost
  gather_facts: false
  vars:
    token: "Bearer {token}-play"
  tasks:
{tasks}
"""
TASK = """\
    - name: {name}
      grpc_health.probe.grpc_health:
        host: "{address}"
        connect_timeout: {connect_timeout}
        timeout: {timeout}
        sleep: 0.1
        metadata: {metadata}
{extra}\
      register: outcome
      ignore_errors: true
    - name: Show what {name} returned
      ansible.builtin.debug:
        var: outcome
"""


def test_ansible_playbook_vvv_never_shows_a_header_value_or_key(
    targets: dict[str, str],
    tls_material: TlsMaterial,
    mtls_server: HealthServer,
    tls_server: HealthServer,
    black_hole_address: str,
    tmp_path: Path,
) -> None:
    def task(name: str, address: str, *, timeout: float = 0, **more: Any) -> str:
        fields = {
            "connect_timeout": 2,
            "metadata": '{"authorization": "{{ token }}"}',
            "extra": "",
            **more,
        }
        return TASK.format(name=name, address=address, timeout=timeout, **fields)

    tasks = [
        task(f"{name}, timeout {timeout}", address, timeout=timeout)
        for name, address in targets.items()
        for timeout in (0, 0.3)
    ]
    tasks.append(
        task("bad metadata key", targets["serving"], metadata='{"Bad Key": "{{ token }}"}')
    )
    tasks.append(task("black hole", black_hole_address, connect_timeout=0.5))
    tasks.append(
        task(
            "untrusted CA",
            tls_server.address,
            extra=f"        ca_cert: {tls_material.other_ca_cert}\n",
        )
    )
    for name, key in (
        ("matching", tls_material.client_key),
        ("mismatched", tls_material.server_key),
    ):
        pair = (
            f"        ca_cert: {tls_material.ca_cert}\n"
            f"        client_cert: {tls_material.client_cert}\n"
            f"        client_key: {key}\n"
        )
        tasks.append(task(f"mTLS with a {name} key", mtls_server.address, extra=pair))
    playbook = tmp_path / "secrets.yml"
    playbook.write_text(PLAYBOOK.format(token=TOKEN, tasks="".join(tasks)), "utf-8")
    done = subprocess.run(
        [ansible_tool("ansible-playbook"), "-vvv", str(playbook)],
        capture_output=True,
        text=True,
        timeout=300,
        env=ansible_env(),
        cwd=tmp_path,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    assert TOKEN not in output
    for line in key_body(tls_material.client_key) + key_body(tls_material.server_key):
        assert line not in output
    # The tasks really ran into each kind of failure (and one success) with the token.
    assert "mTLS with a matching key" in output
    assert "does not match client certificate" in output
    assert "failed to connect to" in output
    assert f"{targets['serving']} is SERVING" in output
    hole = re.escape(black_hole_address)
    # (grpc's own attempt may win the race against the core's deadline by a hair)
    assert re.search(rf"timed out connecting to {hole} after 0\.5s|{hole}: .*SETTINGS", output)
    assert "is not signed by the CA file given; give ca_cert the CA that issued it" in output


# --- private keys ------------------------------------------------------------------------


def key_body(path: Path) -> list[str]:
    """The base64 lines of a PEM private key (what must never be printed)."""
    return [
        line
        for line in path.read_text("ascii").splitlines()
        if line and not line.startswith("-----")
    ]


def assert_no_key(done: Finished, *keys: Path) -> None:
    done.assert_clean()
    for key in keys:
        for line in key_body(key):
            assert line not in done.stdout
            assert line not in done.stderr
            assert line[:24] not in done.stdout + done.stderr


def test_private_keys_never_appear_in_any_output(
    mtls_server: HealthServer, tls_material: TlsMaterial
) -> None:
    material = tls_material
    address = mtls_server.address
    key, other = str(material.client_key), str(material.server_key)
    cert = str(material.client_cert)
    ca = ["--ca-cert", str(material.ca_cert)]
    plugin_cases = [
        (0, [*ca, "--client-cert", cert, "--client-key", key]),
        (3, [*ca, "--client-cert", cert, "--client-key", other]),  # does not match
        (3, ["--ca-cert", key]),
        (3, ["--client-cert", key, "--client-key", key]),
        (3, ["--metadata-file", key]),
    ]
    probe_ca = ["-tls", f"-tls-ca-cert={material.ca_cert}"]
    probe_cases = [
        (0, [*probe_ca, f"-tls-client-cert={cert}", f"-tls-client-key={key}"]),
        (1, [*probe_ca, f"-tls-client-cert={cert}", f"-tls-client-key={other}"]),
        (1, ["-tls", f"-tls-ca-cert={key}"]),
        (1, [f"-rpc-header-file={key}"]),
    ]
    module_cases: list[tuple[int, dict[str, Any]]] = [
        (0, {"ca_cert": str(material.ca_cert), "client_cert": cert, "client_key": key}),
        (1, {"ca_cert": str(material.ca_cert), "client_cert": cert, "client_key": other}),
        (1, {"ca_cert": key}),
    ]
    runs = []
    for mode in ([], ["-vvv"], ["--json"]):
        for code, args in plugin_cases:
            runs.append((code, run_cli(PLUGIN, "-H", address, *args, *mode)))
    for mode in ([], ["-v"]):
        for code, args in probe_cases:
            runs.append((code, run_cli(PROBE, f"-addr={address}", *args, *mode)))
    for code, params in module_cases:
        runs.append((code, run_module({"host": address, **params})))
    for code, done in runs:
        assert_no_key(done, material.client_key, material.server_key)
        assert done.code == code, done


# --- secret files are read once, and never copied -----------------------------------------


@contextlib.contextmanager
def read_once_file(directory: Path, name: str, content: bytes) -> Iterator[Path]:
    """A FIFO that serves ``content`` to the first reader; a second open blocks."""
    path = directory / name
    os.mkfifo(path, 0o600)

    def serve() -> None:
        with open(path, "wb") as fifo:
            fifo.write(content)

    writer = threading.Thread(target=serve, daemon=True)
    writer.start()
    try:
        yield path
    finally:
        if writer.is_alive():
            # Nobody read it: open the read end once so the writer can finish.
            with contextlib.suppress(OSError):
                descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                writer.join(1)
                os.close(descriptor)
        writer.join(1)


@pytest.fixture
def empty_tmpdir(tmp_path: Path) -> Path:
    directory = tmp_path / "tmpdir"
    directory.mkdir()
    return directory


def run_quietly(command: str, *args: str, tmpdir: Path, timeout: float = 8) -> Finished:
    """Like run_cli, but a hang (a second open of a FIFO) is a failed run, not an error."""
    try:
        return run_cli(command, *args, env=cli_env(TMPDIR=str(tmpdir)), timeout=timeout)
    except subprocess.TimeoutExpired:
        return Finished(-1, "", "hung: a secret file was opened a second time", timeout)


def test_plugin_reads_a_metadata_file_once(
    start_server: Callable[..., HealthServer], tmp_path: Path, empty_tmpdir: Path
) -> None:
    recording = HeaderRecordingServicer()
    address = start_server(servicer=recording).address
    with read_once_file(tmp_path, "headers", f"x-token: {FILE_HEADER}\n".encode()) as fifo:
        args = ["-H", address, "--metadata-file", str(fifo), "-t", "5"]
        done = run_quietly(PLUGIN, *args, tmpdir=empty_tmpdir)
    assert done.code == 0, done
    assert recording.seen[-1]["x-token"] == FILE_HEADER
    assert list(empty_tmpdir.iterdir()) == []


@pytest.mark.parametrize("mode", [[], ["-v"]])
def test_probe_reads_a_header_file_once(
    start_server: Callable[..., HealthServer], tmp_path: Path, empty_tmpdir: Path, mode: list[str]
) -> None:
    recording = HeaderRecordingServicer()
    address = start_server(servicer=recording).address
    with read_once_file(tmp_path, "headers", f"x-token: {FILE_HEADER}\n".encode()) as fifo:
        args = [f"-addr={address}", f"-rpc-header-file={fifo}", *mode]
        done = run_quietly(PROBE, *args, tmpdir=empty_tmpdir)
    assert done.code == 0, done
    assert recording.seen[-1]["x-token"] == FILE_HEADER
    assert list(empty_tmpdir.iterdir()) == []


def test_plugin_reads_the_client_key_once(
    mtls_server: HealthServer, tls_material: TlsMaterial, tmp_path: Path, empty_tmpdir: Path
) -> None:
    key = tls_material.client_key.read_bytes()
    with read_once_file(tmp_path, "client.key", key) as fifo:
        done = run_quietly(
            PLUGIN,
            "-H",
            mtls_server.address,
            "--ca-cert",
            str(tls_material.ca_cert),
            "--client-cert",
            str(tls_material.client_cert),
            "--client-key",
            str(fifo),
            "-t",
            "2",
            tmpdir=empty_tmpdir,
        )
    assert list(empty_tmpdir.iterdir()) == []
    assert done.code == 0, done


@pytest.mark.parametrize(
    "mode",
    [["-tls-ca-cert={ca}"], ["-tls-ca-cert={ca}", "-v"], ["-tls-no-verify", "-v"]],
    ids=["verified", "verified -v", "no-verify -v"],
)
def test_probe_reads_the_client_key_once(
    mtls_server: HealthServer,
    tls_material: TlsMaterial,
    tmp_path: Path,
    empty_tmpdir: Path,
    mode: list[str],
) -> None:
    key = tls_material.client_key.read_bytes()
    with read_once_file(tmp_path, "client.key", key) as fifo:
        done = run_quietly(
            PROBE,
            f"-addr={mtls_server.address}",
            "-tls",
            *(flag.format(ca=tls_material.ca_cert) for flag in mode),
            f"-tls-client-cert={tls_material.client_cert}",
            f"-tls-client-key={fifo}",
            tmpdir=empty_tmpdir,
            timeout=2.5,
        )
    assert list(empty_tmpdir.iterdir()) == []
    assert done.code == 0, done


def test_ansible_module_reads_the_client_key_once(
    mtls_server: HealthServer, tls_material: TlsMaterial, tmp_path: Path
) -> None:
    key = tls_material.client_key.read_bytes()
    with read_once_file(tmp_path, "client.key", key) as fifo:
        try:
            done = run_module_process(
                {
                    "host": mtls_server.address,
                    "ca_cert": str(tls_material.ca_cert),
                    "client_cert": str(tls_material.client_cert),
                    "client_key": str(fifo),
                },
                timeout=2.5,
            )
        except subprocess.TimeoutExpired:
            done = Finished(-1, "", "hung: the key was opened a second time", 2.5)
    assert done.code == 0, done
