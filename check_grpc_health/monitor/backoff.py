"""The reconnect policy: capped, jittered exponential back-off.

Layer: adapter (the monitor). The numbers are gRPC's own connection back-off
(doc/connection-backoff.md: 1 s, times 1.6, 20% jitter), with a lower cap than its
120 s so that a monitor sees a server back within half a default interval. The same
numbers go to grpcio as channel arguments, so a lost connection and a stream that
keeps failing on a live one wait alike.
"""

from __future__ import annotations

import random

BASE = 1.0
FACTOR = 1.6
JITTER = 0.2
CAP = 30.0


def channel_arguments(cap: float = CAP) -> tuple[tuple[str, int], ...]:
    """grpcio's reconnect back-off set to this policy."""
    return (
        ("grpc.initial_reconnect_backoff_ms", int(BASE * 1000)),
        ("grpc.max_reconnect_backoff_ms", int(cap * 1000)),
    )


#: One generator for every back-off: each holds 2.5 KiB of state, and there is a
#: back-off per stream.
_RANDOM = random.Random()  # noqa: S311 (jitter, not a secret)


class Backoff:
    """Delays that grow by :data:`FACTOR` up to ``cap``, each moved by up to ±20%."""

    __slots__ = ("_cap", "_next", "_random")

    def __init__(self, cap: float = CAP, rng: random.Random | None = None) -> None:
        self._cap = cap
        self._next = BASE
        self._random = rng or _RANDOM

    def delay(self) -> float:
        """The next delay in seconds; each call waits longer, up to the cap."""
        current = self._next
        self._next = min(self._next * FACTOR, self._cap)
        return current * (1 + JITTER * self._random.uniform(-1.0, 1.0))

    def reset(self) -> None:
        """Start again from :data:`BASE` (the stream or sink works again)."""
        self._next = BASE
