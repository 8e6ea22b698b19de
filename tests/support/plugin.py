"""Helpers for the plugin's tests: run the console script, or judge a check in-process.

Layer: tests (support). ``run`` starts the installed ``check_grpc_health`` as a monitoring
core does; ``judge`` builds and runs the check without printing or exiting, and the
``assert_*`` helpers compare its state, exit code and first line (measured durations
replaced by ``X``) with a row of the plugin's state table.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from check_grpc_health.core.results import InvalidArgument
from check_grpc_health.plugin.arguments import parse_arguments
from check_grpc_health.plugin.check import build_check
from check_grpc_health.plugin.output import TextOutput
from support.paths import PLUGIN

if TYPE_CHECKING:
    import nagiosplugin


def plugin_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRPC_")}
    env.update(extra)
    return env


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLUGIN, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or plugin_env(),
        check=False,
    )


def error_for(*argv: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(InvalidArgument) as caught:
        parse_arguments(argv, environ or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


def judge(*argv: str) -> nagiosplugin.Check:
    """Run the check in-process, without printing or exiting."""
    check = build_check(parse_arguments(argv))
    check()
    return check


def output_lines(check: nagiosplugin.Check) -> list[str]:
    resource = check.resources[0]
    output = TextOutput(logging.StreamHandler(io.StringIO()), resource.options)  # type: ignore[attr-defined]
    output.add(check)
    return str(output).splitlines()


def status_line(check: nagiosplugin.Check) -> str:
    """The first line, with measured durations replaced by X."""
    line = output_lines(check)[0]
    line = re.sub(r"=[0-9]+(\.[0-9]+)?s;", "=Xs;", line)
    return re.sub(r" in [0-9]+(\.[0-9]+)?s\b", " in Xs", line)


def assert_state(check: nagiosplugin.Check, state: str, line: str) -> None:
    codes = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
    assert str(check.state).upper() == state
    assert check.exitcode == codes[state]
    assert status_line(check) == line


def assert_critical(check: nagiosplugin.Check, line: str) -> None:
    assert_state(check, "CRITICAL", line)
