"""The manager's vocabulary: priorities, states, batch presets, configuration, snapshots."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum, StrEnum
import math
from typing import Any, Final

WINDOW: Final = 60.0
"""Length of the rolling window of the global cap, in seconds."""


class Priority(IntEnum):
    """Subscription priority: lower value is subscribed first."""

    HIGH = 1
    MEDIUM = 2
    LOW = 3


class ContactState(StrEnum):
    """Where a contact stands in the subscription life cycle."""

    QUEUED = "queued"
    """Waiting in the queue: new, after a reconnect, a due retry or a manual request."""
    SUBSCRIBING = "subscribing"
    """The ``subscribe`` call is in flight."""
    SUBSCRIBED = "subscribed"
    """Subscribed on the current connection (or the last one, while disconnected)."""
    STALE = "stale"
    """No event and no subscription for ``resubscribe_after``: waiting in the queue."""
    BACKOFF = "backoff"
    """The last call failed; queued again at ``next_retry``."""


class SubscriptionPaused(Exception):  # noqa: N818  (the public name is part of the API)
    """Raised by ``subscribe`` when the link is down: not a failure, the manager pauses."""


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """Batch pacing: ``batch_size`` calls ``subscription_delay`` apart, then ``batch_delay``."""

    batch_size: int
    batch_delay: float
    subscription_delay: float = 0.2

    def __post_init__(self) -> None:
        """Reject settings that would make pacing meaningless."""
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise TypeError("batch_size must be an int")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        for name in ("batch_delay", "subscription_delay"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0")

    @property
    def cycle(self) -> float:
        """Seconds from the start of one full batch to the start of the next."""
        return self.batch_size * self.subscription_delay + self.batch_delay


PRESETS: Final[dict[str, BatchConfig]] = {
    "small": BatchConfig(batch_size=30, batch_delay=3.0, subscription_delay=0.2),
    "medium": BatchConfig(batch_size=20, batch_delay=5.0, subscription_delay=0.2),
    "large": BatchConfig(batch_size=15, batch_delay=8.0, subscription_delay=0.2),
    "mission_critical": BatchConfig(batch_size=10, batch_delay=10.0, subscription_delay=0.2),
}
DEFAULT_PRESET: Final = "medium"
CUSTOM_PRESET: Final = "custom"
SLOWER_PRESET: Final[dict[str, str]] = {
    "small": "medium",
    "medium": "large",
    "large": "mission_critical",
}
"""The preset a temporary ban steps down to (mission critical and custom stay as they are)."""


def slower_preset(config: BatchConfig) -> BatchConfig | None:
    """The next slower preset after a ban, or None (the slowest preset, or custom pacing)."""
    slower = SLOWER_PRESET.get(preset_name(config))
    return None if slower is None else PRESETS[slower]


def preset_rate(config: BatchConfig) -> float:
    """Contacts per minute: ``batch_size / (size * delay + batch_delay)`` (docs/rate-limiting.md)."""
    if config.cycle == 0:
        return math.inf
    return 60.0 * config.batch_size / config.cycle


def preset_name(config: BatchConfig) -> str:
    """The key of the preset equal to ``config``, or ``"custom"``."""
    for name, preset in PRESETS.items():
        if preset == config:
            return name
    return CUSTOM_PRESET


def backoff_delay(fail_count: int, base: float = 120.0, maximum: float = 3600.0) -> float:
    """Seconds to wait after the ``fail_count``-th consecutive failure: 2, 4, ... 32, 60 min."""
    if fail_count < 1:
        return 0.0
    # Cap the exponent: 2**60 minutes is beyond any sane maximum and avoids float overflow.
    return min(base * 2.0 ** min(fail_count - 1, 60), maximum)


@dataclass(frozen=True, slots=True)
class ManagerConfig:
    """Everything the options flow can change; ``resubscribe_after=None`` is event-only mode."""

    batch: BatchConfig = PRESETS[DEFAULT_PRESET]
    max_per_minute: int = 200
    resubscribe_after: float | None = 86400.0
    health_check_interval: float = 3600.0
    base_backoff: float = 120.0
    max_backoff: float = 3600.0
    adaptive: bool = True
    """Slow down by itself when subscriptions stop being answered (manager/adaptive.py)."""
    answer_window: float = 5.0
    """Seconds WhatsApp has to answer a subscription before it counts as unanswered."""
    trust_gap: float = 60.0
    """Seconds without a live subscription after which a contact's state becomes unknown."""

    def __post_init__(self) -> None:
        """Reject values that would stall or flood the queue."""
        if isinstance(self.max_per_minute, bool) or not isinstance(self.max_per_minute, int):
            raise TypeError("max_per_minute must be an int")
        if self.max_per_minute < 1:
            raise ValueError("max_per_minute must be at least 1")
        if self.resubscribe_after is not None and not self.resubscribe_after > 0:
            raise ValueError("resubscribe_after must be > 0 or None")
        if not self.health_check_interval > 0:
            raise ValueError("health_check_interval must be > 0")
        if not 0 < self.base_backoff <= self.max_backoff:
            raise ValueError("need 0 < base_backoff <= max_backoff")
        if not self.answer_window > 0:
            raise ValueError("answer_window must be > 0")


@dataclass(frozen=True, slots=True)
class ContactInfo:
    """A read-only snapshot of one contact (times are clock seconds, unix by default)."""

    jid: str
    priority: Priority
    state: ContactState
    fail_count: int
    next_retry: float | None
    last_event: float | None
    last_subscribed: float | None
    queued_at: float | None


@dataclass(frozen=True, slots=True)
class Stats:
    """Counters for the diagnostics, sensors and metrics (the *Get statistics* names first)."""

    tracked: int
    """Tracked contacts (``total_subscriptions`` in ``as_dict``, the documented name)."""
    active: int
    """Contacts in state ``subscribed``."""
    stale: int
    """Contacts queued again because they went stale."""
    failed: int
    """Contacts whose last attempt failed (fail count > 0)."""
    queue_length: int
    in_backoff: int
    next_retry: float | None
    calls_last_minute: int
    calls_last_hour: int
    preset: str
    subscribe_calls_total: int
    subscribe_failures_total: int
    reconnects_total: int
    connected: bool
    slowdown: float = 1.0
    """How many times slower than the preset the manager runs (1 = the preset's pace)."""
    pace: float = 0.0
    """Subscribe calls per minute in force (the preset's rate, the cap, the adaptation)."""
    pace_reason: str = "preset"
    """Why the pace last changed: preset, ignored (answers stopped), answered or ban."""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for diagnostics and the ``get_stats`` action, under the documented names."""
        figures = asdict(self)
        return {"total_subscriptions": figures.pop("tracked"), **figures}


DEFAULT_CONFIG: Final = ManagerConfig()
"""Defaults (docs/rate-limiting.md): medium, cap 200/min, 24 h staleness, hourly checks, 2-60 min."""
