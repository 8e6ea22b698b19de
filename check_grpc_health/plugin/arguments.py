"""The plugin's command line: argv to one validated :class:`PluginOptions`.

Layer: adapter (the Nagios/Icinga plugin). argparse, with every argument error raised
as :class:`InvalidArgument` (UNKNOWN, exit 3) instead of argparse's exit 2. Importing
this module does not import grpc, so a bad command line fails fast.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any, NoReturn

import nagiosplugin

from check_grpc_health import __version__
from check_grpc_health.core.options import ProbeOptions, parse_metadata, parse_seconds
from check_grpc_health.core.results import HealthStatus, InvalidArgument
from check_grpc_health.core.targets import parse_target
from check_grpc_health.core.tls import TlsOptions
from check_grpc_health.plugin.metadata import read_metadata_env, read_metadata_file
from check_grpc_health.plugin.options import (
    ANY,
    DEFAULT_TIMEOUT,
    OutputMode,
    PluginOptions,
    Thresholds,
)
from check_grpc_health.plugin.thresholds import parse_days
from check_grpc_health.plugin.thresholds import parse_range as _parse_range

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence

    from nagiosplugin.state import ServiceState

_STATES_BY_NAME: dict[str, ServiceState] = {
    "OK": nagiosplugin.Ok,
    "0": nagiosplugin.Ok,
    "WARNING": nagiosplugin.Warn,
    "WARN": nagiosplugin.Warn,
    "1": nagiosplugin.Warn,
    "CRITICAL": nagiosplugin.Critical,
    "CRIT": nagiosplugin.Critical,
    "2": nagiosplugin.Critical,
    "UNKNOWN": nagiosplugin.Unknown,
    "3": nagiosplugin.Unknown,
}


# No health check waits a day; a longer timeout is a typo.
_MAX_SECONDS = 86400.0
_FAMILY_FLAGS = {"-4": "--ipv4", "-6": "--ipv6"}

# Ranges and targets are immutable values, and a fleet file repeats the same few of them
# on thousands of lines: each text is parsed once per process. Errors are not cached.
parse_range = functools.lru_cache(maxsize=1024)(_parse_range)
_parse_target = functools.lru_cache(maxsize=4096)(parse_target)


def parse_status_state(text: str) -> tuple[HealthStatus, ServiceState]:
    """``NOT_SERVING=WARNING``: report a health status as another plugin state."""
    status_text, sep, state_text = text.replace(":", "=", 1).partition("=")
    status_key = status_text.strip().upper().replace("-", "_")
    state = _STATES_BY_NAME.get(state_text.strip().upper())
    if not sep or status_key not in HealthStatus.__members__ or state is None:
        raise InvalidArgument(
            f"--map-status {text!r} is not STATUS=STATE (STATUS: SERVING, NOT_SERVING, "
            "UNKNOWN or SERVICE_UNKNOWN; STATE: OK, WARNING, CRITICAL or UNKNOWN)"
        )
    return HealthStatus[status_key], state


@functools.cache
def _parser() -> argparse.ArgumentParser:
    """The plugin's parser, built once per process: the fleet parses every line with it."""
    import argparse

    class Parser(argparse.ArgumentParser):
        """Argument errors are UNKNOWN (exit 3), never argparse's exit 2."""

        def error(self, message: str) -> NoReturn:
            raise InvalidArgument(message)

    parser = Parser(
        prog="check_grpc_health",
        description=(
            "Check a gRPC server through the standard health checking protocol "
            "(grpc.health.v1.Health/Check). Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, "
            "3 UNKNOWN. Times are in seconds; ranges use the Nagios range syntax."
        ),
        allow_abbrev=False,
    )
    add = parser.add_argument
    add(
        "-H",
        "--host",
        required=True,
        metavar="ADDRESS",
        help="host, IP, [v6], host:port, grpc[s]://host:port, http[s]://host[:port], "
        "unix:/path or dns:///name:port",
    )
    add("-p", "--port", metavar="PORT", help="port, when ADDRESS has none")
    add(
        "-s",
        "--service",
        action="append",
        metavar="NAME",
        help="service to check (repeatable); default: the overall health ''",
    )
    add(
        "-w",
        "--warning",
        default="",
        metavar="RANGE",
        help="WARNING when the total time in seconds is outside RANGE",
    )
    add(
        "-c",
        "--critical",
        default="",
        metavar="RANGE",
        help="CRITICAL when the total time in seconds is outside RANGE",
    )
    add("--connect-warning", default="", metavar="RANGE", help="WARNING range on connect_time")
    add("--connect-critical", default="", metavar="RANGE", help="CRITICAL range on connect_time")
    add("--rpc-warning", default="", metavar="RANGE", help="WARNING range on rpc_time")
    add("--rpc-critical", default="", metavar="RANGE", help="CRITICAL range on rpc_time")
    add(
        "-t",
        "--timeout",
        default=str(int(DEFAULT_TIMEOUT)),
        metavar="SECONDS",
        help="overall time budget (default 10); past it the check is CRITICAL",
    )
    add(
        "--connect-timeout",
        metavar="SECONDS",
        help="connect deadline (default: half of -t, or of what --wait leaves of it)",
    )
    add(
        "--rpc-timeout",
        metavar="SECONDS",
        help="health RPC deadline (default: half of -t, or of what --wait leaves of it)",
    )
    add(
        "--wait",
        metavar="SECONDS",
        help="wait up to SECONDS (less than -t) for SERVING before judging; not for "
        "monitoring, for scripts that start a server",
    )
    add("--tls", action="store_true", help="use TLS (implied by the other TLS options)")
    add("--ca-cert", metavar="FILE", help="CA certificates (PEM) to verify the server")
    add("--client-cert", metavar="FILE", help="client certificate (PEM) for mutual TLS")
    add("--client-key", metavar="FILE", help="client key (PEM) for mutual TLS")
    add("--server-name", metavar="NAME", help="name to verify the server certificate against")
    add(
        "--insecure",
        action="store_true",
        help="TLS, but pin the server's certificate on first use instead of verifying it",
    )
    add("--cert-warning", metavar="DAYS", help="WARNING when the certificate has < DAYS left")
    add("--cert-critical", metavar="DAYS", help="CRITICAL when the certificate has < DAYS left")
    add(
        "-m",
        "--metadata",
        action="append",
        default=[],
        metavar="'KEY: VALUE'",
        help="request header (repeatable); visible in the process list",
    )
    add(
        "--metadata-file",
        action="append",
        default=[],
        metavar="FILE",
        help="read 'KEY: VALUE' header lines from FILE (repeatable)",
    )
    add(
        "--metadata-env",
        action="append",
        default=[],
        metavar="KEY:VARIABLE",
        help="header KEY with the value of environment VARIABLE (repeatable)",
    )
    add("--user-agent", metavar="TEXT", help="user agent to send")
    add("--authority", metavar="NAME", help="override the :authority header")
    add("--gzip", action="store_true", help="compress the requests with gzip")
    add("--no-proxy", action="store_true", help="ignore http_proxy/https_proxy/grpc_proxy")
    add(
        "--map-status",
        action="append",
        default=[],
        metavar="STATUS=STATE",
        help="report a health status as another state, e.g. NOT_SERVING=WARNING",
    )
    add(
        "--all-services",
        action="store_true",
        help="check the overall health and every service the server lists (needs reflection)",
    )
    add(
        "--all-addresses",
        action="store_true",
        help="resolve the host and check every address; reports N of M backends healthy",
    )
    # -4 and -6 are rewritten to these before parsing (see parse_arguments).
    add("--ipv4", action="store_true", help="-4: connect over IPv4 only (the name keeps TLS)")
    add("--ipv6", action="store_true", help="-6: connect over IPv6 only (the name keeps TLS)")
    add(
        "--backends-warning",
        metavar="MIN",
        help="WARNING when fewer backends than MIN (a count or N%%) are healthy (default 100%%)",
    )
    add(
        "--backends-critical",
        metavar="MIN",
        help="CRITICAL when fewer backends than MIN (a count or N%%) are healthy (default 50%%)",
    )
    add("--json", action="store_true", help="print one JSON object instead of plugin output")
    add("-q", "--quiet", action="store_true", help="print nothing when OK (for cron)")
    add("-v", "--verbose", action="count", default=0, help="more output (up to -vvv)")
    add("-V", "--version", action="version", version=f"check_grpc_health {__version__}")
    return parser


