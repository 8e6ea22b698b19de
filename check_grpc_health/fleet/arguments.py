"""The fleet's command-line options that the one-shot run and ``--watch`` share.

Layer: adapter (the fleet). The deliveries (Icinga 2 API, command pipe, textfile) are
set the same way in both modes; each mode adds its own options to the parser.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any, NoReturn

from check_grpc_health.core.options import parse_seconds
from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.fleet.sinks.icinga2_settings import PASSWORD_VARIABLE

if TYPE_CHECKING:
    from check_grpc_health.fleet.sinks.icinga2_settings import Icinga2Api

DEFAULT_TTL = 300.0


class Parser(argparse.ArgumentParser):
    """argparse with errors as :class:`InvalidArgument` (one line, the tool's exit code),
    and only whole option names: a typo must not mean another option (``--conc``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise InvalidArgument(message)


def add_delivery_options(parser: argparse.ArgumentParser, ttl: float = DEFAULT_TTL) -> None:
    """The ``deliveries`` group: where labelled results go."""
    sinks = parser.add_argument_group(
        "deliveries",
        "Results of lines labelled HOST!SERVICE: go to these; a line without a label "
        "cannot be submitted, which counts as a failed delivery (exit code 3).",
    )
    sinks.add_argument(
        "--textfile",
        metavar="PATH",
        help="write Prometheus text format to PATH atomically (node_exporter's textfile "
        "collector; PATH ends in .prom)",
    )
    sinks.add_argument(
        "--command-file",
        metavar="PATH",
        help="write passive check results to the external command pipe of Nagios, "
        "Naemon or Icinga 2",
    )
    sinks.add_argument(
        "--icinga2-api",
        metavar="URL",
        help="submit passive check results, e.g. https://icinga2-node.example:5665 (the "
        "name in the API's certificate: Icinga's own CA issues it for the node's name)",
    )
    sinks.add_argument("--icinga2-user", metavar="NAME", help="the Icinga 2 API user")
    sinks.add_argument(
        "--icinga2-password-file",
        metavar="PATH",
        help=f"read the API user's password from PATH (else from ${PASSWORD_VARIABLE})",
    )
    sinks.add_argument(
        "--icinga2-ca",
        metavar="PATH",
        help="CA certificate(s) to verify the API with (default: the system's CAs)",
    )
    sinks.add_argument(
        "--check-source",
        metavar="NAME",
        help="check_source of submitted results (default: this machine's host name)",
    )
    sinks.add_argument(
        "--ttl",
        default=None,
        metavar="SECONDS",
        help=f"after SECONDS without a new result, Icinga 2 runs the service's own check "
        f"(default {ttl:g}; 0 sends none)",
    )


def icinga2_settings(args: argparse.Namespace, ttl: float = DEFAULT_TTL) -> Icinga2Api | None:
    """The Icinga 2 API settings from the options; None without ``--icinga2-api``."""
    named = [
        option
        for option, value in (
            ("--icinga2-user", args.icinga2_user),
            ("--icinga2-password-file", args.icinga2_password_file),
            ("--icinga2-ca", args.icinga2_ca),
            ("--check-source", args.check_source),
            ("--ttl", args.ttl),
        )
        if value is not None
    ]
    if args.icinga2_api is None:
        if named:
            raise InvalidArgument(f"{named[0]} needs --icinga2-api URL")
        return None
    import socket

    from check_grpc_health.fleet.sinks.icinga2_settings import icinga2_api_settings

    if args.ttl is not None:
        text = args.ttl.strip()
        ttl = float(text) if text in ("0", "0.0") else parse_seconds("--ttl", args.ttl)
    return icinga2_api_settings(
        args.icinga2_api,
        args.icinga2_user,
        args.icinga2_password_file,
        args.icinga2_ca,
        args.check_source or socket.gethostname(),
        ttl,
        os.environ,
    )
