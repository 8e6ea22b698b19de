"""The plugin's options: one immutable object that a run of the plugin needs.

Layer: adapter (the Nagios/Icinga plugin). Plain data, built by
:func:`check_grpc_health.plugin.arguments.parse_arguments` and read by the check.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import nagiosplugin

from check_grpc_health.core.results import HealthStatus

if TYPE_CHECKING:
    from collections.abc import Mapping

    from nagiosplugin.state import ServiceState

    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.plugin.thresholds import MinimumHealthy

NAME = "GRPC_HEALTH"
DEFAULT_TIMEOUT = 10.0
# How the plugin (and the fleet's lines) write the options a diagnosis names.
SPELLING: Mapping[str, str] = {
    "tls": "--tls",
    "no_tls": "leave out --tls",
    "ca_cert": "--ca-cert",
    "insecure": "--insecure",
    "server_name": "--server-name",
    "client_cert": "--client-cert",
    "client_key": "--client-key",
    "no_proxy": "--no-proxy",
    "gzip": "--gzip",
    "connect_timeout": "--connect-timeout",
    "rpc_timeout": "--rpc-timeout",
    "address": "-H",
}
# The diagnosis of a failure gets at most this long, and never past -t.
DIAGNOSIS_BUDGET = 2.0
# The backstop fires this long before -t runs out (counted from the process's start):
# time for a loaded machine to run it, write its one line and end the process, so
# that the line is out before -t even there. bench/time_limits.py measures it.
BACKSTOP_LEAD = 0.25
# What a diagnosis leaves before -t: the backstop's lead, and time to judge and print.
OUTPUT_MARGIN = BACKSTOP_LEAD + 0.15


# Every health status but SERVING means the service must not get traffic.
DEFAULT_STATUS_STATES: Mapping[HealthStatus, ServiceState] = {
    HealthStatus.SERVING: nagiosplugin.Ok,
    HealthStatus.NOT_SERVING: nagiosplugin.Critical,
    HealthStatus.UNKNOWN: nagiosplugin.Critical,
    HealthStatus.SERVICE_UNKNOWN: nagiosplugin.Critical,
}


class OutputMode(enum.Enum):
    """How the result is printed."""

    TEXT = "text"
    QUIET = "quiet"
    JSON = "json"


# No threshold: the empty range, which every value matches. Ranges are immutable, so
# one serves every option and every fleet line.
ANY = nagiosplugin.Range()


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A warning and a critical Nagios range for one metric."""

    warning: nagiosplugin.Range = ANY
    critical: nagiosplugin.Range = ANY


@dataclass(frozen=True, slots=True)
class PluginOptions:
    """Everything one run of the plugin needs, parsed and validated.

    ``status_states`` overrides :data:`DEFAULT_STATUS_STATES`. ``timeout`` is the
    overall budget (``-t``) enforced by the backstop timer in :func:`main`.
    ``wait`` (``--wait``) is how long to wait for SERVING before judging, if at all.
    ``started`` is the ``time.monotonic()`` instant ``-t`` counts from: the process's
    start for the console script; None counts it from when the check asks (a fleet's
    line, a caller in a process of its own).
    """

    probe: ProbeOptions
    time: Thresholds = field(default_factory=Thresholds)
    connect_time: Thresholds = field(default_factory=Thresholds)
    rpc_time: Thresholds = field(default_factory=Thresholds)
    cert_days: Thresholds = field(default_factory=Thresholds)
    status_states: tuple[tuple[HealthStatus, ServiceState], ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    verbose: int = 0
    output: OutputMode = OutputMode.TEXT
    all_services: bool = False
    all_addresses: bool = False
    address_family: int = 0  # socket.AF_UNSPEC: A and AAAA records
    backends_warning: MinimumHealthy | None = None
    backends_critical: MinimumHealthy | None = None
    wait: float | None = None
    started: float | None = None

    @property
    def diagnose_within(self) -> float:
        """Seconds a failure's diagnosis may take: it ends before the -t backstop.

        Read when the probe starts. A connection fails at most the connect timeout
        after that; what is left of -t then (counted from ``started``), less a margin
        for the output, bounds the diagnosis.
        """
        spent = 0.0 if self.started is None else time.monotonic() - self.started
        left = self.timeout - spent - self.probe.connect_timeout - OUTPUT_MARGIN
        return max(0.0, min(DIAGNOSIS_BUDGET, left))

    def state_for(self, status: HealthStatus) -> ServiceState:
        """The plugin state a health status maps to, overrides included."""
        states = dict(DEFAULT_STATUS_STATES)
        states.update(self.status_states)
        return states[status]
