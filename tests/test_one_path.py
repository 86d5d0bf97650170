"""One path for each change: a connection change reaches each entity once, options apply
without re-reading contacts or groups, last seen is kept in one place."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.entity import Entity
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.const import DOMAIN

from .common import SWITCH, entity_of, setup_integration, subscribed
from .sim import SimBridge, run_until, tick, until


async def _drop_link(sim_bridge: SimBridge) -> None:
    """The WebSocket to the bridge breaks; bridge and WhatsApp stay up."""
    for connection in list(sim_bridge.server._clients):
        await connection.ws.close()


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_connection_changes_reach_each_entity_once(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A WhatsApp disconnect and reconnect, a lost link to the bridge and its return: every
    contact entity is told once per change, plus once per change of its own subscription."""
    writes: Counter[str] = Counter()
    write = Entity.async_write_ha_state

    def counted(entity: Entity) -> None:
        writes[entity.entity_id] += 1
        write(entity)

    monkeypatch.setattr(Entity, "async_write_ha_state", counted)
    entry = mock_config_entry
    await setup_integration(hass, entry)
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, entry)
    await tick(hass, freezer, 2)
    account = dr.async_get(hass).async_get_device_by_identifier(
        coordinator.device_identifier(None), entry.entry_id
    )
    assert account is not None
    contact_entities = {
        registry_entry.entity_id
        for registry_entry in entity_registry.entities.values()
        if registry_entry.platform == DOMAIN
        and registry_entry.config_entry_id == entry.entry_id
        and registry_entry.device_id != account.id
    }
    subscription_of = {
        entity_of(entity_registry, "sensor", jid, "subscription"): jid for jid in coordinator.tracked
    }
    assert len(contact_entities) == 7 * len(coordinator.tracked)
    changes: Counter[str | None] = Counter()
    coordinator.manager.add_listener(lambda jid: changes.update([jid]))

    async def once(
        action: Callable[[], Awaitable[object]], done: Callable[[], bool], *, timers: bool = False
    ) -> None:
        writes.clear()
        changes.clear()
        await action()
        if timers:
            await run_until(hass, freezer, done)
        else:
            await until(hass, done)
        await hass.async_block_till_done()
        told = {entity_id: writes[entity_id] for entity_id in contact_entities}
        allowed = {
            entity_id: 1 + changes[subscription_of.get(entity_id)] for entity_id in contact_entities
        }
        assert {e: n for e, n in told.items() if n > allowed[e]} == {}

    await once(
        lambda: sim_bridge.command("sim.disconnect", reconnect_after=None),
        lambda: not coordinator.connected,
    )
    assert writes[SWITCH] <= 1
    reconnects = coordinator.manager.stats().reconnects_total
    await once(
        lambda: sim_bridge.command("sim.connect"),
        lambda: coordinator.manager.stats().reconnects_total > reconnects,
    )
    await subscribed(hass, freezer, entry)
    await tick(hass, freezer, 2)

    await once(lambda: _drop_link(sim_bridge), lambda: not coordinator.status.bridge_connected)
    assert writes[SWITCH] <= 1
    reconnects = coordinator.manager.stats().reconnects_total
    await once(
        lambda: sim_bridge.command("sim.stats"),
        lambda: coordinator.manager.stats().reconnects_total > reconnects,
        timers=True,
    )
