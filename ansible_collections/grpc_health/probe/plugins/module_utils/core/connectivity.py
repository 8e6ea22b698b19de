# Generated from check_grpc_health/core/connectivity.py by tools/sync_module_utils.py.
# Do not edit: change the core, then run `python tools/sync_module_utils.py`.
"""Waiting for a channel's connection: READY, failed, or out of time, without polling.

Layer: core. Imports only the standard library and ``grpc``. The wait blocks in the
channel's own connectivity watch with the real deadline, so a refusal fails at once
and closing is instant. ``grpc.channel_ready_future`` (and ``Channel.subscribe``) would
start grpcio's polling thread, whose 200 ms loop makes ``Channel.close`` block for up
to 200 ms and which waits out the whole deadline on a refused connection; it is only
the fallback for a grpcio without the internal watch.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

try:
    import grpc
except ImportError:
    import traceback

    GRPC_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    GRPC_IMPORT_ERROR = None

# grpc core connectivity states, as cygrpc numbers them.
IDLE, CONNECTING, READY, TRANSIENT_FAILURE, SHUTDOWN = range(5)
# How often a blocked main thread wakes to let Python run pending signal handlers.
_SIGNAL_CHECK_INTERVAL = 0.05


class ConnectivityEvent(Protocol):
    """What one connectivity watch reports."""

    success: bool


class RawChannel(Protocol):
    """The part of grpcio's internal cygrpc channel used to await connectivity."""

    def check_connectivity_state(self, try_to_connect: bool) -> int:
        """The channel's connectivity state, as a cygrpc number."""

    def watch_connectivity_state(
        self, last_observed_state: int, deadline: float
    ) -> ConnectivityEvent:
        """Wait until the state differs from ``last_observed_state`` or the deadline passes."""


def await_connectivity(raw: RawChannel, timeout: float) -> int:
    """Block until the channel is READY or has failed, or ``timeout`` seconds pass.

    grpcio's watch runs in a helper thread while this thread waits on an event. A
    signal handler that raises here (SIGTERM, Ctrl-C) then interrupts only the event
    wait: the helper still reaps its watch when the channel closes. Interrupting the
    watch itself would leave it unreaped, and ``Channel.close`` would wait forever.
    """
    deadline = time.time() + timeout
    outcome = [raw.check_connectivity_state(True)]
    if outcome[0] not in (IDLE, CONNECTING):
        return outcome[0]
    settled = threading.Event()

    def follow() -> None:
        state = outcome[0]
        while state in (IDLE, CONNECTING):
            if not raw.watch_connectivity_state(state, deadline).success:
                break
            state = raw.check_connectivity_state(True)
        outcome[0] = state
        settled.set()

    threading.Thread(target=follow, name="grpc-health-connect", daemon=True).start()
    # The helper sets the event the moment the state settles, so the slices add no
    # delay. They exist because a signal may be delivered to another thread, and the
    # main thread only runs Python signal handlers when it wakes up.
    give_up = time.monotonic() + timeout + 1.0
    while not settled.wait(_SIGNAL_CHECK_INTERVAL) and time.monotonic() < give_up:
        pass
    return outcome[0]


def await_with_subscribe(channel: grpc.Channel, timeout: float) -> int:
    """Fallback for a grpcio without the internal watch: public, but slower to close."""
    done = threading.Event()
    seen = [IDLE]
    numbers = {
        grpc.ChannelConnectivity.IDLE: IDLE,
        grpc.ChannelConnectivity.CONNECTING: CONNECTING,
        grpc.ChannelConnectivity.READY: READY,
        grpc.ChannelConnectivity.TRANSIENT_FAILURE: TRANSIENT_FAILURE,
        grpc.ChannelConnectivity.SHUTDOWN: SHUTDOWN,
    }

    def on_change(connectivity: grpc.ChannelConnectivity) -> None:
        seen[0] = numbers[connectivity]
        if seen[0] >= READY:
            done.set()

    channel.subscribe(on_change, try_to_connect=True)
    try:
        done.wait(timeout)
    finally:
        channel.unsubscribe(on_change)
    return seen[0]
