"""Icinga 2 with the API and the command pipe, for tests of what is submitted to it.

``start_icinga2_api`` runs Icinga 2 in the foreground from a temporary folder with:

- the ``api`` feature (an ApiListener on 127.0.0.1, on a port the kernel picks, with a
  certificate from a trustme CA for the node name and ``127.0.0.1``, not ``localhost``: a
  node certificate from Icinga's own CA names the node alone);
- the ``command`` feature (an ExternalCommandListener whose pipe path is a constant);
- a CheckerComponent, so that the freshness check of a passive service runs;
- two API users: ``fleet`` may only submit check results and read hosts and services,
  ``harness`` (the tests' own) may do anything;
- passive services from the template ``grpc-fleet-passive``.

Reading a service back goes through the API (``service()``). A submission through the
API is processed when the API answers; one through the pipe is awaited with
``wait_for_result()``.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import secrets
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trustme

from support.daemons.icinga2 import (
    START_TIMEOUT,
    icinga2_binary,
    make_data_dir,
    quoted,
    start_daemon,
)
from support.daemons.process import Daemon, DaemonError, wait_for_fifo_reader

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

#: Services from the template ``grpc-fleet-passive``: passive results accepted, and the
#: freshness check ("passive": UNKNOWN, "No Passive Check Result Received.") runs when a
#: result's ``ttl`` runs out. Without a ttl the next check is a day away (the harness also
#: postpones the first one, which Icinga would run within a minute of the start).
ICINGA2_SERVICES = (
    "web1!grpc-orders",
    "web1!grpc-payments",
    "web1!grpc-users",
    "web2!grpc-orders",
    "web2!grpc-stale",
)
#: A service that refuses passive results (``enable_passive_checks = false``).
ICINGA2_PASSIVE_DISABLED = "web1!passive-disabled"
#: A passive service with ``enable_active_checks = false``: its ttl never runs out.
ICINGA2_WITHOUT_FRESHNESS = "web1!no-freshness"
#: What the fleet's API user may do: submit results and read hosts and services back.
ICINGA2_FLEET_PERMISSIONS = (
    "actions/process-check-result",
    "objects/query/Host",
    "objects/query/Service",
)
ICINGA2_TEMPLATE = "grpc-fleet-passive"

REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class Response:
    """One HTTP answer of the API: the status, the headers, and the body (JSON when it is)."""

    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass(frozen=True)
class Icinga2Service:
    """A service as the API returns it (``GET /v1/objects/services``)."""

    name: str
    #: The current state, 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    state: int
    #: 0 SOFT, 1 HARD (the template has max_check_attempts = 1: every result is HARD).
    state_type: int
    last_check: float
    next_check: float
    #: ``last_check_result`` as the API returns it, None before the first result.
    check_result: dict[str, Any] | None

    @property
    def output(self) -> str:
        return str(self._result["output"])

    @property
    def performance_data(self) -> list[str]:
        """The performance data as Icinga 2 stored it: a list of strings, never parsed."""
        return list(self._result["performance_data"] or [])

    @property
    def check_source(self) -> str:
        return str(self._result["check_source"])

    @property
    def active(self) -> bool:
        """False for a passive result, True for the freshness check's own result."""
        return bool(self._result["active"])

    @property
    def _result(self) -> dict[str, Any]:
        assert self.check_result is not None, f"{self.name} has no check result yet"
        return self.check_result


