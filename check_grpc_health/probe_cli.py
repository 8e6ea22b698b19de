"""The drop-in ``grpc_health_probe`` command: the Go tool's flags, messages and exit codes.

Layer: adapter. It parses argv the way Go's ``flag`` package does (single-dash long
names, ``-x=v``, ``-x v``, ``--x``, booleans set by ``-b`` or ``-b=false``, parsing
stops at the first non-flag), validates in the Go tool's order, calls the core once
and renders the outcome as the Go tool's stderr lines and exit codes. Everything is
driven by one table of flags (:data:`FLAGS`) that serves parsing, the ``-h`` usage
block and the ``-v`` option lines.

It differs from the Go tool only where no script could rely on the difference:
a refused connection or a failed TLS handshake fails at once (Go waits out the
connect timeout; the exit code is the same), header values are never printed,
and ``-rpc-header-file`` is an extra flag.

Nothing heavy is imported before the arguments are known to be good: ``-h``, a bad
flag or ``-version`` never load grpcio.
"""

from __future__ import annotations

import enum
import importlib
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from check_grpc_health.entry import release_signals

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

    from check_grpc_health.options import ProbeOptions
    from check_grpc_health.probe import HealthChannel
    from check_grpc_health.results import ConnectFailure, RpcFailure, ServiceResult


class Exit(enum.IntEnum):
    """The Go tool's exit codes."""

    SERVING = 0
    INVALID_ARGUMENTS = 1
    CONNECTION_FAILURE = 2
    RPC_FAILURE = 3
    UNHEALTHY = 4
    SPIFFE_FAILURE = 20


# --- Go durations -------------------------------------------------------------

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # MICRO SIGN
    "\u03bcs": MICROSECOND,  # GREEK SMALL LETTER MU
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_MAX = 1 << 63
_DIGITS = frozenset("0123456789")


def parse_duration(text: str) -> int:
    """Parse a Go duration (``250ms``, ``1.5s``, ``1h2m``) into nanoseconds.

    The grammar and the limits are those of Go's ``time.ParseDuration``: a sign,
    then one or more decimal numbers each with a unit; ``0`` alone is zero. Raises
    :class:`ValueError` for anything else, a bare number such as ``5`` included.
    """
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    while rest:
        if not (rest[0] == "." or rest[0] in _DIGITS):
            raise ValueError(f"invalid duration {text!r}")
        whole, rest, had_whole = _leading_int(rest, text)
        fraction, scale, had_fraction = 0, 1.0, False
        if rest[:1] == ".":
            fraction, scale, rest, had_fraction = _leading_fraction(rest[1:])
        if not (had_whole or had_fraction):
            raise ValueError(f"invalid duration {text!r}")
        end = 0
        while end < len(rest) and not (rest[end] == "." or rest[end] in _DIGITS):
            end += 1
        if end == 0:
            raise ValueError(f"missing unit in duration {text!r}")
        unit = _UNITS.get(rest[:end])
        if unit is None:
            raise ValueError(f"unknown unit {rest[:end]!r} in duration {text!r}")
        rest = rest[end:]
        if whole > _MAX // unit:
            raise ValueError(f"invalid duration {text!r}")
        value = whole * unit
        if fraction > 0:
            # Go uses float64 here too, which is exact to the nanosecond for hours.
            value += int(float(fraction) * (float(unit) / scale))
            if value > _MAX:
                raise ValueError(f"invalid duration {text!r}")
        total += value
        if total > _MAX:
            raise ValueError(f"invalid duration {text!r}")
    if negative:
        return -total
    if total > _MAX - 1:
        raise ValueError(f"invalid duration {text!r}")
    return total


def _leading_int(text: str, original: str) -> tuple[int, str, bool]:
    value = 0
    index = 0
    while index < len(text) and text[index] in _DIGITS:
        if value > _MAX // 10:
            raise ValueError(f"invalid duration {original!r}")
        value = value * 10 + ord(text[index]) - ord("0")
        if value > _MAX:
            raise ValueError(f"invalid duration {original!r}")
        index += 1
    return value, text[index:], index > 0


