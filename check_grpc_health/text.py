"""How the tools word things: one printable line, plain decimals, seconds, state names.

Layer: shared by the adapters (the plugin and the fleet). Pure functions of the standard
library, so every output, whatever its format, cleans text and hides secrets the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from nagiosplugin.state import ServiceState

    from check_grpc_health.core.results import HealthCheckError

# Secrets shorter than this are not scrubbed from output: it would mangle numbers.
_MIN_SCRUBBED_SECRET = 6


def subject(service: str) -> str:
    """How a service is named in messages."""
    return f"service {quote(service)}" if service else "overall health"


def quote(text: str) -> str:
    """``repr`` without characters the plugin output forbids."""
    return clean_text(repr(text))


def clean_text(text: str) -> str:
    """One printable line: no ``|`` (it would start perfdata), no undecodable bytes."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return " ".join(text.replace("|", "/").split())


def decimal(value: float) -> str:
    """A perfdata number: plain decimal notation, at most six decimals."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def seconds(value: float) -> str:
    """Seconds for humans: ``0.0042s``, ``1.5s``."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return f"{text or '0'}s"


def state_name(state: ServiceState) -> str:
    return str(state).upper()


def scrub(text: str, metadata: Iterable[tuple[str, str]]) -> str:
    """Belt and braces: no metadata value may reach the output, whatever echoed it."""
    for _, value in metadata:
        if len(value) >= _MIN_SCRUBBED_SECRET:
            text = text.replace(value, "<hidden>")
    return text


def explained(error: HealthCheckError, spelling: Mapping[str, str]) -> str:
    """An error's line with its diagnosis, in one adapter's option spelling.

    A connection failure keeps its opening ("failed to connect to X", "timed out
    connecting to X after 1s") and grpcio's text gives way to the cause and the fix.
    Without a diagnosis, the error's own message.
    """
    from check_grpc_health.core.results import ConnectFailure, RpcFailure

    diagnosis = error.diagnosis
    if diagnosis is None or diagnosis.kind in ("other", "invalid_argument"):
        return error.message
    line = diagnosis.line(spelling)
    if isinstance(error, ConnectFailure):
        if error.timed_out:
            return f"{error.message}: {line}"
        return f"failed to connect to {error.target}: {line}"
    if isinstance(error, RpcFailure):
        return line if error.code_name == "UNIMPLEMENTED" else error.message
    return line
