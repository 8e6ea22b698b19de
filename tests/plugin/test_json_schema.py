"""One ``--json`` shape for every mode, checked against the documented JSON Schema.

Each mode runs the installed ``check_grpc_health --json`` against real servers and hostile
peers, and every document it prints must validate against docs/schema/check_grpc_health.json
with exactly the schema's required keys: no mode adds or drops one.
"""

from __future__ import annotations

import json
import signal
import subprocess
from typing import TYPE_CHECKING, Any

import jsonschema
from support.paths import FLEET, PLUGIN, ROOT
from support.plugin import plugin_env, run

from check_grpc_health.plugin.options import BACKSTOP_LEAD

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import TlsMaterial
    from support.servers import HealthServer, HoldingServicer

SCHEMA_PATH = ROOT / "docs" / "schema" / "check_grpc_health.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text("utf-8"))
STATES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


def valid(document: dict[str, Any], *, fleet: bool = False) -> dict[str, Any]:
    """The document, once it validates and has exactly the schema's keys."""
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    keys = set(document) - ({"line", "name"} if fleet else set())
    assert keys == set(SCHEMA["required"])
    assert STATES[document["state"]] == document["exit_code"]
    return document


def as_json(*argv: str, code: int) -> dict[str, Any]:
    done = run(*argv, "--json")
    assert (done.returncode, done.stderr) == (code, ""), done.stdout
    assert done.stdout.count("\n") == 1
    return valid(json.loads(done.stdout))


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_one_target_and_several_services(server: HealthServer) -> None:
    one = as_json("-H", server.address, code=0)
    assert (one["target"], one["backends"], one["healthy"], one["total"]) == (
        server.address,
        [],
        None,
        None,
    )
    several = as_json("-H", server.address, "-s", "ready", "-s", "down", "-s", "gone", code=2)
    assert [item["state"] for item in several["services"]] == ["OK", "CRITICAL", "CRITICAL"]
    assert several["services"][2]["error"]["code"] == "NOT_FOUND"


def test_all_services(start_server: Callable[..., HealthServer]) -> None:
    listed = start_server(
        reflection=True, extra_services=("shop.v1.Orders",), statuses={"": 1, "shop.v1.Orders": 2}
    )
    document = as_json("-H", listed.address, "--all-services", code=2)
    assert [item["service"] for item in document["services"]] == ["", "shop.v1.Orders"]
    unlisted = start_server()
    no_reflection = as_json("-H", unlisted.address, "--all-services", code=3)
    assert no_reflection["error"] == no_reflection["summary"]
    assert no_reflection["services"] == []


def test_all_addresses(start_server: Callable[..., HealthServer], closed_address: str) -> None:
    first = start_server()
    second = start_server(host="127.0.0.2", statuses={"": 2})
    name = f"ipv4:{first.address},{second.address},{closed_address}"
    document = as_json("-H", name, "--all-addresses", code=2)
    assert (document["healthy"], document["total"], document["services"]) == (1, 3, [])
    assert (document["connect_time"], document["rpc_time"], document["error"]) == (
        None,
        None,
        None,
    )
    backends = document["backends"]
    assert [backend["healthy"] for backend in backends] == [True, False, False]
    assert backends[1]["services"][0]["status"] == "NOT_SERVING"
    assert backends[1]["services"][0]["state"] is None
    assert backends[2]["error"].startswith(f"failed to connect to {closed_address}")
    assert (backends[2]["services"], backends[2]["time"]) == ([], None)


def test_all_addresses_of_a_name_that_does_not_resolve() -> None:
    document = as_json("-H", "no-such-host.invalid:50051", "--all-addresses", code=2)
    assert (document["backends"], document["healthy"], document["total"]) == ([], None, None)
    assert document["error"] == document["summary"]
    assert document["time"] is not None


def test_connection_failure(closed_address: str) -> None:
    document = as_json("-H", closed_address, code=2)
    assert document["error"].startswith(f"failed to connect to {closed_address}")
    assert (document["services"], document["connect_time"]) == ([], None)


def test_argument_error() -> None:
    document = as_json("-H", "127.0.0.1:1", "-w", "@", code=3)
    assert (document["target"], document["time"], document["perfdata"]) == (None, None, "")


def test_certificate(tls_server: HealthServer, tls_material: TlsMaterial) -> None:
    document = as_json(
        "-H",
        tls_server.address,
        "--ca-cert",
        str(tls_material.ca_cert),
        "--server-name",
        tls_material.server_name,
        "--cert-warning",
        "30",
        code=0,
    )
    assert document["certificate"]["days_left"] > 30


def test_backstop_line(held: tuple[HoldingServicer, str]) -> None:
    _, address = held
    document = as_json("-H", address, "-t", "0.5", "--rpc-timeout", "20", code=2)
    assert document["error"] == "no result within the 0.5s timeout (-t)"
    assert document["target"] == address
    # The backstop fires a margin before -t, which counts from the process's start.
    assert document["time"] >= 0.5 - BACKSTOP_LEAD


def test_signal(held: tuple[HoldingServicer, str]) -> None:
    servicer, address = held
    process = subprocess.Popen(
        [PLUGIN, "-H", address, "--json"], stdout=subprocess.PIPE, text=True, env=plugin_env()
    )
    assert servicer.entered.wait(20)
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=10)
    assert process.returncode == 3
    document = valid(json.loads(stdout))
    assert document["error"] == "interrupted by SIGTERM"
    assert document["time"] is None


def test_the_docs_name_every_case_where_time_is_null() -> None:
    # Bad arguments and a signal above; an internal error in tests/hardening/test_last_resort.py.
    cron = (ROOT / "docs" / "cron.md").read_text("utf-8").splitlines()
    row = next(line for line in cron if line.startswith("| `time`, `connect_time`"))
    description = SCHEMA["properties"]["time"]["description"]
    for case in ("bad arguments", "a signal", "an internal error"):
        assert case in row
        assert case in description


def test_fleet_lines_are_the_same_document(
    server: HealthServer, closed_address: str, tmp_path: Path
) -> None:
    fleet_file = tmp_path / "fleet.txt"
    fleet_file.write_text(
        f"-H {server.address}\n-H {closed_address}\n-H {server.address} -w @\n", "utf-8"
    )
    done = subprocess.run(
        [FLEET, "--json", str(fleet_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=plugin_env(),
        check=False,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 3, done.stdout + done.stderr
    states = [valid(json.loads(line), fleet=True)["state"] for line in lines]
    assert states == ["OK", "CRITICAL", "UNKNOWN"]