@dataclass
class Icinga2Api:
    """A running Icinga 2 with the API and the command pipe (see the module docstring)."""

    daemon: Daemon
    base: Path
    url: str
    port: int
    node_name: str
    #: The fleet's API user, its password, and a file holding it (with a newline, as
    #: ``echo`` writes it).
    user: str
    password: str = field(repr=False)
    password_file: Path
    #: The CA that signed the API's certificate, and one that did not.
    ca_file: Path
    other_ca_file: Path
    #: The ExternalCommandListener's FIFO.
    command_pipe: Path
    harness_user: str
    harness_password: str = field(repr=False)
    services: tuple[str, ...] = ICINGA2_SERVICES
    _connection: http.client.HTTPSConnection | None = field(default=None, repr=False)
    _hosts: set[str] = field(default_factory=set, repr=False)

    # -- HTTP ----------------------------------------------------------------------------

    def ssl_context(self, ca_file: Path | None = None) -> ssl.SSLContext:
        """A verifying client context that trusts ``ca_file`` (the API's CA by default)."""
        return ssl.create_default_context(cafile=str(ca_file or self.ca_file))

    def connect(self, *, timeout: float = REQUEST_TIMEOUT) -> http.client.HTTPSConnection:
        """A new keep-alive connection to the API (not yet connected)."""
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.ssl_context(), timeout=timeout
        )

    def headers(self, user: str | None = None, password: str | None = None) -> dict[str, str]:
        """The headers the API wants: Basic auth, and ``Accept: application/json`` (a POST
        without it gets 400)."""
        user = self.harness_user if user is None else user
        password = self.harness_password if password is None else password
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Authorization": f"Basic {token}",
        }

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        user: str | None = None,
        password: str | None = None,
    ) -> Response:
        """One request on the harness's keep-alive connection (the harness user by default).

        The API drops a connection after about 10 s without a request; a dropped one is
        opened again once.
        """
        payload = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = self.connect()
            try:
                self._connection.request(method, path, payload, self.headers(user, password))
                answer = self._connection.getresponse()
                text = answer.read().decode("utf-8")
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._connection.close()
                self._connection = None
                if attempt == 2:
                    raise
                continue
            if answer.will_close:
                self._connection.close()
                self._connection = None
            return Response(answer.status, dict(answer.getheaders()), text)
        raise AssertionError("unreachable")

    # -- objects -------------------------------------------------------------------------

    def service(self, name: str) -> Icinga2Service:
        """Read ``host!service`` back: state, state type, times and the last check result."""
        attrs = ("state", "state_type", "last_check", "next_check", "last_check_result")
        query = "&".join(f"attrs={attr}" for attr in attrs)
        answer = self.request("GET", f"/v1/objects/services/{_object_path(name)}?{query}")
        assert answer.status == 200, f"reading {name}: {answer.status} {answer.text}"
        found = answer.json()["results"][0]
        values = found["attrs"]
        return Icinga2Service(
            name=found["name"],
            state=int(values["state"]),
            state_type=int(values["state_type"]),
            last_check=float(values["last_check"]),
            next_check=float(values["next_check"]),
            check_result=values["last_check_result"],
        )

    def create_service(self, name: str, **attrs: object) -> str:
        """Create ``host!service`` at run time from the passive template (and its host if
        needed); ``attrs`` overrides the template's attributes. Returns the name."""
        host, _, _ = name.partition("!")
        if host not in self._hosts:
            answer = self.request(
                "PUT",
                f"/v1/objects/hosts/{_object_path(host)}",
                {"attrs": {"check_command": "dummy", "enable_active_checks": False}},
            )
            assert answer.status == 200, f"creating host {host}: {answer.status} {answer.text}"
            self._hosts.add(host)
        answer = self.request(
            "PUT",
            f"/v1/objects/services/{_object_path(name)}",
            {"templates": [ICINGA2_TEMPLATE], "attrs": attrs},
        )
        assert answer.status == 200, f"creating {name}: {answer.status} {answer.text}"
        self.postpone_first_checks(name)
        return name

    def postpone_first_checks(self, name: str | None = None) -> None:
        """Move the first freshness check of ``name`` (of every service by default) a day on.

        Icinga 2 runs a checkable's first check at a random moment within a minute of its
        start (``Checkable::Start``), and for these services that check is "passive": an
        UNKNOWN that would overwrite a test's result at a random moment. A submitted ttl
        still schedules the freshness check as usual.
        """
        body: dict[str, object] = {"type": "Service", "next_check": time.time() + 86400}
        if name is not None:
            body["service"] = name
        answer = self.request("POST", "/v1/actions/reschedule-check", body)
        assert answer.status == 200, f"rescheduling: {answer.status} {answer.text}"

    def wait_for_result(
        self, name: str, *, after: Icinga2Service, timeout: float = REQUEST_TIMEOUT
    ) -> Icinga2Service:
        """Read ``host!service`` until its last check result differs from ``after``'s.

        For results that arrive through the pipe, or from the freshness check, which the
        API does not confirm. This polls (a small GET every 5 ms): Icinga 2.13's event
        stream, the one way to be told, holds an event back for up to 5 s when the stream
        was idle. Two identical pipe commands in one second leave identical results, so
        make each one's output distinct.
        """
        deadline = time.monotonic() + timeout
        while True:
            current = self.service(name)
            if current.check_result != after.check_result:
                return current
            self.daemon.check_alive()
            if time.monotonic() > deadline:
                raise DaemonError(
                    f"no new check result for {name} within {timeout}s:\n"
                    f"{self.daemon.output.tail()}"
                )
            time.sleep(0.005)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _object_path(name: str) -> str:
    return urllib.parse.quote(name, safe="")


API_CONFIG = """
const NodeName = {node}
const ZoneName = NodeName
// The command pipe's path. Without command_path the ExternalCommandListener uses
// InitRunDir + "/cmd/icinga2.cmd".
const CommandPipe = {pipe}

include <itl>

object Endpoint NodeName {{}}
object Zone ZoneName {{ endpoints = [ NodeName ] }}

// The certificate, key and CA are read from DataDir/certs/ (NodeName.crt, NodeName.key,
// ca.crt). Port 0: the kernel picks one, and the log names it.
object ApiListener "api" {{
  bind_host = "127.0.0.1"
  bind_port = "0"
}}

object ExternalCommandListener "command" {{
  command_path = CommandPipe
}}

// Runs the freshness check of passive services.
object CheckerComponent "checker" {{}}

object ApiUser {fleet_user} {{
  password = {fleet_password}
  permissions = {fleet_permissions}
}}

object ApiUser {harness_user} {{
  password = {harness_password}
  permissions = [ "*" ]
}}

// Fed by passive results. Freshness needs enable_active_checks = true: when no result
// came within check_interval (or within the last result's ttl), Icinga runs the
// check_command, and "passive" is the ITL's dummy with state 3 (UNKNOWN) and the text
// "No Passive Check Result Received.".
template Service {template} {{
  check_command = "passive"
  enable_active_checks = true
  enable_passive_checks = true
  check_interval = 1d
  retry_interval = 1d
  max_check_attempts = 1
}}
"""


