"""The drop-in probe's Go-compatible pieces as pure logic: durations, quoting, flag parsing.

Expected values come from Go itself: ``time.ParseDuration``/``Duration.String`` and
``strconv.Quote`` test tables, and the ``flag`` package's messages and usage layout.
"""

from __future__ import annotations

import pytest
from support.go_probe import GO_USAGE

from check_grpc_health.probe_cli.durations import format_duration, parse_duration
from check_grpc_health.probe_cli.flags import (
    FLAGS,
    Settings,
    UsageError,
    describe,
    parse_flags,
    usage,
    validate,
)
from check_grpc_health.probe_cli.gotext import go_code_name, go_quote

NS, US, MS, S = 1, 1_000, 1_000_000, 1_000_000_000
MIN, H = 60 * S, 3600 * S


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("0", 0),
        ("5s", 5 * S),
        ("30s", 30 * S),
        ("1478s", 1478 * S),
        ("-5s", -5 * S),
        ("+5s", 5 * S),
        ("-0", 0),
        ("+0", 0),
        ("5.0s", 5 * S),
        ("5.6s", 5 * S + 600 * MS),
        ("5.s", 5 * S),
        (".5s", 500 * MS),
        ("1.0s", 1 * S),
        ("1.00s", 1 * S),
        ("1.004s", 1 * S + 4 * MS),
        ("1.0040s", 1 * S + 4 * MS),
        ("100.00100s", 100 * S + 1 * MS),
        ("10ns", 10 * NS),
        ("11us", 11 * US),
        ("12\u00b5s", 12 * US),
        ("12\u03bcs", 12 * US),
        ("13ms", 13 * MS),
        ("14s", 14 * S),
        ("15m", 15 * MIN),
        ("16h", 16 * H),
        ("3h30m", 3 * H + 30 * MIN),
        ("10.5s4m", 4 * MIN + 10 * S + 500 * MS),
        ("-2m3.4s", -(2 * MIN + 3 * S + 400 * MS)),
        ("1h2m3s4ms5us6ns", H + 2 * MIN + 3 * S + 4 * MS + 5 * US + 6 * NS),
        ("39h9m14.425s", 39 * H + 9 * MIN + 14 * S + 425 * MS),
        ("52763797000ns", 52763797000 * NS),
        ("0.3333333333333333333h", 20 * MIN),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", (1 << 63) - 1),
        ("9223372036854775.807us", (1 << 63) - 1),
        ("9223372036s854ms775us807ns", (1 << 63) - 1),
        ("-9223372036854775808ns", -(1 << 63)),
        ("-9223372036854775.808us", -(1 << 63)),
        ("-9223372036s854ms775us808ns", -(1 << 63)),
        ("-2562047h47m16.854775808s", -(1 << 63)),
        ("0.100000000000000000000h", 6 * MIN),
        ("0.830103483285477580700h", 49 * MIN + 48 * S + 372539827 * NS),
        ("250ms", 250 * MS),
        ("1m", MIN),
        ("1h2m", H + 2 * MIN),
    ],
)
def test_parse_duration_matches_go(text: str, nanoseconds: int) -> None:
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "3",
        "5",
        "00",
        "-",
        "s",
        ".",
        "-.",
        ".s",
        "+.s",
        "1d",
        "1sx",
        "1 s",
        " 1s",
        "\udc85\udc85",
        "\udcffff",
        "hello \udcffff world",
        "9223372036854775810ns",
        "9223372036854775808ns",
        "-9223372036854775809ns",
        "9223372036854775.808us",
        "3000000h",
        "18446744073709551616ns",
    ],
)
def test_parse_duration_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1100, "1.1\u00b5s"),
        (2200 * US, "2.2ms"),
        (3300 * MS, "3.3s"),
        (4 * MIN + 5 * S, "4m5s"),
        (4 * MIN + 5001 * MS, "4m5.001s"),
        (5 * H + 6 * MIN + 7001 * MS, "5h6m7.001s"),
        (8 * MIN + 1, "8m0.000000001s"),
        ((1 << 63) - 1, "2562047h47m16.854775807s"),
        (-(1 << 63), "-2562047h47m16.854775808s"),
        (S, "1s"),
        (250 * MS, "250ms"),
        (1500 * MS, "1.5s"),
        (MIN, "1m0s"),
        (H + 2 * MIN, "1h2m0s"),
        (-S, "-1s"),
        (17031620, "17.03162ms"),
        (999, "999ns"),
    ],
)
def test_format_duration_matches_go(nanoseconds: int, text: str) -> None:
    assert format_duration(nanoseconds) == text


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("", '""'),
        ("127.0.0.1:5000", '"127.0.0.1:5000"'),
        ("\a\b\f\r\n\t\v", '"\\a\\b\\f\\r\\n\\t\\v"'),
        ("\\", '"\\\\"'),
        ('"', '"\\""'),
        ("abc\udcffdef", '"abc\\xffdef"'),
        ("\u263a", '"\u263a"'),
        ("\U0010ffff", '"\\U0010ffff"'),
        ("\x04", '"\\x04"'),
        ("\x7f", '"\\x7f"'),
        ("\u00a0", '"\\u00a0"'),
        ("caf\u00e9", '"caf\u00e9"'),
    ],
)
def test_go_quote_matches_strconv_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("OK", "OK"),
        ("CANCELLED", "Canceled"),
        ("NOT_FOUND", "NotFound"),
        ("DEADLINE_EXCEEDED", "DeadlineExceeded"),
        ("UNIMPLEMENTED", "Unimplemented"),
        ("UNAVAILABLE", "Unavailable"),
        ("PERMISSION_DENIED", "PermissionDenied"),
        ("UNAUTHENTICATED", "Unauthenticated"),
        ("RESOURCE_EXHAUSTED", "ResourceExhausted"),
        ("INVALID_ARGUMENT", "InvalidArgument"),
    ],
)
def test_code_names_are_grpc_go_names(code: str, name: str) -> None:
    assert go_code_name(code) == name


