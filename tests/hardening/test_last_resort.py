"""The console scripts' last resort: an unexpected exception is one line and the error code.

Layer: tests (end to end). Each console script runs as a real process and meets a fault
it has no answer for: its output on a full device (``/dev/full``), a module that cannot be
loaded (a driver's import hook makes ``grpc`` fail to load, as a broken installation
would), an exception in another thread, a Ctrl-C in the demo. Each ends with one line and
its documented error code (UNKNOWN, 3, for the plugin and the fleet; 1 for the probe, the
demo and the fleet's resident --watch mode), never a traceback, and never the exception's
own message.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.hardening import Finished, cli_env
from support.paths import DEMO, FLEET, PLUGIN, PROBE
from support.servers import closed_port

if TYPE_CHECKING:
    from support.servers import HealthServer

CLOSED = f"127.0.0.1:{closed_port()}"
FULL = Path("/dev/full")
SYSTEM_ERROR = (
    r"system error: No space left on device \(OSError in check_grpc_health[\w.]* line \d+\)"
)


def run(
    argv: list[str], *, stdout: object = subprocess.PIPE, stderr: object = subprocess.PIPE
) -> Finished:
    done = subprocess.run(
        argv,
        stdout=stdout,  # type: ignore[arg-type]
        stderr=stderr,  # type: ignore[arg-type]
        text=True,
        timeout=60,
        env=cli_env(),
        check=False,
    )
    return Finished(done.returncode, done.stdout or "", done.stderr or "", 0.0)


@pytest.fixture
def fleet_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.txt"
    path.write_text(f"api!grpc: -H {CLOSED}\n")
    return path


# --- output on a full device ------------------------------------------------------------


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")
def test_plugin_output_on_a_full_device_is_unknown() -> None:
    with FULL.open("w") as full:
        done = run([PLUGIN, "-H", CLOSED], stdout=full)
    done.assert_clean()
    # The line could not be written either: the exit code says it.
    assert (done.code, done.stderr) == (3, "")


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")
def test_probe_version_on_a_full_device_is_one_line_and_exit_1() -> None:
    with FULL.open("w") as full:
        done = run([PROBE, "-version"], stdout=full)
    done.assert_clean()
    assert done.code == 1
    assert re.fullmatch(f"error: {SYSTEM_ERROR}\n", done.stderr), done.stderr


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")
def test_fleet_output_on_a_full_device_is_one_line_and_unknown(fleet_file: Path) -> None:
    with FULL.open("w") as full:
        done = run([FLEET, str(fleet_file)], stdout=full)
    done.assert_clean()
    assert done.code == 3
    assert re.fullmatch(f"check_grpc_health_fleet: {SYSTEM_ERROR}\n", done.stderr), done.stderr


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")
def test_demo_output_on_a_full_device_is_one_line_and_exit_1() -> None:
    with FULL.open("w") as full:
        done = run([DEMO, "serve", "--port", "0"], stdout=full)
    done.assert_clean()
    assert done.code == 1
    assert re.fullmatch(f"check-grpc-health-demo: {SYSTEM_ERROR}\n", done.stderr), done.stderr


# --- a module that cannot be loaded, and an error nobody expected ------------------------

# Runs a console script with a finder on sys.meta_path that makes importing one module
# raise, as a broken installation (or a bug at import) would.
BROKEN_IMPORT = """
import runpy, sys
module, kind, script = sys.argv[1], sys.argv[2], sys.argv[3]

class Broken:
    def find_spec(self, name, path=None, target=None):
        if name == module:
            if kind == "missing":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            raise ValueError("the token s3cr3t-last-resort is not valid")
        return None

