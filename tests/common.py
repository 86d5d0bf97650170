"""What the Home Assistant tests share: entities by unique id, states, and waiting for presence.

Not a test module: test modules import from here (and from ``sim.py``), never from each other.
"""

from __future__ import annotations

from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntry, ConfigSubentryData
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.const import (
    CONF_JID,
    CONF_PHONE,
    CONF_PRIORITY,
    DOMAIN,
    SUBENTRY_CONTACT,
    SUBENTRY_GROUP,
)

from .sim import ACCOUNT_PHONE, SimBridge, run_until, until

SWITCH = "switch.sam_demo_online_for_presence"


def contact_subentry(jid: str, title: str, priority: int = 2) -> ConfigSubentryData:
    """A tracked contact as the subentry flow stores it."""
    return ConfigSubentryData(
        data={CONF_JID: jid, CONF_PHONE: jid.split("@", maxsplit=1)[0], CONF_PRIORITY: priority},
        subentry_type=SUBENTRY_CONTACT,
        title=title,
        unique_id=jid,
    )


def group_subentry(jid: str, title: str, priority: int = 3) -> ConfigSubentryData:
    """A tracked group as the subentry flow stores it."""
    return ConfigSubentryData(
        data={CONF_JID: jid, "name": title, CONF_PRIORITY: priority},
        subentry_type=SUBENTRY_GROUP,
        title=title,
        unique_id=jid,
    )


async def setup_integration(
    hass: HomeAssistant, entry: MockConfigEntry, platforms: list[Platform] | None = None
) -> None:
    """Set the entry up (only ``platforms``, if given) and wait until it is connected."""
    entry.add_to_hass(hass)
    if platforms is None:
        assert await hass.config_entries.async_setup(entry.entry_id)
    else:
        with patch("custom_components.whatsapp_presence.PLATFORMS", platforms):
            assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await until(hass, lambda: entry.runtime_data.connected)


def state_of(hass: HomeAssistant, entity_id: str) -> str:
    """The state of an entity that must exist."""
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


def entity_of(registry: er.EntityRegistry, platform: str, jid: str, key: str) -> str:
    """A contact's entity id, from its unique id."""
    phone = jid.split("@", maxsplit=1)[0]
    entity_id = registry.async_get_entity_id(platform, DOMAIN, f"{ACCOUNT_PHONE}_{phone}_{key}")
    assert entity_id is not None
    return entity_id


def online_entity(entity_registry: er.EntityRegistry, jid: str) -> str:
    """The entity id of a contact's online sensor."""
    return entity_of(entity_registry, "binary_sensor", jid, "online")


async def subscribed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    entry: ConfigEntry,
    count: int | None = None,
) -> None:
    """Let the manager subscribe ``count`` contacts (every tracked contact by default)."""
    coordinator = entry.runtime_data
    await run_until(
        hass,
        freezer,
        lambda: (
            coordinator.manager.stats().active
            == (len(coordinator.tracked) if count is None else count)
        ),
    )


async def known(hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: ConfigEntry) -> None:
    """Run until every tracked contact's presence is known."""
    presence = entry.runtime_data.presence
    await run_until(hass, freezer, lambda: all(p.online is not None for p in presence.values()))


async def set_presence(hass: HomeAssistant, sim_bridge: SimBridge, jid: str, online: bool) -> None:
    """The simulated contact goes online or offline; wait until Home Assistant knows."""
    coordinator = hass.config_entries.async_entries(DOMAIN)[0].runtime_data
    await sim_bridge.command("sim.set_presence", jid=jid, online=online)
    await until(hass, lambda: coordinator.presence[jid].online is online)


async def switch(hass: HomeAssistant, on: bool) -> None:
    """Toggle the account's 'Online for presence' switch as a dashboard or an automation does."""
    await hass.services.async_call(
        "switch", "turn_on" if on else "turn_off", {"entity_id": SWITCH}, blocking=True
    )
