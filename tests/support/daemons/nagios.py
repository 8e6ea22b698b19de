"""A real Nagios 4 (Debian's nagios4-core) for tests, in the foreground from a temporary folder.

It reads external commands from ``command_file`` (check_external_commands=1) and has
passive services. Two ways read a service back:

- ``wait_for_result()``: Nagios writes one record per processed check result to a
  performance data file, here a FIFO that a thread reads (service_perfdata_file_mode=p),
  so a test waits for the record instead of polling;
- ``status()``: status.dat, which Nagios rewrites every second (status_update_interval=1).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from support.daemons.process import (
    Daemon,
    DaemonError,
    LineWatcher,
    current_user_and_group,
    find_binary,
    wait_for_fifo_reader,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

#: Passive services (active checks off, passive on, no freshness check).
NAGIOS_SERVICES = ("web1!grpc-orders", "web1!grpc-payments", "web1!grpc-users", "web2!grpc-orders")
#: A passive service whose freshness check runs ``check_dummy 3`` once no result came for
#: ``NAGIOS_FRESHNESS_SECONDS``.
NAGIOS_STALE_SERVICE = "web2!grpc-stale"
NAGIOS_FRESHNESS_SECONDS = 2
NAGIOS_STALE_OUTPUT = "UNKNOWN: no passive check result received"
#: A service that refuses passive results.
NAGIOS_PASSIVE_DISABLED = "web1!passive-disabled"

START_TIMEOUT = 20.0
PLUGINS = "/usr/lib/nagios/plugins"

# One record per processed service check result, tab-separated NAME::value fields.
# $LONGSERVICEOUTPUT$ keeps newlines escaped as a backslash and an n.
PERFDATA_TEMPLATE = "\\t".join(
    [
        "NAME::$HOSTNAME$!$SERVICEDESC$",
        "STATE::$SERVICESTATEID$",
        "TYPE::$SERVICECHECKTYPE$",
        "OUTPUT::$SERVICEOUTPUT$",
        "LONG::$LONGSERVICEOUTPUT$",
        "PERFDATA::$SERVICEPERFDATA$",
        "LAST::$LASTSERVICECHECK$",
    ]
)
_RECORD = re.compile(r"^NAME::(?P<name>[^\t]*)\t")


def nagios4_binary() -> str:
    return find_binary("nagios4", "nagios4-core", "/usr/sbin/nagios4")


@dataclass(frozen=True)
class NagiosService:
    """A service's check result, from the performance data record or status.dat."""

    name: str
    #: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    state: int
    #: "PASSIVE" or "ACTIVE".
    check_type: str
    #: The first line of the output (Nagios turns each ';' in it into ':').
    output: str
    #: The other lines, joined with a backslash and an n.
    long_output: str
    perfdata: str
    last_check: int


