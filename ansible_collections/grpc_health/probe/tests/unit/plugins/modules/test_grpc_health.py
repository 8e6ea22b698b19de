"""Unit tests of the grpc_health module, run through AnsibleModule against real servers.

Layer: tests. Each test starts a real gRPC health server on loopback (see ``conftest.py``),
feeds the module its arguments with ``patch_module_args`` and asserts the exit code, the
exact message and the return values it printed.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from ansible_collections.grpc_health.probe.plugins.modules import grpc_health

from ..conftest import (
    BLOCKING,
    NOT_SERVING,
    SERVING,
    HeaderRecordingServicer,
    NoWatchHealthServicer,
)

RESULT_KEYS = {"status", "elapsed", "attempts", "method", "time", "connect_time", "rpc_time"}


def test_serving_server_passes_with_timings(start_server, run_module):
    server = start_server(statuses={"": SERVING})
    code, result, _text = run_module({"host": "127.0.0.1", "port": server.port})
    assert code == 0
    assert result["changed"] is False
    assert "failed" not in result
    assert result["msg"] == f"127.0.0.1:{server.port} is SERVING"
    assert result["status"] == {"": "SERVING"}
    assert result["attempts"] == 1
    assert result["method"] == "check"
    assert 0 < result["connect_time"] <= result["time"]
    assert 0 < result["rpc_time"] <= result["time"]
    assert result.keys() >= RESULT_KEYS


def test_not_serving_fails_at_once_naming_the_status(start_server, run_module):
    server = start_server(statuses={"": NOT_SERVING})
    code, result, _text = run_module({"host": f"127.0.0.1:{server.port}"})
    assert code == 1
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"] == f"127.0.0.1:{server.port} is not SERVING: overall health NOT_SERVING"
    assert result["status"] == {"": "NOT_SERVING"}
    assert result["attempts"] == 1


def test_services_as_list_name_each_status_and_rpc_error(start_server, run_module):
    server = start_server(statuses={"": SERVING, "orders": SERVING, "billing": NOT_SERVING})
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "service": ["orders", "billing", "nope"]}
    )
    assert code == 1
    assert result["msg"] == (
        f"127.0.0.1:{server.port} is not SERVING: service 'orders' SERVING, "
        "service 'billing' NOT_SERVING, service 'nope' NOT_FOUND (unknown service 'nope')"
    )
    assert result["status"] == {"orders": "SERVING", "billing": "NOT_SERVING", "nope": None}


def test_service_as_a_string(start_server, run_module):
    server = start_server(statuses={"": NOT_SERVING, "orders": SERVING})
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "service": "orders"}
    )
    assert code == 0
    assert result["status"] == {"orders": "SERVING"}


def test_gate_waits_on_watch_and_passes_when_server_turns_serving(start_server, run_module):
    server = start_server(statuses={"": NOT_SERVING})
    server.later(0.5, "", SERVING)
    code, result, _text = run_module({"host": "127.0.0.1", "port": server.port, "timeout": 20})
    assert code == 0
    assert result["status"] == {"": "SERVING"}
    assert result["method"] == "watch"
    # Generous bounds: it waited for the flip and did not sit out the 20 s timeout.
    assert 0.4 <= result["elapsed"] < 10
    assert result["attempts"] >= 2


def test_gate_fails_after_timeout_with_return_values_set(start_server, run_module):
    server = start_server(statuses={"": NOT_SERVING})
    code, result, _text = run_module({"host": "127.0.0.1", "port": server.port, "timeout": 0.5})
    assert code == 1
    assert result["msg"] == (
        f"127.0.0.1:{server.port} did not reach SERVING within 0.5s: overall health NOT_SERVING"
    )
    assert result["status"] == {"": "NOT_SERVING"}
    assert 0.5 <= result["elapsed"] < 5
    assert result["method"] == "watch"
    assert result["time"] is not None


def test_drain_waits_for_not_serving(start_server, run_module):
    server = start_server(statuses={"": SERVING, "orders": SERVING})
    server.later(0.3, "orders", NOT_SERVING)
    server.later(0.3, "", NOT_SERVING)
    code, result, _text = run_module(
        {
            "host": "127.0.0.1",
            "port": server.port,
            "service": ["", "orders"],
            "state": "not_serving",
            "timeout": 20,
        }
    )
    assert code == 0
    assert result["msg"] == f"127.0.0.1:{server.port} is NOT_SERVING"
    assert result["status"] == {"": "NOT_SERVING", "orders": "NOT_SERVING"}


def test_polls_check_when_watch_is_unimplemented(start_server, run_module):
    server = start_server(statuses={"": NOT_SERVING}, servicer=NoWatchHealthServicer(**BLOCKING))
    server.later(0.3, "", SERVING)
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "timeout": 20, "sleep": 0.1}
    )
    assert code == 0
    assert result["method"] == "poll"
    assert result["attempts"] >= 3


def test_delay_comes_before_the_first_check(start_server, run_module):
    server = start_server()
    code, result, _text = run_module({"host": "127.0.0.1", "port": server.port, "delay": 0.3})
    assert code == 0
    assert result["elapsed"] >= 0.3


def test_timeout_counts_the_delay_as_wait_for_does(start_server, run_module):
    server = start_server(statuses={"": NOT_SERVING})
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "delay": 1, "timeout": 1.5}
    )
    assert code == 1
    assert result["msg"].startswith(f"127.0.0.1:{server.port} did not reach SERVING within 1.5s")
    # 1.5 s in all, not 1 s of delay plus 1.5 s of waiting.
    assert 1.5 <= result["elapsed"] < 2.3


def test_a_delay_past_the_timeout_still_checks_once(start_server, run_module):
    server = start_server()
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "delay": 0.3, "timeout": 0.2}
    )
    assert code == 0
    assert result["attempts"] == 1
    assert result["method"] == "check"


def test_refused_connection_fails_with_one_line(closed_port, run_module):
    code, result, _text = run_module({"host": "127.0.0.1", "port": closed_port})
    assert code == 1
    assert result["msg"].startswith(f"failed to connect to 127.0.0.1:{closed_port}: ")
    assert "Connection refused" in result["msg"]
    assert "\n" not in result["msg"]
    assert "exception" not in result
    assert result["status"] == {"": None}
    assert result["time"] is None


def test_refused_connection_while_waiting_names_the_last_error(closed_port, run_module):
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": closed_port, "timeout": 0.5, "sleep": 0.1}
    )
    assert code == 1
    assert result["msg"].startswith(
        f"127.0.0.1:{closed_port} did not reach SERVING within 0.5s: overall health no answer "
        f"(last error: failed to connect to 127.0.0.1:{closed_port}: "
    )
    assert 0.5 <= result["elapsed"] < 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"host": "bad host"}, "invalid address 'bad host': contains whitespace"),
        ({"host": "127.0.0.1"}, "invalid address '127.0.0.1': missing port"),
        ({"host": "127.0.0.1", "port": 70000}, "invalid port 70000: must be between 1 and 65535"),
        ({"host": "127.0.0.1:1", "timeout": -1}, "timeout must be 0 or more seconds (got -1.0)"),
        ({"host": "127.0.0.1:1", "sleep": 0}, "sleep must be more than 0 seconds (got 0.0)"),
        ({"host": "127.0.0.1:1", "service": []}, "at least one service is required"),
        (
            {"host": "127.0.0.1:1", "connect_timeout": 0},
            "connect timeout must be a finite number above zero (got 0.0)",
        ),
        ({"host": "127.0.0.1:1", "tls": False, "ca_cert": "/ca.pem"}, "ca_cert needs TLS"),
        (
            {"host": "127.0.0.1:1", "ca_cert": "/nonexistent/ca.pem"},
            "cannot read CA certificate '/nonexistent/ca.pem': No such file or directory",
        ),
        (
            {"host": "127.0.0.1:1", "metadata": {"Bad Key": "x"}},
            "metadata key 'bad key' may contain only",
        ),
    ],
)
def test_bad_input_fails_with_one_clear_line(args, message, run_module):
    code, result, _text = run_module(args)
    assert code == 1
    assert result["msg"].startswith(message)
    assert "\n" not in result["msg"]
    assert "exception" not in result


def test_check_mode_runs_the_check_and_changes_nothing(start_server, run_module):
    server = start_server(statuses={"": NOT_SERVING})
    server.later(0.3, "", SERVING)
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "timeout": 20, "_ansible_check_mode": True}
    )
    assert code == 0
    assert result["changed"] is False
    assert result["status"] == {"": "SERVING"}


def test_metadata_is_sent_and_never_shown(start_server, run_module):
    servicer = HeaderRecordingServicer()
    server = start_server(servicer=servicer)
    hidden = "s3cr3t-token-value"
    code, result, text = run_module(
        {
            "host": "127.0.0.1",
            "port": server.port,
            "metadata": {"Authorization": f"Bearer {hidden}", "x-tenant": "blue"},
        }
    )
    assert code == 0
    assert servicer.seen[-1]["authorization"] == f"Bearer {hidden}"
    assert servicer.seen[-1]["x-tenant"] == "blue"
    assert hidden not in text
    assert "metadata" not in result


def test_bad_metadata_value_is_refused_without_showing_it(run_module):
    hidden = "t\u00f6ken-s3cr3t"
    code, result, text = run_module({"host": "127.0.0.1:1", "metadata": {"authorization": hidden}})
    assert code == 1
    assert result["msg"] == (
        "metadata 'authorization': the value must be printable ASCII (value not shown)"
    )
    assert hidden not in text


def test_tls_with_ca_cert_passes(start_server, tls, run_module):
    server = start_server(credentials=tls.server_credentials)
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "ca_cert": tls.ca_cert}
    )
    assert code == 0
    assert result["status"] == {"": "SERVING"}


def test_tls_with_server_name_and_ip(start_server, tls, run_module):
    server = start_server(credentials=tls.server_credentials)
    code, result, _text = run_module(
        {
            "host": "127.0.0.1",
            "port": server.port,
            "ca_cert": tls.ca_cert,
            "server_name": "health.example.test",
        }
    )
    assert code == 0, result["msg"]


def test_tls_with_an_unknown_ca_fails_with_one_line(start_server, tls, run_module):
    server = start_server(credentials=tls.server_credentials)
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "ca_cert": tls.other_ca_cert}
    )
    assert code == 1
    assert result["msg"].startswith(f"failed to connect to 127.0.0.1:{server.port}: ")
    assert result["msg"].endswith(
        "is not signed by the CA file given; give ca_cert the CA that issued it, "
        "or use validate_certs: false to skip verification, unsafe"
    )
    assert result["diagnosis"]["kind"] == "cert_untrusted"
    assert result["diagnosis"]["hint"] == (
        "give ca_cert the CA that issued it, or use validate_certs: false to skip "
        "verification, unsafe"
    )
    assert "\n" not in result["msg"]


def test_validate_certs_false_trusts_the_presented_certificate(start_server, tls, run_module):
    server = start_server(credentials=tls.server_credentials)
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "tls": True, "validate_certs": False}
    )
    assert code == 0, result["msg"]


def test_mutual_tls_with_client_certificate(start_server, tls, run_module):
    server = start_server(credentials=tls.mtls_credentials)
    code, result, _text = run_module(
        {
            "host": "127.0.0.1",
            "port": server.port,
            "ca_cert": tls.ca_cert,
            "client_cert": tls.client_cert,
            "client_key": tls.client_key,
        }
    )
    assert code == 0, result["msg"]


def test_mutual_tls_without_client_certificate_fails(start_server, tls, run_module):
    server = start_server(credentials=tls.mtls_credentials)
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "ca_cert": tls.ca_cert}
    )
    assert code == 1
    assert result["msg"] == (
        f"failed to connect to 127.0.0.1:{server.port}: the server wants a client certificate "
        "(mutual TLS); add client_cert FILE and client_key FILE"
    )
    assert result["diagnosis"] == {
        "kind": "client_cert_required",
        "cause": "the server wants a client certificate (mutual TLS)",
        "hint": "add client_cert FILE and client_key FILE",
        "proxy": None,
    }


def test_client_cert_requires_client_key(tls, run_module):
    code, result, _text = run_module({"host": "127.0.0.1:1", "client_cert": tls.client_cert})
    assert code == 1
    assert result["msg"] == "parameters are required together: client_cert, client_key"


def test_missing_grpcio_is_reported_with_missing_required_lib(monkeypatch, run_module):
    monkeypatch.setattr(grpc_health, "GRPC_IMPORT_ERROR", "ModuleNotFoundError: grpc")
    code, result, _text = run_module({"host": "127.0.0.1:1"})
    assert code == 1
    assert result["msg"].startswith(
        "Failed to import the required Python library (grpcio and grpcio-health-checking)"
    )


def test_all_services_checks_every_listed_service(start_server, run_module):
    server = start_server(
        statuses={"": SERVING, "shop.Orders": SERVING, "shop.Carts": NOT_SERVING},
        reflection=("shop.Orders", "shop.Carts"),
    )
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "all_services": True}
    )
    assert code == 1
    assert result["status"] == {
        "": "SERVING",
        "shop.Carts": "NOT_SERVING",
        "shop.Orders": "SERVING",
    }
    assert result["msg"] == (
        f"127.0.0.1:{server.port} is not SERVING: overall health SERVING, "
        "service 'shop.Carts' NOT_SERVING, service 'shop.Orders' SERVING"
    )


def test_all_services_waits_for_the_listed_services(start_server, run_module):
    server = start_server(
        statuses={"": SERVING, "shop.Orders": NOT_SERVING}, reflection=("shop.Orders",)
    )
    server.later(0.3, "shop.Orders", SERVING)
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "all_services": True, "timeout": 10}
    )
    assert code == 0
    assert result["status"] == {"": "SERVING", "shop.Orders": "SERVING"}
    assert result["method"] == "watch"


def test_all_services_without_reflection_fails_clearly(start_server, run_module):
    server = start_server()
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "all_services": True, "timeout": 5}
    )
    assert code == 1
    assert result["msg"] == (
        f"127.0.0.1:{server.port} does not offer gRPC server reflection, "
        "so its services cannot be listed"
    )


def test_all_services_refuses_a_service_list(run_module):
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": 1, "all_services": True, "service": ["x"]}
    )
    assert code == 1
    assert result["msg"] == "all_services checks every service: leave out service"


# --- return values that tell the truth ----------------------------------------------------


def test_a_connection_failure_is_one_check_round_without_status_or_timings(
    start_server, run_module
):
    server = start_server()
    code, result, _text = run_module({"host": "127.0.0.1", "port": server.port, "tls": True})
    assert code == 1
    assert result["msg"].startswith(f"failed to connect to 127.0.0.1:{server.port}: ")
    assert (result["attempts"], result["method"], result["status"]) == (1, "check", {"": None})
    assert (result["time"], result["connect_time"], result["rpc_time"]) == (None, None, None)


def test_bad_input_found_late_made_no_attempt(run_module):
    code, result, _text = run_module({"host": "127.0.0.1:1", "ca_cert": "/nonexistent/ca.pem"})
    assert code == 1
    assert (result["attempts"], result["method"], result["status"]) == (0, None, {"": None})


def test_services_that_cannot_be_listed_made_no_attempt(start_server, run_module):
    server = start_server()
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "all_services": True}
    )
    assert code == 1
    assert (result["attempts"], result["method"], result["status"]) == (0, None, {})
    assert (result["time"], result["connect_time"], result["rpc_time"]) == (None, None, None)


def test_waiting_on_an_unknown_service_quotes_no_stale_error(start_server, run_module):
    server = start_server()
    code, result, _text = run_module(
        {"host": "127.0.0.1", "port": server.port, "service": "nope", "timeout": 0.5}
    )
    assert code == 1
    # The first Check's NOT_FOUND was answered since by Watch: SERVICE_UNKNOWN, no error.
    assert result["msg"] == (
        f"127.0.0.1:{server.port} did not reach SERVING within 0.5s: service 'nope' SERVICE_UNKNOWN"
    )
    assert result["status"] == {"nope": "SERVICE_UNKNOWN"}
    assert result["method"] == "watch"


class DelayingProxy:
    """Forwards TCP to ``port`` after holding each new connection for ``delay`` seconds."""

    def __init__(self, port, delay):
        self.port, self.delay = port, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.closing = threading.Event()
        self.sockets = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing.is_set():
            try:
                client = self.listener.accept()[0]
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client):
        if self.closing.wait(self.delay):
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.port))
        self.sockets += [client, upstream]
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self):
        self.closing.set()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_connect_time_after_a_watch_is_the_channels_real_one(start_server, run_module):
    server = start_server(statuses={"": NOT_SERVING})
    proxy = DelayingProxy(server.port, delay=0.3)
    server.later(0.8, "", SERVING)
    try:
        code, result, _text = run_module(
            {"host": "127.0.0.1", "port": proxy.address[1], "timeout": 20}
        )
    finally:
        proxy.close()
    assert code == 0, result["msg"]
    assert result["method"] == "watch"
    # The connection took the proxy's 0.3 s; the Check after the Watch, on the same
    # connection, connects in no time and must not be reported as the connect time.
    assert result["connect_time"] >= 0.3
    assert 0 < result["rpc_time"] <= result["time"]
