"""The fleet into Icinga 2 through its REST API: one passive check result per labelled line.

Layer: adapter (a fleet sink): a delivery of the outcomes (``--icinga2-api URL``).
Each result is a ``POST /v1/actions/process-check-result`` for the line's
``HOST!SERVICE`` with the exit status, the plugin's output line, its performance data
(one string per value, as Icinga 2 stores it), ``check_source``, the execution start
and end, and a ``ttl`` after which Icinga 2 runs the service's own check (the template
in contrib/icinga2 makes that an UNKNOWN "No Passive Check Result Received.").

A few keep-alive HTTPS connections (the standard library's ``http.client`` and ``ssl``)
share the results; every wait ends at the fleet's deadline. The certificate is always
verified (against ``--icinga2-ca``, or the system's CAs). The password comes from a file
or the environment, never from the command line, and appears in no message. The
settings themselves are checked in :mod:`.icinga2_settings`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from check_grpc_health.fleet.sinks.delivery import NAMED, Deliverer

if TYPE_CHECKING:
    import http.client
    import ssl
    from collections.abc import Callable

    from check_grpc_health.fleet.run import Outcome
    from check_grpc_health.fleet.sinks.icinga2_settings import Icinga2Api

NAME = "icinga2-api"
PATH = "/v1/actions/process-check-result"
#: More connections than this gained nothing against Icinga 2 (it answers in order).
CONNECTIONS = 4


def result_body(outcome: Outcome, api: Icinga2Api) -> dict[str, Any]:
    """The ``process-check-result`` request for one labelled outcome."""
    body: dict[str, Any] = {
        "type": "Service",
        "service": str(outcome.entry.label),
        "exit_status": outcome.state.code,
        # Icinga 2 keeps the first line as the output, the others as the long output.
        "plugin_output": "\n".join([outcome.status_line, *outcome.details]),
        "performance_data": list(outcome.perfdata),
        "check_source": api.check_source,
        "execution_start": outcome.started,
        "execution_end": outcome.finished,
    }
    if api.ttl > 0:
        body["ttl"] = api.ttl
    return body


class Icinga2Fault(Exception):
    """A fault that stops every submission (no connection, wrong password, TLS)."""


class Icinga2Connection:
    """One keep-alive HTTPS connection to the API, for one result at a time.

    Shared by the one-shot fleet and the resident monitor. The certificate is always
    verified (the CA given, else the system's); no option skips it.
    """

    def __init__(self, api: Icinga2Api) -> None:
        import base64
        import ssl

        self.api = api
        self.context = api.context or ssl.create_default_context(cafile=api.ca_file)
        token = base64.b64encode(f"{api.user}:{api.password}".encode()).decode()
        self.headers = {
            "Accept": "application/json",  # Icinga 2 answers a POST without it with 400
            "Content-Type": "application/json",
            "Authorization": f"Basic {token}",
        }
        self._connection: http.client.HTTPSConnection | None = None

    def submit(self, outcome: Outcome, timeout: float) -> tuple[int, str | None]:
        """Submit one labelled result; its HTTP status and None when Icinga 2 stored it,
        else why it was refused.

        Raises :class:`Icinga2Fault` when no result can go in (no connection, TLS, a
        wrong password, no answer within ``timeout``).
        """
        import json

        body = json.dumps(result_body(outcome, self.api))
        status, answer = self._post(body, timeout)
        if status == 401:
            raise Icinga2Fault(
                f"{self.api.url}: 401 Unauthorized: wrong user or password for {self.api.user!r}"
            )
        return status, _rejection(status, answer)

    def warm(self, timeout: float) -> None:
        """Connect (TCP and TLS) ahead of the first result, so that it need not wait for
        the handshake; a failure here is met, and reported, by the first :meth:`submit`."""
        import http.client

        if self._connection is not None or timeout <= 0:
            return
        connection = http.client.HTTPSConnection(
            self.api.host, self.api.port, context=self.context, timeout=timeout
        )
        try:
            connection.connect()
        except OSError:
            connection.close()
            return
        self._connection = connection

    def close(self) -> None:
        """Close the connection, if one is open."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _post(self, body: str, timeout: float) -> tuple[int, str]:
        """One request; a keep-alive connection the server closed is opened again, once."""
        import http.client
        import ssl

        url = self.api.url
        for attempt in (1, 2):
            if timeout <= 0:
                raise Icinga2Fault("the fleet's deadline (-t) ran out before every result was sent")
            connection = self._connection
            if connection is None:
                connection = self._connection = http.client.HTTPSConnection(
                    self.api.host, self.api.port, context=self.context, timeout=timeout
                )
            elif connection.sock is not None:
                connection.sock.settimeout(timeout)
            try:
                connection.request("POST", PATH, body, self.headers)
                response = connection.getresponse()
                answer = response.read().decode("utf-8", "replace")
            except ssl.SSLCertVerificationError as error:
                self.close()
                raise Icinga2Fault(self._untrusted(error, timeout)) from None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 1:
                    continue
                raise Icinga2Fault(f"{url}: the API closed the connection") from None
            except TimeoutError:
                self.close()
                raise Icinga2Fault(f"{url}: no answer within the fleet's deadline (-t)") from None
            except (OSError, http.client.HTTPException) as error:
                self.close()
                reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
                raise Icinga2Fault(f"cannot reach {url}: {reason}") from None
            if response.will_close:  # Icinga 2 closes after a 400 or a 401
                self.close()
            return response.status, answer
        raise AssertionError("unreachable")

    def _untrusted(self, error: ssl.SSLCertVerificationError, timeout: float) -> str:
        """Why the certificate was refused, in one line that says what to change."""
        url, ca_file = self.api.url, self.api.ca_file
        if error.verify_code not in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH):
            given = f"--icinga2-ca {ca_file!r} did not issue it" if ca_file else ""
            hint = given or "give the API's CA with --icinga2-ca"
            return f"{url}: certificate not trusted ({error.verify_message}); {hint}"
        names = self._certificate_names(timeout)
        named = f"; it names {', '.join(names)}" if names else ""
        return (
            f"{url}: the API's certificate is not valid for {self.api.host}{named}. "
            "Icinga's CA issues a node's certificate for the node's name: use that name in "
            "--icinga2-api"
        )

    def _certificate_names(self, timeout: float) -> list[str]:
        """The names in the API's certificate, from a handshake that verifies the chain
        but not the name; none when that fails too."""
        import ipaddress
        import socket
        import ssl

        if timeout <= 0:
            return []
        context = ssl.create_default_context(cafile=self.api.ca_file)
        context.check_hostname = False
        try:
            with (
                socket.create_connection((self.api.host, self.api.port), timeout) as raw,
                context.wrap_socket(raw) as tls,
            ):
                certificate: dict[str, Any] = dict(tls.getpeercert() or {})
        except (OSError, ValueError):
            return []
        names = []
        for _, value in certificate.get("subjectAltName", ()):
            try:
                names.append(str(ipaddress.ip_address(str(value).strip())))
            except ValueError:
                names.append(str(value))
        if not names:
            for group in certificate.get("subject", ()):
                names += [str(value) for key, value in group if key == "commonName"]
        return names[:6]