def _api_objects(services: Iterable[str]) -> str:
    names = [*services, ICINGA2_PASSIVE_DISABLED, ICINGA2_WITHOUT_FRESHNESS]
    hosts = dict.fromkeys(name.partition("!")[0] for name in names)
    lines = [
        f'object Host {quoted(host)} {{ check_command = "dummy"; enable_active_checks = false }}'
        for host in hosts
    ]
    extra = {
        ICINGA2_PASSIVE_DISABLED: "enable_passive_checks = false",
        ICINGA2_WITHOUT_FRESHNESS: "enable_active_checks = false",
    }
    for name in names:
        host, _, service = name.partition("!")
        lines.append(
            f"object Service {quoted(service)} {{ import {quoted(ICINGA2_TEMPLATE)}; "
            f"host_name = {quoted(host)}; {extra.get(name, '')} }}"
        )
    return "\n".join(lines) + "\n"


def _write_certificates(base: Path, certs: Path, node: str) -> tuple[Path, Path]:
    ca = trustme.CA()
    leaf = ca.issue_cert(node, "127.0.0.1", common_name=node)
    certs.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(certs / "ca.crt"))
    leaf.cert_chain_pems[0].write_to_path(str(certs / f"{node}.crt"))
    leaf.private_key_pem.write_to_path(str(certs / f"{node}.key"))
    ca_file = base / "api-ca.pem"
    other_ca_file = base / "other-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    trustme.CA().cert_pem.write_to_path(str(other_ca_file))
    return ca_file, other_ca_file


def start_icinga2_api(base: Path, *, services: Iterable[str] = ICINGA2_SERVICES) -> Icinga2Api:
    """Start Icinga 2 with the API and the pipe in ``base``; stop it with ``stop_icinga2_api``."""
    icinga2_binary()
    services = tuple(services)
    node = "icinga2-test.example"
    data = make_data_dir(base)
    ca_file, other_ca_file = _write_certificates(base, data / "lib" / "certs", node)
    pipe = data / "run" / "icinga2.cmd"
    fleet_password = secrets.token_urlsafe(18)
    harness_password = secrets.token_urlsafe(18)
    password_file = base / "fleet-password"
    password_file.write_text(fleet_password + "\n")
    password_file.chmod(0o600)
    config = base / "icinga2.conf"
    config.write_text(
        API_CONFIG.format(
            node=quoted(node),
            pipe=quoted(str(pipe)),
            fleet_user=quoted("fleet"),
            fleet_password=quoted(fleet_password),
            fleet_permissions="[ " + ", ".join(map(quoted, ICINGA2_FLEET_PERMISSIONS)) + " ]",
            harness_user=quoted("harness"),
            harness_password=quoted(harness_password),
            template=quoted(ICINGA2_TEMPLATE),
        )
        + _api_objects(services)
    )
    daemon = start_daemon(config, data, name="icinga2-api")
    try:
        port = int(daemon.output.wait_for(_LISTENER, timeout=START_TIMEOUT)[1]["port"])
        wait_for_fifo_reader(pipe, timeout=START_TIMEOUT, daemon=daemon)
    except BaseException:
        daemon.stop()
        raise
    hosts = {name.partition("!")[0] for name in services}
    api = Icinga2Api(
        daemon=daemon,
        base=base,
        url=f"https://127.0.0.1:{port}",
        port=port,
        node_name=node,
        user="fleet",
        password=fleet_password,
        password_file=password_file,
        ca_file=ca_file,
        other_ca_file=other_ca_file,
        command_pipe=pipe,
        harness_user="harness",
        harness_password=harness_password,
        services=services,
        _hosts=hosts | {"web1"},
    )
    try:
        api.postpone_first_checks()
    except BaseException:
        stop_icinga2_api(api)
        raise
    return api


_LISTENER = re.compile(
    r"information/ApiListener: Started new listener on '\[127\.0\.0\.1\]:(?P<port>[0-9]+)'"
)


def stop_icinga2_api(api: Icinga2Api) -> None:
    api.close()
    code = api.daemon.stop()
    assert code == 0, f"icinga2 exited with {code}:\n{api.daemon.output.tail()}"


def running_icinga2_api(base: Path) -> Iterator[Icinga2Api]:
    """Generator form for fixtures: start, yield, stop."""
    api = start_icinga2_api(base)
    try:
        yield api
    finally:
        stop_icinga2_api(api)
