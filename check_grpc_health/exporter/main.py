"""``check_grpc_health_exporter``: ``/probe`` and ``/metrics`` for Prometheus, on their own.

Layer: adapter (the exporter), the process. For those who want blackbox_exporter's way
(one synchronous check per scrape, through Prometheus' multi-target relabelling) without
a fleet file to watch: the same endpoints as the monitor's ``--listen``, less the
monitor's live state. SIGHUP reads the modules file again (a file that no longer reads
leaves the old modules in place, and says why); SIGTERM and SIGINT stop it.

Exit codes: 0 after a clean stop, 3 for bad arguments or files that cannot be read at the
start (as ``check_grpc_health_fleet``).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, NoReturn

from check_grpc_health import __version__
from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.exporter.options import (
    add_exporter_options,
    exporter_settings,
    reload_modules,
    start,
    url,
)
from check_grpc_health.signals import HELD_SIGNALS
from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

PROGRAM = "check_grpc_health_exporter"
UNKNOWN = 3


def _parser() -> argparse.ArgumentParser:
    from check_grpc_health.fleet.arguments import Parser

    parser = Parser(
        prog=PROGRAM,
        allow_abbrev=False,
        description=(
            "Serve /probe?target=HOST:PORT&module=NAME for Prometheus: one check_grpc_health "
            "check per scrape, with the options of the named module, as blackbox_exporter's "
            "gRPC prober; its own figures on /metrics."
        ),
    )
    add_exporter_options(parser, required=True)
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _say(text: str) -> None:
    sys.stderr.write(f"{PROGRAM}: {clean_text(text)}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console script entry point."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    arguments = sys.argv[1:] if argv is None else list(argv)
    # SIGTERM and SIGINT are held since start-up (see signals.py); SIGHUP joins them before
    # any thread starts, so every thread blocks all three and the main thread takes them
    # with sigwait. A handler would run only once the main thread ran Python again, and a
    # signal the kernel gave to a server's thread left it asleep in its wait (seen: the
    # exporter did not stop within 10 s of a SIGTERM).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        settings = exporter_settings(_parser().parse_args(arguments))
        assert settings is not None  # --listen is required
        if settings.modules is None:
            raise InvalidArgument("--modules FILE is needed: without it there is nothing to probe")
        server, endpoints = start(settings, title=PROGRAM)
    except InvalidArgument as error:
        _say(str(error))
        sys.exit(UNKNOWN)
    _say(f"serving /metrics and /probe on {url(server, settings)}")
    while True:
        signum = signal.sigwait({*HELD_SIGNALS, signal.SIGHUP})
        if signum != signal.SIGHUP:
            break
        settings = reload_modules(settings, endpoints, _say) or settings
    server.shutdown()
    server.server_close()
    _say(f"stopped by {signal.Signals(signum).name}")
    sys.stdout.flush()
    os._exit(0)
