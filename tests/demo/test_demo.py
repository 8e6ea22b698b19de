"""The README's demo: an embedded server, the real tools against it, and a Watch."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from support.paths import DEMO


def test_demo_shows_real_results_from_a_real_server() -> None:
    done = subprocess.run([DEMO], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    text = re.sub(r"127\.0\.0\.1:\d{3,}", "ADDR", done.stdout)
    text = re.sub(r"\d+\.\d+s\b", "Xs", text)
    blocks = text.split("\n\n")
    assert blocks[0].splitlines()[0] == "Embedded health server on ADDR with services:"
    expected = [
        ("$ check_grpc_health -H ADDR", "GRPC_HEALTH OK - ADDR: overall health is SERVING", 0),
        (
            "$ check_grpc_health -H ADDR -s orders -s payments",
            "GRPC_HEALTH CRITICAL - ADDR: service 'payments' is NOT_SERVING",
            2,
        ),
        (
            "$ check_grpc_health -H ADDR -w 0.000001 -c 1",
            "GRPC_HEALTH WARNING - ADDR: time is Xs (outside range 0:0.000001)",
            1,
        ),
        (
            "$ check_grpc_health -H 127.0.0.1:1",
            "GRPC_HEALTH CRITICAL - failed to connect to 127.0.0.1:1: Connection refused",
            2,
        ),
        ("$ grpc_health_probe -addr=ADDR", "status: SERVING", 0),
        (
            "$ grpc_health_probe -addr=ADDR -service=payments",
            'service unhealthy (responded with "NOT_SERVING")',
            4,
        ),
        (
            "$ grpc_health_probe -addr=ADDR -service=nope",
            "error: health rpc failed: rpc error: code = NotFound desc = ",
            3,
        ),
    ]
    for block, (command, first, code) in zip(blocks[1:], expected, strict=False):
        lines = block.splitlines()
        assert lines[0] == command
        assert lines[1].startswith(f"  {first}"), lines[1]
        assert lines[-1] == f"  [exit code {code}]"
    last = blocks[len(expected) + 1].splitlines()
    assert last[0] == "Waiting on the Watch stream until 'search' is SERVING ..."
    assert re.fullmatch(
        r"  reached after 2\.\d\d s via watch, \d+\.\d ms after the server flipped", last[1]
    )


def serve(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [DEMO, "serve", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        stdout, stderr = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate(timeout=15)
        raise AssertionError(f"still serving: {stdout!r}") from None
    return process.returncode, stdout, stderr


def serving_address(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    first = process.stdout.readline()
    found = re.fullmatch(r"serving grpc\.health\.v1 on (\S+) \(Ctrl-C to stop\)\n", first)
    assert found is not None, first + (process.stderr.read() if process.poll() is not None else "")
    return found.group(1)


def test_serve_refuses_a_port_that_is_taken() -> None:
    # grpcio servers share a port with SO_REUSEPORT by default: the holder here does, and
    # the demo must still refuse to serve beside it.
    holder = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = holder.add_insecure_port("127.0.0.1:0")
    holder.start()
    try:
        code, stdout, stderr = finish(serve("--port", str(port)))
    finally:
        holder.stop(None)
    assert (code, stdout) == (1, "")
    assert stderr == (
        f"check-grpc-health-demo: cannot serve on 127.0.0.1:{port}: Address already in use\n"
    )


def test_a_second_demo_on_the_same_port_is_refused() -> None:
    first = serve("--port", "0")
    try:
        address = serving_address(first)
        code, _, stderr = finish(serve("--port", address.rpartition(":")[2]))
        assert code == 1
        assert stderr == (
            f"check-grpc-health-demo: cannot serve on {address}: Address already in use\n"
        )
    finally:
        first.send_signal(signal.SIGTERM)
        assert finish(first)[0] == 0


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_serve_on_ipv6_loopback_serves_or_says_why_not() -> None:
    process = serve("--host", "::1", "--port", "0")
    if not ipv6_loopback():
        code, stdout, stderr = finish(process)
        assert (code, stdout) == (1, "")
        assert re.fullmatch(r"check-grpc-health-demo: cannot serve on \[::1\]:0: [^\n]+\n", stderr)
        return
    try:
        address = serving_address(process)
        assert re.fullmatch(r"\[::1\]:\d+", address)
        checked = subprocess.run(
            [str(Path(DEMO).with_name("check_grpc_health")), "-H", address],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout
        assert checked.stdout.startswith(f"GRPC_HEALTH OK - {address}: overall health is SERVING")
    finally:
        process.send_signal(signal.SIGTERM)
    code, _, stderr = finish(process)
    assert (code, stderr) == (0, "")


def test_an_address_that_cannot_be_served_is_one_line() -> None:
    code, stdout, stderr = finish(serve("--host", "no-such-host.invalid", "--port", "50999"))
    assert (code, stdout) == (1, "")
    assert stderr.startswith("check-grpc-health-demo: cannot serve on no-such-host.invalid:50999: ")
    assert stderr.count("\n") == 1
    assert "Traceback" not in stderr


def test_help_describes_the_demo_for_its_user() -> None:
    top = subprocess.run([DEMO, "--help"], capture_output=True, text=True, timeout=30, check=True)
    assert "Layer:" not in top.stdout
    assert "``" not in top.stdout
    assert "embedded gRPC health server" in top.stdout
    assert "serve" in top.stdout
    served = subprocess.run(
        [DEMO, "serve", "--help"], capture_output=True, text=True, timeout=30, check=True
    )
    text = " ".join(served.stdout.split())
    assert "--host HOST address to listen on, IPv4 or IPv6 (default: 127.0.0.1)" in text
    assert "--port PORT TCP port to listen on; 0 picks a free one (default: 50051)" in text


def test_option_names_are_exact() -> None:
    code, stdout, stderr = finish(serve("--po", "0"))
    assert (code, stdout) == (1, "")
    assert stderr.splitlines()[-1] == (
        "check-grpc-health-demo: error: unrecognized arguments: --po 0"
    )


FLIP_ERROR = "check-grpc-health-demo serve: error: argument --flip: "


@pytest.mark.parametrize(
    ("flip", "message"),
    [
        *(
            (
                f"search=SERVING@{delay}",
                f"bad delay in 'search=SERVING@{delay}': SECONDS must be a number from 0 to 86400",
            )
            for delay in ("inf", "1e308", "-1", "nan", "soon", "86401")
        ),
        (
            "search=SERVING",
            "expected SERVICE=STATUS@SECONDS, got 'search=SERVING': @SECONDS is missing",
        ),
    ],
)
def test_a_bad_flip_is_refused_in_one_line(flip: str, message: str) -> None:
    code, stdout, stderr = finish(serve("--port", "0", "--flip", flip))
    assert (code, stdout) == (1, "")
    assert stderr.splitlines()[-1] == FLIP_ERROR + message
    assert "Traceback" not in stderr


def test_a_flip_within_the_limits_is_served() -> None:
    process = serve("--port", "0", "--status", "search=NOT_SERVING", "--flip", "search=SERVING@0")
    try:
        address = serving_address(process)
        checked = subprocess.run(
            [
                str(Path(DEMO).with_name("check_grpc_health")),
                "-H",
                address,
                "-s",
                "search",
                "--wait",
                "10",
                "-t",
                "15",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout
    finally:
        process.send_signal(signal.SIGTERM)
    assert finish(process)[::2] == (0, "")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--host", "\udcff", "argument --host: host '\\udcff' is not valid UTF-8"),
        (
            "--status",
            "\udcff=SERVING",
            "argument --status: service name '\\udcff' is not valid UTF-8",
        ),
    ],
)
def test_undecodable_bytes_are_refused_in_one_line(option: str, value: str, message: str) -> None:
    code, stdout, stderr = finish(serve("--port", "0", option, value))
    assert (code, stdout) == (1, "")
    assert stderr.splitlines()[-1] == f"check-grpc-health-demo serve: error: {message}"


def test_a_value_with_a_line_break_is_refused_in_one_line() -> None:
    code, stdout, stderr = finish(serve("--port", "x\ny"))
    assert (code, stdout) == (1, "")
    assert stderr.splitlines()[-1] == (
        "check-grpc-health-demo serve: error: argument --port: not a TCP port number: 'x\\ny'"
    )
    code, _, stderr = finish(serve("--po", "line\nbreak"))
    assert code == 1
    assert stderr.splitlines()[-1] == (
        "check-grpc-health-demo: error: unrecognized arguments: --po line break"
    )