# --- parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["-addr=x:1"],
        ["-addr", "x:1"],
        ["--addr", "x:1"],
        ["--addr=x:1"],
    ],
)
def test_all_four_spellings_set_a_value(argv: list[str]) -> None:
    assert parse_flags(argv).addr == "x:1"


@pytest.mark.parametrize(
    ("argv", "tls"),
    [
        (["-tls"], True),
        (["--tls"], True),
        (["-tls=true"], True),
        (["--tls=1"], True),
        (["-tls=T"], True),
        (["-tls=TRUE"], True),
        (["-tls=True"], True),
        (["-tls=false"], False),
        (["-tls=0"], False),
        (["-tls=F"], False),
        (["-tls", "-tls=false"], False),
        # A boolean never takes the next argument: "false" is the first non-flag.
        (["-tls", "false"], True),
    ],
)
def test_booleans_are_set_like_go(argv: list[str], tls: bool) -> None:
    assert parse_flags(argv).tls is tls


def test_defaults_are_the_go_tools() -> None:
    settings = parse_flags([])
    assert settings == Settings()
    assert settings.addr == ""
    assert settings.service == ""
    assert settings.user_agent == "grpc_health_probe"
    assert settings.connect_timeout == S
    assert settings.rpc_timeout == S
    assert settings.rpc_headers == ()
    assert not any(
        (
            settings.tls,
            settings.tls_no_verify,
            settings.alts,
            settings.spiffe,
            settings.gzip,
            settings.verbose,
            settings.version,
        )
    )
    assert (settings.tls_ca_cert, settings.tls_client_cert, settings.tls_client_key) == ("",) * 3
    assert settings.tls_server_name == ""


def test_every_flag_of_the_go_tool_is_defined() -> None:
    names = {flag.name for flag in FLAGS}
    assert names >= {
        "addr",
        "service",
        "user-agent",
        "connect-timeout",
        "rpc-timeout",
        "rpc-header",
        "tls",
        "tls-no-verify",
        "tls-ca-cert",
        "tls-client-cert",
        "tls-client-key",
        "tls-server-name",
        "alts",
        "spiffe",
        "gzip",
        "v",
        "version",
    }


