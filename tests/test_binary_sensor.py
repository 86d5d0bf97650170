"""The binary sensors (each contact's Online, the account's Connected and Rate limited), as Home Assistant registers and shows them."""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.whatsapp_presence.bridge.simulator import SimulatorConfig

from .common import setup_integration, subscribed
from .sim import START, START_TEXT, simulator_config, tick


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """The simulated network's clock starts where Home Assistant's is frozen."""
    return simulator_config(start_time=START)


@pytest.mark.freeze_time(START_TEXT)
@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
    snapshot: SnapshotAssertion,
) -> None:
    """Every entity of the platform, once each tracked contact is subscribed."""
    await setup_integration(hass, mock_config_entry, [Platform.BINARY_SENSOR])
    await subscribed(hass, freezer, mock_config_entry)
    await tick(hass, freezer, 2)  # account figures are written at most once a second
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)
