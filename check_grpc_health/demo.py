"""The demo: an embedded health server, and the project's tools run against it.

Layer: adapter (a console script, ``check-grpc-health-demo``). Not on any hot path.

``check-grpc-health-demo`` starts a health server in this process with a few services
(one serving, one not, one that turns SERVING after a few seconds), then runs the real
``check_grpc_health`` plugin and ``grpc_health_probe`` commands against it and shows
what a user would see, exit codes included, and waits on the flipping service with
the core's Watch. ``check-grpc-health-demo serve`` only serves, with statuses from the
command line, for trying the tools by hand. A port that is taken is refused with one
line and exit code 1: the server turns grpcio's default ``SO_REUSEPORT`` off, which
would otherwise let a second server share the port with the first. Bad options exit 1
too, and option names are exact (no abbreviations), as in the other tools.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.results import HealthStatus
from check_grpc_health.core.targets import parse_target
from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    import grpc
    from grpc_health.v1 import health

_DEMO_STATUSES = {"": "SERVING", "orders": "SERVING", "payments": "NOT_SERVING"}
_FLIPPING_SERVICE = "search"
_FLIP_AFTER = 2.0
#: The longest --flip delay: a day, as the plugin's longest -t.
MAX_FLIP_DELAY = 86400.0
_DESCRIPTION = (
    "Start an embedded gRPC health server (one service serving, one not, one that turns "
    "SERVING after a few seconds), run check_grpc_health and grpc_health_probe against it "
    "and show their output and exit codes, then wait on the flipping service with Watch. "
    "'serve' only serves, with the statuses you give, for trying the tools by hand."
)
# grpcio sets SO_REUSEPORT on its listening sockets unless told not to; then a second
# server binds a port the first holds, and the kernel splits connections between them.
NO_PORT_SHARING = ("grpc.so_reuseport", 0)


class BindError(Exception):
    """The server could not listen on the address; ``str()`` is one line for the user."""


def start_server(
    statuses: dict[str, str], host: str = "127.0.0.1", port: int = 0
) -> tuple[grpc.Server, health.HealthServicer, int]:
    """Start a gRPC server with health, reflection, and the given statuses set.

    Raises :class:`BindError` when the address cannot be listened on (a taken port,
    an address this machine does not have).
    """
    # Imported here, so that main() can quiet grpc's own logging before grpc loads.
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=[NO_PORT_SHARING])
    servicer = health.HealthServicer(experimental_non_blocking=False)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for service, status in statuses.items():
        servicer.set(service, _status_number(status))
    # Reflection lists the health service and every named status, so that
    # `check_grpc_health --all-services` can be tried against the demo.
    from grpc_reflection.v1alpha import reflection

    listed = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
    reflection.enable_server_reflection([*listed, *filter(None, statuses)], server)
    try:
        bound = server.add_insecure_port(_host_port(host, port))
    except RuntimeError:
        bound = 0
    if not bound:
        server.stop(None)
        raise BindError(f"cannot serve on {_host_port(host, port)}: {_bind_reason(host, port)}")
    server.start()
    return server, servicer, bound


def _host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets as gRPC and URLs want it."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _bind_reason(host: str, port: int) -> str:
    """Why grpcio could not bind: the system's own words, from a plain bind attempt."""
    try:
        addresses = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return str(error.strerror)
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as attempt:  # no IPv6 at all fails here
                attempt.bind(address)
        except OSError as error:
            return str(error.strerror)
    return "the address is taken or not available on this machine"


def _status_number(name: str) -> int:
    try:
        number = int(HealthStatus[name.upper()])
    except KeyError:
        choices = ", ".join(status.name for status in HealthStatus)
        raise argparse.ArgumentTypeError(f"unknown status {name!r} (choose {choices})") from None
    return number


