"""The plugin's request headers from files and the environment, never echoing a value.

Layer: adapter (the Nagios/Icinga plugin). Pure parsing on the core's shared header
parser; every error names the file, the line or the variable, never the value.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from check_grpc_health.core.options import parse_metadata
from check_grpc_health.core.results import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Mapping

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_metadata_file(path: str) -> list[tuple[str, str]]:
    """``key: value`` lines; blank lines and ``#`` comments are skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        raise InvalidArgument(f"cannot read metadata file {path!r}: {reason}") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"metadata file {path!r} is not UTF-8 text") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entries.append(parse_metadata(line.rstrip("\r\n"), number))
        except InvalidArgument as error:
            raise InvalidArgument(f"metadata file {path!r} line {number}: {error}") from None
    return entries


def read_metadata_env(text: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """``key:VARIABLE``: the header value comes from the environment variable."""
    # Never echo the argument: a user who mistakes this option for -m gives the secret
    # value itself ('authorization:Bearer ...'). Only a plausible variable name is shown.
    key, sep, variable = text.partition(":")
    variable = variable.strip()
    if not sep or not variable:
        raise InvalidArgument("--metadata-env takes KEY:ENVIRONMENT_VARIABLE (value not shown)")
    if not _ENV_NAME.fullmatch(variable):
        raise InvalidArgument(
            "--metadata-env takes KEY:ENVIRONMENT_VARIABLE, and what follows ':' is not a "
            "variable name (not shown: give the name of a variable that holds the value)"
        )
    if not environ.get(variable):
        raise InvalidArgument(
            f"--metadata-env: environment variable {variable} is not set or empty"
        )
    return parse_metadata(f"{key}: {environ[variable]}")
