"""One path for each change: a connection change reaches each entity once, options apply
without re-reading contacts or groups, last seen is kept in one place."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentry, ConfigSubentryData
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.entity import Entity
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
)

from custom_components.whatsapp_presence.const import DOMAIN

from .common import (
    SWITCH,
    contact_subentry,
    entity_of,
    group_subentry,
    set_presence,
    setup_integration,
    state_of,
    subscribed,
)
from .sim import SimBridge, run_until, simulator_config, tick, until


def _live(data: ConfigSubentryData) -> ConfigSubentry:
    """A subentry to add to a loaded entry, as its subentry flow would."""
    return ConfigSubentry(
        data=MappingProxyType(dict(data["data"])),
        subentry_type=data["subentry_type"],
        title=data["title"],
        unique_id=data["unique_id"],
    )


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
        entity_of(entity_registry, "sensor", jid, "subscription"): jid
        for jid in coordinator.tracked
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


async def test_options_apply_without_reading_contacts_or_groups_again(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The set_batch_config action and a ban's step-down write options: the pace changes and
    nothing else; a subentry coming or going still re-reads contacts (and groups for a group)."""
    entry = init_integration
    coordinator = entry.runtime_data
    client = coordinator.client
    assert client is not None
    group = (await client.groups())[0]
    hass.config_entries.async_add_subentry(entry, _live(group_subentry(group.jid, group.name)))
    await until(hass, lambda: group.jid in coordinator.group_members)
    await subscribed(hass, freezer, entry)

    fetched: list[str] = []
    participants = sim_bridge.backend.group_participants

    async def counted(jid: str) -> list[dict[str, Any]]:
        fetched.append(jid)
        return await participants(jid)

    monkeypatch.setattr(sim_bridge.backend, "group_participants", counted)
    synced: list[None] = []
    entry.async_on_unload(coordinator.async_add_contacts_listener(lambda: synced.append(None)))

    await hass.services.async_call(
        DOMAIN,
        "set_batch_config",
        {"config_entry_id": entry.entry_id, "batch_size": 30, "batch_delay": 3},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert coordinator.manager.stats().preset == "small"
    await sim_bridge.command("sim.ban", expires_in=600)
    await until(hass, lambda: coordinator.manager.stats().preset == "medium")
    await hass.async_block_till_done()
    assert entry.options["preset"] == "medium"
    assert (fetched, synced) == ([], [])

    await sim_bridge.command("sim.unban")
    sim_bridge.advance(2)  # the simulated reconnect delay
    await until(hass, lambda: coordinator.connected and fetched == [group.jid])
    fetched.clear()
    synced.clear()
    contact = (await sim_bridge.contacts())[6]
    hass.config_entries.async_add_subentry(
        entry, _live(contact_subentry(contact["jid"], contact["name"]))
    )
    await hass.async_block_till_done()
    assert contact["jid"] in coordinator.tracked
    assert (fetched, len(synced)) == ([], 1)
    other = (await client.groups())[1]
    hass.config_entries.async_add_subentry(entry, _live(group_subentry(other.jid, other.name)))
    await until(hass, lambda: other.jid in coordinator.group_members)
    assert sorted(fetched) == sorted([group.jid, other.jid])


@pytest.mark.parametrize("sim_config", [simulator_config(hidden_last_seen_fraction=1.0)])
@pytest.mark.parametrize("tracked_count", [5])
async def test_last_seen_is_kept_by_the_store_only(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Across a restart, last seen comes back from the entry's store, with its source, for a
    contact whose sensor is disabled too; a sensor's restore state is not a second source."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, entry)
    first = next(jid for jid, p in coordinator.presence.items() if p.online is False)
    await set_presence(hass, sim_bridge, first, True)
    await set_presence(hass, sim_bridge, first, False)
    seen = coordinator.presence[first].last_seen
    assert seen is not None
    unseen = next(jid for jid, p in coordinator.presence.items() if p.last_seen is None)
    hidden = entity_of(entity_registry, "sensor", first, "last_seen")
    entity_registry.async_update_entity(hidden, disabled_by=er.RegistryEntryDisabler.USER)
    unseen_id = entity_of(entity_registry, "sensor", unseen, "last_seen")
    known = {jid: p.last_seen for jid, p in coordinator.presence.items() if p.last_seen}

    assert await hass.config_entries.async_unload(entry.entry_id)
    # A restore state claiming a figure the store does not have (the sensor used to take it).
    claimed = (seen - timedelta(hours=1)).isoformat()
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(unseen_id, claimed),
                {
                    "native_value": {"__type": str(datetime), "isoformat": claimed},
                    "native_unit_of_measurement": None,
                },
            )
        ],
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    restored = entry.runtime_data
    assert restored is not coordinator
    presence = restored.presence[first]
    assert (presence.last_seen, presence.last_seen_source) == (seen, "observed")
    assert {jid: p.last_seen for jid, p in restored.presence.items() if p.last_seen} == known
    assert hass.states.get(hidden) is None  # disabled, yet its figure was kept
    assert state_of(hass, unseen_id) == STATE_UNKNOWN
