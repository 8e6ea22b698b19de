"""The diagnosis around the rows of docs/troubleshooting.md: budgets, -v, JSON, the core API.

The rows themselves (every failure in every tool) are in tests/docs/test_troubleshooting.py.
Here: a diagnosis never runs past its deadline (no active test with under 50 ms left, the
plugin's budget inside -t), ``-v`` shows grpcio's own text, the probe keeps the Go
tool's time-out line and adds the cause only under ``-v``, ``--json`` carries the
diagnosis object, and the spelling tables render every fix.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import grpc
import pytest
from support.hardening import run_cli
from support.paths import PLUGIN, PROBE

from check_grpc_health.core.diagnosis import diagnose
from check_grpc_health.core.options import ProbeOptions
from check_grpc_health.core.probe import probe
from check_grpc_health.core.results import ConnectFailure, Diagnosis, RpcFailure
from check_grpc_health.core.targets import parse_target
from check_grpc_health.plugin.options import SPELLING as PLUGIN_SPELLING
from check_grpc_health.probe_cli.wording import SPELLING as PROBE_SPELLING

if TYPE_CHECKING:
    from conftest import TlsMaterial
    from support.servers import HealthServer

KEYS = (
    "tls",
    "no_tls",
    "ca_cert",
    "insecure",
    "server_name",
    "client_cert",
    "client_key",
    "no_proxy",
    "gzip",
    "connect_timeout",
    "rpc_timeout",
    "address",
)


def test_every_option_key_has_a_spelling_in_the_plugin_and_the_probe() -> None:
    assert sorted(PLUGIN_SPELLING) == sorted(KEYS)
    assert sorted(PROBE_SPELLING) == sorted(KEYS)


def test_a_fix_whose_option_an_adapter_lacks_is_left_out() -> None:
    found = Diagnosis("x", "the cause", ("use {gzip}", "use {tls}"))
    assert found.hint({"tls": "--tls"}) == "use --tls"
    assert found.line({"tls": "--tls"}) == "the cause; use --tls"
    assert found.line({}) == "the cause"
    assert found.hint({"tls": "-tls", "gzip": "-gzip"}) == "use -gzip, or use -tls"


def test_plaintext_to_tls_uses_an_active_test_when_there_is_time(tls_server: HealthServer) -> None:
    options = ProbeOptions(parse_target(tls_server.address))
    with pytest.raises(ConnectFailure) as failed:
        probe(options, diagnose_within=2.0)
    found = failed.value.diagnosis
    assert found is not None
    assert (found.kind, found.cause, found.probed) == (
        "tls_required",
        "the server speaks TLS",
        True,
    )


def test_with_under_50_ms_left_no_active_test_starts(tls_server: HealthServer) -> None:
    options = ProbeOptions(parse_target(tls_server.address))
    with pytest.raises(ConnectFailure) as failed:
        probe(options)
    assert failed.value.diagnosis is None  # not asked for: none
    started = time.monotonic()
    found = diagnose(failed.value, options, time.monotonic() + 0.04)
    # No active test ran (``probed`` is False below); the text alone is quick even on a
    # loaded machine, where timing it to 40 ms would not hold.
    assert time.monotonic() - started < 1.0
    assert found == Diagnosis(
        "closed",
        "the server closed the connection during set-up (a TLS port?)",
        ("add {tls} if it speaks TLS",),
        elapsed=found.elapsed,
    )


def test_a_dropped_syn_reads_as_no_answer() -> None:
    """A black-hole address that never answers SYN (TEST-NET-1 is not routed here)."""
    failure = ConnectFailure(
        "timed out connecting to 127.0.0.1:9 after 1s",
        target="127.0.0.1:9",
        timed_out=True,
        socket_states=("SYN_SENT",),
    )
    found = diagnose(failure, ProbeOptions(parse_target("127.0.0.1:9")), time.monotonic() + 1)
    assert found.kind == "no_answer"
    assert found.probed is False
    assert found.line(PLUGIN_SPELLING) == (
        "no TCP answer from the server: packets are dropped (host down, firewall, or wrong "
        "address); check the address in -H"
    )


@pytest.mark.parametrize(
    ("details", "kind", "line"),
    [
        ("Method not found!", "no_health_service", None),
        ("unknown service grpc.health.v1.Health", "no_health_service", None),
        ("Method not found: grpc.health.v1.Health/Check", "no_health_service", None),
        ("", "no_health_service", None),
        (
            "Received http2 header with status: 404",
            "http2_not_grpc",
            "an HTTP/2 server that is not gRPC answered HTTP 404 (a web server, or a proxy or "
            "load balancer that does not route gRPC here); check the port in -H",
        ),
        (
            "method Check not allowed here",
            "unimplemented",
            "the server answered UNIMPLEMENTED: method Check not allowed here",
        ),
    ],
)
def test_unimplemented_is_no_health_service_only_when_the_server_says_so(
    details: str, kind: str, line: str | None
) -> None:
    error = RpcFailure("x", service="", code=grpc.StatusCode.UNIMPLEMENTED, details=details)
    found = diagnose(error, ProbeOptions(parse_target("127.0.0.1:1")), time.monotonic())
    assert found.kind == kind
    if line is not None:
        assert found.line(PLUGIN_SPELLING) == line


def test_plugin_v_shows_grpcs_own_text_and_how_the_cause_was_found(
    tls_server: HealthServer,
) -> None:
    done = run_cli(PLUGIN, "-H", tls_server.address, "-v")
    done.assert_clean()
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        f"GRPC_HEALTH CRITICAL - failed to connect to {tls_server.address}: "
        "the server speaks TLS; add --tls | time="
    )
    assert (
        f"grpc: failed to connect to all addresses; last error: UNAVAILABLE: "
        f"ipv4:{tls_server.address}: Socket closed"
    ) in lines
    found = next(line for line in lines if line.startswith("diagnosis: "))
    assert found.startswith("diagnosis: tls_required in ")


def test_plugin_json_carries_the_diagnosis(tls_server: HealthServer) -> None:
    done = run_cli(PLUGIN, "-H", tls_server.address, "--json")
    document = json.loads(done.stdout)
    assert done.code == 2
    assert document["diagnosis"] == {
        "kind": "tls_required",
        "cause": "the server speaks TLS",
        "hint": "add --tls",
        "proxy": None,
    }
    assert document["error"] == (
        f"failed to connect to {tls_server.address}: the server speaks TLS; add --tls"
    )


def test_plugin_json_diagnosis_is_null_on_success(server: HealthServer) -> None:
    done = run_cli(PLUGIN, "-H", server.address, "--json")
    assert done.code == 0
    assert json.loads(done.stdout)["diagnosis"] is None


def test_a_diagnosis_never_turns_critical_into_the_t_timeout(tls_server: HealthServer) -> None:
    """-t leaves no time after --connect-timeout: the words come from the text alone."""
    # Seconds apart, so that a loaded machine's slow start-up cannot reach -t either.
    done = run_cli(PLUGIN, "-H", tls_server.address, "-t", "5", "--connect-timeout", "4.9")
    done.assert_clean()
    assert done.code == 2
    assert done.stdout.startswith(
        f"GRPC_HEALTH CRITICAL - failed to connect to {tls_server.address}: the server closed "
        "the connection during set-up (a TLS port?); add --tls if it speaks TLS | time="
    )


def test_probe_keeps_the_go_timeout_line_and_adds_the_cause_under_v(
    black_hole_address: str,
) -> None:
    quiet = run_cli(PROBE, f"-addr={black_hole_address}", "-connect-timeout=300ms")
    assert quiet.code == 2
    assert (
        quiet.stderr == f'timeout: failed to connect service "{black_hole_address}" within 300ms\n'
    )
    loud = run_cli(PROBE, f"-addr={black_hole_address}", "-connect-timeout=300ms", "-v")
    assert loud.code == 2
    assert loud.stderr.endswith(
        "diagnosis: the server accepted the TCP connection but sent no HTTP/2 settings "
        "(overloaded, or not a gRPC server); use a longer -connect-timeout, or check the port "
        f'in -addr\ntimeout: failed to connect service "{black_hole_address}" within 300ms\n'
    )


def test_probe_v_shows_grpcs_text_for_a_fail_fast_line(
    server: HealthServer, tls_material: TlsMaterial
) -> None:
    done = run_cli(
        PROBE, f"-addr={server.address}", "-tls", f"-tls-ca-cert={tls_material.ca_cert}", "-v"
    )
    assert done.code == 2
    lines = done.stderr.splitlines()
    assert lines[-1] == (
        f'error: failed to connect service at "{server.address}": the server speaks plaintext '
        "gRPC, not TLS; leave out -tls"
    )
    assert lines[-2].startswith("grpc: failed to connect to all addresses; last error: ")
    assert "WRONG_VERSION_NUMBER" in lines[-2]