def _leading_fraction(text: str) -> tuple[int, float, str, bool]:
    value = 0
    scale = 1.0
    overflow = False
    index = 0
    while index < len(text) and text[index] in _DIGITS:
        if not overflow:
            if value > (_MAX - 1) // 10:
                overflow = True
            else:
                candidate = value * 10 + ord(text[index]) - ord("0")
                if candidate > _MAX:
                    overflow = True
                else:
                    value = candidate
                    scale *= 10
        index += 1
    return value, scale, text[index:], index > 0


def format_duration(nanoseconds: int) -> str:
    """Render nanoseconds exactly as Go's ``time.Duration.String`` does.

    ``1s``, ``250ms``, ``1.5s``, ``1m0s``, ``1h2m0s``, ``1.234567ms``, ``0s``.
    """
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    value = abs(nanoseconds)
    if value < SECOND:
        if value < MICROSECOND:
            return f"{sign}{value}ns"
        unit, precision = ("\u00b5s", 3) if value < MILLISECOND else ("ms", 6)
        whole, fraction = divmod(value, 10**precision)
        return f"{sign}{whole}{_fraction(fraction, precision)}{unit}"
    seconds, fraction = divmod(value, SECOND)
    minutes, seconds = divmod(seconds, 60)
    text = f"{seconds}{_fraction(fraction, 9)}s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def _fraction(value: int, precision: int) -> str:
    if value == 0:
        return ""
    return "." + f"{value:0{precision}d}".rstrip("0")


# --- Go string quoting --------------------------------------------------------