class Nagios4:
    """A running Nagios 4 (see the module docstring)."""

    def __init__(self, base: Path, services: Iterable[str]) -> None:
        self.base = base
        self.services = tuple(services)
        self.command_file = base / "nagios.cmd"
        self.status_file = base / "status.dat"
        self.log_file = base / "nagios.log"
        self.perfdata_fifo = base / "service-perfdata"
        self._read_up_to: dict[str, int] = {}
        config = base / "nagios.cfg"
        (base / "objects.cfg").write_text(_objects(self.services))
        config.write_text(_main_config(base))
        nagios = nagios4_binary()
        # Both FIFOs exist before Nagios starts: it uses an existing FIFO as its command
        # file, and opens the performance data FIFO without creating it.
        os.mkfifo(self.command_file, 0o660)
        os.mkfifo(self.perfdata_fifo, 0o600)
        # A writer of our own keeps the reader from seeing end-of-file before Nagios opens
        # the FIFO; closing it after Nagios stopped ends the reader thread.
        reader = os.open(self.perfdata_fifo, os.O_RDONLY | os.O_NONBLOCK)
        self._keep_open = os.open(self.perfdata_fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.set_blocking(reader, True)
        self.records = LineWatcher(
            os.fdopen(reader, "rb"), base / "service-perfdata.log", "nagios4-perfdata"
        )
        self.daemon = Daemon("nagios4", [nagios, str(config)], log=base / "console.log")
        try:
            self.daemon.wait_for(
                r"^Successfully launched command file worker", timeout=START_TIMEOUT
            )
            wait_for_fifo_reader(self.command_file, timeout=START_TIMEOUT, daemon=self.daemon)
        except BaseException:
            self.stop()
            raise

    def wait_for_result(self, name: str, *, timeout: float = 10.0) -> NagiosService:
        """The next check result Nagios processed for ``host!service`` (each is returned once)."""
        pattern = re.compile(rf"^NAME::{re.escape(name)}\t")
        try:
            index, match = self.records.wait_for(
                pattern, after=self._read_up_to.get(name, 0), timeout=timeout
            )
        except DaemonError as error:
            self.daemon.check_alive()
            raise DaemonError(f"{error}\nnagios.log:\n{self.log_tail()}") from None
        self._read_up_to[name] = index
        return _parse_record(match.string)

    def status(self) -> dict[str, NagiosService]:
        """Every service in status.dat (rewritten every second, so up to 1 s behind)."""
        services = {}
        for block in re.findall(
            r"^servicestatus \{\n(.*?)\n\t\}",
            self.status_file.read_text(),
            re.MULTILINE | re.DOTALL,
        ):
            values = dict(line.strip().split("=", 1) for line in block.splitlines())
            name = f"{values['host_name']}!{values['service_description']}"
            services[name] = NagiosService(
                name=name,
                state=int(values["current_state"]),
                check_type="PASSIVE" if values["check_type"] == "1" else "ACTIVE",
                output=values["plugin_output"],
                long_output=values["long_plugin_output"],
                perfdata=values["performance_data"],
                last_check=int(values["last_check"]),
            )
        return services

    def log_tail(self, count: int = 20) -> str:
        if not self.log_file.exists():
            return ""
        lines = self.log_file.read_text(errors="replace").splitlines()[-count:]
        return "\n".join(line if len(line) <= 300 else line[:300] + "..." for line in lines)

    def stop(self) -> int:
        code = self.daemon.stop()
        os.close(self._keep_open)
        self.records.join(5.0)
        return code


def _parse_record(line: str) -> NagiosService:
    fields = dict(part.split("::", 1) for part in line.split("\t"))
    return NagiosService(
        name=fields["NAME"],
        state=int(fields["STATE"]),
        check_type=fields["TYPE"],
        output=fields["OUTPUT"],
        long_output=fields["LONG"],
        perfdata=fields["PERFDATA"],
        last_check=int(fields["LAST"]),
    )


def _main_config(base: Path) -> str:
    user, group = current_user_and_group()
    settings = {
        "log_file": base / "nagios.log",
        "cfg_file": base / "objects.cfg",
        "object_cache_file": base / "objects.cache",
        "precached_object_file": base / "objects.precache",
        "status_file": base / "status.dat",
        "status_update_interval": 1,
        "nagios_user": user,
        "nagios_group": group,
        "check_external_commands": 1,
        "command_file": base / "nagios.cmd",
        "lock_file": base / "nagios.lock",
        "temp_file": base / "nagios.tmp",
        "temp_path": base,
        "check_result_path": base / "checkresults",
        "query_socket": base / "nagios.qh",
        "retain_state_information": 0,
        "use_syslog": 0,
        "log_passive_checks": 1,
        "log_external_commands": 1,
        # Intervals are in seconds.
        "interval_length": 1,
        "check_for_updates": 0,
        "enable_notifications": 0,
        "enable_flap_detection": 0,
        "check_service_freshness": 1,
        "service_freshness_check_interval": 1,
        "additional_freshness_latency": 0,
        "process_performance_data": 1,
        "service_perfdata_file": base / "service-perfdata",
        "service_perfdata_file_mode": "p",
        "service_perfdata_file_template": PERFDATA_TEMPLATE,
        "illegal_object_name_chars": "`~$%^&*|'\"<>?,()=",
        "illegal_macro_output_chars": "`~$&|'\"<>",
    }
    (base / "checkresults").mkdir(exist_ok=True)
    return "".join(f"{key}={value}\n" for key, value in settings.items())


OBJECTS = f"""
define timeperiod {{
    timeperiod_name always
    alias           always
    monday          00:00-24:00
    tuesday         00:00-24:00
    wednesday       00:00-24:00
    thursday        00:00-24:00
    friday          00:00-24:00
    saturday        00:00-24:00
    sunday          00:00-24:00
}}
define command {{
    command_name    no-notification
    command_line    /bin/true
}}
define command {{
    command_name    passive-stale
    command_line    {PLUGINS}/check_dummy 3 "no passive check result received"
}}
define contact {{
    contact_name                    nobody
    host_notifications_enabled      0
    service_notifications_enabled   0
    host_notification_period        always
    service_notification_period     always
    host_notification_options       n
    service_notification_options    n
    host_notification_commands      no-notification
    service_notification_commands   no-notification
}}
define service {{
    name                    grpc-fleet-passive
    register                0
    check_command           passive-stale
    active_checks_enabled   0
    passive_checks_enabled  1
    check_freshness         0
    max_check_attempts      1
    check_interval          60
    retry_interval          60
    check_period            always
    notification_period     always
    contacts                nobody
}}
"""


def _objects(services: Iterable[str]) -> str:
    names = [*services, NAGIOS_STALE_SERVICE, NAGIOS_PASSIVE_DISABLED]
    hosts = dict.fromkeys(name.partition("!")[0] for name in names)
    parts = [OBJECTS]
    for host in hosts:
        parts.append(
            f"define host {{\n    host_name {host}\n    address 127.0.0.1\n"
            "    max_check_attempts 1\n    check_period always\n    active_checks_enabled 0\n"
            "    passive_checks_enabled 1\n    contacts nobody\n}\n"
        )
    extra = {
        NAGIOS_STALE_SERVICE: (
            f"    check_freshness 1\n    freshness_threshold {NAGIOS_FRESHNESS_SECONDS}\n"
        ),
        NAGIOS_PASSIVE_DISABLED: "    passive_checks_enabled 0\n",
    }
    for name in names:
        host, _, service = name.partition("!")
        parts.append(
            f"define service {{\n    use grpc-fleet-passive\n    host_name {host}\n"
            f"    service_description {service}\n{extra.get(name, '')}}}\n"
        )
    return "".join(parts)


def running_nagios4(base: Path, services: Iterable[str] = NAGIOS_SERVICES) -> Iterator[Nagios4]:
    """Generator form for fixtures: start, yield, stop."""
    nagios = Nagios4(base, services)
    try:
        yield nagios
    finally:
        code = nagios.stop()
        assert code == 0, f"nagios4 exited with {code}:\n{nagios.daemon.output.tail()}"
