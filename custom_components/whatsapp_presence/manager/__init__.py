"""Subscription manager: decides when each contact's presence subscription is (re)sent.

Plain asyncio, no Home Assistant import, no WhatsApp import: the caller injects the
``subscribe`` coroutine, the clock and the sleep, so the same code runs in Home Assistant,
in simulated-time tests and in the benchmarks.

Pacing is one rule with three parts, checked before every ``subscribe`` call:

* at least ``subscription_delay`` after the previous call returned (the delay follows
  every call, the last of a batch included, so a batch occupies
  ``batch_size * subscription_delay``);
* at most ``batch_size`` calls in any window of one cycle,
  ``batch_size * subscription_delay + batch_delay``; under load this yields exactly the
  preset's batches (medium: 20 calls 200 ms apart, 5 s pause, next batch 9 s after the
  first) and the rate ``batch_size / cycle`` of docs/rate-limiting.md;
* at most ``max_per_minute`` calls in any rolling 60 s, whatever the batch settings.

The rule looks back at calls already made, so a configuration change applies to the very
next call, and a reconnect storm cannot exceed the cap.
"""

from .core import STATE_VERSION, SubscriptionManager
from .model import (
    CUSTOM_PRESET,
    DEFAULT_CONFIG,
    DEFAULT_PRESET,
    PRESETS,
    SLOWER_PRESET,
    WINDOW,
    BatchConfig,
    ContactInfo,
    ContactState,
    ManagerConfig,
    Priority,
    Stats,
    SubscriptionPaused,
    backoff_delay,
    preset_name,
    preset_rate,
    slower_preset,
)

__all__ = [
    "CUSTOM_PRESET",
    "DEFAULT_CONFIG",
    "DEFAULT_PRESET",
    "PRESETS",
    "SLOWER_PRESET",
    "STATE_VERSION",
    "WINDOW",
    "BatchConfig",
    "ContactInfo",
    "ContactState",
    "ManagerConfig",
    "Priority",
    "Stats",
    "SubscriptionManager",
    "SubscriptionPaused",
    "backoff_delay",
    "preset_name",
    "preset_rate",
    "slower_preset",
]
