"""The options flow: presets, custom pace, schedule, connection and metrics settings."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.const import (
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
    DOMAIN,
)
from custom_components.whatsapp_presence.options import default_options, manager_config_from_options

from .flows import assert_translated


def form_input(**changes: Any) -> dict[str, Any]:
    """The options page as the frontend sends it: one mapping per section."""
    values = {**default_options(), **changes}
    return {
        "pacing": {k: values[k] for k in (CONF_PRESET, CONF_MAX_PER_MINUTE, CONF_ADAPTIVE)},
        "schedule": {
            k: values[k]
            for k in (CONF_RESUBSCRIBE_AFTER, CONF_HEALTH_CHECK_INTERVAL, CONF_MAX_BACKOFF)
        },
        "availability": {
            k: values[k]
            for k in (
                CONF_AVAILABILITY,
                CONF_SCHEDULE_ENTITY,
                CONF_WINDOW_START,
                CONF_WINDOW_END,
                CONF_SAMPLE_SECONDS,
                CONF_SAMPLE_EVERY,
            )
            if k in values
        },
        "connection": {k: values[k] for k in (CONF_GRACE_PERIOD,)},
        "metrics": {k: values[k] for k in (CONF_PROMETHEUS, CONF_PROMETHEUS_JID)},
    }


@pytest.fixture
def entry(hass: HomeAssistant) -> MockConfigEntry:
    """An entry with the options a new entry gets (not set up: options need no bridge)."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id="12025550100", options=default_options())
    entry.add_to_hass(hass)
    return entry


async def test_named_preset_and_settings(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Every setting is stored flat, in its unit, and the manager accepts it."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert_translated(result, "options")
    schema = result["data_schema"]
    assert schema is not None
    pacing = next(v for k, v in schema.schema.items() if k == "pacing")
    suggested = {str(k): k.description["suggested_value"] for k in pacing.schema.schema}
    assert suggested == {CONF_PRESET: "medium", CONF_MAX_PER_MINUTE: 200, CONF_ADAPTIVE: True}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        form_input(
            preset="large",
            max_per_minute=120.0,
            adaptive=False,
            resubscribe_after=0,
            health_check_interval=30,
            max_backoff=90,
            availability="sampling",
            sample_seconds=20.0,
            sample_every=10,
            grace_period=15,
            prometheus=False,
            prometheus_jid_label=True,
        ),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        CONF_PRESET: "large",
        CONF_MAX_PER_MINUTE: 120,
        CONF_ADAPTIVE: False,
        CONF_RESUBSCRIBE_AFTER: 0,
        CONF_HEALTH_CHECK_INTERVAL: 30,
        CONF_MAX_BACKOFF: 90,
        CONF_AVAILABILITY: "sampling",
        CONF_WINDOW_START: "08:00:00",
        CONF_WINDOW_END: "22:00:00",
        CONF_SAMPLE_SECONDS: 20,
        CONF_SAMPLE_EVERY: 10,
        CONF_GRACE_PERIOD: 15,
        CONF_PROMETHEUS: False,
        CONF_PROMETHEUS_JID: True,
    }
    assert isinstance(entry.options[CONF_MAX_PER_MINUTE], int)
    config = manager_config_from_options(entry.options)
    assert config.resubscribe_after is None  # 0 hours: renew only on reconnect
    assert config.max_backoff == 90 * 60
    assert config.adaptive is False  # always the pace chosen


async def test_custom_pace_is_checked(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Custom values: too fast is refused with the rate; safe values are kept."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], form_input(preset="custom")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "custom"
    assert_translated(result, "options")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_BATCH_SIZE: 40, CONF_BATCH_DELAY: 2, CONF_SUBSCRIPTION_DELAY: 0.1},
    )
    assert result["errors"] == {"base": "rate_too_high"}
    assert result["description_placeholders"] == {"rate": "400"}
    assert_translated(result, "options")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_BATCH_SIZE: 5.0, CONF_BATCH_DELAY: 30, CONF_SUBSCRIPTION_DELAY: 1},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_PRESET] == "custom"
    assert entry.options[CONF_BATCH_SIZE] == 5
    assert entry.options[CONF_MAX_PER_MINUTE] == 200
    batch = manager_config_from_options(entry.options).batch
    assert (batch.batch_size, batch.batch_delay, batch.subscription_delay) == (5, 30.0, 1.0)


async def test_out_of_range_values_are_refused(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """The form's ranges are enforced (a global cap above 300 is unsafe)."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], form_input(max_per_minute=1000)
        )
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], form_input(preset="custom")
    )
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {CONF_BATCH_SIZE: 51, CONF_BATCH_DELAY: 2, CONF_SUBSCRIPTION_DELAY: 0.1},
        )
    assert entry.options == default_options()


async def test_availability_modes_are_checked(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """A sample longer than its period, or an empty window, is refused; a helper is kept."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], form_input(availability="sampling", sample_seconds=600, sample_every=10)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "sample_too_long"}
    assert_translated(result, "options")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        form_input(availability="schedule", window_start="09:00:00", window_end="09:00:00"),
    )
    assert result["errors"] == {"base": "empty_window"}
    assert_translated(result, "options")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        form_input(
            availability="schedule",
            schedule_entity="schedule.evenings",
            window_start="09:00:00",
            window_end="09:00:00",
        ),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_AVAILABILITY] == "schedule"
    assert entry.options[CONF_SCHEDULE_ENTITY] == "schedule.evenings"

    # Emptying the helper field clears it (the frontend then leaves the key out).
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], form_input(availability="schedule")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_SCHEDULE_ENTITY not in entry.options
