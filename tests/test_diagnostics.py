"""Diagnostics say what a maintainer needs and no phone number, name or token."""

from __future__ import annotations

import json

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.diagnostics import async_get_config_entry_diagnostics

from .sim import TOKEN, SimBridge, run_until


async def test_diagnostics_are_redacted(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Subscription states are there; numbers, names, the URL and the token are not."""
    entry = init_integration
    coordinator = entry.runtime_data
    await run_until(hass, freezer, lambda: coordinator.manager.stats().active == 3)
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    text = json.dumps(diagnostics, default=str)
    for contact in (await sim_bridge.contacts())[:3]:
        assert contact["phone"] not in text
        assert contact["name"] not in text
    assert "12025550100" not in text
    assert "Sam Demo" not in text
    assert TOKEN not in text
    assert sim_bridge.url not in text
    assert diagnostics["connection"]["state"] == "connected"
    assert diagnostics["connection"]["online_for_presence"] is True
    assert diagnostics["connection"]["availability_mode"] == "always"
    assert diagnostics["connection"]["subscriptions_paused"] is False
    assert diagnostics["manager"]["stats"]["active"] == 3
    assert {c["state"] for c in diagnostics["manager"]["contacts"]} == {"subscribed"}
