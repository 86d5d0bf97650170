"""Entry options: their defaults, the forms that edit them, their checks, and what they mean
to the subscription manager.

One place for every user of them: the account flow (a new entry's pacing), the options flow,
the subentry flows and the actions (priorities), and setup (``manager_config_from_options``),
so that the ``set_batch_config`` action refuses exactly what the forms refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TimeSelector,
)
import probatio as vol

from .const import (
    AVAILABILITY_MODES,
    AVAILABILITY_SCHEDULE,
    BATCH_DELAY_RANGE,
    BATCH_SIZE_RANGE,
    CONF_ADAPTIVE,
    CONF_AVAILABILITY,
    CONF_BATCH_DELAY,
    CONF_BATCH_SIZE,
    CONF_GRACE_PERIOD,
    CONF_HEALTH_CHECK_INTERVAL,
    CONF_MAX_BACKOFF,
    CONF_MAX_PER_MINUTE,
    CONF_PRESET,
    CONF_PROMETHEUS,
    CONF_PROMETHEUS_JID,
    CONF_RESUBSCRIBE_AFTER,
    CONF_SAMPLE_EVERY,
    CONF_SAMPLE_SECONDS,
    CONF_SCHEDULE_ENTITY,
    CONF_SUBSCRIPTION_DELAY,
    CONF_WINDOW_END,
    CONF_WINDOW_START,
    DEFAULT_ADAPTIVE,
    DEFAULT_AVAILABILITY,
    DEFAULT_GRACE_PERIOD,
    DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MAX_PER_MINUTE,
    DEFAULT_PROMETHEUS,
    DEFAULT_PROMETHEUS_JID,
    DEFAULT_RESUBSCRIBE_AFTER,
    DEFAULT_SAMPLE_EVERY,
    DEFAULT_SAMPLE_SECONDS,
    DEFAULT_WINDOW_END,
    DEFAULT_WINDOW_START,
    MAX_PER_MINUTE_RANGE,
    SAMPLE_EVERY_RANGE,
    SAMPLE_SECONDS_RANGE,
    SUBSCRIPTION_DELAY_RANGE,
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
PRESET_OPTIONS: Final = [*PRESETS, CUSTOM_PRESET]

# The options form's sections; the options flow stores them flat.
SECTION_PACING: Final = "pacing"
SECTION_SCHEDULE: Final = "schedule"
SECTION_AVAILABILITY: Final = "availability"
SECTION_CONNECTION: Final = "connection"
SECTION_METRICS: Final = "metrics"
AVAILABILITY_KEYS: Final = (
    CONF_AVAILABILITY,
    CONF_SCHEDULE_ENTITY,
    CONF_WINDOW_START,
    CONF_WINDOW_END,
    CONF_SAMPLE_SECONDS,
    CONF_SAMPLE_EVERY,
)

# Safe ranges of the options that const.py gives no range for (units as stored).
RESUBSCRIBE_AFTER_RANGE: Final = (0, 168)  # hours; 0 = only on reconnect (event-only)
HEALTH_CHECK_INTERVAL_RANGE: Final = (5, 1440)  # minutes
MAX_BACKOFF_RANGE: Final = (2, 1440)  # minutes
GRACE_PERIOD_RANGE: Final = (0, 3600)  # seconds


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


def default_options() -> dict[str, Any]:
    """Options of a new entry: the default preset and every default setting."""
    return {
        CONF_PRESET: DEFAULT_PRESET,
        CONF_MAX_PER_MINUTE: DEFAULT_MAX_PER_MINUTE,
        CONF_ADAPTIVE: DEFAULT_ADAPTIVE,
        CONF_RESUBSCRIBE_AFTER: DEFAULT_RESUBSCRIBE_AFTER,
        CONF_HEALTH_CHECK_INTERVAL: DEFAULT_HEALTH_CHECK_INTERVAL,
        CONF_MAX_BACKOFF: DEFAULT_MAX_BACKOFF,
        CONF_AVAILABILITY: DEFAULT_AVAILABILITY,
        CONF_WINDOW_START: DEFAULT_WINDOW_START,
        CONF_WINDOW_END: DEFAULT_WINDOW_END,
        CONF_SAMPLE_SECONDS: DEFAULT_SAMPLE_SECONDS,
        CONF_SAMPLE_EVERY: DEFAULT_SAMPLE_EVERY,
        CONF_GRACE_PERIOD: DEFAULT_GRACE_PERIOD,
        CONF_PROMETHEUS: DEFAULT_PROMETHEUS,
        CONF_PROMETHEUS_JID: DEFAULT_PROMETHEUS_JID,
    }


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


def custom_pacing(user_input: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Custom batch values from a form, and errors: WhatsApp's limit is 200-300 a minute."""
    values: dict[str, Any] = {
        CONF_BATCH_SIZE: int(user_input[CONF_BATCH_SIZE]),
        CONF_BATCH_DELAY: float(user_input[CONF_BATCH_DELAY]),
        CONF_SUBSCRIPTION_DELAY: float(user_input[CONF_SUBSCRIPTION_DELAY]),
    }
    error = pacing_error(
        BatchConfig(
            batch_size=values[CONF_BATCH_SIZE],
            batch_delay=values[CONF_BATCH_DELAY],
            subscription_delay=values[CONF_SUBSCRIPTION_DELAY],
        )
    )
    return values, {"base": error} if error else {}


