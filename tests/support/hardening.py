"""Helpers for the hardening tests: run each entry point the way its users run it.

Layer: tests (support). The plugin and the drop-in probe run as the installed console
scripts, in fresh processes; the Ansible module runs in-process through
``AnsibleModule`` (as its unit tests run it) or through the real Ansible tools. Each
run comes back as one record that the hardening promises are checked against: exit
code, every output channel, and the time it took.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support.paths import BIN, ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

# What Python prints when an exception escapes: the traceback header, its frames, and
# the final ``SomeError: message`` (or a bare ``KeyboardInterrupt``) line.
PYTHON_FAILURE = re.compile(
    r'^(Traceback \(most recent call last\):|\s+File ".*", line \d+.*'
    r"|[A-Za-z_][\w.]*(Error|Exception|Interrupt)(: .*)?)$",
    re.MULTILINE,
)
# The collection is importable from the checkout, as ansible-test's units see it.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def cli_env(**extra: str) -> dict[str, str]:
    """The caller's environment without grpc's logging settings, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRPC_")}
    env.update(extra)
    return env


@dataclass(frozen=True)
class Finished:
    """One finished run of an entry point."""

    code: int
    stdout: str
    stderr: str
    elapsed: float
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """Every channel, for greps."""
        return self.stdout + self.stderr

    def assert_clean(self) -> None:
        """No traceback and no escaped Python exception, on any channel."""
        for text in (self.stdout, self.stderr):
            assert "Traceback" not in text, text
            assert PYTHON_FAILURE.search(text) is None, text


def run_cli(
    command: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> Finished:
    """Run the console script ``command`` (PLUGIN or PROBE) with ``args``."""
    started = time.monotonic()
    done = subprocess.run(
        [command, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else cli_env(),
        check=False,
    )
    return Finished(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


@contextlib.contextmanager
def module_args(args: dict[str, Any]) -> Iterator[None]:
    """Give ``args`` to the AnsibleModule created within this context."""
    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core before 2.19 (Python 3.10), without data tagging
        from unittest import mock

        from ansible.module_utils import basic

        payload = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", payload):
            yield
        return
    with patch_module_args(args):
        yield


def run_module(args: dict[str, Any]) -> Finished:
    """Run the ``grpc_health`` module in-process with ``args``; ``result`` is its JSON."""
    from ansible_collections.grpc_health.probe.plugins.modules import grpc_health

    stdout, stderr = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with (
        module_args(args),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
        pytest.raises(SystemExit) as exited,
    ):
        grpc_health.main()
    elapsed = time.monotonic() - started
    text = stdout.getvalue()
    code = exited.value.code
    return Finished(
        code if isinstance(code, int) else 1, text, stderr.getvalue(), elapsed, json.loads(text)
    )


def run_module_process(
    args: dict[str, Any], *, timeout: float = 30, env: dict[str, str] | None = None
) -> Finished:
    """Run the ``grpc_health`` module as its own process, as Ansible would on a node."""
    import tempfile

    module = "ansible_collections.grpc_health.probe.plugins.modules.grpc_health"
    with tempfile.TemporaryDirectory(prefix="cgh-args-") as directory:
        path = Path(directory) / "args.json"
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}), "utf-8")
        environment = dict(env if env is not None else cli_env())
        environment["PYTHONPATH"] = str(ROOT)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", module, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
            cwd=directory,
            check=False,
        )
    elapsed = time.monotonic() - started
    result = json.loads(done.stdout) if done.stdout.strip() else {}
    return Finished(done.returncode, done.stdout, done.stderr, elapsed, result)


def ansible_env(**extra: str) -> dict[str, str]:
    """Ansible tools with this venv first on PATH, the checkout's collection, no stray config."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANSIBLE_", "GRPC_")) or key == "ANSIBLE_HOME"
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_COLLECTIONS_PATH=str(ROOT),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    env.update(extra)
    return env


def live_threads() -> list[str]:
    """Client-side threads of this process.

    Left out: the hostile peers' per-connection handlers and the test servers' worker
    pools, which start threads as requests arrive.
    """
    return [
        thread.name
        for thread in threading.enumerate()
        if "(_handle)" not in thread.name and not thread.name.startswith("ThreadPoolExecutor-")
    ]


def settled_threads(baseline: int, wait: float = 3.0) -> list[str]:
    """Give finished helper threads a moment to end; return the ones still alive."""
    deadline = time.monotonic() + wait
    while len(live_threads()) > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    return live_threads()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
