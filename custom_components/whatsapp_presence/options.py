"""Entry options to subscription-manager settings, in one place for setup, options and actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .const import (
    CONF_ADAPTIVE,
    CONF_BATCH_DELAY,
    CONF_BATCH_SIZE,
    CONF_HEALTH_CHECK_INTERVAL,
    CONF_MAX_BACKOFF,
    CONF_MAX_PER_MINUTE,
    CONF_PRESET,
    CONF_RESUBSCRIBE_AFTER,
    CONF_SUBSCRIPTION_DELAY,
    DEFAULT_ADAPTIVE,
    DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MAX_PER_MINUTE,
    DEFAULT_RESUBSCRIBE_AFTER,
    MAX_PER_MINUTE_RANGE,
)
from .manager import (
    CUSTOM_PRESET,
    DEFAULT_PRESET,
    PRESETS,
    BatchConfig,
    ManagerConfig,
    Priority,
    preset_rate,
)

ERROR_RATE_TOO_HIGH = "rate_too_high"

PRIORITY_NAMES: Final = ["high", "medium", "low"]
"""The manager's priorities as the user picks them: ``Priority``'s names, written out so the
translation check can read the selector's options (a test keeps the two equal)."""


def priority_value(name: str) -> int:
    """A priority name as stored in a subentry: the manager's number for it."""
    return int(Priority[name.upper()])


def priority_name(value: Any) -> str | None:
    """A stored priority as the user sees it, or None if it is not one."""
    try:
        return Priority(value).name.lower()
    except TypeError, ValueError:
        return None


def pacing_error(batch: BatchConfig) -> str | None:
    """Why custom pacing is refused, or None: the one check for the options flow and the action.

    Each value may be within its range while together they subscribe faster than WhatsApp
    tolerates (50 per batch, 0.05 s apart, 1 s pause: about 857 a minute).
    """
    if preset_rate(batch) > MAX_PER_MINUTE_RANGE[1]:
        return ERROR_RATE_TOO_HIGH
    return None


def batch_config_from_options(options: Mapping[str, Any]) -> BatchConfig:
    """The named preset, or the custom values when the preset is ``custom``."""
    preset = options.get(CONF_PRESET, DEFAULT_PRESET)
    if preset != CUSTOM_PRESET:
        return PRESETS.get(preset, PRESETS[DEFAULT_PRESET])
    default = PRESETS[DEFAULT_PRESET]
    return BatchConfig(
        batch_size=int(options.get(CONF_BATCH_SIZE, default.batch_size)),
        batch_delay=float(options.get(CONF_BATCH_DELAY, default.batch_delay)),
        subscription_delay=float(options.get(CONF_SUBSCRIPTION_DELAY, default.subscription_delay)),
    )


def manager_config_from_options(options: Mapping[str, Any]) -> ManagerConfig:
    """Options are stored in user units (hours, minutes); the manager works in seconds."""
    resubscribe_hours = float(options.get(CONF_RESUBSCRIBE_AFTER, DEFAULT_RESUBSCRIBE_AFTER))
    max_backoff = 60.0 * float(options.get(CONF_MAX_BACKOFF, DEFAULT_MAX_BACKOFF))
    return ManagerConfig(
        batch=batch_config_from_options(options),
        max_per_minute=int(options.get(CONF_MAX_PER_MINUTE, DEFAULT_MAX_PER_MINUTE)),
        resubscribe_after=resubscribe_hours * 3600.0 if resubscribe_hours > 0 else None,
        health_check_interval=60.0
        * float(options.get(CONF_HEALTH_CHECK_INTERVAL, DEFAULT_HEALTH_CHECK_INTERVAL)),
        base_backoff=min(120.0, max_backoff),
        max_backoff=max_backoff,
        adaptive=bool(options.get(CONF_ADAPTIVE, DEFAULT_ADAPTIVE)),
    )