def custom_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """Current custom values, or the default preset's as a starting point."""
    preset = PRESETS[DEFAULT_PRESET]
    return {
        CONF_BATCH_SIZE: options.get(CONF_BATCH_SIZE, preset.batch_size),
        CONF_BATCH_DELAY: options.get(CONF_BATCH_DELAY, preset.batch_delay),
        CONF_SUBSCRIPTION_DELAY: options.get(CONF_SUBSCRIPTION_DELAY, preset.subscription_delay),
    }


def rate_text(user_input: Mapping[str, Any] | None) -> str:
    """Contacts a minute of a (possibly rejected) custom form, for its description."""
    if user_input is None:
        return "-"
    values, _ = custom_pacing(user_input)
    rate = preset_rate(
        BatchConfig(
            values[CONF_BATCH_SIZE], values[CONF_BATCH_DELAY], values[CONF_SUBSCRIPTION_DELAY]
        )
    )
    return f"{rate:.0f}"


def availability_errors(options: Mapping[str, Any]) -> dict[str, str]:
    """A sample must end before the next one starts; a time window must not be empty."""
    if options[CONF_SAMPLE_SECONDS] >= 60 * options[CONF_SAMPLE_EVERY]:
        return {"base": "sample_too_long"}
    if (
        options[CONF_AVAILABILITY] == AVAILABILITY_SCHEDULE
        and not options.get(CONF_SCHEDULE_ENTITY)
        and options[CONF_WINDOW_START] == options[CONF_WINDOW_END]
    ):
        return {"base": "empty_window"}
    return {}


# ---------------------------------------------------------------------- forms


def _number(low: float, high: float, step: float, unit: str | None = None) -> NumberSelector:
    config = NumberSelectorConfig(min=low, max=high, step=step, mode=NumberSelectorMode.BOX)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


PRESET_SELECTOR: Final = SelectSelector(
    SelectSelectorConfig(
        options=PRESET_OPTIONS, translation_key="preset", mode=SelectSelectorMode.LIST
    )
)
CUSTOM_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_BATCH_SIZE): _number(*BATCH_SIZE_RANGE, 1),
        vol.Required(CONF_BATCH_DELAY): _number(*BATCH_DELAY_RANGE, 0.5, "s"),
        vol.Required(CONF_SUBSCRIPTION_DELAY): _number(*SUBSCRIPTION_DELAY_RANGE, 0.05, "s"),
    }
)
OPTIONS_SCHEMA: Final = vol.Schema(
    {
        vol.Required(SECTION_PACING): section(
            vol.Schema(
                {
                    vol.Required(CONF_PRESET): PRESET_SELECTOR,
                    vol.Required(CONF_MAX_PER_MINUTE): _number(*MAX_PER_MINUTE_RANGE, 1),
                    vol.Required(CONF_ADAPTIVE): BooleanSelector(),
                }
            )
        ),
        vol.Required(SECTION_SCHEDULE): section(
            vol.Schema(
                {
                    vol.Required(CONF_RESUBSCRIBE_AFTER): _number(*RESUBSCRIBE_AFTER_RANGE, 1, "h"),
                    vol.Required(CONF_HEALTH_CHECK_INTERVAL): _number(
                        *HEALTH_CHECK_INTERVAL_RANGE, 1, "min"
                    ),
                    vol.Required(CONF_MAX_BACKOFF): _number(*MAX_BACKOFF_RANGE, 1, "min"),
                }
            ),
            {"collapsed": True},
        ),
        vol.Required(SECTION_AVAILABILITY): section(
            vol.Schema(
                {
                    vol.Required(CONF_AVAILABILITY): SelectSelector(
                        SelectSelectorConfig(
                            options=list(AVAILABILITY_MODES),
                            translation_key="availability",
                            mode=SelectSelectorMode.LIST,
                        )
                    ),
                    vol.Optional(CONF_SCHEDULE_ENTITY): EntitySelector(
                        EntitySelectorConfig(domain="schedule")
                    ),
                    vol.Required(CONF_WINDOW_START): TimeSelector(),
                    vol.Required(CONF_WINDOW_END): TimeSelector(),
                    vol.Required(CONF_SAMPLE_SECONDS): _number(*SAMPLE_SECONDS_RANGE, 1, "s"),
                    vol.Required(CONF_SAMPLE_EVERY): _number(*SAMPLE_EVERY_RANGE, 1, "min"),
                }
            )
        ),
        vol.Required(SECTION_CONNECTION): section(
            vol.Schema(
                {
                    vol.Required(CONF_GRACE_PERIOD): _number(*GRACE_PERIOD_RANGE, 1, "s"),
                }
            )
        ),
        vol.Required(SECTION_METRICS): section(
            vol.Schema(
                {
                    vol.Required(CONF_PROMETHEUS): BooleanSelector(),
                    vol.Required(CONF_PROMETHEUS_JID): BooleanSelector(),
                }
            ),
            {"collapsed": True},
        ),
    }
)
