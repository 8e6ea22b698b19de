"""Property tests: whatever argv the drop-in probe gets, it ends with a documented code.

The probe runs in-process here (hundreds of examples would take minutes as
processes). Every network example is pinned to a closed port on 127.0.0.1, so
examples stay fast and never leave the machine.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from support.servers import closed_port

from check_grpc_health.probe_cli.flags import FLAGS, Kind, UsageError, parse_flags
from check_grpc_health.probe_cli.main import main

if TYPE_CHECKING:
    from collections.abc import Iterator

EXIT_CODES = {0, 1, 2, 3, 4, 20}
CLOSED = f"127.0.0.1:{closed_port()}"

# Text as argv can carry it: any code point, undecodable bytes as surrogate escapes.
argv_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    | st.sampled_from([chr(0xDC80 + offset) for offset in range(128)]),
    max_size=30,
)
# -wait and -watch keep a probe running by design (tests/probe_cli/test_wait.py has theirs).
LONG_RUNNING = {"wait", "watch"}
flag_names = st.sampled_from(
    [flag.name for flag in FLAGS if flag.name not in LONG_RUNNING]
    + ["h", "help", "nope", "", "-", "="]
)
durations = st.one_of(
    st.sampled_from(["0", "1ns", "250ms", "1.5s", "1m", "-1s", "2562047h", "5", "1d", ".s"]),
    st.from_regex(r"[-+]?([0-9]{0,4}(\.[0-9]{0,3})?(ns|us|ms|s|m|h)){1,3}", fullmatch=True),
)


@st.composite
def flag_tokens(draw: st.DrawFn) -> list[str]:
    """One flag in any of Go's spellings, with a plausible or hostile value."""
    name = draw(flag_names)
    dashes = draw(st.sampled_from(["-", "--"]))
    flag = next((item for item in FLAGS if item.name == name), None)
    if flag is not None and flag.kind is Kind.DURATION:
        value = draw(durations)
    elif flag is not None and flag.kind is Kind.BOOL:
        value = draw(st.sampled_from(["true", "false", "1", "0", "maybe", ""]))
    else:
        value = draw(argv_text)
    form = draw(st.sampled_from(["bare", "equals", "separate"]))
    if form == "bare":
        return [dashes + name]
    if form == "equals":
        return [f"{dashes}{name}={value}"]
    return [dashes + name, value]


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    tokens: list[str] = []
    for chunk in draw(st.lists(flag_tokens(), max_size=8)):
        tokens += chunk
    if draw(st.booleans()):
        tokens.insert(draw(st.integers(0, len(tokens))), draw(argv_text))
    return tokens


@pytest.fixture(autouse=True)
def _no_spiffe_socket() -> Iterator[None]:
    saved = os.environ.pop("SPIFFE_ENDPOINT_SOCKET", None)
    yield
    if saved is not None:
        os.environ["SPIFFE_ENDPOINT_SOCKET"] = saved


def run_main(argv: list[str]) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, stderr.getvalue()


@given(st.lists(argv_text, max_size=12))
@settings(max_examples=300, deadline=None)
@example(["-\n"])
@example(["-x\ry"])
def test_any_argv_parses_or_fails_with_a_usage_error(argv: list[str]) -> None:
    try:
        parse_flags(argv)
    except UsageError as error:
        assert "\n" not in error.message


@given(argvs())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_flags_end_in_a_documented_exit_code(argv: list[str]) -> None:
    argv = [f"-addr={CLOSED}", *argv]
    try:
        parsed = parse_flags(argv)
    except UsageError:
        pass
    else:
        # Only ever dial the closed port on this machine.
        assume(parsed.addr == CLOSED)
    code, stderr = run_main(argv)
    event(f"exit {code}")
    assert code in EXIT_CODES
    assert "Traceback" not in stderr
    if code != 0 and "-version" not in " ".join(argv):
        assert stderr.strip(), "a failure always says why"


@given(st.lists(argv_text, max_size=6))
@settings(max_examples=150, deadline=None)
def test_arbitrary_words_never_escape(argv: list[str]) -> None:
    argv = [f"-addr={CLOSED}", *argv]
    assume(parse_flags_or_none(argv) in (None, CLOSED))
    code, _ = run_main(argv)
    assert code in EXIT_CODES


def parse_flags_or_none(argv: list[str]) -> str | None:
    try:
        return parse_flags(argv).addr
    except UsageError:
        return None
