"""The probe's words for a diagnosis: its option spelling and its diagnosis budget.

Layer: adapter (the drop-in probe). The Go tool's own lines stay byte for byte where
they are the same today (time-outs, RPC failures): there the diagnosis is only an extra
``-v`` line. Where the probe already differs (it fails at once where Go waits out the
connect timeout), the cause and the fix replace grpcio's text.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from check_grpc_health.probe_cli.gotext import hide_header_values

if TYPE_CHECKING:
    from collections.abc import Mapping

    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.results import HealthCheckError
    from check_grpc_health.probe_cli.flags import Settings

# How the probe writes the options a diagnosis names.
SPELLING: Mapping[str, str] = {
    "tls": "-tls",
    "no_tls": "leave out -tls",
    "ca_cert": "-tls-ca-cert",
    "insecure": "-tls-no-verify",
    "server_name": "-tls-server-name",
    "client_cert": "-tls-client-cert",
    "client_key": "-tls-client-key",
    "no_proxy": "-no-proxy",
    "gzip": "-gzip",
    "connect_timeout": "-connect-timeout",
    "rpc_timeout": "-rpc-timeout",
    "address": "-addr",
}
# A -v diagnosis of a Go-identical failure waits at most this long.
VERBOSE_BUDGET = 1.0


def diagnosed(error: HealthCheckError, options: ProbeOptions, deadline: float) -> str | None:
    """The diagnosis line of ``error`` in probe spelling, found by ``deadline``.

    ``deadline`` is a ``time.monotonic()`` instant; None when nothing useful was found.
    """
    from check_grpc_health.core.diagnosis import attach

    found = attach(error, options, max(deadline - time.monotonic(), 0.0))
    # "The health RPC failed: CODE: details" would only repeat Go's own line.
    if found.kind in ("other", "invalid_argument", "rpc_error"):
        return None
    return found.line(SPELLING)


def diagnosed_reason(
    settings: Settings, error: HealthCheckError, options: ProbeOptions, deadline: float
) -> str | None:
    """:func:`diagnosed`, with any header value a server echoed hidden."""
    words = diagnosed(error, options, deadline)
    return hide_header_values(words, settings.rpc_headers) if words else None
