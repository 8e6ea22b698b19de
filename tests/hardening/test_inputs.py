"""Bad input at every entry point: one clean line naming the value, the documented code.

Layer: tests. One table of bad inputs (ports out of range, non-numeric, negative and NaN
timeouts, malformed ranges and metadata, control characters in hosts, missing and
unreadable files, a directory given as a certificate, a key that does not match its
certificate) runs through all three entry points: the plugin answers UNKNOWN (exit 3)
in one line, the probe exits 1 with Go's message (2 for an address Go would only
reject when dialling), and the Ansible module fails with one ``msg`` line. A property
test then throws arbitrary option values at the Ansible module, as the command-line
tools' own property tests do for their argument vectors.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support.hardening import run_cli, run_module
from support.paths import PLUGIN, PROBE
from support.servers import closed_port

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.core.targets import parse_target

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import TlsMaterial

CLOSED_PORT = closed_port()
CLOSED = f"127.0.0.1:{CLOSED_PORT}"


@dataclass(frozen=True)
class BadInput:
    """One bad input as each entry point takes it, and the line each must answer with.

    ``None`` where an entry point has no such input. Text in braces names a file from
    the ``files`` fixture.
    """

    plugin: tuple[str, ...] | None
    plugin_message: str | None
    probe: tuple[str, ...] | None
    probe_code: int
    probe_line: str | None
    module: dict[str, Any] | None
    module_message: str | None


ROWS: dict[str, BadInput] = {
    "port above 65535": BadInput(
        ("-H", "127.0.0.1", "-p", "70000"),
        "invalid port '70000': must be between 1 and 65535",
        ("-addr=127.0.0.1:70000",),
        2,
        'error: failed to connect service at "127.0.0.1:70000": '
        "invalid port '70000': must be between 1 and 65535",
        {"host": "127.0.0.1", "port": 70000},
        "invalid port 70000: must be between 1 and 65535",
    ),
    "port 0 in the address": BadInput(
        ("-H", "127.0.0.1:0"),
        "invalid port '0': must be between 1 and 65535",
        ("-addr=127.0.0.1:0",),
        2,
        'error: failed to connect service at "127.0.0.1:0": '
        "invalid port '0': must be between 1 and 65535",
        {"host": "127.0.0.1:0"},
        "invalid port '0': must be between 1 and 65535",
    ),
    "negative port": BadInput(
        ("-H", "127.0.0.1", "-p", "-1"),
        "invalid port '-1': not a number",
        ("-addr=127.0.0.1:-1",),
        2,
        "error: failed to connect service at \"127.0.0.1:-1\": invalid port '-1': not a number",
        {"host": "127.0.0.1", "port": -1},
        "invalid port -1: must be between 1 and 65535",
    ),
    "non-numeric timeout": BadInput(
        ("-H", CLOSED, "--connect-timeout", "soon"),
        "--connect-timeout 'soon' is not a number of seconds",
        (f"-addr={CLOSED}", "-connect-timeout=soon"),
        1,
        'invalid value "soon" for flag -connect-timeout: parse error',
        {"host": CLOSED, "connect_timeout": "soon"},
        "argument 'connect_timeout' is of type str and we were unable to convert to float: "
        "<class 'str'> cannot be converted to a float",
    ),
    "negative timeout": BadInput(
        ("-H", CLOSED, "-t", "-1"),
        "-t/--timeout must be a finite number above zero (got -1.0)",
        (f"-addr={CLOSED}", "-rpc-timeout=-1s"),
        1,
        "error: -rpc-timeout must be greater than zero (specified: -1s)",
        {"host": CLOSED, "rpc_timeout": -1},
        "RPC timeout must be a finite number above zero (got -1.0)",
    ),
    "NaN timeout": BadInput(
        ("-H", CLOSED, "--rpc-timeout", "nan"),
        "--rpc-timeout must be a finite number above zero (got nan)",
        (f"-addr={CLOSED}", "-rpc-timeout=NaN"),
        1,
        'invalid value "NaN" for flag -rpc-timeout: parse error',
        {"host": CLOSED, "timeout": math.nan},
        "timeout must be 0 or more seconds (got nan)",
    ),
    "infinite timeout": BadInput(
        ("-H", CLOSED, "-t", "inf"),
        "-t/--timeout must be a finite number above zero (got inf)",
        (f"-addr={CLOSED}", "-connect-timeout=Infs"),
        1,
        'invalid value "Infs" for flag -connect-timeout: parse error',
        {"host": CLOSED, "connect_timeout": math.inf},
        "connect timeout must be a finite number above zero (got inf)",
    ),
    "malformed range": BadInput(
        ("-H", CLOSED, "-w", "5:1"),
        "-w/--warning '5:1' is not a Nagios range (e.g. 0.5, 10:, ~:1 or @0.2:0.4)",
        None,
        1,
        None,
        None,
        None,
    ),
    "malformed metadata": BadInput(
        ("-H", CLOSED, "-m", "no-colon"),
        "metadata entry #1 has no ':' between key and value",
        (f"-addr={CLOSED}", "-rpc-header=no-colon"),
        1,
        "invalid value (not shown) for flag -rpc-header: invalid RPC header, expected 'key: value'",
        {"host": CLOSED, "metadata": {"x-token": None}},
        "metadata 'x-token': the value must be text (value not shown)",
    ),
    "metadata key with a space": BadInput(
        ("-H", CLOSED, "-m", "Bad Key: v"),
        "metadata key 'bad key' may contain only lowercase letters, digits, '-', '_', '.'",
        (f"-addr={CLOSED}", "-rpc-header=Bad Key: v"),
        1,
        "invalid value (not shown) for flag -rpc-header: metadata key 'bad key' may contain "
        "only lowercase letters, digits, '-', '_', '.'",
        {"host": CLOSED, "metadata": {"Bad Key": "v"}},
        "metadata key 'bad key' may contain only lowercase letters, digits, '-', '_', '.'",
    ),
    "newline in the host": BadInput(
        ("-H", "bad\nhost:1"),
        "invalid address 'bad\\nhost:1': contains whitespace or control characters",
        ("-addr=bad\nhost:1",),
        2,
        'error: failed to connect service at "bad\\nhost:1": '
        "invalid address 'bad\\nhost:1': contains whitespace or control characters",
        {"host": "bad\nhost:1"},
        "invalid address 'bad\\nhost:1': contains whitespace or control characters",
    ),
    "control character in the host": BadInput(
        ("-H", "ho\x01st:1"),
        "invalid address 'ho\\x01st:1': contains whitespace or control characters",
        ("-addr=ho\x1bst:1",),
        2,
        'error: failed to connect service at "ho\\x1bst:1": '
        "invalid address 'ho\\x1bst:1': contains whitespace or control characters",
        {"host": "ho\x7fst:1"},
        "invalid address 'ho\\x7fst:1': contains whitespace or control characters",
    ),
    "missing file": BadInput(
        ("-H", CLOSED, "--ca-cert", "{missing}"),
        "cannot read CA certificate '{missing}': No such file or directory",
        (f"-addr={CLOSED}", "-tls", "-tls-ca-cert={missing}"),
        1,
        "failed to initialize tls credentials. error=cannot read CA certificate "
        "'{missing}': No such file or directory",
        {"host": CLOSED, "ca_cert": "{missing}"},
        "cannot read CA certificate '{missing}': No such file or directory",
    ),
    "unreadable file (a symlink loop)": BadInput(
        ("-H", CLOSED, "--metadata-file", "{loop}"),
        "cannot read metadata file '{loop}': Too many levels of symbolic links",
        (f"-addr={CLOSED}", "-rpc-header-file={loop}"),
        1,
        'invalid value "{loop}" for flag -rpc-header-file: Too many levels of symbolic links',
        {"host": CLOSED, "client_cert": "{loop}", "client_key": "{client_key}"},
        "cannot read client certificate '{loop}': Too many levels of symbolic links",
    ),
    "directory as a certificate": BadInput(
        ("-H", CLOSED, "--client-cert", "{directory}", "--client-key", "{client_key}"),
        "cannot read client certificate '{directory}': Is a directory",
        (f"-addr={CLOSED}", "-tls", "-tls-ca-cert={directory}"),
        1,
        "failed to initialize tls credentials. error=cannot read CA certificate "
        "'{directory}': Is a directory",
        {"host": CLOSED, "ca_cert": "{directory}"},
        "cannot read CA certificate '{directory}': Is a directory",
    ),
    "key that does not match its certificate": BadInput(
        ("-H", CLOSED, "--client-cert", "{client_cert}", "--client-key", "{server_key}"),
        "client key '{server_key}' does not match client certificate '{client_cert}'",
        (
            f"-addr={CLOSED}",
            "-tls",
            "-tls-client-cert={client_cert}",
            "-tls-client-key={server_key}",
        ),
        1,
        "failed to initialize tls credentials. error=client key '{server_key}' does not "
        "match client certificate '{client_cert}'",
        {"host": CLOSED, "client_cert": "{client_cert}", "client_key": "{server_key}"},
        "client key '{server_key}' does not match client certificate '{client_cert}'",
    ),
}


@pytest.fixture
def files(tmp_path: Path, tls_material: TlsMaterial) -> dict[str, str]:
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop")
    directory = tmp_path / "certs"
    directory.mkdir()
    return {
        "missing": str(tmp_path / "missing.pem"),
        "loop": str(loop),
        "directory": str(directory),
        "client_cert": str(tls_material.client_cert),
        "client_key": str(tls_material.client_key),
        "server_key": str(tls_material.server_key),
    }


def filled(value: Any, files: dict[str, str]) -> Any:
    if isinstance(value, str) and "{" in value:
        return value.format(**files)
    if isinstance(value, dict):
        return {key: filled(item, files) for key, item in value.items()}
    return value


@pytest.mark.parametrize("name", [name for name, row in ROWS.items() if row.plugin])
def test_plugin_bad_input_is_one_unknown_line(name: str, files: dict[str, str]) -> None:
    row = ROWS[name]
    assert row.plugin is not None
    done = run_cli(PLUGIN, *(filled(arg, files) for arg in row.plugin))
    done.assert_clean()
    expected = f"GRPC_HEALTH UNKNOWN - {filled(row.plugin_message, files)}\n"
    assert (done.code, done.stdout, done.stderr) == (3, expected, "")


@pytest.mark.parametrize("name", [name for name, row in ROWS.items() if row.probe])
def test_probe_bad_input_is_gos_message_and_code(name: str, files: dict[str, str]) -> None:
    row = ROWS[name]
    assert row.probe is not None
    done = run_cli(PROBE, *(filled(arg, files) for arg in row.probe))
    done.assert_clean()
    assert done.code == row.probe_code
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == filled(row.probe_line, files)
    # Go's flag package follows a parse error with its usage block, and only then.
    assert lines[1:] == [] or lines[1] == "Usage:"


@pytest.mark.parametrize("name", [name for name, row in ROWS.items() if row.module])
def test_ansible_bad_input_is_one_fail_json_message(name: str, files: dict[str, str]) -> None:
    row = ROWS[name]
    done = run_module(filled(row.module, files))
    done.assert_clean()
    assert done.code == 1
    assert done.result["failed"] is True
    # ansible-core before 2.19 (the one Python 3.10 runs) names a type as "<class 'str'>".
    message = re.sub(r"is of type <class '(\w+)'>", r"is of type \1", done.result["msg"])
    assert message == filled(row.module_message, files)
    assert "exception" not in done.result


@pytest.mark.parametrize("field", ["ca_cert", "client_cert", "client_key"])
def test_a_nul_in_a_file_name_is_an_invalid_argument_for_the_core(
    field: str, tls_material: TlsMaterial
) -> None:
    from check_grpc_health import probe
    from check_grpc_health.core.options import ProbeOptions
    from check_grpc_health.core.tls import TlsOptions

    files = {
        "client_cert": str(tls_material.client_cert),
        "client_key": str(tls_material.client_key),
    }
    files[field] = "/etc/grpc/a\x00b.pem"
    with pytest.raises(InvalidArgument, match="a\\\\x00b"):
        probe(ProbeOptions(parse_target(CLOSED), tls=TlsOptions(**files)))


def test_a_nul_in_a_file_name_fails_the_ansible_module_cleanly() -> None:
    done = run_module({"host": CLOSED, "ca_cert": "/etc/grpc/a\x00b.pem"})
    done.assert_clean()
    assert done.code == 1
    assert "\n" not in done.result["msg"]


# --- arbitrary option values for the Ansible module ------------------------------------------

TOKEN = "s3cr3t-property-token"
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=16)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.lists(text, max_size=2),
)
# A NUL in a file name is its own test below (test_a_nul_in_a_file_name_*).
path_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
# Waiting values stay short when valid: a long valid wait would be obeyed, not rejected.
short_seconds = st.one_of(
    st.sampled_from([0, 0.01, 0.05, -1, -0.0, math.nan, math.inf, -math.inf, "soon", "0.05"]),
    st.floats(0, 0.05),
)
any_seconds = st.one_of(short_seconds, st.sampled_from([1e9, 1e300, 86400 * 30]), junk)
HOSTILE_HOSTS = [
    "",
    " ",
    ":",
    "[::1",
    "[::1]:99999",
    "127.0.0.1:-5",
    "127.0.0.1:1:2",
    "unix:",
    "unix-abstract:",
    "dns:///",
    "bad\nhost:1",
    "ho\x00st:1",
    "host:port",
    "\u2028:1",
]


@st.composite
def module_args(draw: st.DrawFn, files: dict[str, str]) -> dict[str, Any]:
    host = draw(st.one_of(st.just(CLOSED), st.sampled_from(HOSTILE_HOSTS), text))
    args: dict[str, Any] = {"host": host}
    optional: dict[str, st.SearchStrategy[Any]] = {
        # No free text or infinity for the port: ansible-core converts int options with
        # int(Decimal(value)) before the module runs, for every module. "inf" raises
        # OverflowError there (Ansible reports "Module failed: cannot convert Infinity to
        # integer"), and "1e999999999" would build a billion-digit integer.
        "port": st.one_of(
            st.just(CLOSED_PORT),
            st.sampled_from([0, -1, 65536, 2**31, "http", "1.5", "nan", "", " 80", "0x50"]),
            st.none(),
            st.booleans(),
            st.integers(-(2**40), 2**40),
            st.floats(allow_nan=True, allow_infinity=False),
            st.lists(text, max_size=2),
        ),
        "service": st.one_of(text, st.lists(text, max_size=3), junk),
        "state": st.one_of(st.sampled_from(["serving", "not_serving"]), text),
        "timeout": short_seconds,
        "delay": short_seconds,
        "sleep": st.one_of(short_seconds, st.just(1e9)),
        "connect_timeout": any_seconds,
        "rpc_timeout": any_seconds,
        "tls": st.one_of(st.booleans(), junk),
        "validate_certs": st.one_of(st.booleans(), junk),
        "ca_cert": st.one_of(st.sampled_from(list(files.values())), path_text),
        "client_cert": st.one_of(st.sampled_from(list(files.values())), path_text),
        "client_key": st.one_of(st.sampled_from(list(files.values())), path_text),
        "server_name": st.one_of(text, junk),
        "metadata": st.one_of(
            st.dictionaries(
                st.one_of(text, st.sampled_from(["authorization", "Bad Key", "grpc-x", "x-bin"])),
                st.one_of(st.just(f"Bearer {TOKEN}"), junk),
                max_size=3,
            ),
            st.just(f"authorization=Bearer {TOKEN}"),
            junk,
        ),
        "authority": st.one_of(text, junk),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=8)):
        args[name] = draw(optional[name])
    return args


def reaches_only_the_closed_port(args: dict[str, Any]) -> bool:
    """Keep examples off the network: any address that parses must be the closed port."""
    port = args.get("port")
    try:
        target = parse_target(args["host"], port if isinstance(port, int) else None)
    except (InvalidArgument, TypeError, ValueError):
        return True
    return target.host == "127.0.0.1" and target.port == CLOSED_PORT


@pytest.fixture(scope="module")
def property_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("property")
    pem = base / "not-a-cert.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    (base / "dir").mkdir()
    return {"missing": str(base / "missing"), "dir": str(base / "dir"), "bad_pem": str(pem)}


@given(data=st.data())
@settings(
    max_examples=int(os.environ.get("HARDENING_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_module_options_give_a_result_or_one_clean_message(
    data: st.DataObject, property_files: dict[str, str]
) -> None:
    args = data.draw(module_args(property_files))
    assume(reaches_only_the_closed_port(args))
    done = run_module(args)
    done.assert_clean()
    # Nothing listens on the one address an example may reach.
    assert done.code == 1, done.result
    result = done.result
    assert result["failed"] is True
    assert isinstance(result["msg"], str)
    assert result["msg"]
    if "elapsed" in result:
        # The module's own verdict (after ansible-core accepted the options): one line.
        assert "\n" not in result["msg"]
    # Otherwise ansible-core rejected the options itself; its messages may quote a value
    # as given, and Ansible prints msg JSON-escaped, so the reader still sees one line.
    assert "exception" not in result
    assert TOKEN not in done.stdout
    assert done.elapsed < 10