def test_parsing_stops_at_the_first_non_flag() -> None:
    settings = parse_flags(["-addr", "x:1", "positional", "-tls", "-no-such-flag"])
    assert settings.addr == "x:1"
    assert settings.tls is False


@pytest.mark.parametrize("stop", ["--", "-", "plain"])
def test_terminators_end_parsing(stop: str) -> None:
    assert parse_flags(["-gzip", stop, "-tls"]) == Settings(gzip=True)


def test_last_value_wins_and_headers_accumulate() -> None:
    settings = parse_flags(
        [
            "-service=a",
            "-service=b",
            "-rpc-header",
            "foo: bar",
            "-rpc-header=foo:baz",
            "-rpc-header",
            "X-Other:\t 1",
        ]
    )
    assert settings.service == "b"
    assert settings.rpc_headers == (("foo", "bar"), ("foo", "baz"), ("x-other", "1"))


def test_header_value_keeps_colons_after_the_first() -> None:
    assert parse_flags(["-rpc-header", "x-url: http://a:1/"]).rpc_headers == (
        ("x-url", "http://a:1/"),
    )


def test_durations_parse_in_flags() -> None:
    settings = parse_flags(["-connect-timeout=250ms", "-rpc-timeout", "1.5s"])
    assert (settings.connect_timeout, settings.rpc_timeout) == (250 * MS, 1500 * MS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-x"], "flag provided but not defined: -x"),
        (["--no-such-flag=1"], "flag provided but not defined: -no-such-flag"),
        # Names are exact, as in Go: a prefix of a flag is no flag.
        (["-conn=1s"], "flag provided but not defined: -conn"),
        (["--serv", "x"], "flag provided but not defined: -serv"),
        (["-addr"], "flag needs an argument: -addr"),
        (["-rpc-timeout"], "flag needs an argument: -rpc-timeout"),
        (["---x"], "bad flag syntax: ---x"),
        (["-=x"], "bad flag syntax: -=x"),
        (["--=x"], "bad flag syntax: --=x"),
        (["-tls=maybe"], 'invalid boolean value "maybe" for -tls: parse error'),
        (["-v="], 'invalid boolean value "" for -v: parse error'),
        (["-connect-timeout", "5"], 'invalid value "5" for flag -connect-timeout: parse error'),
        (["-rpc-timeout=1d"], 'invalid value "1d" for flag -rpc-timeout: parse error'),
        (
            ["-rpc-header", "novalue"],
            "invalid value (not shown) for flag -rpc-header: "
            "invalid RPC header, expected 'key: value'",
        ),
        (["-h"], ""),
        (["-help"], ""),
        (["--help"], ""),
        (["-h=1"], ""),
    ],
)
def test_parse_errors_carry_gos_message(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_flags(argv)
    assert caught.value.message == message


def test_header_errors_never_show_the_value() -> None:
    for entry in ["Bearer s3cr3t-token", "bad key: s3cr3t-token", "k: s3cr3t\x01token"]:
        with pytest.raises(UsageError) as caught:
            parse_flags(["-rpc-header", entry])
        assert "s3cr3t" not in caught.value.message
        assert caught.value.message.startswith("invalid value (not shown) for flag -rpc-header: ")


def test_usage_block_has_gos_layout() -> None:
    assert usage() == GO_USAGE


# --- validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        ([], "-addr not specified"),
        (["-tls-no-verify", "-connect-timeout=0"], "-addr not specified"),
        (
            ["-addr=x:1", "-connect-timeout=0"],
            "-connect-timeout must be greater than zero (specified: 0s)",
        ),
        (
            ["-addr=x:1", "-connect-timeout=-1.5s", "-rpc-timeout=0"],
            "-connect-timeout must be greater than zero (specified: -1.5s)",
        ),
        (["-addr=x:1", "-rpc-timeout=0"], "-rpc-timeout must be greater than zero (specified: 0s)"),
        (
            ["-addr=x:1", "-rpc-timeout=-1m", "-alts", "-spiffe"],
            "-rpc-timeout must be greater than zero (specified: -1m0s)",
        ),
        (["-addr=x:1", "-alts", "-spiffe", "-tls"], "-alts and -spiffe are mutually incompatible"),
        (["-addr=x:1", "-tls", "-alts", "-tls-ca-cert=a"], "cannot specify -tls with -alts"),
        (["-addr=x:1", "-tls-no-verify"], "specified -tls-no-verify without specifying -tls"),
        (["-addr=x:1", "-tls-ca-cert=ca.pem"], "specified -tls-ca-cert without specifying -tls"),
        (
            ["-addr=x:1", "-tls-client-cert=c.pem"],
            "specified -tls-client-cert without specifying -tls",
        ),
        (
            ["-addr=x:1", "-tls-server-name=n"],
            "specified -tls-server-name without specifying -tls",
        ),
        (
            ["-addr=x:1", "-tls", "-tls-client-cert=c.pem"],
            "specified -tls-client-cert without specifying -tls-client-key",
        ),
        (
            ["-addr=x:1", "-tls", "-tls-client-key=k.pem"],
            "specified -tls-client-key without specifying -tls-client-cert",
        ),
        (
            ["-addr=x:1", "-tls-client-key=k.pem"],
            "specified -tls-client-key without specifying -tls-client-cert",
        ),
        (
            ["-addr=x:1", "-tls", "-tls-no-verify", "-tls-ca-cert=ca.pem"],
            "cannot specify -tls-ca-cert with -tls-no-verify (CA cert would not be used)",
        ),
        (
            ["-addr=x:1", "-tls", "-tls-no-verify", "-tls-server-name=n"],
            "cannot specify -tls-server-name with -tls-no-verify (server name would not be used)",
        ),
        (["-addr=x:1", "-tls", "-spiffe"], None),  # checked later, without "error: "
        (["-addr=x:1"], None),
    ],
)
def test_validation_order_and_messages(argv: list[str], problem: str | None) -> None:
    assert validate(parse_flags(argv)) == problem


