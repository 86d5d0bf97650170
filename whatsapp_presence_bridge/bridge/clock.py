"""Simulated time for the simulator backend.

The simulator thinks in *simulated seconds*; ``time_scale`` of them pass per real second.
Timestamps it reports (``last_seen``, ``at``, ``expires_at``) are mapped back to real time so
a demo at time scale 10 never shows a last seen in the future; durations it reports
(``expires_in``) are likewise divided by the scale.

``LoopClock`` schedules on the asyncio loop (so Home Assistant's fired-time test helpers and a
real demo both drive it); ``ManualClock`` only moves when told (``advance``), for fully
scripted tests and the ``sim.advance`` command.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
import heapq
import itertools
import time
from typing import Protocol


class Handle(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None:
        """Do not run the callback (no-op once it ran)."""


class SimClock(abc.ABC):
    """Simulated time: ``now`` in simulated seconds, callbacks after simulated delays."""

    def __init__(self, epoch: float, time_scale: float) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be positive")
        self.epoch = epoch
        self.time_scale = time_scale

    @abc.abstractmethod
    def now(self) -> float:
        """Simulated unix time."""

    @abc.abstractmethod
    def call_later(self, delay: float, callback: Callable[[], None]) -> Handle:
        """Run ``callback`` after ``delay`` simulated seconds."""

    def to_real(self, sim_time: float) -> float:
        """The real unix time at which the simulation reaches ``sim_time``."""
        return self.epoch + (sim_time - self.epoch) / self.time_scale

    def real_duration(self, sim_seconds: float) -> float:
        """Real seconds that ``sim_seconds`` of simulated time take."""
        return sim_seconds / self.time_scale


def _real_time() -> float:
    return time.time()


class LoopClock(SimClock):
    """Simulated time driven by the real clock and the running asyncio loop."""

    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        time_func: Callable[[], float] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # time.time is looked up on each call (not bound at import) so freezegun-style
        # patching in tests moves the simulated clock too.
        self._time_func = time_func or _real_time
        super().__init__(self._time_func(), time_scale)
        self._loop = loop

    def now(self) -> float:
        return self.epoch + (self._time_func() - self.epoch) * self.time_scale

    def call_later(self, delay: float, callback: Callable[[], None]) -> Handle:
        loop = self._loop or asyncio.get_running_loop()
        return loop.call_later(max(0.0, delay) / self.time_scale, callback)


class _ManualHandle:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock(SimClock):
    """Time that moves only through ``advance``; callbacks run in time order, FIFO on ties."""

    def __init__(self, start: float = 1_800_000_000.0, time_scale: float = 1.0) -> None:
        super().__init__(start, time_scale)
        self._now = start
        self._queue: list[tuple[float, int, _ManualHandle]] = []
        self._counter = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Handle:
        handle = _ManualHandle(callback)
        heapq.heappush(self._queue, (self._now + max(0.0, delay), next(self._counter), handle))
        return handle

    @property
    def pending(self) -> int:
        """Number of scheduled, not cancelled callbacks."""
        return sum(1 for _, _, handle in self._queue if not handle.cancelled)

    def next_due(self) -> float | None:
        """Simulated time of the next pending callback, if any."""
        while self._queue and self._queue[0][2].cancelled:
            heapq.heappop(self._queue)
        return self._queue[0][0] if self._queue else None

    def advance(self, seconds: float) -> int:
        """Move time forward, running every callback due on the way; returns how many ran."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        target = self._now + seconds
        ran = 0
        while self._queue and self._queue[0][0] <= target:
            when, _, handle = heapq.heappop(self._queue)
            if handle.cancelled:
                continue
            self._now = max(self._now, when)
            handle.cancelled = True
            handle.callback()
            ran += 1
        self._now = target
        return ran
