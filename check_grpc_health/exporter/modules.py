"""The exporter's modules: named option sets for ``/probe``, read from a file.

Layer: adapter (the exporter), its configuration (blackbox_exporter's ``modules:``). Each
line is ``NAME: OPTIONS``, where OPTIONS are a fleet line's ``check_grpc_health`` options
without ``-H``: the target comes from the request (``/probe?target=...&module=NAME``), and
everything else (TLS files, metadata, thresholds) stays in the file, never in a URL.
Blank lines and ``#`` comments are skipped, as in the fleet file.

    grpc: -t 5
    grpc_tls: --tls --ca-cert /etc/grpc/ca.pem --cert-warning 30
    orders: -s orders --metadata-file /etc/grpc/token.hdr

A module is checked when the file is read (a bad line stops the start, naming the line);
each probe parses it again with the request's target, so every option means exactly
what it means to the plugin.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, NamedTuple

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.plugin.arguments import parse_arguments
from check_grpc_health.text import clean_text

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from check_grpc_health.plugin.options import PluginOptions

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Targets the check is tried with when the file is read: the second for modules with -p.
_PLACEHOLDERS = ("localhost:1", "localhost")


class Module(NamedTuple):
    """One named option set: its name, the file's line number, and its words."""

    name: str
    line: int
    words: tuple[str, ...]

    def options(
        self, target: str, services: Sequence[str], environ: Mapping[str, str]
    ) -> PluginOptions:
        """The plugin's options for a probe of ``target`` (and ``services``, which replace
        the module's ``-s``); :class:`InvalidArgument` with one line when they do not parse."""
        words = [*self.words, "-H", target]
        if services:
            if "--all-services" in self.words:
                raise InvalidArgument(
                    f"module {self.name} checks every service (--all-services): "
                    "a service parameter makes no sense with it"
                )
            pairs = [item for service in services for item in ("-s", service)]
            words = [*_without_services(self.words), "-H", target, *pairs]
        return parse_arguments(words, environ)


def _without_services(words: Sequence[str]) -> list[str]:
    """The words less every ``-s NAME``, ``-sNAME``, ``--service NAME``, ``--service=NAME``."""
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in ("-s", "--service"):
            skip = True
        elif not word.startswith("--service=") and not (
            word.startswith("-s") and not word.startswith("--")
        ):
            kept.append(word)
    return kept


def read_modules(path: str, environ: Mapping[str, str]) -> dict[str, Module]:
    """Every module of the file; :class:`InvalidArgument` naming the first bad line."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        raise InvalidArgument(f"cannot read modules file {path!r}: {reason}") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"modules file {path!r} is not UTF-8 text") from None
    modules: dict[str, Module] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            module = _parse_module(number, line, environ)
        except (InvalidArgument, ValueError) as error:
            raise InvalidArgument(f"{path}, line {number}: {clean_text(str(error))}") from None
        if module.name in modules:
            raise InvalidArgument(
                f"{path}, line {number}: module {module.name} is already defined on line "
                f"{modules[module.name].line}"
            )
        modules[module.name] = module
    if not modules:
        raise InvalidArgument(f"modules file {path!r} defines no module")
    return modules


def _parse_module(number: int, line: str, environ: Mapping[str, str]) -> Module:
    head, colon, rest = line.partition(":")
    if not colon or not _NAME.fullmatch(head):
        raise InvalidArgument(
            "a module line is NAME: OPTIONS, where NAME has letters, digits, '_', '.' or '-'"
        )
    words = tuple(shlex.split(rest))
    for word in words:
        if word in ("-H", "--host") or word.startswith(("--host=", "-H")):
            raise InvalidArgument(
                f"module {head}: -H has no place in a module: the target comes from the "
                "request's target parameter"
            )
        if word in ("-h", "--help", "-V", "--version"):
            raise InvalidArgument(f"module {head}: {word} prints text and exits: not in a module")
    module = Module(head, number, words)
    failure: InvalidArgument | None = None
    for placeholder in _PLACEHOLDERS:
        try:
            module.options(placeholder, (), environ)
        except InvalidArgument as error:
            failure = failure or error
        else:
            return module
    raise InvalidArgument(f"module {head}: {failure}")