sys.meta_path.insert(0, Broken())
sys.argv = [script, *sys.argv[4:]]
runpy.run_path(script, run_name="__main__")
"""


def run_broken(module: str, kind: str, script: str, *args: str) -> Finished:
    return run([sys.executable, "-c", BROKEN_IMPORT, module, kind, script, *args])


def cannot_load(module: str) -> str:
    return (
        f"cannot load the module '{module}' "
        r"\(ModuleNotFoundError in check_grpc_health[\w.]* line \d+\): "
        "the installation is incomplete"
    )


INTERNAL_ERROR = (
    r"internal error: ValueError in check_grpc_health[\w.]* line \d+ \(a bug: please report it\)"
)
# What each tool loads on its way, and fails on: grpc, or for the one-shot fleet (whose
# checks each turn a failure into a line of their own) nagiosplugin, at its start.
ON_STDERR = [
    pytest.param(PROBE, "grpc", [f"-addr={CLOSED}"], 1, "error: ", id="probe"),
    pytest.param(FLEET, "nagiosplugin", ["{fleet}"], 3, "check_grpc_health_fleet: ", id="fleet"),
    # The resident monitor's internal error is 1, so that its unit restarts it.
    pytest.param(
        FLEET, "grpc", ["--watch", "{fleet}"], 1, "check_grpc_health_fleet: ", id="fleet-watch"
    ),
    pytest.param(DEMO, "grpc", ["serve", "--port", "0"], 1, "check-grpc-health-demo: ", id="demo"),
]


@pytest.mark.parametrize(("script", "module", "args", "code", "prefix"), ON_STDERR)
def test_a_module_that_cannot_load_is_one_line_on_stderr(
    script: str, module: str, args: list[str], code: int, prefix: str, fleet_file: Path
) -> None:
    argv = [arg.format(fleet=fleet_file) for arg in args]
    done = run_broken(module, "missing", script, *argv)
    done.assert_clean()
    assert (done.code, done.stdout) == (code, "")
    assert re.fullmatch(f"{prefix}{cannot_load(module)}\n", done.stderr), done.stderr


@pytest.mark.parametrize(("script", "module", "args", "code", "prefix"), ON_STDERR)
def test_an_unexpected_error_is_named_by_its_type_never_its_message(
    script: str, module: str, args: list[str], code: int, prefix: str, fleet_file: Path
) -> None:
    argv = [arg.format(fleet=fleet_file) for arg in args]
    done = run_broken(module, "bug", script, *argv)
    done.assert_clean()
    assert (done.code, done.stdout) == (code, "")
    assert re.fullmatch(f"{prefix}{INTERNAL_ERROR}\n", done.stderr), done.stderr
    assert "s3cr3t" not in done.output


def test_plugin_says_it_in_its_unknown_line_even_with_vvv() -> None:
    for kind, line in (("missing", cannot_load("grpc")), ("bug", INTERNAL_ERROR)):
        done = run_broken("grpc", kind, PLUGIN, "-H", CLOSED, "-vvv")
        done.assert_clean()
        assert (done.code, done.stderr) == (3, "")
        assert re.fullmatch(f"GRPC_HEALTH UNKNOWN - {line}\n", done.stdout), done.stdout
        assert "s3cr3t" not in done.output


def test_plugin_json_says_it_in_its_document() -> None:
    done = run_broken("grpc", "missing", PLUGIN, "-H", CLOSED, "--json")
    done.assert_clean()
    assert (done.code, done.stderr) == (3, "")
    assert done.stdout.count("\n") == 1
    document = json.loads(done.stdout)
    assert (document["state"], document["exit_code"], document["time"]) == ("UNKNOWN", 3, None)
    assert re.fullmatch(cannot_load("grpc"), document["error"]), document["error"]


# --- another thread ----------------------------------------------------------------------

THREAD_FAILS = """
import threading
from check_grpc_health import entry

entry._hook_threads("fleet")

def work():
    raise KeyError("s3cr3t-in-a-thread")

worker = threading.Thread(target=work, name="worker")
worker.start()
worker.join()
print("main thread goes on")
"""


def test_an_exception_in_another_thread_is_one_line() -> None:
    done = run([sys.executable, "-c", THREAD_FAILS])
    done.assert_clean()
    assert (done.code, done.stdout) == (0, "main thread goes on\n")
    assert done.stderr == (
        "check_grpc_health_fleet: internal error in thread worker: KeyError in __main__ line 8 "
        "(a bug: please report it)\n"
    )


# --- Ctrl-C in the demo ------------------------------------------------------------------


# A shell starts its background jobs with SIGINT ignored, and CI runs the suite as one: so the
# demo starts here with SIGINT at its default, as it has under a terminal where Ctrl-C is typed.
AS_FROM_A_TERMINAL = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])
"""


def test_ctrl_c_during_the_demo_ends_it_as_sigint_would_without_a_traceback() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", AS_FROM_A_TERMINAL, str(DEMO)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Embedded health server on "), first
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    done = Finished(process.returncode, first + stdout, stderr, 0.0)
    done.assert_clean()
    assert done.code == -signal.SIGINT
    assert stderr == ""


def test_the_probe_and_plugin_still_answer_normally(server: HealthServer) -> None:
    # The control: with nothing broken, the guard adds nothing.
    plugin = run([PLUGIN, "-H", server.address])
    assert plugin.code == 0
    assert plugin.stdout.startswith(f"GRPC_HEALTH OK - {server.address}: ")
    probe = run([PROBE, f"-addr={server.address}"])
    assert (probe.code, probe.stdout, probe.stderr) == (0, "", "status: SERVING\n")
