"""``-rpc-header`` and ``-rpc-header-file``: request headers, whose values are never shown.

Layer: adapter (the drop-in probe). Pure parsing; every message is Go's ``flag`` text
for the flag, with ``(not shown)`` where Go would echo a value that may be a token.
"""

from __future__ import annotations

from check_grpc_health.probe_cli.gotext import go_quote


class HeaderError(Exception):
    """A header the probe cannot send; ``str()`` is the whole usage message."""


def parse_header(entry: str, position: int) -> tuple[str, str]:
    """One ``-rpc-header``. Errors never show the value: it may be a token."""
    from check_grpc_health.core.options import parse_metadata
    from check_grpc_health.core.results import InvalidArgument

    key, sep, value = entry.partition(":")
    if not sep:
        raise HeaderError(
            "invalid value (not shown) for flag -rpc-header: "
            "invalid RPC header, expected 'key: value'"
        )
    try:
        # Go trims any leading white space from the value, tabs included.
        return parse_metadata(f"{key}:{value.lstrip()}", position)
    except InvalidArgument as error:
        raise HeaderError(f"invalid value (not shown) for flag -rpc-header: {error}") from None


def read_header_file(flag: str, path: str, already: int) -> list[tuple[str, str]]:
    """Headers from a file: one ``name: value`` per line; blank and ``#`` lines skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = getattr(error, "strerror", None) or "not a readable UTF-8 text file"
        raise HeaderError(f"invalid value {go_quote(path)} for flag {flag}: {reason}") from None
    headers: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            headers.append(parse_header(line, already + len(headers) + 1))
        except HeaderError as error:
            detail = str(error).partition("-rpc-header: ")[2]
            raise HeaderError(
                f"invalid value {go_quote(path)} for flag {flag}: line {number}: {detail}"
            ) from None
    return headers
