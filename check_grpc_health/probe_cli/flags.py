"""The Go tool's command line: one flag table for parsing, ``-h`` and ``-v``.

Layer: adapter (the drop-in probe). Parses argv the way Go's ``flag`` package does
(single-dash long names, ``-x=v``, ``-x v``, ``--x``, booleans set by ``-b`` or
``-b=false``, parsing stops at the first non-flag) and validates in the Go tool's
order. Imports nothing heavy: ``-h``, a bad flag or ``-version`` never load grpcio.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, NamedTuple

from check_grpc_health.probe_cli.durations import SECOND, format_duration, parse_duration
from check_grpc_health.probe_cli.gotext import go_bool, go_quote

if TYPE_CHECKING:
    from collections.abc import Sequence


class Kind(enum.Enum):
    """How a flag takes its value."""

    STRING = "string"
    BOOL = "bool"
    DURATION = "duration"
    HEADER = "header"
    HEADER_FILE = "header-file"

    @property
    def type_word(self) -> str:
        """The word Go's usage block prints after the flag name."""
        return _TYPE_WORDS[self]


_TYPE_WORDS = {
    Kind.STRING: "string",
    Kind.BOOL: "",
    Kind.DURATION: "duration",
    Kind.HEADER: "value",
    Kind.HEADER_FILE: "string",
}


class Flag(NamedTuple):
    """One command-line flag: its name, kind, Go default text and help."""

    name: str
    kind: Kind
    attribute: str
    default: str
    usage: str


FLAGS: tuple[Flag, ...] = (
    Flag("addr", Kind.STRING, "addr", "", "(required) tcp host:port to connect"),
    Flag("service", Kind.STRING, "service", "", 'service name to check (default: "")'),
    Flag(
        "user-agent",
        Kind.STRING,
        "user_agent",
        "grpc_health_probe",
        "user-agent header value of health check requests",
    ),
    Flag(
        "connect-timeout",
        Kind.DURATION,
        "connect_timeout",
        "1s",
        "timeout for establishing connection",
    ),
    Flag(
        "rpc-header",
        Kind.HEADER,
        "rpc_headers",
        "",
        "additional RPC headers in 'name: value' format. "
        "May specify more than one via multiple flags.",
    ),
    Flag(
        "rpc-header-file",
        Kind.HEADER_FILE,
        "rpc_headers",
        "",
        "file of additional RPC headers, one 'name: value' per line; keeps values out "
        "of the process list (not in the Go tool)",
    ),
    Flag("rpc-timeout", Kind.DURATION, "rpc_timeout", "1s", "timeout for health check rpc"),
    Flag(
        "tls", Kind.BOOL, "tls", "false", "use TLS (default: false, INSECURE plaintext transport)"
    ),
    Flag(
        "tls-no-verify",
        Kind.BOOL,
        "tls_no_verify",
        "false",
        "(with -tls) don't verify the certificate (INSECURE) presented by the server "
        "(default: false)",
    ),
    Flag(
        "tls-ca-cert",
        Kind.STRING,
        "tls_ca_cert",
        "",
        "(with -tls, optional) file containing trusted certificates for verifying server",
    ),
    Flag(
        "tls-client-cert",
        Kind.STRING,
        "tls_client_cert",
        "",
        "(with -tls, optional) client certificate for authenticating to the server "
        "(requires -tls-client-key)",
    ),
    Flag(
        "tls-client-key",
        Kind.STRING,
        "tls_client_key",
        "",
        "(with -tls) client private key for authenticating to the server "
        "(requires -tls-client-cert)",
    ),
    Flag(
        "tls-server-name",
        Kind.STRING,
        "tls_server_name",
        "",
        "(with -tls) override the hostname used to verify the server certificate",
    ),
    Flag(
        "alts",
        Kind.BOOL,
        "alts",
        "false",
        "use ALTS (default: false, INSECURE plaintext transport)",
    ),
    Flag("v", Kind.BOOL, "verbose", "false", "verbose logs"),
    Flag(
        "gzip",
        Kind.BOOL,
        "gzip",
        "false",
        "use GZIPCompressor for requests and GZIPDecompressor for response (default: false)",
    ),
    Flag(
        "no-proxy", Kind.BOOL, "no_proxy", "false", "ignore *_proxy variables (not in the Go tool)"
    ),
    Flag("spiffe", Kind.BOOL, "spiffe", "false", "use SPIFFE to obtain mTLS credentials"),
    Flag("version", Kind.BOOL, "version", "false", "show probe version and exit"),
)
_BY_NAME = {flag.name: flag for flag in FLAGS}


