"""SIGTERM and SIGINT at every phase of both command-line tools: prompt, documented, clean.

Layer: tests (end to end). Each phase is reached by an observable event, never by a
sleep: a peer that records the moment it accepts the connection (dial, TLS pin), a
server that records the moment the health RPC arrives, the verdict line itself, and,
for start-up, an import hook that sends the signal while a given module is being
imported. The documented outcomes:

- plugin: ``GRPC_HEALTH UNKNOWN - interrupted by SIGTERM`` (or ``SIGINT``) and exit 3;
  once the verdict is printed, the verdict's exit code and nothing more;
- probe: Go's ``cancellation received`` lines, exit 2 before the health RPC starts and
  3 during it; once the verdict is printed, the verdict's exit code and nothing more.

Every run ends within ``PROMPT`` seconds of the signal and prints no traceback.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest
from support.hardening import Finished, cli_env
from support.paths import PLUGIN, PROBE
from support.servers import RawListener, black_hole

if TYPE_CHECKING:
    from collections.abc import Iterator
    from socket import socket

    from support.servers import HealthServer, HoldingServicer

PROMPT = 1.5
SIGNALS = [
    pytest.param(signal.SIGTERM, id="SIGTERM"),
    pytest.param(signal.SIGINT, id="SIGINT"),
]
GO_NAMES = {signal.SIGTERM: "terminated", signal.SIGINT: "interrupt"}


@pytest.fixture
def silent_peer() -> Iterator[tuple[threading.Event, str]]:
    """A black hole that tells when it has accepted a connection."""
    accepted = threading.Event()

    def handler(conn: socket, stopping: threading.Event) -> None:
        accepted.set()
        black_hole(conn, stopping)

    listener = RawListener(handler)
    yield accepted, listener.address
    listener.close()


def signal_on(argv: list[str], ready: threading.Event, signum: int) -> tuple[Finished, float]:
    """Run ``argv``; send ``signum`` once ``ready`` is set. Returns the run and the
    seconds from the signal to the exit."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
    )
    try:
        assert ready.wait(20), "the phase under test never began"
        sent = time.monotonic()
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
        process.wait()
    after = time.monotonic() - sent
    return Finished(process.returncode, stdout, stderr, after), after


def plugin_interrupted(signum: int) -> str:
    return f"GRPC_HEALTH UNKNOWN - interrupted by {signal.Signals(signum).name}\n"


def probe_cancelled(signum: int, *lines: str) -> str:
    return "\n".join([f"cancellation received (signal: {GO_NAMES[signum]})", *lines, ""])


# --- during the dial ---------------------------------------------------------------------


@pytest.mark.parametrize("signum", SIGNALS)
def test_plugin_signal_during_the_dial(
    silent_peer: tuple[threading.Event, str], signum: int
) -> None:
    accepted, address = silent_peer
    done, after = signal_on([PLUGIN, "-H", address, "-t", "60"], accepted, signum)
    done.assert_clean()
    assert (done.code, done.stdout, done.stderr) == (3, plugin_interrupted(signum), "")
    assert after < PROMPT


@pytest.mark.parametrize("signum", SIGNALS)
def test_probe_signal_during_the_dial(
    silent_peer: tuple[threading.Event, str], signum: int
) -> None:
    accepted, address = silent_peer
    done, after = signal_on([PROBE, f"-addr={address}", "-connect-timeout=60s"], accepted, signum)
    done.assert_clean()
    canceled = f'error: failed to connect service at "{address}": context canceled'
    assert (done.code, done.stdout, done.stderr) == (2, "", probe_cancelled(signum, canceled))
    assert after < PROMPT


@pytest.mark.parametrize("signum", SIGNALS)
def test_plugin_signal_during_the_tls_pin_handshake(
    silent_peer: tuple[threading.Event, str], signum: int
) -> None:
    accepted, address = silent_peer
    argv = [PLUGIN, "-H", address, "--insecure", "-t", "60"]
    done, after = signal_on(argv, accepted, signum)
    done.assert_clean()
    assert (done.code, done.stdout, done.stderr) == (3, plugin_interrupted(signum), "")
    assert after < PROMPT


@pytest.mark.parametrize("signum", SIGNALS)
def test_probe_signal_during_the_tls_pin_handshake(
    silent_peer: tuple[threading.Event, str], signum: int
) -> None:
    accepted, address = silent_peer
    argv = [PROBE, f"-addr={address}", "-tls", "-tls-no-verify", "-connect-timeout=60s"]
    done, after = signal_on(argv, accepted, signum)
    done.assert_clean()
    canceled = f'error: failed to connect service at "{address}": context canceled'
    assert (done.code, done.stdout, done.stderr) == (2, "", probe_cancelled(signum, canceled))
    assert after < PROMPT


# --- during the health RPC -------------------------------------------------------------


@pytest.mark.parametrize("signum", SIGNALS)
def test_plugin_signal_during_a_slow_rpc(held: tuple[HoldingServicer, str], signum: int) -> None:
    servicer, address = held
    done, after = signal_on([PLUGIN, "-H", address, "-t", "60"], servicer.entered, signum)
    done.assert_clean()
    assert (done.code, done.stdout, done.stderr) == (3, plugin_interrupted(signum), "")
    assert after < PROMPT