def parse_arguments(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> PluginOptions:
    """Parse and validate argv. Raises :class:`InvalidArgument` with one line."""
    # Registered as -4/-6, they would make argparse read every negative number
    # ("--rpc-timeout -1", "-w -5:10") as an option instead of a value.
    argv = [_FAMILY_FLAGS.get(item, item) for item in argv]
    args, extra = _parser().parse_known_args(argv)
    for item in extra:
        if item.startswith("-") and item != "-":
            raise InvalidArgument(f"unknown option {item.partition('=')[0]!r}")
        # Never echo it: it may be the rest of an unquoted 'key: secret' header.
        raise InvalidArgument(
            "unexpected argument (not shown); give the address with -H and quote "
            "each -m 'key: value'"
        )
    if args.json and args.quiet:
        raise InvalidArgument("--json and --quiet cannot be combined")
    timeout = _seconds_option("-t/--timeout", args.timeout)
    wait = None if args.wait is None else _wait_option(args.wait, timeout)
    # Every attempt while waiting ends by the wait's deadline; the Check that confirms
    # SERVING may take a whole RPC timeout more. Both fit in -t.
    share = (timeout - (wait or 0.0)) / 2
    connect_timeout = (
        share
        if args.connect_timeout is None
        else _seconds_option("--connect-timeout", args.connect_timeout)
    )
    rpc_timeout = (
        share if args.rpc_timeout is None else _seconds_option("--rpc-timeout", args.rpc_timeout)
    )
    if wait is not None and wait + rpc_timeout > timeout:
        raise InvalidArgument(
            f"--wait {args.wait} plus --rpc-timeout {args.rpc_timeout} exceed "
            f"-t {args.timeout}: the last Check would not fit"
        )
    tls = _tls_options(args)
    cert_days = Thresholds(
        parse_days("--cert-warning", args.cert_warning) if args.cert_warning else ANY,
        parse_days("--cert-critical", args.cert_critical) if args.cert_critical else ANY,
    )
    wants_certificate = bool(args.cert_warning or args.cert_critical)
    metadata = [parse_metadata(entry, number) for number, entry in enumerate(args.metadata, 1)]
    for path in args.metadata_file:
        metadata.extend(read_metadata_file(path))
    for entry in args.metadata_env:
        metadata.append(read_metadata_env(entry, os.environ if environ is None else environ))
    probe_options = ProbeOptions(
        target=_parse_target(args.host, args.port),
        services=tuple(args.service) if args.service else ("",),
        connect_timeout=connect_timeout,
        rpc_timeout=rpc_timeout,
        tls=tls,
        metadata=tuple(metadata),
        user_agent=args.user_agent,
        authority=args.authority,
        gzip=args.gzip,
        certificate_facts=wants_certificate,
        use_proxy=not args.no_proxy,
        family=0 if args.all_addresses else _family(args),
    )
    if wants_certificate and probe_options.tls is None:
        raise InvalidArgument("--cert-warning/--cert-critical need TLS (--tls)")
    output = OutputMode.JSON if args.json else OutputMode.QUIET if args.quiet else OutputMode.TEXT
    discovery = _discovery_options(args, probe_options)
    if wait is not None and (args.all_services or args.all_addresses):
        raise InvalidArgument(
            "--wait waits for the services named with -s; it cannot be combined with "
            "--all-services or --all-addresses"
        )
    return PluginOptions(
        probe=probe_options,
        time=Thresholds(
            parse_range("-w/--warning", args.warning), parse_range("-c/--critical", args.critical)
        ),
        connect_time=Thresholds(
            parse_range("--connect-warning", args.connect_warning),
            parse_range("--connect-critical", args.connect_critical),
        ),
        rpc_time=Thresholds(
            parse_range("--rpc-warning", args.rpc_warning),
            parse_range("--rpc-critical", args.rpc_critical),
        ),
        cert_days=cert_days,
        status_states=tuple(parse_status_state(entry) for entry in args.map_status),
        timeout=timeout,
        verbose=min(args.verbose, 3),
        wait=wait,
        output=output,
        **discovery,
    )


def _discovery_options(args: argparse.Namespace, probe_options: ProbeOptions) -> dict[str, Any]:
    """The ``--all-services``/``--all-addresses`` options, checked against each other."""
    if not args.all_addresses and (args.backends_warning or args.backends_critical):
        raise InvalidArgument("--backends-warning and --backends-critical need --all-addresses")
    if args.all_services and args.service:
        raise InvalidArgument("--all-services checks every service: leave out -s/--service")
    if not args.all_addresses:
        return {"all_services": args.all_services}
    if args.all_services:
        raise InvalidArgument("--all-services and --all-addresses cannot be combined")
    if probe_options.target.unix_path is not None:
        raise InvalidArgument("--all-addresses needs a host name, not a unix socket")
    from check_grpc_health.plugin.thresholds import parse_minimum

    return {
        "all_addresses": True,
        "address_family": _family(args),
        "backends_warning": parse_minimum("--backends-warning", args.backends_warning),
        "backends_critical": parse_minimum("--backends-critical", args.backends_critical),
    }


def _family(args: argparse.Namespace) -> int:
    """-4/-6 as a socket address family (0: any)."""
    import socket

    if args.ipv4 and args.ipv6:
        raise InvalidArgument("-4/--ipv4 and -6/--ipv6 cannot be combined")
    return socket.AF_INET if args.ipv4 else socket.AF_INET6 if args.ipv6 else 0


def _seconds_option(option: str, text: str) -> float:
    value = parse_seconds(option, text)
    if value > _MAX_SECONDS:
        # Also a guard for grpc, whose deadlines overflow long before float does.
        raise InvalidArgument(f"{option} {text!r} is more than a day ({_MAX_SECONDS:g} seconds)")
    return value


def _wait_option(text: str, timeout: float) -> float:
    wait = _seconds_option("--wait", text)
    if wait >= timeout:
        raise InvalidArgument(
            f"--wait {text!r} must be less than -t/--timeout ({timeout:g} seconds), "
            "which bounds the whole check"
        )
    return wait


def _tls_options(args: argparse.Namespace) -> TlsOptions | None:
    files_or_names = (args.ca_cert, args.client_cert, args.client_key, args.server_name)
    if not (args.tls or args.insecure or any(item is not None for item in files_or_names)):
        return None
    if args.insecure and args.ca_cert is not None:
        raise InvalidArgument("--insecure skips verification, so --ca-cert cannot be used with it")
    for option, value in (
        ("--ca-cert", args.ca_cert),
        ("--client-cert", args.client_cert),
        ("--client-key", args.client_key),
        ("--server-name", args.server_name),
    ):
        if value is not None and not value:
            raise InvalidArgument(f"{option} is empty")
    return TlsOptions(
        ca_cert=args.ca_cert,
        client_cert=args.client_cert,
        client_key=args.client_key,
        server_name=args.server_name,
        verify=not args.insecure,
    )