def test_verbose_options_block() -> None:
    settings = parse_flags(
        ["-addr=:5000", "-connect-timeout=250ms", "-rpc-timeout=1m", "-tls", "-tls-ca-cert=ca.pem"]
    )
    assert describe(settings) == [
        "parsed options:",
        "> addr=:5000 conn_timeout=250ms rpc_timeout=1m0s",
        "> tls=true",
        "  > no-verify=false ",
        "  > ca-cert=ca.pem",
        "  > client-cert=",
        "  > client-key=",
        "  > server-name=",
        "> alts=false",
        "> spiffe=false",
    ]


def test_verbose_options_block_hides_header_values() -> None:
    settings = parse_flags(
        ["-addr=:5000", "-rpc-header", "b: s3cr3t", "-rpc-header", "a: 1", "-rpc-header", "b: 2"]
    )
    lines = describe(settings)
    assert lines[2] == "> headers: map[a:[<redacted>] b:[<redacted> <redacted>]]"
    assert "s3cr3t" not in "\n".join(lines)
    assert "s3cr3t" not in repr(settings)


def test_the_docs_name_every_extra_flag_in_the_usage_block() -> None:
    from support.paths import ROOT

    extras = [
        line.split()[0]
        for line, help_line in zip(usage().splitlines(), usage().splitlines()[1:], strict=False)
        if help_line.endswith("(not in the Go tool)")
    ]
    assert extras == ["-no-proxy", "-rpc-header-file", "-wait", "-watch"]
    text = " ".join((ROOT / "docs" / "kubernetes.md").read_text("utf-8").split())
    listed = ", ".join(f"`{flag}`" for flag in extras[:-1]) + f" and `{extras[-1]}`"
    assert f"plus the extra flags {listed} in their places" in text
