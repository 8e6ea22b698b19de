"""docs/kubernetes.md and its examples work as written.

The manifests parse, their probes are well formed and fit ``timeoutSeconds``, and every
exec probe command (and every ``grpc_health_probe`` command in the page) runs against
the example server from docs/examples/server.py with the outcome the page promises.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from support.paths import PROBE, ROOT

from check_grpc_health.probe_cli.durations import SECOND
from check_grpc_health.probe_cli.flags import Settings, parse_flags, validate

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
MANIFESTS = sorted(EXAMPLES.glob("k8s-*.yaml"))
PROBE_KINDS = ("startupProbe", "livenessProbe", "readinessProbe")
HANDLERS = {"exec", "grpc", "httpGet", "tcpSocket"}
# What a probe needs besides its own timeouts: interpreter and grpcio start-up.
START_UP_ALLOWANCE = 1.5


def containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    pod = document if document["kind"] == "Pod" else document["spec"]["template"]
    spec = pod["spec"]
    found: list[dict[str, Any]] = spec["containers"]
    return found


def probes() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text()):
            for container in containers(document):
                for kind in PROBE_KINDS:
                    if kind in container:
                        yield path.name, kind, container[kind]


def settings_of(command: list[str]) -> Settings:
    """Parse a probe command; a mounted header file is stood in for by a local one."""
    with tempfile.NamedTemporaryFile("w", suffix=".headers") as headers:
        headers.write("authorization: Bearer example\n")
        headers.flush()
        argv = [
            f"-rpc-header-file={headers.name}" if arg.startswith("-rpc-header-file=") else arg
            for arg in command[1:]
        ]
        return parse_flags(argv)


def exec_commands() -> list[tuple[str, str, list[str]]]:
    return [
        (name, kind, probe["exec"]["command"]) for name, kind, probe in probes() if "exec" in probe
    ]


def test_there_are_manifests_for_each_case() -> None:
    assert [path.name for path in MANIFESTS] == [
        "k8s-deployment.yaml",
        "k8s-native-grpc.yaml",
        "k8s-tls.yaml",
    ]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_manifest_is_a_well_formed_workload(path: Path) -> None:
    documents = list(yaml.safe_load_all(path.read_text()))
    assert documents
    for document in documents:
        assert {"apiVersion", "kind", "metadata", "spec"} <= set(document)
        assert document["kind"] in {"Pod", "Deployment"}
        if document["kind"] == "Deployment":
            assert document["apiVersion"] == "apps/v1"
            labels = document["spec"]["template"]["metadata"]["labels"]
            assert document["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for container in containers(document):
            assert container["image"] == "grpc-health-example:latest"
            assert {"containerPort": 50051, "name": "grpc"} in container["ports"]
            assert any(kind in container for kind in PROBE_KINDS)


def test_every_probe_has_exactly_one_handler_and_sane_numbers() -> None:
    for name, kind, probe in probes():
        assert len(HANDLERS & set(probe)) == 1, (name, kind)
        for field in ("periodSeconds", "failureThreshold", "timeoutSeconds"):
            value = probe.get(field, 1)
            assert isinstance(value, int), (name, kind, field)
            assert value >= 1, (name, kind, field)
        if "grpc" in probe:
            assert isinstance(probe["grpc"]["port"], int), "grpc probes take no named ports"


def test_liveness_and_readiness_ask_about_different_services() -> None:
    by_manifest: dict[str, dict[str, str]] = {}
    for name, kind, probe in probes():
        if "exec" in probe:
            service = settings_of(probe["exec"]["command"]).service
        else:
            service = probe["grpc"].get("service", "")
        by_manifest.setdefault(name, {})[kind] = service
    for name, services in by_manifest.items():
        assert services["livenessProbe"] != services["readinessProbe"], name
        assert services.get("startupProbe", "liveness") == services["livenessProbe"], name


@pytest.mark.parametrize(
    ("manifest", "kind", "command"),
    exec_commands(),
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_exec_probe_is_valid_and_fits_its_timeout(
    manifest: str, kind: str, command: list[str]
) -> None:
    assert command[0] == "/bin/grpc_health_probe"
    settings = settings_of(command)
    assert validate(settings) is None
    timeout = next(
        probe.get("timeoutSeconds", 1)
        for name, probe_kind, probe in probes()
        if (name, probe_kind) == (manifest, kind)
    )
    needed = (settings.connect_timeout + settings.rpc_timeout) / SECOND + START_UP_ALLOWANCE
    assert needed <= timeout, f"{manifest} {kind}: {needed} s of work in {timeout} s"
    # Explicit flags: the probe ends by itself before the kubelet gives up on it.
    assert any(arg.startswith("-connect-timeout") for arg in command)
    assert any(arg.startswith("-rpc-timeout") for arg in command)


def test_dockerfile_installs_the_package_and_links_the_go_path() -> None:
    text = (EXAMPLES / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.MULTILINE)
    assert "pip install --no-cache-dir /src" in text
    assert "ln -s /usr/local/bin/grpc_health_probe /bin/grpc_health_probe" in text
    copied = re.findall(r"^COPY (\S+) (\S+)$", text, re.MULTILINE)
    for source, _ in copied:
        assert (ROOT / source).exists(), source
    cmd = re.search(r"^CMD (\[.*\])$", text, re.MULTILINE)
    assert cmd is not None
    argv = yaml.safe_load(cmd.group(1))
    assert argv[:2] == ["python", "/app/server.py"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert argv[argv.index("--port") + 1] == "50051"


# --- run the commands against the example server ---------------------------------


@pytest.fixture(scope="module")
def example_server() -> Iterator[int]:
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "server.py"), "--port", "0", "--drain-seconds", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
    assert match, line
    yield int(match.group(1))
    process.terminate()
    process.wait(timeout=30)


def run_against(command: list[str], port: int) -> subprocess.CompletedProcess[str]:
    argv = [PROBE if arg.endswith("grpc_health_probe") else arg for arg in command]
    argv = [arg.replace(":50051", f":{port}") for arg in argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize(
    ("manifest", "kind", "command"),
    [row for row in exec_commands() if row[0] == "k8s-deployment.yaml"],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_deployment_probe_passes_against_the_example_server(
    manifest: str, kind: str, command: list[str], example_server: int
) -> None:
    result = run_against(command, example_server)
    assert (result.returncode, result.stderr) == (0, "status: SERVING\n")


def test_tls_manifest_fails_cleanly_without_its_secret(example_server: int) -> None:
    # Outside a pod the mounted Secret is missing: the documented exit 1, one clear line.
    command = next(cmd for name, _, cmd in exec_commands() if name == "k8s-tls.yaml")
    result = run_against(command, example_server)
    assert result.returncode == 1
    assert result.stderr == (
        'invalid value "/etc/probe/headers" for flag -rpc-header-file: '
        "No such file or directory\n" + result.stderr.split("\n", 1)[1]
    )
    assert result.stderr.splitlines()[1] == "Usage:"


def doc_commands() -> list[list[str]]:
    """Every grpc_health_probe command line in the page's sh blocks."""
    text = (DOCS / "kubernetes.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            if line.startswith("grpc_health_probe "):
                commands.append(shlex.split(line))
    return commands


def test_doc_commands_run_as_written(example_server: int) -> None:
    commands = doc_commands()
    assert len(commands) == 2
    for command in commands:
        result = run_against(command, example_server)
        assert result.returncode == 0, result.stderr
        assert result.stderr.endswith("status: SERVING\n")