class Settings(NamedTuple):
    """The parsed command line. Durations are in nanoseconds, as Go keeps them.

    ``rpc_headers`` holds secrets: they go to the core and nowhere else.
    """

    addr: str = ""
    service: str = ""
    user_agent: str = "grpc_health_probe"
    connect_timeout: int = SECOND
    rpc_timeout: int = SECOND
    rpc_headers: tuple[tuple[str, str], ...] = ()
    tls: bool = False
    tls_no_verify: bool = False
    tls_ca_cert: str = ""
    tls_client_cert: str = ""
    tls_client_key: str = ""
    tls_server_name: str = ""
    alts: bool = False
    verbose: bool = False
    gzip: bool = False
    no_proxy: bool = False
    spiffe: bool = False
    version: bool = False

    @property
    def wants_tls(self) -> bool:
        """``-tls``, or an address written ``grpcs://`` or ``https://`` (an extension)."""
        return self.tls or self.addr.strip().lower().startswith(("grpcs://", "https://"))

    def __repr__(self) -> str:
        fields = self._asdict()
        fields["rpc_headers"] = tuple((key, "<redacted>") for key, _ in self.rpc_headers)
        return "Settings(" + ", ".join(f"{key}={value!r}" for key, value in fields.items()) + ")"


class UsageError(Exception):
    """A command line Go's ``flag`` package would reject; ``str()`` is Go's message.

    ``message`` is empty for ``-h``/``-help``, where Go prints only the usage block.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_flags(argv: Sequence[str]) -> Settings:
    """Parse ``argv`` (without the program name) like Go's ``flag.FlagSet.Parse``."""
    values: dict[str, Any] = {}
    headers: list[tuple[str, str]] = []
    args = list(argv)
    while args:
        arg = args[0]
        if len(arg) < 2 or arg[0] != "-":
            break
        dashes = 2 if arg[1] == "-" else 1
        if arg == "--":
            break
        name = arg[dashes:]
        if not name or name[0] in "-=":
            raise UsageError(f"bad flag syntax: {arg}")
        args = args[1:]
        value: str | None = None
        if "=" in name[1:]:
            split = name.index("=", 1)
            name, value = name[:split], name[split + 1 :]
        flag = _BY_NAME.get(name)
        if flag is None:
            if name in ("help", "h"):
                raise UsageError("")
            raise UsageError(f"flag provided but not defined: -{name}")
        if flag.kind is Kind.BOOL:
            values[flag.attribute] = _parse_bool(flag, "true" if value is None else value)
            continue
        if value is None:
            if not args:
                raise UsageError(f"flag needs an argument: -{name}")
            value, args = args[0], args[1:]
        if flag.kind is Kind.HEADER:
            headers.append(_parse_header(value, len(headers) + 1))
        elif flag.kind is Kind.HEADER_FILE:
            headers.extend(_read_header_file(flag, value, len(headers)))
        elif flag.kind is Kind.DURATION:
            values[flag.attribute] = _parse_duration_flag(flag, value)
        else:
            values[flag.attribute] = value
    return Settings()._replace(rpc_headers=tuple(headers), **values)


def _parse_bool(flag: Flag, value: str) -> bool:
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise UsageError(f"invalid boolean value {go_quote(value)} for -{flag.name}: parse error")


