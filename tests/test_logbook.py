"""The presence events in Home Assistant's real logbook, with the real recorder."""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.translation import async_get_translations
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.whatsapp_presence.const import DOMAIN

from .common import entity_of, set_presence, subscribed
from .sim import SimBridge, tick


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder (an in-memory database) must start before Home Assistant does."""


async def test_logbook_shows_a_readable_line(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """The real logbook lists each change as "<contact> Presence: Came online" (the frontend
    shows the entry's name and its event type's translated text)."""
    assert await async_setup_component(hass, "logbook", {})
    await subscribed(hass, freezer, init_integration)
    contact = (await sim_bridge.contacts())[0]
    event_id = entity_of(entity_registry, "event", contact["jid"], "presence")
    start = dt_util.utcnow()
    for online in (False, True, False):  # the first only makes sure a change follows
        await set_presence(hass, sim_bridge, contact["jid"], online)
        await tick(hass, freezer, 5)
    await async_wait_recording_done(hass)

    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "logbook/get_events",
            "start_time": start.isoformat(),
            "end_time": dt_util.utcnow().isoformat(),
            "entity_ids": [event_id],
        }
    )
    response = await client.receive_json()
    assert response["success"], response
    # The frontend names an entry after its entity, and words it from the event type.
    state = hass.states.get(event_id)
    assert state is not None
    texts = await async_get_translations(hass, "en", "entity", {DOMAIN})
    prefix = f"component.{DOMAIN}.entity.event.presence.state_attributes.event_type.state"
    lines = [
        f"{state.name}: {texts[f'{prefix}.{entry["attributes"]["event_type"]}']}"
        for entry in response["result"]
        if entry["entity_id"] == event_id and entry.get("attributes", {}).get("event_type")
    ]
    assert lines == [
        f"{contact['name']} Presence: Came online",
        f"{contact['name']} Presence: Went offline",
    ]
