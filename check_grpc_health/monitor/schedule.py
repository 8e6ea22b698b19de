"""When each line's heartbeat is due: spread evenly over the interval, with jitter.

Layer: adapter (the monitor). ``n`` lines get one slot each of ``interval / n``
seconds and a random moment within their slot (stratified jitter): evenly spread, so
that 10,000 lines never fire together, yet not in lockstep with another monitor's
schedule. After that each line is due every ``interval`` from its own moment. The
timers are the event loop's own (``call_at``): nothing wakes while nothing is due.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Hashable


def spread(count: int, interval: float, rng: random.Random) -> list[float]:
    """``count`` offsets within ``[0, interval)``, one in each equal slot, in random order."""
    if count == 0:
        return []
    slot = interval / count
    offsets = [slot * (index + rng.random()) for index in range(count)]
    rng.shuffle(offsets)
    return offsets


class Schedule:
    """A timer per key that calls ``due(key)`` every ``interval`` seconds."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        interval: float,
        due: Callable[[Hashable], None],
        rng: random.Random | None = None,
    ) -> None:
        self.loop = loop
        self.interval = interval
        self.due = due
        self.random = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}

    def add(self, keys: list[Hashable]) -> None:
        """Schedule new keys, spread over the next interval."""
        now = self.loop.time()
        for key, offset in zip(keys, spread(len(keys), self.interval, self.random), strict=True):
            self._arm(key, now + offset)

    def _arm(self, key: Hashable, when: float) -> None:
        self._timers[key] = self.loop.call_at(when, self._fire, key, when)

    def _fire(self, key: Hashable, when: float) -> None:
        # From its own moment, not from now: a late loop does not drift the schedule.
        self._arm(key, max(when + self.interval, self.loop.time()))
        self.due(key)

    def remove(self, key: Hashable) -> None:
        """No more heartbeats for ``key``."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def clear(self) -> None:
        """Cancel every timer."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def __len__(self) -> int:
        return len(self._timers)