def _parse_duration_flag(flag: Flag, value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError:
        raise UsageError(
            f"invalid value {go_quote(value)} for flag -{flag.name}: parse error"
        ) from None


def _parse_header(entry: str, position: int) -> tuple[str, str]:
    """One ``-rpc-header``. Errors never show the value: it may be a token."""
    from check_grpc_health.core.options import parse_metadata
    from check_grpc_health.core.results import InvalidArgument

    key, sep, value = entry.partition(":")
    if not sep:
        raise UsageError(
            "invalid value (not shown) for flag -rpc-header: "
            "invalid RPC header, expected 'key: value'"
        )
    try:
        # Go trims any leading white space from the value, tabs included.
        return parse_metadata(f"{key}:{value.lstrip()}", position)
    except InvalidArgument as error:
        raise UsageError(f"invalid value (not shown) for flag -rpc-header: {error}") from None


def _read_header_file(flag: Flag, path: str, already: int) -> list[tuple[str, str]]:
    """Headers from a file: one ``name: value`` per line; blank and ``#`` lines skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = getattr(error, "strerror", None) or "not a readable UTF-8 text file"
        raise UsageError(
            f"invalid value {go_quote(path)} for flag -{flag.name}: {reason}"
        ) from None
    headers: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            headers.append(_parse_header(line, already + len(headers) + 1))
        except UsageError as error:
            detail = error.message.partition("-rpc-header: ")[2]
            raise UsageError(
                f"invalid value {go_quote(path)} for flag -{flag.name}: line {number}: {detail}"
            ) from None
    return headers


def usage() -> str:
    """The usage block Go's ``flag`` package prints for ``-h`` and after a parse error."""
    lines = ["Usage:"]
    for flag in sorted(FLAGS, key=lambda item: item.name):
        head = f"  -{flag.name}"
        if flag.kind.type_word:
            head += f" {flag.kind.type_word}"
        # Go puts one-letter boolean flags on a single line.
        head += "\t" if len(head) <= 4 else "\n    \t"
        text = head + flag.usage
        if flag.default not in ("", "false", "0"):
            shown = go_quote(flag.default) if flag.kind.type_word == "string" else flag.default
            text += f" (default {shown})"
        lines.append(text)
    return "\n".join(lines)


def validate(settings: Settings) -> str | None:
    """The Go tool's argument checks, in its order; the first failure's text or None."""
    if not settings.addr:
        return "-addr not specified"
    for name, value in (
        ("-connect-timeout", settings.connect_timeout),
        ("-rpc-timeout", settings.rpc_timeout),
    ):
        if value <= 0:
            return f"{name} must be greater than zero (specified: {format_duration(value)})"
    checks = (
        (settings.alts and settings.spiffe, "-alts and -spiffe are mutually incompatible"),
        (settings.tls and settings.alts, "cannot specify -tls with -alts"),
        (
            not settings.wants_tls and settings.tls_no_verify,
            "specified -tls-no-verify without specifying -tls",
        ),
        (
            not settings.wants_tls and bool(settings.tls_ca_cert),
            "specified -tls-ca-cert without specifying -tls",
        ),
        (
            not settings.wants_tls and bool(settings.tls_client_cert),
            "specified -tls-client-cert without specifying -tls",
        ),
        (
            not settings.wants_tls and bool(settings.tls_server_name),
            "specified -tls-server-name without specifying -tls",
        ),
        (
            bool(settings.tls_client_cert) and not settings.tls_client_key,
            "specified -tls-client-cert without specifying -tls-client-key",
        ),
        (
            not settings.tls_client_cert and bool(settings.tls_client_key),
            "specified -tls-client-key without specifying -tls-client-cert",
        ),
        (
            settings.tls_no_verify and bool(settings.tls_ca_cert),
            "cannot specify -tls-ca-cert with -tls-no-verify (CA cert would not be used)",
        ),
        (
            settings.tls_no_verify and bool(settings.tls_server_name),
            "cannot specify -tls-server-name with -tls-no-verify (server name would not be used)",
        ),
    )
    for failed, message in checks:
        if failed:
            return message
    return None


def describe(settings: Settings) -> list[str]:
    """The ``-v`` "parsed options" lines. Header values are never shown."""
    lines = [
        "parsed options:",
        f"> addr={settings.addr} conn_timeout={format_duration(settings.connect_timeout)} "
        f"rpc_timeout={format_duration(settings.rpc_timeout)}",
    ]
    if settings.rpc_headers:
        counts: dict[str, int] = {}
        for key, _ in settings.rpc_headers:
            counts[key] = counts.get(key, 0) + 1
        shown = " ".join(
            f"{key}:[{' '.join(['<redacted>'] * count)}]" for key, count in sorted(counts.items())
        )
        lines.append(f"> headers: map[{shown}]")
    lines.append(f"> tls={go_bool(settings.wants_tls)}")
    if settings.wants_tls:
        lines += [
            f"  > no-verify={go_bool(settings.tls_no_verify)} ",
            f"  > ca-cert={settings.tls_ca_cert}",
            f"  > client-cert={settings.tls_client_cert}",
            f"  > client-key={settings.tls_client_key}",
            f"  > server-name={settings.tls_server_name}",
        ]
    lines.append(f"> alts={go_bool(settings.alts)}")
    lines.append(f"> spiffe={go_bool(settings.spiffe)}")
    return lines
