"""Go-compatible text: string quoting, gRPC status errors, ``log`` lines, hidden headers.

Layer: adapter (the drop-in probe). Pure functions, so the probe's stderr is byte for
byte the Go tool's where scripts depend on it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

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


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped as ``%q`` does.

    Go's ``flag`` package prints a bad flag name as it came; a newline in argv would
    then split its message, which must stay one line.
    """
    return "".join(go_quote(char)[1:-1] if ord(char) < 0x20 else char for char in text)


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


# Shorter header values are not hidden in server text: it would mangle numbers.
_MIN_HIDDEN_VALUE = 6


def hide_header_values(text: str, headers: Sequence[tuple[str, str]]) -> str:
    """Server text with every header value (of six characters or more) replaced.

    A careless server may echo the request's headers in its error details; the Go
    tool would print them, this probe prints ``<redacted>`` instead.
    """
    for _, value in headers:
        if len(value) >= _MIN_HIDDEN_VALUE:
            text = text.replace(value, "<redacted>")
    return text


def log_line(line: str) -> None:
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


def go_bool(value: bool) -> str:
    return "true" if value else "false"
