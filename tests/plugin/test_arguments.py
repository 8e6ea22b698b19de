"""Argument parsing of the plugin: defaults, derived deadlines, and one clean line per mistake.

Pure logic, no servers: :func:`parse_arguments` either returns options or raises
:class:`InvalidArgument`, which the plugin prints as one UNKNOWN line.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import nagiosplugin
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.plugin import error_for

from check_grpc_health.core.results import HealthStatus, InvalidArgument
from check_grpc_health.plugin.arguments import parse_arguments
from check_grpc_health.plugin.contexts import service_labels
from check_grpc_health.plugin.options import OutputMode
from check_grpc_health.plugin.thresholds import parse_range

if TYPE_CHECKING:
    from pathlib import Path


NOT_A_RANGE = "is not a Nagios range (e.g. 0.5, 10:, ~:1 or @0.2:0.4)"
NOT_A_MAPPING = (
    "is not STATUS=STATE (STATUS: SERVING, NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN; "
    "STATE: OK, WARNING, CRITICAL or UNKNOWN)"
)
ABOVE_ZERO = "must be a finite number above zero"


def test_defaults() -> None:
    options = parse_arguments(["-H", "localhost:50051"], {})
    assert options.probe.target.grpc_target == "localhost:50051"
    assert options.probe.services == ("",)
    assert options.timeout == 10.0
    assert options.probe.connect_timeout == 5.0
    assert options.probe.rpc_timeout == 5.0
    assert options.probe.tls is None
    assert options.probe.metadata == ()
    assert not options.probe.certificate_facts
    assert options.output is OutputMode.TEXT
    assert options.verbose == 0
    assert options.state_for(HealthStatus.SERVING) == nagiosplugin.Ok
    for status in (HealthStatus.NOT_SERVING, HealthStatus.UNKNOWN, HealthStatus.SERVICE_UNKNOWN):
        assert options.state_for(status) == nagiosplugin.Critical


def test_phase_deadlines_default_to_half_of_the_budget() -> None:
    options = parse_arguments(["-H", ":50051", "-t", "3"], {})
    assert (options.probe.connect_timeout, options.probe.rpc_timeout) == (1.5, 1.5)
    options = parse_arguments(["-H", ":50051", "-t", "0.5", "--rpc-timeout", "0.1"], {})
    assert (options.probe.connect_timeout, options.probe.rpc_timeout) == (0.25, 0.1)
    options = parse_arguments(["-H", ":1", "--connect-timeout", "0.2", "--rpc-timeout", "7"], {})
    assert (options.probe.connect_timeout, options.probe.rpc_timeout, options.timeout) == (
        0.2,
        7.0,
        10.0,
    )


def test_separate_port_shows_in_messages() -> None:
    options = parse_arguments(["-H", "db.example.com", "-p", "50051"], {})
    assert options.probe.target.display == "db.example.com:50051"
    options = parse_arguments(["-H", "::1", "-p", "50051"], {})
    assert options.probe.target.display == "[::1]:50051"
    assert parse_arguments(["-H", "unix:/run/x.sock"], {}).probe.target.display == (
        "unix:/run/x.sock"
    )


def test_services_repeat_and_the_empty_service_is_overall_health() -> None:
    options = parse_arguments(["-H", ":1", "-s", "a.B", "-s", "", "--service", "c"], {})
    assert options.probe.services == ("a.B", "", "c")


def test_tls_is_implied_by_any_tls_option(tmp_path: Path) -> None:
    assert parse_arguments(["-H", ":1", "--tls"], {}).probe.tls is not None
    for option in ("--ca-cert", "--client-cert", "--client-key", "--server-name"):
        assert parse_arguments(["-H", ":1", option, "x"], {}).probe.tls is not None
    insecure = parse_arguments(["-H", ":1", "--insecure"], {}).probe.tls
    assert insecure is not None
    assert not insecure.verify


def test_certificate_thresholds_ask_the_core_for_certificate_facts() -> None:
    options = parse_arguments(["-H", ":1", "--tls", "--cert-warning", "30"], {})
    assert options.probe.certificate_facts
    assert str(options.cert_days.warning) == "30:"
    assert str(options.cert_days.critical) == ""
    options = parse_arguments(["-H", ":1", "--tls", "--cert-critical", "7.5"], {})
    assert str(options.cert_days.critical) == "7.5:"


def test_ranges_keep_sub_second_precision() -> None:
    options = parse_arguments(
        ["-H", ":1", "-w", "0.25", "-c", "@0.2:0.4", "--rpc-warning", "10:"], {}
    )
    assert str(options.time.warning) == "0.25"
    assert str(options.time.critical) == "@0.2:0.4"
    assert str(options.rpc_time.warning) == "10:"
    assert options.time.warning.match(0.2)
    assert not options.time.warning.match(0.3)


def test_output_modes_and_verbosity() -> None:
    assert parse_arguments(["-H", ":1", "--json"], {}).output is OutputMode.JSON
    assert parse_arguments(["-H", ":1", "-q"], {}).output is OutputMode.QUIET
    assert parse_arguments(["-H", ":1", "-vvvvv"], {}).verbose == 3
    assert parse_arguments(["-H", ":1", "-v", "-v"], {}).verbose == 2


def test_metadata_from_arguments_file_and_environment_in_order(tmp_path: Path) -> None:
    secrets = tmp_path / "headers"
    secrets.write_text("# tokens\n\nAuthorization: Bearer from-file\nx-tenant:  blue\n")
    options = parse_arguments(
        [
            "-H",
            ":1",
            "-m",
            "x-request-id: check",
            "--metadata-file",
            str(secrets),
            "--metadata-env",
            "x-api-key:API_KEY",
        ],
        {"API_KEY": "from-env"},
    )
    assert options.probe.metadata == (
        ("x-request-id", "check"),
        ("authorization", "Bearer from-file"),
        ("x-tenant", "blue"),
        ("x-api-key", "from-env"),
    )
    assert "from-file" not in repr(options)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: -H/--host"),
        (["-H"], "argument -H/--host: expected one argument"),
        (["-H", ""], "invalid address '': empty"),
        (
            ["-H", "bad host:1"],
            "invalid address 'bad host:1': contains whitespace or control characters",
        ),
        (["-H", "localhost"], "invalid address 'localhost': missing port"),
        (["-H", "localhost", "-p", "70000"], "invalid port '70000': must be between 1 and 65535"),
        (["-H", ":1", "-t", "abc"], "-t/--timeout 'abc' is not a number of seconds"),
        (["-H", ":1", "-t", "0"], "-t/--timeout " + ABOVE_ZERO + " (got 0.0)"),
        (["-H", ":1", "-t", "nan"], "-t/--timeout " + ABOVE_ZERO + " (got nan)"),
        (["-H", ":1", "--rpc-timeout", "-1"], "--rpc-timeout " + ABOVE_ZERO + " (got -1.0)"),
        (["-H", ":1", "-t", "86401"], "-t/--timeout '86401' is more than a day (86400 seconds)"),
        (
            ["-H", ":1", "--connect-timeout", "1e308"],
            "--connect-timeout '1e308' is more than a day (86400 seconds)",
        ),
        (["-H", ":1", "-s", "a\udcffb"], "service 'a\\udcffb' is not valid UTF-8"),
        (["-H", ":1", "-w", "fast"], "-w/--warning 'fast' " + NOT_A_RANGE),
        (["-H", ":1", "-c", "5:1"], "-c/--critical '5:1' " + NOT_A_RANGE),
        (["-H", ":1", "-c", "1e-9"], "-c/--critical '1e-9' " + NOT_A_RANGE),
        (["-H", ":1", "--connect-warning", "1:2:3"], "--connect-warning '1:2:3' " + NOT_A_RANGE),
        (["-H", ":1", "--cert-warning", "30"], "--cert-warning/--cert-critical need TLS (--tls)"),
        (
            ["-H", ":1", "--tls", "--cert-warning", "soon"],
            "--cert-warning 'soon' is not a number of days",
        ),
        (
            ["-H", ":1", "--tls", "--cert-critical", "-1"],
            "--cert-critical '-1' must be a number of days from 0 to 100000",
        ),
        (
            ["-H", ":1", "--insecure", "--ca-cert", "ca.pem"],
            "--insecure skips verification, so --ca-cert cannot be used with it",
        ),
        (["-H", ":1", "--ca-cert", ""], "--ca-cert is empty"),
        (["-H", ":1", "--json", "-q"], "--json and --quiet cannot be combined"),
        (
            ["-H", ":1", "--map-status", "DOWN=WARNING"],
            "--map-status 'DOWN=WARNING' " + NOT_A_MAPPING,
        ),
        (
            ["-H", ":1", "--map-status", "NOT_SERVING=5"],
            "--map-status 'NOT_SERVING=5' " + NOT_A_MAPPING,
        ),
        (["-H", ":1", "-m", "no-colon"], "metadata entry #1 has no ':' between key and value"),
        (
            ["-H", ":1", "-m", "a: 1", "-m", "Bad Key: 1"],
            "metadata key 'bad key' may contain only lowercase letters, digits, '-', '_', '.'",
        ),
        (
            ["-H", ":1", "-m", "grpc-timeout: 1"],
            "metadata key 'grpc-timeout' is reserved or binary and cannot be set",
        ),
        (
            ["-H", ":1", "--metadata-env", "x-key"],
            "--metadata-env takes KEY:ENVIRONMENT_VARIABLE (value not shown)",
        ),
        (
            ["-H", ":1", "--metadata-env", "x-key:NOPE"],
            "--metadata-env: environment variable NOPE is not set or empty",
        ),
        (
            ["-H", ":1", "--metadata-env", "x-key:EMPTY"],
            "--metadata-env: environment variable EMPTY is not set or empty",
        ),
        (
            ["-H", ":1", "--user-agent", "a\tb"],
            "user agent 'a\\tb' must be non-empty printable ASCII",
        ),
        (["-H", ":1", "--bogus"], "unknown option '--bogus'"),
        (["-H", ":1", "--warn=1"], "unknown option '--warn'"),
        (
            ["-H", ":1", "stray"],
            "unexpected argument (not shown); give the address with -H and quote "
            "each -m 'key: value'",
        ),
    ],
)
def test_bad_arguments_are_one_line_naming_the_value(argv: list[str], message: str) -> None:
    assert error_for(*argv, environ={"EMPTY": ""}) == message


def test_metadata_file_errors_name_the_file_and_line_not_the_value(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert error_for("-H", ":1", "--metadata-file", str(missing)) == (
        f"cannot read metadata file '{missing}': No such file or directory"
    )
    broken = tmp_path / "broken"
    broken.write_text("authorization: Bearer fine\nthis line holds s3cret-value\n")
    message = error_for("-H", ":1", "--metadata-file", str(broken))
    assert message == (
        f"metadata file '{broken}' line 2: metadata entry #2 has no ':' between key and value"
    )
    binary = tmp_path / "binary"
    binary.write_bytes(b"key: \xff\xfe\n")
    assert error_for("-H", ":1", "--metadata-file", str(binary)) == (
        f"metadata file '{binary}' is not UTF-8 text"
    )


def test_secret_values_never_appear_in_errors() -> None:
    for argv in (
        ["-H", ":1", "-m", "authorization: Bearer s3cret\x01"],
        ["-H", ":1", "-m", "authorization: Bearer", "s3cret"],
        ["-H", ":1", "-m", "authorization:", "Bearer", "s3cret"],
    ):
        assert "s3cret" not in error_for(*argv)
    message = error_for("-H", ":1", "--metadata-env", "x-key:TOKEN", environ={"TOKEN": "s3cret\n"})
    assert "s3cret" not in message


def test_service_labels_are_legal_and_unique() -> None:
    assert service_labels(["", "a.B", "x y", "it's", "k=v", "p|q", "a.B"]) == (
        "serving_overall",
        "serving_a.B",
        "serving_x_y",
        "serving_it_s",
        "serving_k_v",
        "serving_p_q",
        "serving_a.B_2",
    )


@pytest.mark.parametrize("text", ["@", "@:", "@~:", ":", "~:", "@0:", "@-1:", "@~:5e400", "1.e400"])
def test_a_range_that_means_nothing_is_an_argument_error(text: str) -> None:
    # "@" alone would alert on every value, "~:" on none: both are typos, not thresholds.
    for option in ("-w", "-c", "--connect-warning", "--rpc-critical"):
        name = "-w/--warning" if option == "-w" else "-c/--critical" if option == "-c" else option
        assert error_for("-H", ":1", option, text) == f"{name} {text!r} {NOT_A_RANGE}"


def test_ranges_with_a_bound_stay_valid() -> None:
    for text, shown in [("", ""), ("0:", ""), ("@5:", "@5:"), ("@~:0.5", "@~:0.5"), ("~:1", "~:1")]:
        options = parse_arguments(["-H", ":1", "-w", text], {})
        assert str(options.time.warning) == shown


PERFDATA_RANGE = re.compile(r"@?(~:|-?[0-9]+(\.[0-9]+)?:)?(-?[0-9]+(\.[0-9]+)?)?")


@given(st.text(max_size=12))
@settings(max_examples=300, deadline=None)
def test_any_range_text_is_a_clean_range_or_a_clean_error(text: str) -> None:
    try:
        parsed = parse_range("-w/--warning", text)
    except InvalidArgument as error:
        assert "\n" not in str(error)
        assert str(error).startswith("-w/--warning ")
    else:
        assert PERFDATA_RANGE.fullmatch(str(parsed))


TOKENS = st.sampled_from(
    [
        "-H", "-p", "-s", "-w", "-c", "-t", "--connect-timeout", "--rpc-timeout", "--tls",
        "--ca-cert", "--insecure", "--cert-warning", "--cert-critical", "-m", "--metadata-env",
        "--map-status", "--json", "-q", "-v", "--gzip", "--authority", "--user-agent", ":1",
        "localhost:50051", "unix:/x", "[::1]:1", "0.5", "10:", "@1:2", "NOT_SERVING=WARNING",
        "k: v", "", "-", "--", "=",
    ]
)  # fmt: skip


@given(st.lists(st.one_of(TOKENS, st.text(max_size=8)), max_size=8))
@settings(max_examples=400, deadline=None)
def test_any_argv_gives_options_or_one_clean_error(argv: list[str]) -> None:
    try:
        parse_arguments(argv, {})
    except InvalidArgument as error:
        assert str(error)
        assert "\n" not in str(error)
    except SystemExit as exit_:
        # Only help and version end parsing early, and they succeed.
        assert exit_.code == 0
