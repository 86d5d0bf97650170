"""A manager wired to a virtual clock and a scriptable fake ``subscribe`` (WhatsApp's side)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from custom_components.whatsapp_presence.manager import (
    ManagerConfig,
    SubscriptionManager,
    SubscriptionPaused,
)

from .virtual_time import VirtualClock


class RejectedError(Exception):
    """What the fake raises for a contact set to fail."""


@dataclass
class FakeWhatsApp:
    """Records every subscribe call; fails or pauses on demand."""

    clock: VirtualClock
    calls: list[tuple[float, str]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    link_down: bool = False
    latency: float = 0.0

    async def subscribe(self, jid: str) -> None:
        """The injected ``subscribe``: record, optionally wait, then fail or succeed."""
        self.calls.append((self.clock.time(), jid))
        if self.latency:
            await self.clock.sleep(self.latency)
        if self.link_down:
            raise SubscriptionPaused
        if jid in self.failing:
            raise RejectedError(jid)

    def times(self, jid: str | None = None) -> list[float]:
        """Call times relative to nothing (absolute virtual seconds), optionally for one jid."""
        return [t for t, j in self.calls if jid is None or j == jid]

    def order(self) -> list[str]:
        """Jids in call order."""
        return [j for _, j in self.calls]


def make(
    config: ManagerConfig | None = None, start: float = 1_800_000_000.0
) -> tuple[SubscriptionManager, FakeWhatsApp, VirtualClock]:
    """A manager (not started) with its fake and its clock."""
    clock = VirtualClock(start)
    fake = FakeWhatsApp(clock)
    manager = SubscriptionManager(
        fake.subscribe, config=config or ManagerConfig(), clock=clock.time, sleep=clock.sleep
    )
    return manager, fake, clock


def jids(count: int, prefix: str = "c") -> list[str]:
    """Synthetic jids (no real numbers)."""
    return [f"{prefix}{i:05d}@s.whatsapp.net" for i in range(count)]


def max_in_window(times: Iterable[float], window: float) -> int:
    """The most calls in any half-open window ``[t, t + window)`` (float slack 1e-6)."""
    ordered = sorted(times)
    best = 0
    lo = 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - window + 1e-6:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
