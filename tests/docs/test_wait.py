"""The waiting examples of docs/kubernetes.md and docs/server.md run as written.

Each command is taken from the page itself (the init container's ``command``, the compose
healthcheck's ``test``, the CI step's ``run``, the systemd unit's ``ExecStart`` and
``ExecStartPost``) and run against the example server from docs/examples/server.py, which
starts a few seconds after the command, as a dependency does. Only the address (a free
port instead of 50051, 127.0.0.1 for a service name) and the install paths are replaced:
no container runtime or init system is needed to run the command itself.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import yaml
from support.pages import fenced
from support.paths import BIN, ROOT
from support.servers import closed_port

if TYPE_CHECKING:
    from collections.abc import Iterator

DOCS = ROOT / "docs"
SERVER = DOCS / "examples" / "server.py"
# How late the dependency comes up: long enough that no command passes by luck.
LATE = 2.0


def blocks(page: str, language: str) -> list[str]:
    return fenced(DOCS / page, language)


def yaml_block(page: str, key: str) -> Any:
    found = [yaml.safe_load(block) for block in blocks(page, "yaml") if key in block]
    assert len(found) == 1, f"{page}: one yaml block with {key!r}"
    return found[0]


PATHS = {
    "grpc_health_probe": str(BIN / "grpc_health_probe"),
    "/bin/grpc_health_probe": str(BIN / "grpc_health_probe"),
    "/usr/local/bin/grpc_health_probe": str(BIN / "grpc_health_probe"),
    "python": sys.executable,
    "/usr/bin/python3": sys.executable,
    "docs/examples/server.py": str(SERVER),
    "/opt/orders/server.py": str(SERVER),
}


def local(argv: list[str], port: int) -> list[str]:
    """The documented command with this machine's paths and the test server's port."""
    return [_local_arg(arg, port) for arg in argv]


def _local_arg(arg: str, port: int) -> str:
    arg = PATHS.get(arg, arg)
    arg = re.sub(r"(orders|127\.0\.0\.1):50051\b", f"127.0.0.1:{port}", arg)
    return re.sub(r"^50051$", str(port), arg)


@contextlib.contextmanager
def late_server(port: int, argv: list[str] | None = None) -> Iterator[None]:
    """Start the example server on ``port`` :data:`LATE` seconds from now."""
    command = argv or [sys.executable, str(SERVER), "--port", str(port)]
    started: list[subprocess.Popen[bytes]] = []
    timer = threading.Timer(
        LATE,
        lambda: started.append(
            subprocess.Popen(
                [*command, "--drain-seconds", "0"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ),
    )
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        for process in started:
            process.terminate()
            process.wait(timeout=30)


def run_waiting(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return done, time.monotonic() - started


def test_init_container_waits_for_its_dependency() -> None:
    pod = yaml_block("kubernetes.md", "initContainers:")
    (init,) = pod["spec"]["initContainers"]
    command = init["command"]
    assert command[0] == "/bin/grpc_health_probe"
    assert any(arg.startswith("-wait=") for arg in command)
    port = closed_port()
    with late_server(port):
        done, elapsed = run_waiting(local(command, port))
    assert (done.returncode, done.stderr) == (0, "status: SERVING\n")
    assert elapsed >= LATE


def test_compose_healthcheck_turns_healthy_once_the_server_is_up() -> None:
    compose = yaml_block("kubernetes.md", "service_healthy")
    assert compose["services"]["api"]["depends_on"] == {"orders": {"condition": "service_healthy"}}
    check = compose["services"]["orders"]["healthcheck"]
    kind, *command = check["test"]
    assert kind == "CMD"
    interval = float(check["interval"].removesuffix("s"))
    timeout = float(check["timeout"].removesuffix("s"))
    port = closed_port()
    codes = []
    with late_server(port):
        # What Docker does: run the test every interval until it passes or retries run out.
        for _ in range(check["retries"]):
            done = subprocess.run(
                local(command, port), capture_output=True, text=True, timeout=timeout, check=False
            )
            codes.append(done.returncode)
            if done.returncode == 0:
                break
            time.sleep(interval)
    assert codes[0] == 2, "the server was not up yet"
    assert codes[-1] == 0, codes
    assert done.stderr == "status: SERVING\n"


def test_ci_step_waits_for_the_server_it_started() -> None:
    steps = yaml_block("kubernetes.md", "Wait until it is ready")["steps"]
    by_name = {step["name"]: step["run"] for step in steps}
    start = shlex.split(by_name["Start the server under test"].rstrip(" &"))
    wait = shlex.split(by_name["Wait until it is ready"])
    port = closed_port()
    with late_server(port, local(start, port)):
        done, elapsed = run_waiting(local(wait, port))
    assert (done.returncode, done.stderr) == (0, "status: SERVING\n")
    assert elapsed >= LATE


def test_ci_alternative_with_the_plugin() -> None:
    text = (DOCS / "kubernetes.md").read_text()
    (line,) = re.findall(r"`(check_grpc_health [^`]*--wait[^`]*)`", text)
    argv = shlex.split(line)
    argv[0] = str(BIN / "check_grpc_health")
    port = closed_port()
    with late_server(port):
        done, elapsed = run_waiting(local(argv, port))
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith(f"GRPC_HEALTH OK - 127.0.0.1:{port}: service 'readiness' is ")
    assert re.search(r" wait=[0-9.]+s;;;0$", done.stdout.rstrip("\n"))
    assert elapsed >= LATE


def test_systemd_exec_start_post_waits_for_exec_start() -> None:
    (unit_text,) = blocks("kubernetes.md", "ini")
    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(unit_text)
    service = unit["Service"]
    start = shlex.split(service["ExecStart"])
    post = shlex.split(service["ExecStartPost"])
    wait = next(arg for arg in post if arg.startswith("-wait="))
    assert float(service["TimeoutStartSec"]) > float(wait.removeprefix("-wait=").rstrip("s"))
    port = closed_port()
    with late_server(port, local(start, port)):
        done, elapsed = run_waiting(local(post, port))
    assert (done.returncode, done.stderr) == (0, "status: SERVING\n")
    assert elapsed >= LATE


def test_watching_the_example_server_drain() -> None:
    page = (DOCS / "server.md").read_text()
    section = page.split("## Watch it drain", 1)[1].split("\n## ", 1)[0]
    script = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    expected = re.search(r"```console\n(.*?)```", section, re.DOTALL)
    assert script
    assert expected
    port = closed_port()
    lines = [
        " ".join(local(shlex.split(line, posix=False), port)) for line in script[1].splitlines()
    ]
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "-c", "\n".join(lines)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert done.stderr == expected[1]
    assert done.stdout == (
        f"listening on 127.0.0.1:{port}\ndraining: all services NOT_SERVING\nstopped\n"
    )