_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def go_quote(text: str) -> str:
    """Quote like Go's ``%q`` (``strconv.Quote``).

    Undecodable argv bytes, which Python carries as surrogate escapes, come out as
    ``\\xNN`` the way Go prints invalid UTF-8.
    """
    parts = ['"']
    for char in text:
        code = ord(char)
        if char in _GO_ESCAPES:
            parts.append(_GO_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:
            parts.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            parts.append("\\ufffd")
        elif char.isprintable():
            parts.append(char)
        elif code < 0x20 or code == 0x7F:
            parts.append(f"\\x{code:02x}")
        elif code < 0x10000:
            parts.append(f"\\u{code:04x}")
        else:
            parts.append(f"\\U{code:08x}")
    parts.append('"')
    return "".join(parts)


# --- the flag table -----------------------------------------------------------


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
    Flag("spiffe", Kind.BOOL, "spiffe", "false", "use SPIFFE to obtain mTLS credentials"),
    Flag("version", Kind.BOOL, "version", "false", "print the probe version and exit"),
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
    spiffe: bool = False
    version: bool = False

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
    from check_grpc_health.options import parse_metadata
    from check_grpc_health.results import InvalidArgument

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
            not settings.tls and settings.tls_no_verify,
            "specified -tls-no-verify without specifying -tls",
        ),
        (
            not settings.tls and bool(settings.tls_ca_cert),
            "specified -tls-ca-cert without specifying -tls",
        ),
        (
            not settings.tls and bool(settings.tls_client_cert),
            "specified -tls-client-cert without specifying -tls",
        ),
        (
            not settings.tls and bool(settings.tls_server_name),
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
    lines.append(f"> tls={_go_bool(settings.tls)}")
    if settings.tls:
        lines += [
            f"  > no-verify={_go_bool(settings.tls_no_verify)} ",
            f"  > ca-cert={settings.tls_ca_cert}",
            f"  > client-cert={settings.tls_client_cert}",
            f"  > client-key={settings.tls_client_key}",
            f"  > server-name={settings.tls_server_name}",
        ]
    lines.append(f"> alts={_go_bool(settings.alts)}")
    lines.append(f"> spiffe={_go_bool(settings.spiffe)}")
    return lines


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


# --- output -------------------------------------------------------------------


def _log(line: str) -> None:
    """One line to stderr as Go's ``log`` writes it: UTF-8 bytes, flushed at once."""
    data = (line + "\n").encode("utf-8", "surrogateescape")
    stream = sys.stderr
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(data.decode("utf-8", "replace"))
    else:
        stream.flush()
        buffer.write(data)
    stream.flush()


_SIGNAL_NAMES: dict[int, str] = {signal.SIGTERM: "terminated", signal.SIGINT: "interrupt"}
# Shorter header values are not hidden in server text: it would mangle numbers.
_MIN_HIDDEN_VALUE = 6


class _Cancellation:
    """SIGTERM/SIGINT handling that mirrors the Go tool's cancelled context.

    Before the health RPC starts a signal ends the probe with exit 2, during it with
    exit 3, each with Go's lines. Once the verdict is known (:meth:`finish`) a signal
    ends the process with the verdict's code and prints nothing, so the output never
    contradicts the exit code. The handler writes with one ``os.write`` and leaves
    with ``os._exit``. It never raises: an exception raised while grpcio waits on the
    channel can leave ``Channel.close`` blocked.

    ``owns_process`` (the console script) keeps signals ignored after the verdict, up
    to the interpreter's exit; an in-process caller gets its own handlers back.
    """

    def __init__(self, *, owns_process: bool) -> None:
        self.owns_process = owns_process
        self.lines: list[str] = []
        self.code = Exit.CONNECTION_FAILURE
        self.verdict: int | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> _Cancellation:
        try:
            for number in _SIGNAL_NAMES:
                self.previous[number] = signal.signal(number, self._handle)
        except ValueError:
            pass  # not the main thread: leave signal handling to the caller
        else:
            release_signals()  # held since start-up by the console script (entry.py)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self.previous.items():
            if self.owns_process:
                # Python puts the default action back while the interpreter shuts down,
                # which would turn a late signal into death by signal.
                signal.signal(number, signal.SIG_IGN)
            else:
                signal.signal(number, handler)  # type: ignore[arg-type]

    def dialling(self, addr: str) -> None:
        """The address is known: a signal from now on cancels the dial."""
        self.lines = [f"error: failed to connect service at {go_quote(addr)}: context canceled"]

    def rpc_started(self) -> None:
        """From now on a signal cancels the health RPC rather than the dial."""
        self.lines = [
            "error: health rpc failed: rpc error: code = Canceled desc = context canceled"
        ]
        self.code = Exit.RPC_FAILURE

    def finish(self, code: int, *lines: str) -> int:
        """Settle the verdict ``code``, then print its ``lines``; return ``code``."""
        self.verdict = code
        for line in lines:
            _log(line)
        return code

    def _handle(self, number: int, frame: FrameType | None) -> NoReturn:
        if self.verdict is not None:
            os._exit(self.verdict)
        text = f"cancellation received (signal: {_SIGNAL_NAMES.get(number, str(number))})"
        data = "\n".join([text, *self.lines, ""]).encode("utf-8", "surrogateescape")
        try:
            os.write(2, data)
        finally:
            os._exit(self.code)


# --- running ------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the probe; return the exit code. ``argv`` excludes the program name.

    Without ``argv`` (the console script) the probe owns the process: see
    :class:`_Cancellation` for what that changes about signals.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    # Signals are handled from the first moment: a Ctrl-C while parsing must not end
    # in a KeyboardInterrupt traceback.
    with _Cancellation(owns_process=argv is None) as cancellation:
        code = _main(args, cancellation)
    if argv is None:
        # The probe is over and its channel closed. Tearing down an interpreter that
        # loaded grpc would only add tens of milliseconds to every probe.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(args: list[str], cancellation: _Cancellation) -> int:
    try:
        settings = parse_flags(args)
    except UsageError as error:
        lines = [error.message, usage()] if error.message else [usage()]
        return cancellation.finish(Exit.INVALID_ARGUMENTS, *lines)
    if settings.version:
        from check_grpc_health import __version__

        cancellation.finish(Exit.SERVING)
        sys.stdout.write(__version__ + "\n")
        sys.stdout.flush()
        return Exit.SERVING
    problem = validate(settings)
    if problem is not None:
        return cancellation.finish(Exit.INVALID_ARGUMENTS, f"error: {problem}")
    cancellation.dialling(settings.addr)
    if settings.verbose:
        for line in describe(settings):
            _log(line)
    # grpcio's C core logs handshake failures at INFO to stderr by default; the Go
    # tool's stderr holds only its own lines. An explicit setting still wins.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    return _run(settings, cancellation)


def _run(settings: Settings, cancellation: _Cancellation) -> int:
    """Everything after argument validation: credentials, dial, Check, verdict."""
    finish = cancellation.finish
    if settings.tls and settings.spiffe:
        return finish(Exit.INVALID_ARGUMENTS, "-tls and -spiffe are mutually incompatible")
    if settings.spiffe:
        return finish(
            Exit.SPIFFE_FAILURE,
            f"failed to initialize tls credentials with spiffe. error={_spiffe_unsupported()}",
        )
    from check_grpc_health.results import InvalidArgument
    from check_grpc_health.targets import parse_target

    try:
        target = parse_target(settings.addr)
    except InvalidArgument as error:
        # Go only finds a bad address when it dials, and reports it as a dial failure.
        if settings.verbose:
            _log("establishing connection")
        return finish(
            Exit.CONNECTION_FAILURE,
            f"error: failed to connect service at {go_quote(settings.addr)}: {error}",
        )
    try:
        options = _options(settings, target)
    except InvalidArgument as error:
        return finish(Exit.INVALID_ARGUMENTS, f"error: {error}")
    # grpc loads before the clock starts: importing it is start-up, not dialling, and
    # would otherwise eat about 100 ms of a short -connect-timeout.
    importlib.import_module("check_grpc_health.probe")
    # Reading the credentials counts against the connect timeout, as in Go. It also
    # keeps this wait inside grpc's own attempt deadline, so a silent peer is reported
    # as a timeout rather than as grpc's failed attempt.
    started = time.perf_counter_ns()
    channel = None
    if options.tls is None or options.tls.verify:
        # Credentials are built (each file read once) before dialling, as Go does; the
        # channel does no I/O until it connects.
        channel = _open_channel(options, cancellation)
        if channel is None:
            return Exit.INVALID_ARGUMENTS
    # The no-verify pin needs the network to build its credentials, so its file errors
    # come after "establishing connection": checking the files earlier would read the
    # client key twice.
    if settings.verbose:
        _log("establishing connection")
    return _dial_and_check(settings, options, channel, started, cancellation)


def _open_channel(options: ProbeOptions, cancellation: _Cancellation) -> HealthChannel | None:
    """The channel with its credentials, or None once the TLS failure is reported."""
    from check_grpc_health.probe import HealthChannel
    from check_grpc_health.results import InvalidArgument

    try:
        return HealthChannel(options)
    except InvalidArgument as error:
        cancellation.finish(
            Exit.INVALID_ARGUMENTS, f"failed to initialize tls credentials. error={error}"
        )
        return None


def _options(settings: Settings, target: object) -> ProbeOptions:
    from check_grpc_health.options import ProbeOptions
    from check_grpc_health.results import InvalidArgument
    from check_grpc_health.tls import TlsOptions

    try:
        settings.service.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"-service {go_quote(settings.service)} is not valid UTF-8") from None
    tls = None
    if settings.tls:
        tls = TlsOptions(
            ca_cert=settings.tls_ca_cert or None,
            client_cert=settings.tls_client_cert or None,
            client_key=settings.tls_client_key or None,
            server_name=settings.tls_server_name or None,
            verify=not settings.tls_no_verify,
        )
    return ProbeOptions(
        target=target,  # type: ignore[arg-type]
        services=(settings.service,),
        connect_timeout=_core_seconds(settings.connect_timeout),
        rpc_timeout=_core_seconds(settings.rpc_timeout),
        tls=tls,
        alts=settings.alts,
        metadata=settings.rpc_headers,
        user_agent=settings.user_agent or None,
        gzip=settings.gzip,
    )