@pytest.mark.parametrize("signum", SIGNALS)
def test_probe_signal_during_a_slow_rpc(held: tuple[HoldingServicer, str], signum: int) -> None:
    servicer, address = held
    argv = [PROBE, f"-addr={address}", "-rpc-timeout=60s"]
    done, after = signal_on(argv, servicer.entered, signum)
    done.assert_clean()
    canceled = "error: health rpc failed: rpc error: code = Canceled desc = context canceled"
    assert (done.code, done.stdout, done.stderr) == (3, "", probe_cancelled(signum, canceled))
    assert after < PROMPT


# --- after the verdict -------------------------------------------------------------------


def signal_after_verdict(argv: list[str], verdict_on_stdout: bool, signum: int) -> Finished:
    """Send ``signum`` the moment the verdict line has been read."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stream = process.stdout if verdict_on_stdout else process.stderr
    first = stream.readline()
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=20)
    if verdict_on_stdout:
        stdout = first + stdout
    else:
        stderr = first + stderr
    return Finished(process.returncode, stdout, stderr, 0.0)


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_after_the_verdict_keeps_the_verdicts_exit_code(
    server: HealthServer, signum: int
) -> None:
    # The process is still shutting down when the signal lands; whatever the exact
    # moment, the exit code is the verdict already printed and nothing is added.
    for _ in range(4):
        plugin = signal_after_verdict([PLUGIN, "-H", server.address, "-s", "down"], True, signum)
        plugin.assert_clean()
        assert plugin.code == 2, plugin
        assert plugin.stdout.count("\n") == 1
        assert plugin.stdout.startswith(f"GRPC_HEALTH CRITICAL - {server.address}: service ")
        probe = signal_after_verdict([PROBE, f"-addr={server.address}"], False, signum)
        probe.assert_clean()
        assert (probe.code, probe.stderr) == (0, "status: SERVING\n"), probe


# --- during start-up ---------------------------------------------------------------------

# Runs a console script with a finder on sys.meta_path that sends the process a signal
# the moment a given module is first imported, as a supervisor's signal might land.
HOOKED_RUN = """
import os, runpy, sys
module, signum, script = sys.argv[1], int(sys.argv[2]), sys.argv[3]

class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == module:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signum)
        return None

sys.meta_path.insert(0, SignalOnImport())
sys.argv = [script, *sys.argv[4:]]
runpy.run_path(script, run_name="__main__")
"""


def signal_while_importing(module: str, signum: int, script: str, *args: str) -> Finished:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", HOOKED_RUN, module, str(int(signum)), script, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
        check=False,
    )
    return Finished(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


@pytest.mark.parametrize("signum", SIGNALS)
def test_plugin_signal_while_importing_its_modules(server: HealthServer, signum: int) -> None:
    done = signal_while_importing("nagiosplugin", signum, PLUGIN, "-H", server.address)
    done.assert_clean()
    assert (done.code, done.stdout, done.stderr) == (3, plugin_interrupted(signum), "")


@pytest.mark.parametrize("module", ["check_grpc_health.core.probe", "grpc"])
@pytest.mark.parametrize("signum", SIGNALS)
def test_plugin_signal_while_loading_grpc(server: HealthServer, module: str, signum: int) -> None:
    done = signal_while_importing(module, signum, PLUGIN, "-H", server.address)
    done.assert_clean()
    assert (done.code, done.stdout, done.stderr) == (3, plugin_interrupted(signum), "")


@pytest.mark.parametrize("signum", SIGNALS)
def test_probe_signal_while_parsing_its_flags(server: HealthServer, signum: int) -> None:
    # -rpc-header makes the flag parser import the core's metadata parser.
    done = signal_while_importing(
        "check_grpc_health.core.options",
        signum,
        PROBE,
        f"-addr={server.address}",
        "-rpc-header=a: b",
    )
    done.assert_clean()
    assert (done.code, done.stdout, done.stderr) == (2, "", probe_cancelled(signum))


@pytest.mark.parametrize("signum", SIGNALS)
def test_probe_signal_while_loading_grpc(server: HealthServer, signum: int) -> None:
    done = signal_while_importing("grpc", signum, PROBE, f"-addr={server.address}")
    done.assert_clean()
    canceled = f'error: failed to connect service at "{server.address}": context canceled'
    assert (done.code, done.stdout, done.stderr) == (2, "", probe_cancelled(signum, canceled))


def test_before_the_tools_own_code_runs_the_default_action_applies(server: HealthServer) -> None:
    # The one window no handler can cover: the interpreter is still loading the console
    # script's first module, which holds the signals. This also proves the hook fires.
    done = signal_while_importing(
        "check_grpc_health.entry", signal.SIGTERM, PROBE, f"-addr={server.address}"
    )
    assert (done.code, done.stdout, done.stderr) == (-signal.SIGTERM, "", "")


@pytest.mark.parametrize("signum", SIGNALS)
def test_probe_signal_while_loading_its_module_waits_for_its_handler(
    server: HealthServer, signum: int
) -> None:
    done = signal_while_importing(
        "check_grpc_health.probe_cli", signum, PROBE, f"-addr={server.address}"
    )
    done.assert_clean()
    assert (done.code, done.stdout, done.stderr) == (2, "", probe_cancelled(signum))
