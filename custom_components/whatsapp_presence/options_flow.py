"""Options flow: pacing, schedule, availability, connection and metrics of a linked account.

Saving the options does not reload the entry: the update listener (``__init__.py``) applies
them to the running coordinator, because a reload would reconnect WhatsApp and subscribe every
contact again. The forms, defaults and checks live in ``options.py`` with the rest of the
options' meaning.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlowResult, OptionsFlow

from .const import (
    CONF_ADAPTIVE,
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
)
from .manager import CUSTOM_PRESET
from .options import (
    AVAILABILITY_KEYS,
    CUSTOM_SCHEMA,
    OPTIONS_SCHEMA,
    SECTION_AVAILABILITY,
    SECTION_CONNECTION,
    SECTION_METRICS,
    SECTION_PACING,
    SECTION_SCHEDULE,
    availability_errors,
    custom_defaults,
    custom_pacing,
    default_options,
    rate_text,
)


class WhatsAppOptionsFlow(OptionsFlow):
    """Pacing, schedule, connection behaviour and metrics of a linked account."""

    def __init__(self) -> None:
        """Options chosen on the first page, kept while the custom page is shown."""
        self._options: dict[str, Any] = {}

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Everything but the custom batch values (shown next when the preset is custom)."""
        current = {**default_options(), **self.config_entry.options}
        errors: dict[str, str] = {}
        flat: dict[str, Any] = {}
        if user_input is not None:
            for value in user_input.values():
                flat.update(value)
            for key in (
                CONF_MAX_PER_MINUTE,
                CONF_RESUBSCRIBE_AFTER,
                CONF_HEALTH_CHECK_INTERVAL,
                CONF_MAX_BACKOFF,
                CONF_GRACE_PERIOD,
                CONF_SAMPLE_SECONDS,
                CONF_SAMPLE_EVERY,
            ):
                flat[key] = int(flat[key])
            current.pop(CONF_SCHEDULE_ENTITY, None)  # an emptied field is absent: clear it
            errors = availability_errors(flat)
            if not errors:
                self._options = {**current, **flat}
                if flat[CONF_PRESET] == CUSTOM_PRESET:
                    return await self.async_step_custom()
                return self.async_create_entry(data=self._options)
        current.update(flat)  # a refused page comes back as it was entered
        suggested = {
            SECTION_PACING: {
                k: current[k] for k in (CONF_PRESET, CONF_MAX_PER_MINUTE, CONF_ADAPTIVE)
            },
            SECTION_SCHEDULE: {
                k: current[k]
                for k in (CONF_RESUBSCRIBE_AFTER, CONF_HEALTH_CHECK_INTERVAL, CONF_MAX_BACKOFF)
            },
            SECTION_AVAILABILITY: {k: current[k] for k in AVAILABILITY_KEYS if k in current},
            SECTION_CONNECTION: {k: current[k] for k in (CONF_GRACE_PERIOD,)},
            SECTION_METRICS: {k: current[k] for k in (CONF_PROMETHEUS, CONF_PROMETHEUS_JID)},
        }
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(OPTIONS_SCHEMA, suggested),
            errors=errors,
        )

    async def async_step_custom(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Custom batch values, within safe ranges."""
        errors: dict[str, str] = {}
        if user_input is not None:
            values, errors = custom_pacing(user_input)
            if not errors:
                return self.async_create_entry(data={**self._options, **values})
        return self.async_show_form(
            step_id="custom",
            data_schema=self.add_suggested_values_to_schema(
                CUSTOM_SCHEMA, user_input or custom_defaults(self._options)
            ),
            errors=errors,
            description_placeholders={"rate": rate_text(user_input)},
        )