# grpcio takes some deadlines as int32 milliseconds; Go accepts up to 292 years.
# No probe waits 24 days, so longer timeouts are capped rather than overflowing.
_CORE_TIMEOUT_LIMIT = (2**31 - 1) * MILLISECOND


def _core_seconds(nanoseconds: int) -> float:
    return min(nanoseconds, _CORE_TIMEOUT_LIMIT) / SECOND


def _dial_and_check(
    settings: Settings,
    options: ProbeOptions,
    channel: HealthChannel | None,
    started: int,
    cancellation: _Cancellation,
) -> int:
    from check_grpc_health.results import ConnectFailure

    deadline = started + round(options.connect_timeout * SECOND)
    if channel is None:
        # The no-verify pin: its handshake counts against the one connect timeout.
        try:
            channel = _open_channel(options, cancellation)
        except ConnectFailure as failure:
            return _connect_failed(settings, failure, cancellation)
        if channel is None:
            return Exit.INVALID_ARGUMENTS
    with channel:
        return _check(settings, channel, started, deadline, cancellation)


def _check(
    settings: Settings,
    channel: HealthChannel,
    started: int,
    deadline: int,
    cancellation: _Cancellation,
) -> int:
    from check_grpc_health.results import ConnectFailure, HealthStatus

    try:
        channel.connect(max(deadline - time.perf_counter_ns(), MILLISECOND) / SECOND)
    except ConnectFailure as failure:
        return _connect_failed(settings, failure, cancellation)
    connect_time = time.perf_counter_ns() - started
    # Go's dial has returned here: a signal from now on cancels the RPC instead.
    cancellation.rpc_started()
    if settings.verbose:
        _log(f"connection established (took {format_duration(connect_time)})")
    try:
        result = channel.probe()
    except ConnectFailure as failure:
        return _connect_failed(settings, failure, cancellation)
    outcome: ServiceResult = result.services[0]
    if outcome.error is not None:
        return cancellation.finish(Exit.RPC_FAILURE, _rpc_failed(settings, outcome.error))
    status = outcome.status
    if status is not HealthStatus.SERVING:
        name = status.name if status is not None else "UNKNOWN"
        return cancellation.finish(
            Exit.UNHEALTHY, f"service unhealthy (responded with {go_quote(name)})"
        )
    lines = []
    if settings.verbose:
        rpc_time = format_duration(round(outcome.rpc_time * SECOND))
        lines.append(f"time elapsed: connect={format_duration(connect_time)} rpc={rpc_time}")
    return cancellation.finish(Exit.SERVING, *lines, "status: SERVING")


