"""The Ansible collection grpc_health.probe, tested with the real Ansible tools.

Layer: tests (end to end). Runs ``ansible-doc``, ``ansible-lint``, ``ansible-galaxy collection
build``/``install``, ``ansible-playbook`` against real gRPC servers, and ``ansible-test
sanity``/``units``/``integration``, each as a subprocess, asserting exit codes and key output.
The docs' rolling-deployment playbook runs from the built tarball, installed away from the
source tree, against real demo nodes. A missing tool skips, except under CI, where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from support.ansible_tools import tool
from support.paths import BIN, ROOT
from support.servers import NOT_SERVING, SERVING, HeaderRecordingServicer

from check_grpc_health import probe
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.targets import parse_target

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from types import ModuleType

    from support.servers import HealthServer

COLLECTION = ROOT / "ansible_collections/grpc_health/probe"
EXAMPLES = ROOT / "docs/examples/ansible"
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def ansible_env(**extra: str) -> dict[str, str]:
    """An environment for Ansible tools: this venv first on PATH, no colour, no stray config."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ANSIBLE_") or key == "ANSIBLE_HOME"
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        PY_COLORS="0",
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def run(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float = 300,
    apart: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a tool, capturing stdout and stderr together, or apart with ``apart=True``.

    Output to parse (JSON) must be read apart: a dependency's warning on stderr, such as
    cryptography's deprecation warnings when ansible-core starts, is not ours to fail on.
    """
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if apart else subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def tail(result: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    """The last lines of a tool's output, stderr after stdout when they were read apart."""
    output = result.stdout + (result.stderr or "")
    return "\n".join(output.splitlines()[-lines:])


def load_tool_script(name: str) -> ModuleType:
    """Import a script from tools/ (it is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the generated module_utils copy of the core ---------------------------------------------


def test_module_utils_copy_of_the_core_is_current() -> None:
    result = run(
        [sys.executable, "tools/sync_module_utils.py", "--check"], cwd=ROOT, env=dict(os.environ)
    )
    assert result.returncode == 0, result.stdout
    assert result.stdout == "module_utils copy of the core is current\n"


def test_sync_translates_imports_asserts_and_throwaway_names() -> None:
    sync = load_tool_script("sync_module_utils")
    source = (
        '"""Doc."""\n\nfrom __future__ import annotations\n\nimport time\n\n'
        "import grpc\nfrom grpc_health.v1 import (\n    health_pb2,\n)\n\n"
        "from check_grpc_health.core.results import InvalidArgument\n\n\n"
        "def f(pair, value):\n    _, second = pair\n    assert value is not None\n"
        '    assert value, "empty"\n    return second\n'
    )
    generated = sync.generate("sample", source)
    assert generated.startswith("# Generated from check_grpc_health/core/sample.py by tools/")
    assert "from .results import InvalidArgument\n" in generated
    assert (
        "try:\n    import grpc\n    from grpc_health.v1 import (\n        health_pb2,\n    )\n"
        "except ImportError:\n"
    ) in generated
    assert "    GRPC_IMPORT_ERROR: str | None = traceback.format_exc()\n" in generated
    assert "    _unused, second = pair\n" in generated
    assert "    if value is None:\n        raise AssertionError('value is not None')\n" in generated
    assert "    if not value:\n        raise AssertionError('empty')\n" in generated
    assert "assert " not in generated
    compile(generated, "sample.py", "exec")


def test_sync_refuses_what_it_cannot_translate() -> None:
    sync = load_tool_script("sync_module_utils")
    with pytest.raises(sync.SyncError, match="only 'from check_grpc_health"):
        sync.generate("sample", "import check_grpc_health.core.results\n")
    with pytest.raises(sync.SyncError, match="'_' is read"):
        sync.generate("sample", "_ = 1\nprint(_)\n")


def test_sync_check_names_a_stale_file_and_sync_repairs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sync = load_tool_script("sync_module_utils")
    copy = tmp_path / "ansible_collections/grpc_health/probe/plugins/module_utils/core"
    shutil.copytree(sync.DESTINATION, copy)
    monkeypatch.setattr(sync, "ROOT", tmp_path)
    monkeypatch.setattr(sync, "DESTINATION", copy)
    (copy / "tls.py").write_text("# edited by hand\n", "utf-8")
    (copy / "leftover.py").write_text("", "utf-8")
    assert sync.main(["--check"]) == 1
    assert capsys.readouterr().err == (
        "module_utils copy of the core is stale: "
        "ansible_collections/grpc_health/probe/plugins/module_utils/core/tls.py, "
        "ansible_collections/grpc_health/probe/plugins/module_utils/core/leftover.py\n"
        "run: python tools/sync_module_utils.py\n"
    )
    assert sync.main([]) == 0
    assert sync.main(["--check"]) == 0
    assert not (copy / "leftover.py").exists()
    assert sync.main(["--bogus"]) == 2


# --- documentation and lint -------------------------------------------------------------------


def test_ansible_doc_renders_every_option_and_return_value() -> None:
    ansible_doc = tool("ansible-doc")
    env = ansible_env(ANSIBLE_COLLECTIONS_PATH=str(ROOT))
    text = run([ansible_doc, "grpc_health.probe.grpc_health"], cwd=ROOT, env=env)
    assert text.returncode == 0, tail(text)
    assert "> MODULE grpc_health.probe.grpc_health" in text.stdout
    assert "RETURN VALUES:" in text.stdout
    result = run(
        [ansible_doc, "--json", "grpc_health.probe.grpc_health"], cwd=ROOT, env=env, apart=True
    )
    assert result.returncode == 0, tail(result)
    assert "[ERROR]" not in result.stderr, result.stderr
    doc = json.loads(result.stdout)["grpc_health.probe.grpc_health"]
    assert sorted(doc["doc"]["options"]) == sorted(
        [
            "host", "port", "service", "all_services", "state", "timeout", "delay", "sleep",
            "connect_timeout",
            "rpc_timeout", "tls", "ca_cert", "client_cert", "client_key", "server_name",
            "validate_certs", "metadata", "authority", "use_proxy",
        ]
    )  # fmt: skip
    assert doc["doc"]["options"]["metadata"]["description"][-1].startswith("Values are treated")
    assert doc["doc"]["options"]["state"]["choices"] == ["serving", "not_serving"]
    assert sorted(doc["return"]) == sorted(
        ["status", "elapsed", "attempts", "method", "time", "connect_time", "rpc_time", "diagnosis"]
    )
    assert sorted(doc["return"]["diagnosis"]["contains"]) == ["cause", "hint", "kind", "proxy"]
    assert doc["doc"]["requirements"] == [
        "python >= 3.10",
        "grpcio >= 1.60",
        "grpcio-health-checking >= 1.60",
        "grpcio-reflection >= 1.60, only for O(all_services)",
    ]


def test_changelog_fragments_lint_and_changelog_rst_is_current(tmp_path: Path) -> None:
    changelog = tool("antsibull-changelog")
    env = ansible_env()
    lint = run([changelog, "lint"], cwd=COLLECTION, env=env)
    assert (lint.returncode, lint.stdout) == (0, "")
    lint = run(
        [changelog, "lint-changelog-yaml", "changelogs/changelog.yaml"], cwd=COLLECTION, env=env
    )
    assert (lint.returncode, lint.stdout) == (0, "")
    generated = tmp_path / "CHANGELOG.rst"
    command = [changelog, "generate", "--output", str(generated), "--output-format", "rst"]
    result = run(command, cwd=COLLECTION, env=env)
    assert result.returncode == 0, result.stdout
    assert generated.read_text("utf-8") == (COLLECTION / "CHANGELOG.rst").read_text("utf-8"), (
        "CHANGELOG.rst is stale: run antsibull-changelog generate in the collection"
    )


@pytest.fixture
def lint_leaves_no_cache() -> Iterator[None]:
    """ansible-lint writes .ansible/, which would break ansible-test's shebang test."""
    yield
    shutil.rmtree(COLLECTION / ".ansible", ignore_errors=True)


@pytest.mark.usefixtures("lint_leaves_no_cache")
def test_ansible_lint_passes_on_the_collection() -> None:
    result = run([tool("ansible-lint")], cwd=COLLECTION, env=ansible_env(), timeout=600)
    assert result.returncode == 0, tail(result)
    assert "Profile 'production' was required, and it passed." in result.stdout


def test_ansible_lint_passes_on_the_docs_playbooks() -> None:
    result = run(
        [
            tool("ansible-lint"),
            "--profile",
            "production",
            "rolling_deploy.yml",
            "inventory.yml",
            "local_inventory.yml",
        ],
        cwd=EXAMPLES,
        env=ansible_env(ANSIBLE_COLLECTIONS_PATH=str(ROOT)),
        timeout=600,
    )
    assert result.returncode == 0, tail(result)
    assert "3 files processed" in result.stdout


def test_docs_show_the_example_playbook_and_inventory_verbatim() -> None:
    docs = (ROOT / "docs/ansible.md").read_text("utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", docs, flags=re.DOTALL)
    assert (EXAMPLES / "rolling_deploy.yml").read_text("utf-8") in blocks
    inventory = (EXAMPLES / "inventory.yml").read_text("utf-8")
    shown = inventory[inventory.index("grpc_servers:") :]
    assert shown in blocks


# --- the built collection, installed elsewhere ------------------------------------------------


@pytest.fixture(scope="module")
def installed_collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the collection tarball and install it into a fresh collections path."""
    galaxy = tool("ansible-galaxy")
    base = tmp_path_factory.mktemp("galaxy")
    env = ansible_env()
    built = run(
        [galaxy, "collection", "build", str(COLLECTION), "--output-path", str(base / "dist")],
        cwd=base,
        env=env,
    )
    assert built.returncode == 0, tail(built)
    tarball = base / "dist/grpc_health-probe-0.1.0.tar.gz"
    assert tarball.is_file(), built.stdout
    installed = run(
        [galaxy, "collection", "install", "-p", str(base / "collections"), str(tarball)],
        cwd=base,
        env=env,
    )
    assert installed.returncode == 0, tail(installed)
    assert "grpc_health.probe:0.1.0 was installed successfully" in installed.stdout
    return base / "collections"


def test_tarball_carries_the_core_and_no_test_output(installed_collections: Path) -> None:
    root = installed_collections / "ansible_collections/grpc_health/probe"
    core = sorted(path.name for path in (root / "plugins/module_utils/core").glob("*.py"))
    assert core == [
        "__init__.py",
        "aio_channel.py",
        "channel.py",
        "connectivity.py",
        "diagnosis.py",
        "discovery.py",
        "family.py",
        "handshake.py",
        "options.py",
        "peek.py",
        "probe.py",
        "proxy.py",
        "results.py",
        "rpc.py",
        "targets.py",
        "tls.py",
        "watch.py",
    ]
    assert (root / "requirements.txt").is_file()
    assert (root / "meta/execution-environment.yml").is_file()
    assert (root / "CHANGELOG.rst").is_file()
    assert not (root / "tests/output").exists()
    assert not (root / "tests/integration/inventory").exists()


def test_ansible_builder_finds_the_python_requirements(installed_collections: Path) -> None:
    result = run(
        [tool("ansible-builder"), "introspect", "--sanitize", str(installed_collections)],
        cwd=installed_collections,
        env=ansible_env(),
    )
    assert result.returncode == 0, tail(result)
    assert result.stdout.endswith(
        "python:\n"
        "- 'grpcio >= 1.60  # from collection grpc_health.probe'\n"
        "- 'grpcio-health-checking >= 1.60  # from collection grpc_health.probe'\n"
        "- 'grpcio-reflection >= 1.60  # from collection grpc_health.probe'\n"
        "system: []\n\n"
    ), result.stdout


@pytest.fixture
def demo_nodes(tmp_path: Path) -> Iterator[dict[str, dict[str, Any]]]:
    """Three demo nodes from docs/examples/ansible/demo_node.py on free ports."""
    started: dict[str, dict[str, Any]] = {}
    try:
        for number in (1, 2, 3):
            state_dir = tmp_path / f"orders-{number}"
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(EXAMPLES / "demo_node.py"),
                    "serve",
                    "--port",
                    "0",
                    "--warmup",
                    "0.5",
                    "--state-dir",
                    str(state_dir),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.fullmatch(r"serving release v1 on 127\.0\.0\.1:(\d+)\n", line)
            assert match, line
            started[f"orders-{number}"] = {
                "process": process,
                "port": int(match.group(1)),
                "state_dir": state_dir,
            }
        yield started
    finally:
        for node in started.values():
            node["process"].send_signal(signal.SIGTERM)
        for node in started.values():
            node["process"].wait(timeout=10)
            node["process"].stdout.close()


def local_inventory(nodes: dict[str, dict[str, Any]], path: Path) -> Path:
    """The docs' local inventory, with the demo nodes' real ports.

    The state directories are the inventory's own, under ``-e demo_dir=...``.
    """
    import yaml  # PyYAML comes with ansible-core.

    inventory = yaml.safe_load((EXAMPLES / "local_inventory.yml").read_text("utf-8"))
    hosts = inventory["grpc_servers"]["hosts"]
    assert sorted(hosts) == sorted(nodes)
    for name, node in nodes.items():
        hosts[name]["grpc_port"] = node["port"]
    path.write_text(yaml.safe_dump(inventory), "utf-8")
    return path


def node_state(node: dict[str, Any]) -> tuple[str, str, bool]:
    """(release, previous release, serving) of a demo node."""
    state_dir: Path = node["state_dir"]
    previous = state_dir / "previous"
    result = probe(
        ProbeOptions(parse_target(f"127.0.0.1:{node['port']}"), services=("", "orders.v1.Orders"))
    )
    return (
        (state_dir / "release").read_text("utf-8").strip(),
        previous.read_text("utf-8").strip() if previous.exists() else "",
        result.serving,
    )


def recap(output: str) -> dict[str, str]:
    """Host name to its PLAY RECAP line."""
    lines = output[output.rindex("PLAY RECAP") :].splitlines()[1:]
    return {line.split()[0]: line for line in lines if " : " in line}


@pytest.mark.slow
def test_docs_rolling_deployment_gates_real_nodes_and_rolls_back_a_bad_release(
    installed_collections: Path, demo_nodes: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    playbook = tool("ansible-playbook")
    inventory = local_inventory(demo_nodes, tmp_path / "inventory.yml")
    env = ansible_env(ANSIBLE_COLLECTIONS_PATH=str(installed_collections))
    # The nodes' --state-dir is not the default /tmp/orders-N: demo_dir says where it is.
    state_root = demo_nodes["orders-1"]["state_dir"].parent
    command = [
        playbook,
        "-i",
        str(inventory),
        str(EXAMPLES / "rolling_deploy.yml"),
        "-e",
        f"demo_dir={state_root}",
    ]

    good = run([*command, "-e", "release=v2"], cwd=tmp_path, env=env)
    assert good.returncode == 0, tail(good)
    lines = recap(good.stdout)
    for name in ("orders-1", "orders-2", "orders-3"):
        assert "ok=4 " in lines[name], lines[name]
        assert "failed=0 " in lines[name], lines[name]
        assert node_state(demo_nodes[name]) == ("v2", "v1", True)

    bad = run([*command, "-e", "release=bad-v3", "-e", "ready_timeout=2"], cwd=tmp_path, env=env)
    assert bad.returncode == 2, tail(bad)
    assert (
        "Release bad-v3 failed its health gate on orders-1 and was rolled back: "
        f"127.0.0.1:{demo_nodes['orders-1']['port']} did not reach SERVING within 2s: "
        "overall health NOT_SERVING, service 'orders.v1.Orders' NOT_SERVING"
    ) in bad.stdout
    lines = recap(bad.stdout)
    assert sorted(lines) == ["orders-1"], "max_fail_percentage must stop the rollout"
    assert "failed=1 " in lines["orders-1"]
    assert "rescued=1 " in lines["orders-1"]
    assert node_state(demo_nodes["orders-1"]) == ("v2", "v2", True)
    assert node_state(demo_nodes["orders-2"]) == ("v2", "v1", True)
    assert node_state(demo_nodes["orders-3"]) == ("v2", "v1", True)


# The token comes from a vars file, as it would from Ansible Vault: the playbook source,
# which Ansible quotes when a task fails, holds only the template.
METADATA_PLAYBOOK = """\
- name: Gate with a secret header
  hosts: localhost
  gather_facts: false
  vars_files: [token.yml]
  tasks:
    - name: Check a serving server with metadata
      grpc_health.probe.grpc_health:
        host: 127.0.0.1
        port: {port}
        metadata:
          authorization: "Bearer {{{{ health_token }}}}"
    - name: Wait on a service that stays down, with metadata
      grpc_health.probe.grpc_health:
        host: 127.0.0.1
        port: {port}
        service: down
        timeout: 0.5
        metadata:
          authorization: "Bearer {{{{ health_token }}}}"
      ignore_errors: true
"""


def test_metadata_values_never_appear_even_at_vvv(
    installed_collections: Path,
    start_server: Callable[..., HealthServer],
    tmp_path: Path,
) -> None:
    servicer = HeaderRecordingServicer()
    server = start_server(statuses={"": SERVING, "down": NOT_SERVING}, servicer=servicer)
    hidden = "hunter2-header-value-7f3a"
    path = tmp_path / "metadata.yml"
    path.write_text(METADATA_PLAYBOOK.format(port=server.port), "utf-8")
    (tmp_path / "token.yml").write_text(f"health_token: {hidden}\n", "utf-8")
    result = run(
        [tool("ansible-playbook"), "-vvv", str(path)],
        cwd=tmp_path,
        env=ansible_env(ANSIBLE_COLLECTIONS_PATH=str(installed_collections)),
    )
    assert result.returncode == 0, tail(result)
    assert servicer.seen[0]["authorization"] == f"Bearer {hidden}"
    assert f"127.0.0.1:{server.port} did not reach SERVING within 0.5s" in result.stdout
    assert hidden not in result.stdout
    assert "Traceback" not in result.stdout


def test_a_node_without_grpcio_gets_missing_required_lib(
    installed_collections: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    started = time.monotonic()
    result = run(
        [
            tool("ansible"),
            "localhost",
            "-m",
            "grpc_health.probe.grpc_health",
            "-a",
            "host=127.0.0.1 port=50051",
            "-e",
            f"ansible_python_interpreter={bare / 'bin/python'}",
        ],
        cwd=tmp_path,
        env=ansible_env(ANSIBLE_COLLECTIONS_PATH=str(installed_collections)),
    )
    assert result.returncode == 2, tail(result)
    assert (
        "Failed to import the required Python library (grpcio and grpcio-health-checking)"
        in result.stdout
    )
    assert "Traceback" not in result.stdout
    assert time.monotonic() - started < 60


# --- ansible-test, on every tested ansible-core ---------------------------------------------


@dataclass(frozen=True)
class Core:
    """An ansible-core release line, and the venv whose ansible-test runs it."""

    version: str
    python: str
    venv: Path | None  # None: the venv that runs these tests

    @property
    def bin(self) -> Path:
        return BIN if self.venv is None else self.venv / "bin"


# meta/runtime.yml claims ansible-core 2.17 and later. This venv has 2.19 (pyproject.toml pins
# it). .ci/run makes a venv for the oldest claimed release, on the machine's Python as this one,
# and one for the newest release, on Python 3.13 (2.21 needs 3.12 or later). Keep the lists
# here, in .ci/run and in docs/ansible.md in step.
CORES = [
    Core("2.19", PYTHON_VERSION, None),
    Core("2.17", PYTHON_VERSION, ROOT / ".venv-ansible-2.17"),
    Core("2.21", "3.13", ROOT / ".venv-ansible-2.21"),
]


def test_the_oldest_tested_core_is_the_oldest_claimed() -> None:
    import yaml  # PyYAML comes with ansible-core.

    runtime = yaml.safe_load((COLLECTION / "meta/runtime.yml").read_text("utf-8"))
    oldest = min(CORES, key=lambda core: tuple(map(int, core.version.split("."))))
    assert runtime["requires_ansible"] == f">={oldest.version}.0"


@dataclass(frozen=True)
class AnsibleTest:
    """One ansible-core's ansible-test, run in the collection on its venv's Python."""

    path: str
    python: str
    env: dict[str, str]

    def run(self, command: str, *options: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return run(
            [self.path, command, *options, "--python", self.python, "--color", "no"],
            cwd=COLLECTION,
            env=self.env,
            timeout=timeout,
        )


@pytest.fixture(scope="module", params=CORES, ids=lambda core: core.version)
def ansible_test(request: pytest.FixtureRequest) -> AnsibleTest:
    """ansible-test of one ansible-core release, with its pip bootstrap script available
    offline; a missing venv skips, or fails under CI."""
    core: Core = request.param
    path = core.bin / "ansible-test"
    if not path.exists():
        message = f"ansible-core {core.version} is not installed in {core.bin.parent.name}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (.ci/run makes it)")
        pytest.skip(message)
    python = str(core.bin / "python")
    # The bootstrap script is named after the pip version that this ansible-test wants.
    stand_in = run([python, "tools/ansible_test_get_pip.py"], cwd=ROOT, env=dict(os.environ))
    assert stand_in.returncode == 0, stand_in.stdout
    env = ansible_env(PATH=f"{core.bin}{os.pathsep}{os.environ.get('PATH', '')}")
    env["ANSIBLE_PYTHON_INTERPRETER"] = python
    version = run([str(path), "--version"], cwd=ROOT, env=env)
    assert version.stdout.startswith(f"ansible-test version {core.version}."), version.stdout
    shutil.rmtree(COLLECTION / ".ansible", ignore_errors=True)
    return AnsibleTest(str(path), core.python, env)


@pytest.mark.slow
def test_ansible_test_sanity_passes_without_ignore_files(ansible_test: AnsibleTest) -> None:
    assert not list(COLLECTION.glob("tests/sanity/ignore-*.txt"))
    result = ansible_test.run("sanity", "--venv", timeout=1800)
    assert result.returncode == 0, tail(result, 120)
    for name in ("validate-modules", "import", "pylint", "no-assert", "changelog"):
        assert f'Running sanity test "{name}"' in result.stdout
    assert "ERROR:" not in result.stdout


@pytest.mark.slow
def test_ansible_test_units_pass(ansible_test: AnsibleTest) -> None:
    result = ansible_test.run("units", "--venv", timeout=1200)
    assert result.returncode == 0, tail(result, 120)
    counts = [int(count) for count in re.findall(r"=+ (\d+) passed", result.stdout)]
    assert len(counts) == 2, result.stdout  # modules and module_utils
    assert sum(counts) >= 40
    assert " failed" not in result.stdout


@pytest.mark.slow
def test_ansible_test_integration_passes_against_real_servers(ansible_test: AnsibleTest) -> None:
    result = ansible_test.run("integration", "--local", timeout=1200)
    assert result.returncode == 0, tail(result, 120)
    assert "Running grpc_health integration test role" in result.stdout
    recap_line = recap(result.stdout)["testhost"]
    assert "failed=0 " in recap_line, recap_line
    assert "All assertions passed" in result.stdout


def demo_node(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    # Without the caller's GRPC_* settings, as a user who copies the docs runs it.
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRPC_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "demo_node.py"), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("command", [["drain"], ["deploy", "v2"], ["rollback"], ["stop"]])
def test_demo_node_commands_without_a_node_are_one_line(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "orders-9"
    done = demo_node(command[0], "--state-dir", str(missing), *command[1:])
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"no demo node is serving from {missing}\n"
    assert not missing.exists()


def test_demo_node_refuses_a_port_that_is_taken(
    start_server: Callable[..., HealthServer], tmp_path: Path
) -> None:
    # A grpcio server holds the port with SO_REUSEPORT on, as grpcio does by default.
    holder = start_server()
    done = demo_node("serve", "--port", str(holder.port), "--state-dir", str(tmp_path), timeout=20)
    # One line: grpc's own "Failed to add port" log line stays off stderr.
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"cannot listen on 127.0.0.1:{holder.port}: the port is in use or the address is not "
        "local\n"
    )
