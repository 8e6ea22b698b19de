"""The plugin's outputs: the status line with perfdata, quiet-on-OK, or one JSON object.

Layer: adapter (the Nagios/Icinga plugin). nagiosplugin ``Output`` subclasses; each
reports the verdict before printing, so a late timer or signal cannot add a line, and
each scrubs metadata values from whatever it prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import nagiosplugin
from nagiosplugin.output import Output

from check_grpc_health.plugin.document import check_document, failure_document
from check_grpc_health.plugin.options import NAME, OutputMode, PluginOptions
from check_grpc_health.text import clean_text, scrub

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable
    from io import StringIO


class PluginOutput(Output):
    """Base of the plugin's outputs: knows the options, and reports the verdict.

    ``on_verdict`` is called with the exit code once the check has a result, before
    anything is printed, so that a late timer or signal cannot add a second line.
    """

    def __init__(self, logchan: logging.StreamHandler[StringIO], options: PluginOptions) -> None:
        super().__init__(logchan)
        self.options = options
        self.on_verdict: Callable[[int], None] | None = None

    def add(self, check: nagiosplugin.Check) -> None:
        if self.on_verdict is not None:
            self.on_verdict(check.exitcode)


class TextOutput(PluginOutput):
    """nagiosplugin's output, with two changes the monitoring cores need.

    Perfdata always stays on the first line (Icinga 2.13 mishandles perfdata in long
    output), and the long output appears at any verbosity, so that several services
    get one line each. ``quiet`` prints nothing at all when the state is OK, for cron.
    """

    def __init__(self, logchan: logging.StreamHandler[StringIO], options: PluginOptions) -> None:
        super().__init__(logchan, options)
        self.silent = False
        self.added = False

    def add(self, check: nagiosplugin.Check) -> None:
        super().add(check)
        self.added = True
        self.status = self.format_status(check)
        perfdata = self.format_perfdata(check)
        if perfdata:
            self.status += " " + perfdata
        self.add_longoutput(check.verbose_str)
        self.silent = self.options.output is OutputMode.QUIET and check.state == nagiosplugin.Ok

    def __str__(self) -> str:
        if self.silent:
            return ""
        if not self.added:
            # nagiosplugin's last resort after an unexpected error says "UNKNOWN: ...";
            # keep the plugin's own status line format.
            message = self.status.partition("UNKNOWN: ")[2] or self.status
            self.status = f"{NAME} UNKNOWN - {clean_text(message)}"
        return scrub(super().__str__(), self.options.probe.metadata)


class JsonOutput(PluginOutput):
    """One JSON object on one line: state, exit code, services, timings, certificate."""

    def __init__(self, logchan: logging.StreamHandler[StringIO], options: PluginOptions) -> None:
        super().__init__(logchan, options)
        self.document: dict[str, Any] = {}

    def add(self, check: nagiosplugin.Check) -> None:
        super().add(check)
        self.document = check_document(check, self.options)

    def __str__(self) -> str:
        import json

        document = self.document
        if not document:
            # nagiosplugin's last resort after an unexpected error: keep the JSON shape.
            message = self.status.partition("UNKNOWN: ")[2] or self.status
            document = failure_document(nagiosplugin.Unknown, clean_text(message))
        return scrub(json.dumps(document, sort_keys=True), self.options.probe.metadata) + "\n"