#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64


class Icinga2Delivery(Deliverer):
    """Each labelled outcome to the API as its check ends, on a few keep-alive connections.

    A fault that stops every submission (no connection, TLS, a wrong password, the
    deadline) stops all connections; the results they did not send are counted under
    the first such fault.
    """

    name = NAME

    def __init__(
        self, api: Icinga2Api, deadline: float, trace: Callable[[str], None] | None = None
    ) -> None:
        import threading

        super().__init__(deadline)
        self.api = api
        self.trace = trace
        self.stop = threading.Event()
        self.delivered = 0
        self.undelivered = 0
        self.rejected: list[tuple[int, str]] = []
        self.fatal: dict[str, int] = {}
        # The problem that stopped every connection: the others' unsent results are its.
        self.stopped_by: str | None = None
        self.start(CONNECTIONS)

    def work(self) -> None:
        """Submit outcomes in order on one keep-alive connection, opened while the checks
        run."""
        connection = Icinga2Connection(self.api)
        connection.warm(self.deadline - time.monotonic())
        try:
            while (outcome := self.take()) is not None:
                if self.stop.is_set():
                    self._count_unsent(self.stopped_by, 1)
                    continue
                try:
                    status, problem = connection.submit(outcome, self.deadline - time.monotonic())
                except Icinga2Fault as fatal:
                    with self._lock:
                        self.stopped_by = self.stopped_by or str(fatal)
                    self.stop.set()
                    self._count_unsent(str(fatal), 1)
                    continue
                name = str(outcome.entry.label)
                if self.trace is not None:
                    self.trace(f"{NAME}: POST {PATH} {name}: {status}")
                with self._lock:
                    if problem is None:
                        self.delivered += 1
                    else:
                        self.undelivered += 1
                        line = outcome.entry.line
                        self.rejected.append((line, f"{name} (line {line}) rejected: {problem}"))
        finally:
            connection.close()

    def _count_unsent(self, problem: str | None, count: int) -> None:
        with self._lock:
            key = problem or "stopped"
            self.fatal[key] = self.fatal.get(key, 0) + count
            self.undelivered += count

    def report(self) -> None:
        delivery = self.delivery
        delivery.delivered = self.delivered
        # In the order of the file, whichever connection met them first.
        rejected = [problem for _, problem in sorted(self.rejected)]
        for problem in rejected[:NAMED]:
            delivery.fail(problem, 1)
        if len(rejected) > NAMED:
            delivery.fail("more results rejected", len(rejected) - NAMED)
        for problem, count in self.fatal.items():
            delivery.fail(problem, count)
        missing = self.offered - self.delivered - self.undelivered
        if missing > 0:
            delivery.fail("no answer within the fleet's deadline (-t)", missing)


def _rejection(status: int, answer: str) -> str | None:
    """None when Icinga 2 stored the result, else its reason in one line."""
    import json

    from check_grpc_health.text import clean_text

    try:
        parsed = json.loads(answer)
    except ValueError:
        parsed = {}
    results = parsed.get("results") if isinstance(parsed, dict) else None
    first = results[0] if isinstance(results, list) and results else {}
    text = first.get("status") if isinstance(first, dict) else None
    text = text or (parsed.get("status") if isinstance(parsed, dict) else None) or answer
    if status == 200 and isinstance(first, dict) and first.get("code") == 200:
        # A 200 may still say the result was ignored (the object is unreachable).
        return None if not str(text).startswith("Ignoring") else clean_text(str(text))
    return clean_text(f"{status} {text}")[:300]