def _connect_failed(
    settings: Settings, failure: ConnectFailure, cancellation: _Cancellation
) -> int:
    if failure.timed_out:
        line = (
            f"timeout: failed to connect service {go_quote(settings.addr)} "
            f"within {format_duration(settings.connect_timeout)}"
        )
    else:
        detail = hide_header_values(failure.detail or str(failure), settings.rpc_headers)
        line = f"error: failed to connect service at {go_quote(settings.addr)}: {detail}"
    return cancellation.finish(Exit.CONNECTION_FAILURE, line)


def _rpc_failed(settings: Settings, failure: RpcFailure) -> str:
    name = failure.code_name
    details = hide_header_values(failure.details, settings.rpc_headers)
    if name == "UNIMPLEMENTED":
        return (
            "error: this server does not implement the grpc health protocol "
            f"(grpc.health.v1.Health): {details}"
        )
    if name == "DEADLINE_EXCEEDED":
        within = format_duration(settings.rpc_timeout)
        return f"timeout: health rpc did not complete within {within}"
    return f"error: health rpc failed: {go_status_error(name, details)}"


def hide_header_values(text: str, headers: Sequence[tuple[str, str]]) -> str:
    """Server text with every header value (of six characters or more) replaced.

    A careless server may echo the request's headers in its error details; the Go
    tool would print them, this probe prints ``<redacted>`` instead.
    """
    for _, value in headers:
        if len(value) >= _MIN_HIDDEN_VALUE:
            text = text.replace(value, "<redacted>")
    return text


def go_status_error(code_name: str, details: str) -> str:
    """Go's ``status.Error`` text: ``rpc error: code = NotFound desc = unknown service``."""
    return f"rpc error: code = {go_code_name(code_name)} desc = {details}"


def go_code_name(code_name: str) -> str:
    """grpc-go's name for a status code: ``NOT_FOUND`` becomes ``NotFound``."""
    if code_name == "CANCELLED":
        return "Canceled"  # grpc-go's spelling
    if code_name == "OK":
        return "OK"
    return "".join(part.capitalize() for part in code_name.split("_"))


def _spiffe_unsupported() -> str:
    """Why -spiffe cannot work here, with Go's own text when the socket is not set."""
    if not os.environ.get("SPIFFE_ENDPOINT_SOCKET"):
        return "workload endpoint socket address is not configured"
    return (
        "SPIFFE is not supported by this grpc_health_probe: grpcio cannot verify a "
        "server by its SPIFFE ID; mount the SVID files (e.g. with spiffe-helper) and "
        "use -tls -tls-ca-cert -tls-client-cert -tls-client-key instead"
    )
