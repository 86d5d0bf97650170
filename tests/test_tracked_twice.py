"""A contact tracked on its own and as a member of a tracked group keeps one set of entities."""

from __future__ import annotations

from types import MappingProxyType

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.const import (
    CONF_JID,
    CONF_PHONE,
    CONF_PRIORITY,
    DOMAIN,
    SUBENTRY_CONTACT,
    SUBENTRY_GROUP,
)

from .sim import ACCOUNT_JID, ACCOUNT_PHONE, until


def contact(jid: str, name: str) -> ConfigSubentry:
    """A contact subentry as the subentry flow adds it."""
    return ConfigSubentry(
        data=MappingProxyType(
            {CONF_JID: jid, CONF_PHONE: jid.split("@", maxsplit=1)[0], CONF_PRIORITY: 2}
        ),
        subentry_type=SUBENTRY_CONTACT,
        title=name,
        unique_id=jid,
    )


def group(jid: str, name: str) -> ConfigSubentry:
    """A group subentry as the subentry flow adds it."""
    return ConfigSubentry(
        data=MappingProxyType({CONF_JID: jid, "name": name, CONF_PRIORITY: 3}),
        subentry_type=SUBENTRY_GROUP,
        title=name,
        unique_id=jid,
    )


def entities_of(
    entity_registry: er.EntityRegistry, entry: MockConfigEntry, jid: str
) -> dict[str, er.RegistryEntry]:
    """Registry entries of one contact (by unique id), whatever subentry holds them."""
    prefix = f"{ACCOUNT_PHONE}_{jid.split('@', maxsplit=1)[0]}_"
    return {
        e.unique_id: e
        for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
        if e.unique_id.startswith(prefix)
    }


async def test_group_then_own_subentry_then_group_removed(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Tracked through a group first, then on its own: removing the group keeps its entities."""
    entry = init_integration
    coordinator = entry.runtime_data
    client = coordinator.client
    assert client is not None
    chosen = (await client.groups())[0]
    members = await client.group_participants(chosen.jid)
    own_group = group(chosen.jid, chosen.name)
    hass.config_entries.async_add_subentry(entry, own_group)
    member_jids = {m.jid for m in members} - {ACCOUNT_JID}
    await until(hass, lambda: member_jids <= coordinator.tracked.keys())
    member = next(
        m
        for m in members
        if coordinator.tracked.get(m.jid) is not None
        and coordinator.tracked[m.jid].subentry_id == own_group.subentry_id
    )
    jid = member.jid
    before = entities_of(entity_registry, entry, jid)
    assert len(before) >= 2  # online, last seen, and the insights
    assert {e.config_subentry_id for e in before.values()} == {own_group.subentry_id}

    # Now tracked on its own as well: its entities move to its own subentry, not twice.
    own = contact(jid, member.name or jid)
    hass.config_entries.async_add_subentry(entry, own)
    await until(hass, lambda: coordinator.tracked[jid].subentry_id == own.subentry_id)
    after = entities_of(entity_registry, entry, jid)
    assert after.keys() == before.keys()
    assert {e.config_subentry_id for e in after.values()} == {own.subentry_id}
    assert {e.entity_id for e in after.values()} == {e.entity_id for e in before.values()}
    for registry_entry in after.values():
        if registry_entry.disabled_by is None:
            assert hass.states.get(registry_entry.entity_id) is not None

    # Removing the group leaves the contact, its entities and its device in place.
    hass.config_entries.async_remove_subentry(entry, own_group.subentry_id)
    await hass.async_block_till_done()
    assert jid in coordinator.tracked
    kept = entities_of(entity_registry, entry, jid)
    assert kept.keys() == before.keys()
    for registry_entry in kept.values():
        if registry_entry.disabled_by is None:
            assert hass.states.get(registry_entry.entity_id) is not None
    device = device_registry.async_get_device_by_identifier(
        coordinator.device_identifier(jid), entry.entry_id
    )
    assert device is not None


async def test_own_subentry_removed_while_in_a_tracked_group(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Tracked on its own and through a group: removing its own subentry keeps the group's."""
    entry = init_integration
    coordinator = entry.runtime_data
    client = coordinator.client
    assert client is not None
    groups = await client.groups()
    # A group with a member tracked on its own (the entry tracks the first contacts).
    chosen, members = None, []
    for candidate in groups:
        members = await client.group_participants(candidate.jid)
        if any(m.jid in coordinator.tracked for m in members):
            chosen = candidate
            break
    assert chosen is not None
    jid = next(m.jid for m in members if m.jid in coordinator.tracked)
    own_id = coordinator.tracked[jid].subentry_id
    own_group = group(chosen.jid, chosen.name)
    hass.config_entries.async_add_subentry(entry, own_group)
    member_jids = {m.jid for m in members} - {ACCOUNT_JID}
    await until(hass, lambda: member_jids <= coordinator.tracked.keys())
    before = entities_of(entity_registry, entry, jid)
    assert {e.config_subentry_id for e in before.values()} == {own_id}

    hass.config_entries.async_remove_subentry(entry, own_id)
    await until(hass, lambda: coordinator.tracked[jid].subentry_id == own_group.subentry_id)
    await hass.async_block_till_done()
    after = entities_of(entity_registry, entry, jid)
    assert after.keys() == before.keys()
    assert {e.config_subentry_id for e in after.values()} == {own_group.subentry_id}
    for registry_entry in after.values():
        if registry_entry.disabled_by is None:
            assert hass.states.get(registry_entry.entity_id) is not None
    device = device_registry.async_get_device_by_identifier(
        coordinator.device_identifier(jid), entry.entry_id
    )
    assert device is not None
    assert DOMAIN