def _tool(name: str) -> str | None:
    """The console script installed beside this interpreter, else one on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def _run_and_show(argv: list[str]) -> None:
    tool = _tool(argv[0])
    print(f"$ {' '.join(argv)}")
    if tool is None:
        print(f"  ({argv[0]} is not installed)\n")
        return
    done = subprocess.run(
        [tool, *argv[1:]], capture_output=True, text=True, timeout=30, check=False
    )
    for line in (done.stdout + done.stderr).splitlines():
        print(f"  {line}")
    print(f"  [exit code {done.returncode}]\n")


def run_demo() -> int:
    """Start the embedded server, show the tools against it, then wait on a flip."""
    from check_grpc_health.core.watch import watch

    statuses = dict(_DEMO_STATUSES, **{_FLIPPING_SERVICE: "NOT_SERVING"})
    server, servicer, port = start_server(statuses)
    address = f"127.0.0.1:{port}"
    print(f"Embedded health server on {address} with services:")
    for service, status in statuses.items():
        print(f"  {service or '(overall)':<10} {status}")
    print(f"  ({_FLIPPING_SERVICE} turns SERVING {_FLIP_AFTER:g} s into the Watch below)\n")
    flipped_at: list[float] = []

    def flip() -> None:
        flipped_at.append(time.monotonic())
        servicer.set(_FLIPPING_SERVICE, HealthStatus.SERVING)

    timer = threading.Timer(_FLIP_AFTER, flip)
    try:
        _run_and_show(["check_grpc_health", "-H", address])
        _run_and_show(["check_grpc_health", "-H", address, "-s", "orders", "-s", "payments"])
        _run_and_show(["check_grpc_health", "-H", address, "-w", "0.000001", "-c", "1"])
        _run_and_show(["check_grpc_health", "-H", "127.0.0.1:1"])
        _run_and_show(["grpc_health_probe", f"-addr={address}"])
        _run_and_show(["grpc_health_probe", f"-addr={address}", "-service=payments"])
        _run_and_show(["grpc_health_probe", f"-addr={address}", "-service=nope"])
        print(f"Waiting on the Watch stream until {_FLIPPING_SERVICE!r} is SERVING ...")
        timer.start()
        result = watch(
            ProbeOptions(parse_target(address), services=(_FLIPPING_SERVICE,)), timeout=10
        )
        lag = (time.monotonic() - flipped_at[0]) * 1000 if flipped_at else float("nan")
        state = "reached" if result.reached else "NOT reached"
        print(
            f"  {state} after {result.elapsed:.2f} s via {result.method}, "
            f"{lag:.1f} ms after the server flipped"
        )
        return 0 if result.reached else 1
    finally:
        timer.cancel()
        server.stop(grace=None)


def serve(args: argparse.Namespace) -> int:
    """Serve until interrupted, with the statuses given on the command line."""
    statuses = dict(args.status) if args.status else {"": "SERVING"}
    try:
        server, servicer, port = start_server(statuses, args.host, args.port)
    except BindError as error:
        print(f"check-grpc-health-demo: {error}", file=sys.stderr)
        return 1
    for service, status, after in args.flip or ():
        timer = threading.Timer(after, servicer.set, (service, _status_number(status)))
        timer.daemon = True
        timer.start()
    # SIGTERM stops the server from here on: a caller that reads the "serving" line may
    # send it at once.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    address = _host_port(args.host, port)
    print(f"serving grpc.health.v1 on {address} (Ctrl-C to stop)", flush=True)
    for service, status in statuses.items():
        print(f"  {service or '(overall)'}: {status.upper()}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    servicer.enter_graceful_shutdown()
    server.stop(grace=1).wait()
    return 0


def _service_status(text: str) -> tuple[str, str]:
    service, sep, status = text.rpartition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected SERVICE=STATUS, got {text!r}")
    _check_text("service name", service)
    _status_number(status)
    return service, status.upper()


def _check_text(what: str, text: str) -> None:
    """argv carries undecodable bytes as lone surrogates; gRPC names must be UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not valid UTF-8") from None


def _host(text: str) -> str:
    _check_text("host", text)
    return text


def _port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port number: {text!r}")
    return number


def _flip(text: str) -> tuple[str, str, float]:
    spec, sep, after = text.rpartition("@")
    if not sep:
        raise argparse.ArgumentTypeError(
            f"expected SERVICE=STATUS@SECONDS, got {text!r}: @SECONDS is missing"
        )
    service, status = _service_status(spec)
    try:
        seconds = float(after)
    except ValueError:
        seconds = math.nan
    # Within a day: a Timer cannot wait past the platform's limit (inf, 1e308).
    if not 0 <= seconds <= MAX_FLIP_DELAY:
        raise argparse.ArgumentTypeError(
            f"bad delay in {text!r}: SECONDS must be a number from 0 to {MAX_FLIP_DELAY:g}"
        )
    return service, status, seconds


class _Parser(argparse.ArgumentParser):
    """argparse that exits 1 on bad options, as the demo does for every failure, with
    the error on one line (argparse quotes values as given, line breaks and all)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {clean_text(message)}\n")


def make_parser() -> argparse.ArgumentParser:
    """The demo's options; names are exact, so a typo cannot mean another option."""
    parser = _Parser(prog="check-grpc-health-demo", description=_DESCRIPTION, allow_abbrev=False)
    commands = parser.add_subparsers(dest="command")
    serve_parser = commands.add_parser(
        "serve",
        help="only serve, for trying the tools by hand",
        description="Serve grpc.health.v1 (and reflection) until Ctrl-C or SIGTERM. "
        "A port that is taken is refused with one line and exit code 1.",
        allow_abbrev=False,
    )
    serve_parser.add_argument(
        "--host",
        type=_host,
        default="127.0.0.1",
        help="address to listen on, IPv4 or IPv6 (default: %(default)s)",
    )
    serve_parser.add_argument(
        "--port",
        type=_port,
        default=50051,
        help="TCP port to listen on; 0 picks a free one (default: %(default)s)",
    )
    serve_parser.add_argument(
        "--status",
        action="append",
        type=_service_status,
        metavar="SERVICE=STATUS",
        help="set a status, e.g. orders=SERVING; an empty SERVICE is the overall health",
    )
    serve_parser.add_argument(
        "--flip",
        action="append",
        type=_flip,
        metavar="SERVICE=STATUS@SECONDS",
        help="change a status after a delay, e.g. search=SERVING@5",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``check-grpc-health-demo``."""
    args = make_parser().parse_args(argv)
    # grpc logs to stderr (a failed bind, for one); every failure it would log is
    # already in our own one line. Read when grpc loads.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    if args.command == "serve":
        return serve(args)
    return run_demo()


if __name__ == "__main__":
    sys.exit(main())
