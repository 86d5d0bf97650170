"""The "WhatsApp" dashboard strategy: served and loaded by Home Assistant's real frontend."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient
from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.dashboard import STRATEGY_FILE, STRATEGY_URL

type ClientFactory = Callable[[], Awaitable[TestClient[Any, Any]]]


async def test_strategy_is_served_and_loaded_by_the_frontend(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, hass_client: ClientFactory
) -> None:
    """With the frontend, every browser loads the strategy, which the dashboard dialog offers."""
    assert await async_setup_component(hass, "frontend", {})
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert STRATEGY_URL in hass.data[DATA_EXTRA_MODULE_URL].urls
    client = await hass_client()
    response = await client.get(STRATEGY_URL)
    assert response.status == 200
    served = await response.text()
    assert served == await hass.async_add_executor_job(STRATEGY_FILE.read_text)
    assert 'customElements.define(\n  "ll-strategy-dashboard-whatsapp-presence"' in served
    assert 'strategyType: "dashboard"' in served


async def test_no_frontend_no_strategy(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Without a frontend (a headless install) nothing is registered and set-up still works."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert DATA_EXTRA_MODULE_URL not in hass.data
