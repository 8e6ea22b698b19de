"""No traceback, ever: hypothesis drives every tool's argv, and the fleet's files.

Layer: tests (property). The strategies mix each tool's real option names with plausible,
hostile and random values and with stray words; fleet files get random lines, labels,
comments and options. An example that could leave this machine or wait is set aside
before it runs: every address that parses is a closed port on 127.0.0.1 (or a socket
path), waits are short, the demo serves only on a port the kernel picks. So each run ends
at once, or is stopped with SIGTERM once it serves or watches.

The plugin, the fleet (one-shot and ``--watch``) and the demo end their process in
``main()``, so they run as processes, a bounded number of examples each; the probe runs
in-process, and a few times as a process. Every run must end with one of the tool's
documented exit codes, print no traceback, and keep stderr to a few lines of its own.
The examples below the strategies are the tracebacks this suite was written for.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from support.hardening import Finished, cli_env
from support.paths import DEMO, FLEET, PLUGIN, PROBE
from support.servers import closed_port

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.plugin.arguments import parse_arguments

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from conftest import TlsMaterial

    from check_grpc_health.plugin.options import PluginOptions

CLOSED_PORT = closed_port()
CLOSED = f"127.0.0.1:{CLOSED_PORT}"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# The documented exit codes (README, docs/nagios.md, docs/kubernetes.md, docs/fleet.md).
PLUGIN_CODES = {0, 1, 2, 3}
PROBE_CODES = {0, 1, 2, 3, 4, 20}
FLEET_CODES = {0, 1, 2, 3}
WATCH_CODES = {0, 3}
DEMO_CODES = {0, 1}
# A run that serves or watches gets this long before it is stopped with SIGTERM.
SETTLE = 1.5
# Examples per tool that runs as a process: together about half a minute on 2 cores.
PROCESS_EXAMPLES = int(os.environ.get("NO_TRACEBACK_EXAMPLES", "25"))

# --- values ------------------------------------------------------------------------------

# Text as argv can carry it: any code point, undecodable bytes as lone surrogates.
argv_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    | st.sampled_from(["\udcff", "\udc80"]),
    max_size=20,
)
NUMBERS = ["0", "1", "0.5", "2", "-1", "-0", "nan", "inf", "-inf", "1e308", "86401", "1e-9"]
PLAUSIBLE = [
    *NUMBERS,
    "",
    " ",
    "x",
    "@1:2",
    "~:1",
    "10:",
    "5:1",
    "50%",
    "101%",
    "NOT_SERVING=WARNING",
    "SERVING=3",
    "bogus=OK",
    "key: value",
    "Bad Key: v",
    "authorization: Bearer not-a-secret",
    "grpc-x: 1",
    "x-bin: 1",
    "TOKEN:HOME",
    "app.Orders",
    "\udcff",
    "line\nbreak",
]
values = st.one_of(st.sampled_from(PLAUSIBLE), argv_text)
hosts = st.sampled_from(
    [
        CLOSED,
        "127.0.0.1",
        f"[::1]:{CLOSED_PORT}",
        f"localhost:{CLOSED_PORT}",
        f"grpc://{CLOSED}",
        f"grpcs://{CLOSED}",
        f"http://{CLOSED}",
        f"https://{CLOSED}/path",
        f"dns:///{CLOSED}",
        "unix:/nonexistent/health.sock",
        "unix-abstract:cgh-no-traceback",
        "user:pass@127.0.0.1:1",
        "127.0.0.1:70000",
        ":0",
        "[::1",
        "bad\nhost:1",
        "",
    ]
)
ports = st.sampled_from([str(CLOSED_PORT), "0", "70000", "-1", "x", "", "1e3"])
short_waits = st.sampled_from(["0", "0.2", "-1", "nan", "inf", "1e308", "x"])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tls_material: TlsMaterial) -> Path:
    """The runs' working directory, with files for every option that takes one."""
    base = tmp_path_factory.mktemp("no-traceback")
    (base / "dir").mkdir()
    (base / "headers").write_text("authorization: Bearer s3cr3t-no-traceback\n# comment\n")
    (base / "bad-headers").write_text("no colon here\n\udcff: x\n", errors="surrogateescape")
    (base / "not-pem.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    (base / "password").write_text("s3cr3t-no-traceback\n")
    (base / "ca.pem").write_bytes(tls_material.ca_cert.read_bytes())
    (base / "client.pem").write_bytes(tls_material.client_cert.read_bytes())
    (base / "client.key").write_bytes(tls_material.client_key.read_bytes())
    return base


FILES = ["missing.pem", "dir", "headers", "bad-headers", "not-pem.pem", "ca.pem", "client.pem"]
files = st.one_of(st.sampled_from([*FILES, "client.key", "/dev/null", ""]), argv_text)

# --- the plugin's argv (also each fleet line) --------------------------------------------


def plugin_options() -> list[tuple[str, str | None]]:
    """Every option string of the plugin, with its metavar (None for a flag)."""
    from check_grpc_health.plugin.arguments import _parser

    found = [
        (name, None if action.nargs == 0 else str(action.metavar))
        for action in _parser()._actions
        for name in action.option_strings
    ]
    return [*found, ("-4", None), ("-6", None)]


PLUGIN_OPTIONS = plugin_options()
# Values that make sense for each kind of option, so that many examples get as far as
# dialling; any value at all comes in a quarter of the draws.
BY_METAVAR: dict[str, st.SearchStrategy[str]] = {
    "ADDRESS": hosts,
    "PORT": ports,
    "FILE": files,
    "RANGE": st.sampled_from(["1", "0.5", "10:", "~:1", "@0.2:0.4", "5:1", "x", ""]),
    "SECONDS": st.sampled_from(["0.5", "1", "3", "0", "-1", "nan", "inf", "86401", "x"]),
    "DAYS": st.sampled_from(["30", "7", "0", "-1", "x"]),
    "MIN": st.sampled_from(["1", "50%", "0", "101%", "x"]),
    "NAME": st.sampled_from(["app.Orders", "", "health.example.test", "\udcff", "a b"]),
    "TEXT": st.sampled_from(["probe/1.0", "", "\x01"]),
    # A header's value is a secret wherever it goes (checked in assert_ends_cleanly).
    "KEY: VALUE": st.sampled_from(
        ["authorization: Bearer s3cr3t-no-traceback", "Bad Key: v", "no colon", "grpc-x: 1"]
    ),
    "KEY:VARIABLE": st.sampled_from(["x-token:HOME", "x-token:UNSET_VARIABLE", "x"]),
    "STATUS=STATE": st.sampled_from(["NOT_SERVING=WARNING", "SERVING=3", "bogus=OK", "x"]),
}


def option_tokens(draw: st.DrawFn, name: str, metavar: str | None) -> list[str]:
    if metavar is None:
        return [name]
    if name == "--wait":
        value = draw(short_waits)
    elif metavar in BY_METAVAR and draw(st.integers(0, 3)):
        value = draw(BY_METAVAR[metavar])
    else:
        value = draw(values)
    if name.startswith("--") and draw(st.booleans()):
        return [f"{name}={value}"]
    return [name, value]


@st.composite
def plugin_argv(draw: st.DrawFn, *, help_too: bool = True) -> list[str]:
    argv: list[str] = []
    if draw(st.integers(0, 9)):  # mostly with an address
        argv += ["-H", draw(hosts)]
    choices = [item for item in PLUGIN_OPTIONS if help_too or item[0] not in ("-h", "--help")]
    for name, metavar in draw(st.lists(st.sampled_from(choices), max_size=4)):
        argv += option_tokens(draw, name, metavar)
    if draw(st.integers(0, 4)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(st.one_of(values, st.just("--"))))
    return argv


def offline_and_quick(options: PluginOptions) -> bool:
    """Only a closed port on this machine (or a socket path), and no long wait."""
    target = options.probe.target
    if options.wait is not None and options.wait > 0.5:
        return False
    return target.host is None or (target.host in LOOPBACK and target.port == CLOSED_PORT)


def plugin_argv_is_safe(argv: list[str]) -> bool:
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            options = parse_arguments(argv, {"HOME": "/root"})
    except (InvalidArgument, SystemExit):
        return True  # refused (or help) before anything is dialled
    return offline_and_quick(options)


# --- running a tool as a process ---------------------------------------------------------


def run(argv: list[str], cwd: Path, *, stdin: str = "") -> Finished:
    started = time.monotonic()
    done = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=cli_env(),
        check=False,
    )
    return Finished(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def run_and_stop(argv: list[str], cwd: Path, marker: str | None) -> Finished:
    """Run a tool that may stay (serve, watch); SIGTERM it once it prints ``marker`` on
    stdout, or (without a marker) once it has run ``SETTLE`` seconds."""
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=cli_env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def read_stdout() -> None:
        for line in stdout:
            lines.put(line)
        lines.put("")

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    seen: list[str] = []
    deadline = time.monotonic() + (20 if marker else SETTLE)
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(line)
            if marker is not None and line.startswith(marker):
                break
        if process.poll() is None:
            event("stopped with SIGTERM")
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        assert process.stderr is not None
        stderr = process.stderr.read()
    finally:
        process.kill()
        process.wait()
    reader.join(timeout=10)
    while not lines.empty():
        seen.append(lines.get())
    return Finished(process.returncode, "".join(seen), stderr, 0.0)


def assert_ends_cleanly(done: Finished, codes: set[int], prefix: str | None, most: int) -> None:
    """A documented code, no traceback, and at most ``most`` stderr lines, each the
    tool's own (starting with ``prefix``, when the tool has one)."""
    done.assert_clean()
    assert done.code in codes, done
    lines = done.stderr.splitlines()
    assert len(lines) <= most, done.stderr
    if prefix is not None:
        assert all(line.startswith(prefix) for line in lines), done.stderr
    assert "s3cr3t-no-traceback" not in done.output
    if "internal error" in done.output:
        event("internal error (one line)")
    event(f"exit {done.code}")


SLOW = settings(
    max_examples=PROCESS_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# --- the plugin ----------------------------------------------------------------------------


@given(argv=plugin_argv())
@SLOW
def test_plugin_any_argv(argv: list[str], workdir: Path) -> None:
    assume(plugin_argv_is_safe(argv))
    done = run([PLUGIN, *argv], workdir)
    # The plugin speaks on stdout only: monitoring cores mix stderr into the output.
    assert_ends_cleanly(done, PLUGIN_CODES, None, 0)
    if done.code != 0:
        assert done.stdout.startswith(("GRPC_HEALTH ", "{")), done.stdout


# --- the probe -----------------------------------------------------------------------------


@st.composite
def probe_argv(draw: st.DrawFn) -> list[str]:
    from check_grpc_health.probe_cli.flags import FLAGS, Kind

    argv = [f"-addr={CLOSED}"] if draw(st.integers(0, 9)) else []
    names = [flag.name for flag in FLAGS] + ["h", "nope", "addr", "wait", "watch"]
    for name in draw(st.lists(st.sampled_from(names), max_size=6)):
        flag = next((item for item in FLAGS if item.name == name), None)
        dashes = draw(st.sampled_from(["-", "--"]))
        if name == "addr":
            value = draw(hosts)
        elif name == "wait":
            value = draw(st.sampled_from(["0", "200ms", "-1s", "1e308s", "x", "1"]))
        elif flag is not None and flag.kind is Kind.BOOL:
            value = draw(st.sampled_from(["true", "false", "1", "maybe", ""]))
        elif flag is not None and flag.kind is Kind.DURATION:
            value = draw(st.sampled_from(["0", "250ms", "-1s", "2562048h", "1e308s", "x", "1ns"]))
        elif name.startswith("tls-") or name == "rpc-header-file":
            value = draw(files)
        else:
            value = draw(values)
        form = draw(st.sampled_from(["bare", "equals", "separate"]))
        argv += {
            "bare": [dashes + name],
            "equals": [f"{dashes}{name}={value}"],
            "separate": [dashes + name, value],
        }[form]
    if draw(st.integers(0, 4)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(values))
    return argv


def probe_argv_is_safe(argv: list[str]) -> bool:
    from check_grpc_health.probe_cli.durations import SECOND
    from check_grpc_health.probe_cli.flags import UsageError, parse_flags

    try:
        settings = parse_flags(argv)
    except UsageError:
        return True
    if settings.watch or settings.wait > SECOND // 2:
        return False  # they stay by design (tests/probe_cli/test_wait.py has theirs)
    try:
        from check_grpc_health.core.targets import parse_target

        target = parse_target(settings.addr)
    except InvalidArgument:
        return True
    return target.host is None or (target.host in LOOPBACK and target.port == CLOSED_PORT)


@pytest.fixture
def no_spiffe_socket() -> Iterator[None]:
    saved = os.environ.pop("SPIFFE_ENDPOINT_SOCKET", None)
    yield
    if saved is not None:
        os.environ["SPIFFE_ENDPOINT_SOCKET"] = saved


@given(argv=probe_argv())
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_probe_any_argv_in_process(
    argv: list[str], workdir: Path, no_spiffe_socket: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from check_grpc_health.probe_cli.main import main

    assume(probe_argv_is_safe(argv))
    monkeypatch.chdir(workdir)
    stdout, stderr = io.StringIO(), io.StringIO()
    # Any exception escaping main() fails this test: it would be a traceback.
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    done = Finished(code, stdout.getvalue(), stderr.getvalue(), 0.0)
    usage_lines = 60  # Go's usage block follows a flag error
    assert_ends_cleanly(done, PROBE_CODES, None, usage_lines)
    if code != 0:
        assert done.stderr.strip(), "a failure always says why"


@given(argv=probe_argv())
@settings(
    max_examples=max(PROCESS_EXAMPLES // 3, 5),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_probe_any_argv_as_a_process(argv: list[str], workdir: Path) -> None:
    assume(probe_argv_is_safe(argv))
    done = run([PROBE, *argv], workdir)
    assert_ends_cleanly(done, PROBE_CODES, None, 60)


# --- the fleet -----------------------------------------------------------------------------

LABELS = [
    "web1!grpc:",
    "web1!grpc-orders:",
    "a!b:",
    "web1!grpc:",
    "no-bang:",
    "x!y!z:",
    "!:",
    "h!s;x:",
    "h!s|x:",
    "\udcff!s:",
]


@st.composite
def fleet_line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["plain", "check", "check", "check", "comment", "blank", "junk"]))
    if kind == "plain":
        return f"web{draw(st.integers(1, 3))}!grpc: -H {CLOSED}"
    if kind == "comment":
        return "# " + draw(argv_text)
    if kind == "blank":
        return draw(st.sampled_from(["", "   ", "\t"]))
    if kind == "junk":
        return draw(argv_text)
    words = draw(plugin_argv(help_too=False))
    label = draw(st.one_of(st.none(), st.sampled_from(LABELS), argv_text.map(lambda t: t + ":")))
    quoted = draw(st.booleans())
    import shlex

    text = shlex.join(words) if quoted else " ".join(words)
    return f"{label} {text}" if label is not None else text


fleet_text = st.lists(fleet_line(), max_size=6).map("\n".join)


def fleet_file_is_safe(path: Path) -> bool:
    from check_grpc_health.fleet.file import read_fleet

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            entries = read_fleet(str(path), {"HOME": "/root"}, 30.0)
    except InvalidArgument:
        return True
    return all(entry.options is None or offline_and_quick(entry.options) for entry in entries)


SINK_VALUES: dict[str, st.SearchStrategy[str]] = {
    "--textfile": st.sampled_from(["out.prom", "missing/out.prom", "dir", "", "out.txt"]),
    "--command-file": st.sampled_from(["cmd", "missing/cmd", "dir", "/dev/null", ""]),
    "--icinga2-api": st.sampled_from(
        [f"https://{CLOSED}", f"http://{CLOSED}", "ftp://127.0.0.1", "not a url", ""]
    ),
    "--icinga2-user": st.sampled_from(["grpc-fleet", "", "\udcff"]),
    "--icinga2-password-file": st.sampled_from(["password", "missing", "dir", ""]),
    "--icinga2-ca": st.sampled_from(["ca.pem", "not-pem.pem", "missing", "dir"]),
    "--check-source": values,
    "--ttl": values,
}
FLEET_VALUES: dict[str, st.SearchStrategy[str]] = {
    **SINK_VALUES,
    "-t": st.sampled_from(["0.5", "5", "0", "-1", "nan", "inf", "1e308", "86401", "x"]),
    "--concurrency": st.sampled_from(["1", "8", "0", "-1", "x", "100000"]),
    "--format": st.sampled_from(["table", "json", "prometheus", "x"]),
    "--json": st.just(""),
    "-q": st.just(""),
    "-v": st.just(""),
    "-V": st.just(""),
}
WATCH_VALUES: dict[str, st.SearchStrategy[str]] = {
    **SINK_VALUES,
    "--interval": st.sampled_from(["1", "60", "0.5", "0", "nan", "1e308", "x"]),
    "--format": st.sampled_from(["json", "table", "prometheus", "x"]),
    "--threads": st.sampled_from(["1", "8", "0", "x"]),
    "--json": st.just(""),
    "-v": st.just(""),
}


@st.composite
def options_of(draw: st.DrawFn, table: dict[str, st.SearchStrategy[str]]) -> list[str]:
    argv: list[str] = []
    names = st.lists(st.sampled_from(sorted(table)), max_size=3)
    for name in draw(st.one_of(st.just([]), names)):
        value = draw(table[name])
        argv += [name] if name in ("--json", "-q", "-v", "-V") else [name, value]
    if draw(st.integers(0, 5)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(values))
    return argv


@given(text=fleet_text, options=options_of(FLEET_VALUES))
@example(text=f"api!grpc: -H {CLOSED}", options=["-t", "1e308"])  # a traceback once
@SLOW
def test_fleet_any_file_and_options(text: str, options: list[str], workdir: Path) -> None:
    path = workdir / "fleet.txt"
    path.write_text(text, errors="surrogateescape")
    assume(fleet_file_is_safe(path))
    done = run([FLEET, *options, str(path)], workdir)
    assert_ends_cleanly(done, FLEET_CODES, "check_grpc_health_fleet: ", 8)


@given(
    text=st.lists(fleet_line(), min_size=1, max_size=4).map("\n".join),
    options=options_of(WATCH_VALUES),
)
@example(text=f"web1!grpc: -H {CLOSED}\nnot a line", options=["-v", "--json"])
@settings(
    max_examples=max(PROCESS_EXAMPLES // 5, 4),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_fleet_watch_any_file_and_options(text: str, options: list[str], workdir: Path) -> None:
    path = workdir / "watched.txt"
    path.write_text(text, errors="surrogateescape")
    assume(fleet_file_is_safe(path))
    done = run_and_stop([FLEET, "--watch", *options, str(path)], workdir, None)
    # Stopped or refused; every stderr line is one of the monitor's own.
    assert_ends_cleanly(done, WATCH_CODES, "check_grpc_health_fleet: ", 200)


# --- the demo ------------------------------------------------------------------------------

DEMO_VALUES: dict[str, st.SearchStrategy[str]] = {
    "--host": st.sampled_from(["127.0.0.1", "::1", "[::1]", "localhost", "\udcff", "::1]"]),
    "--port": st.sampled_from(["0", "-1", "65536", "x", "", "0x10"]),
    "--status": st.one_of(
        st.sampled_from(["=SERVING", "a=not_serving", "a=bogus", "noequals", "\udcff=SERVING"]),
        values,
    ),
    "--flip": st.one_of(
        st.builds(lambda delay: f"a=SERVING@{delay}", st.sampled_from([*NUMBERS, "x", ""])),
        st.sampled_from(["a=SERVING", "@1", "a=bogus@1"]),
        values,
    ),
}


@st.composite
def demo_argv(draw: st.DrawFn) -> list[str]:
    argv = ["serve"] if draw(st.integers(0, 9)) else []
    names = [*sorted(DEMO_VALUES), "-h", "--po", "--hos"]
    for name in draw(st.lists(st.sampled_from(names), max_size=5)):
        argv += [name] if name == "-h" else [name, draw(DEMO_VALUES.get(name, values))]
    if draw(st.integers(0, 4)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(values))
    return argv


def demo_argv_is_safe(argv: list[str]) -> bool:
    """Refused, or serving on a port the kernel picks on this machine's loopback."""
    from check_grpc_health.demo import make_parser

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            args = make_parser().parse_args(argv)
    except SystemExit:
        return True
    # Without "serve" the whole demo runs (tests/demo/test_demo.py has it).
    return args.command == "serve" and args.port == 0 and args.host.strip("[]") in LOOPBACK


@given(argv=demo_argv())
@example(argv=["serve", "--port", "0", "--flip", "a=SERVING@inf"])  # a thread traceback once
@SLOW
def test_demo_any_argv(argv: list[str], workdir: Path) -> None:
    assume(demo_argv_is_safe(argv))
    done = run_and_stop([DEMO, *argv], workdir, "serving grpc.health.v1 on ")
    # argparse's own usage block (a few lines) comes before its one error line.
    assert_ends_cleanly(done, DEMO_CODES, None, 8)
    usage = [line for line in done.stderr.splitlines() if not line.startswith(" ")]
    assert all(line.startswith(("usage: ", "check-grpc-health-demo")) for line in usage), (
        done.stderr
    )


def test_every_tool_is_driven() -> None:
    """The control: the strategies reach every option of the plugin and of the demo."""
    names = {name for name, _ in PLUGIN_OPTIONS}
    assert {"-H", "--wait", "--json", "--metadata-file", "--all-addresses", "-4"} <= names
    assert set(DEMO_VALUES) == {"--host", "--port", "--status", "--flip"}
