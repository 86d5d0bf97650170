"""A deterministic virtual clock for asyncio code that takes an injected clock and sleep.

``sleep`` parks the caller on a future keyed by its virtual wake-up time; ``advance`` lets
every task run until the loop is idle, then jumps the clock straight to the next wake-up.
Simulated hours therefore cost milliseconds, and the same inputs give the same schedule.
Used by the manager tests and by ``benchmarks/`` (which import it from here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import heapq
import itertools


class VirtualClock:
    """Virtual unix time with an awaitable ``sleep``; drive it with ``advance``/``run_until``."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        """Start at ``start`` (a plausible unix time, so code may treat it as one)."""
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        """The current virtual time (pass as ``clock``)."""
        return self._now

    async def sleep(self, delay: float) -> None:
        """Suspend the caller for ``delay`` virtual seconds (pass as ``sleep``)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(delay, 0.0), next(self._seq), future))
        await future

    @property
    def pending(self) -> int:
        """Sleepers not yet woken (cancelled ones included until they are reached)."""
        return len(self._sleepers)

    async def settle(self) -> None:
        """Yield until no callback is ready: every task is parked on a sleep or an event."""
        loop = asyncio.get_running_loop()
        for _ in range(100_000):
            await asyncio.sleep(0)
            if not loop._ready:  # type: ignore[attr-defined]
                return
        raise RuntimeError("the event loop never went idle (a busy loop in the code under test?)")

    async def _step(self, limit: float) -> bool:
        """Wake the earliest sleeper due by ``limit``; False when none is."""
        while self._sleepers:
            when, _, future = self._sleepers[0]
            if future.done():  # cancelled: drop it without moving time
                heapq.heappop(self._sleepers)
                continue
            if when > limit:
                return False
            heapq.heappop(self._sleepers)
            self._now = max(self._now, when)
            future.set_result(None)
            # Wake every sleeper due at this same instant before letting tasks run.
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, other = heapq.heappop(self._sleepers)
                if not other.done():
                    other.set_result(None)
            await self.settle()
            return True
        return False

    async def advance(self, seconds: float) -> None:
        """Run the simulation for ``seconds`` of virtual time."""
        await self.advance_to(self._now + seconds)

    async def advance_to(self, target: float) -> None:
        """Run the simulation until virtual time ``target``."""
        await self.settle()
        while await self._step(target):
            pass
        self._now = max(self._now, target)
        await self.settle()

    async def run_until(self, predicate: Callable[[], bool], within: float) -> bool:
        """Advance event by event until ``predicate()`` holds; False after ``within`` seconds."""
        deadline = self._now + within
        await self.settle()
        while not predicate():
            if not await self._step(deadline):
                self._now = max(self._now, deadline)
                return predicate()
        return True
