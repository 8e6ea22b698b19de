"""The probe process's ending: the Go tool's exit codes, and signals as a cancelled context.

Layer: adapter (the drop-in probe). A signal before the health RPC ends the probe with
exit 2, during it with exit 3, each with Go's lines; after the verdict, with the
verdict's own code and nothing printed.
"""

from __future__ import annotations

import enum
import os
import signal
from typing import TYPE_CHECKING, NoReturn

from check_grpc_health.probe_cli.gotext import go_quote, log_line
from check_grpc_health.signals import hold_signals, release_signals

if TYPE_CHECKING:
    from types import FrameType


class Exit(enum.IntEnum):
    """The Go tool's exit codes."""

    SERVING = 0
    INVALID_ARGUMENTS = 1
    CONNECTION_FAILURE = 2
    RPC_FAILURE = 3
    UNHEALTHY = 4
    SPIFFE_FAILURE = 20


_SIGNAL_NAMES: dict[int, str] = {signal.SIGTERM: "terminated", signal.SIGINT: "interrupt"}


class Cancellation:
    """SIGTERM/SIGINT handling that mirrors the Go tool's cancelled context.

    Before the health RPC starts a signal ends the probe with exit 2, during it with
    exit 3, each with Go's lines. Once the verdict is known (:meth:`finish`) a signal
    ends the process with the verdict's code and prints nothing, so the output never
    contradicts the exit code. The handler writes with one ``os.write`` and leaves
    with ``os._exit``. It never raises: an exception raised while grpcio waits on the
    channel can leave ``Channel.close`` blocked.

    ``owns_process`` (the console script) keeps this handler to the end: once the
    verdict is settled, a signal exits with it at once. (Putting ``SIG_IGN`` in its place
    would race: a signal another thread catches during the swap makes CPython raise
    "Signal 15 ignored due to race condition" at a random line.) An in-process caller
    gets its own handlers and signal mask back.
    """

    def __init__(self, *, owns_process: bool) -> None:
        self.owns_process = owns_process
        # What a signal ends with now: one pair, swapped at once, as another thread
        # may change it (see :meth:`update`) while the handler runs.
        self.ending: tuple[int, tuple[str, ...]] = (Exit.CONNECTION_FAILURE, ())
        self.verdict: int | None = None
        self.previous: dict[int, object] = {}
        self.mask: set[int] = set()

    def __enter__(self) -> Cancellation:
        try:
            for number in _SIGNAL_NAMES:
                self.previous[number] = signal.signal(number, self._handle)
        except ValueError:
            pass  # not the main thread: leave signal handling to the caller
        else:
            # Held since start-up by the console script (see signals.py).
            self.mask = release_signals()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.owns_process or not self.previous:
            return
        # Blocked in this thread while the handlers are swapped: a signal caught before
        # goes to the handler still in place, and none lands between two swaps here.
        hold_signals()
        for number, handler in self.previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)

    def dialling(self, addr: str) -> None:
        """The address is known: a signal from now on cancels the dial."""
        line = f"error: failed to connect service at {go_quote(addr)}: context canceled"
        self.ending = (Exit.CONNECTION_FAILURE, (line,))

    def rpc_started(self) -> None:
        """From now on a signal cancels the health RPC rather than the dial."""
        line = "error: health rpc failed: rpc error: code = Canceled desc = context canceled"
        self.ending = (Exit.RPC_FAILURE, (line,))

    def update(self, code: int, *lines: str) -> None:
        """While waiting or watching: a signal ends with ``code`` and ``lines`` now."""
        self.ending = (code, lines)

    def finish(self, code: int, *lines: str) -> int:
        """Settle the verdict ``code``, then print its ``lines``; return ``code``."""
        self.verdict = code
        for line in lines:
            log_line(line)
        return code

    def _handle(self, number: int, frame: FrameType | None) -> NoReturn:
        if self.verdict is not None:
            os._exit(self.verdict)
        code, lines = self.ending
        text = f"cancellation received (signal: {_SIGNAL_NAMES.get(number, str(number))})"
        data = "\n".join([text, *lines, ""]).encode("utf-8", "surrogateescape")
        try:
            os.write(2, data)
        finally:
            os._exit(code)
