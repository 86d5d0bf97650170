"""Base entities: one device per tracked contact, one for the linked account."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
import time

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_call_later

from .bridge.protocol import jid_to_phone
from .coordinator import WhatsAppCoordinator
from .presence import TrackedContact

ACCOUNT_WRITE_INTERVAL = 1.0
"""Account entities write at most once per this many seconds (a reconnect changes their
figures with every subscription; each write is a recorder row)."""


def contact_unique_id(coordinator: WhatsAppCoordinator, jid: str, key: str) -> str:
    """Unique id of a contact's entity: the account and the contact, so two accounts tracking
    the same person get entities of their own."""
    return f"{jid_to_phone(coordinator.account_jid)}_{jid_to_phone(jid)}_{key}"


class WhatsAppEntity(Entity):
    """Pushed by the coordinator; never polled."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, coordinator: WhatsAppCoordinator, description: EntityDescription) -> None:
        """Keep the coordinator and the description."""
        self.coordinator = coordinator
        self.entity_description = description

    @property
    def available(self) -> bool:
        """Unavailable once the connection has been down longer than the grace period."""
        return self.coordinator.available


class WhatsAppContactEntity(WhatsAppEntity):
    """An entity of one tracked contact's device."""

    # Entities showing the subscription state also follow the manager's changes.
    _follows_subscription = False

    def __init__(
        self,
        coordinator: WhatsAppCoordinator,
        contact: TrackedContact,
        description: EntityDescription,
    ) -> None:
        """Attach to the contact's device (the account is part of its identifier)."""
        super().__init__(coordinator, description)
        self.jid = contact.jid
        phone = jid_to_phone(contact.jid)
        self._attr_unique_id = contact_unique_id(coordinator, contact.jid, description.key)
        self._attr_device_info = DeviceInfo(
            identifiers={coordinator.device_identifier(contact.jid)},
            name=contact.name or f"+{phone}",
            manufacturer="WhatsApp",
            model="Contact",
            entry_type=DeviceEntryType.SERVICE,
        )

    @property
    def available(self) -> bool:
        """Also unavailable once the contact is no longer tracked."""
        return super().available and self.jid in self.coordinator.tracked

    async def async_added_to_hass(self) -> None:
        """Listen to this contact only: other contacts' presence never wakes this entity."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_contact_listener(self.jid, self._async_contact_changed)
        )
        if self._follows_subscription:
            self.async_on_remove(
                # The same callback as the contact's: a change of both writes once.
                self.coordinator.async_add_subscription_listener(
                    self.jid, self._async_contact_changed
                )
            )

    @callback
    def _async_contact_changed(self) -> None:
        """The contact's presence or the availability changed."""
        self.async_write_ha_state()


class WhatsAppAccountEntity(WhatsAppEntity):
    """A diagnostic entity of the linked account's device."""

    def __init__(self, coordinator: WhatsAppCoordinator, description: EntityDescription) -> None:
        """Attach to the account device."""
        super().__init__(coordinator, description)
        account = jid_to_phone(coordinator.account_jid)
        self._attr_unique_id = f"{account}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={coordinator.device_identifier(None)},
            name=coordinator.entry.title,
            manufacturer="WhatsApp",
            model="Linked device",
            entry_type=DeviceEntryType.SERVICE,
        )

    _last_write = float("-inf")
    _pending_write: CALLBACK_TYPE | None = None
    # Figures coalesce; a control the user just flipped shows its new state at once.
    _coalesce_writes = True

    async def async_added_to_hass(self) -> None:
        """Follow connection and subscription figures, at most one write per second."""
        await super().async_added_to_hass()
        self.async_on_remove(self.coordinator.async_add_listener(self._async_coalesced_write))
        self.async_on_remove(self._cancel_pending_write)

    @callback
    def _async_coalesced_write(self) -> None:
        """Write now if the last write is a second old; else once, a second after it."""
        if not self._coalesce_writes:
            self.async_write_ha_state()
            return
        if self._pending_write is not None:
            return
        wait = self._last_write + ACCOUNT_WRITE_INTERVAL - time.monotonic()
        if wait <= 0:
            self._async_write_now()
        else:
            self._pending_write = async_call_later(self.hass, wait, self._async_delayed_write)

    @callback
    def _async_delayed_write(self, _now: object) -> None:
        self._pending_write = None
        self._async_write_now()

    @callback
    def _async_write_now(self) -> None:
        self._last_write = time.monotonic()
        self.async_write_ha_state()

    @callback
    def _cancel_pending_write(self) -> None:
        if self._pending_write is not None:
            self._pending_write()
            self._pending_write = None


def async_setup_contact_entities(
    coordinator: WhatsAppCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[TrackedContact], Iterable[Entity]],
) -> None:
    """Add entities for every tracked contact now and for contacts tracked later.

    Entities belong to the subentry that tracks the contact (a contact subentry, or the group
    subentry for a group's members), so removing that subentry removes them. A contact tracked
    both ways has one set of entities, held by one subentry: when that changes they move, so
    removing the other subentry leaves them alone. A group member who left the group has no
    subentry of its own: its device is removed here.
    """
    known: dict[str, tuple[str, list[Entity]]] = {}
    hass = coordinator.hass

    async def replace(old: list[Entity], new: list[Entity], subentry_id: str) -> None:
        """The old owner is gone with the entities: add new ones once the old are removed."""
        await asyncio.gather(*(entity.async_remove() for entity in old if entity.hass))
        if subentry_id in coordinator.entry.subentries:
            async_add_entities(new, config_subentry_id=subentry_id)

    @callback
    def sync() -> None:
        by_subentry: dict[str, list[Entity]] = {}
        for jid, contact in coordinator.tracked.items():
            previous = known.get(jid)
            if previous is not None and previous[0] == contact.subentry_id:
                continue
            if previous is not None and _move(coordinator, jid, previous[1], contact.subentry_id):
                known[jid] = (contact.subentry_id, previous[1])
                continue
            entities = list(build(contact))
            known[jid] = (contact.subentry_id, entities)
            if previous is None:
                by_subentry.setdefault(contact.subentry_id, []).extend(entities)
            else:
                hass.async_create_task(
                    replace(previous[1], entities, contact.subentry_id), eager_start=False
                )
        for subentry_id, entities in by_subentry.items():
            async_add_entities(entities, config_subentry_id=subentry_id)
        gone = known.keys() - coordinator.tracked.keys()
        if not gone:
            return
        registry = dr.async_get(hass)
        for jid in gone:
            subentry_id, _ = known.pop(jid)
            device = registry.async_get_device_by_identifier(
                coordinator.device_identifier(jid), coordinator.entry.entry_id
            )
            if device is not None and subentry_id in coordinator.entry.subentries:
                registry.async_remove_device(device.id)

    sync()
    coordinator.entry.async_on_unload(coordinator.async_add_contacts_listener(sync))


def _move(
    coordinator: WhatsAppCoordinator, jid: str, entities: list[Entity], subentry_id: str
) -> bool:
    """Hand a contact's registered entities and device to another subentry.

    False when they are no longer registered (their subentry was removed with them).
    """
    entity_registry = er.async_get(coordinator.hass)
    entity_ids = [entity.entity_id for entity in entities]
    if not entity_ids or not all(
        entity_id is not None and entity_registry.async_get(entity_id) is not None
        for entity_id in entity_ids
    ):
        return False
    # Entities first: a device moved away from its entities' subentry takes them with it.
    for entity_id in entity_ids:
        entity_registry.async_update_entity(entity_id, config_subentry_id=subentry_id)
    device_registry = dr.async_get(coordinator.hass)
    device = device_registry.async_get_device_by_identifier(
        coordinator.device_identifier(jid), coordinator.entry.entry_id
    )
    if device is not None:
        device_registry.async_update_device(device.id, new_config_subentry_id=subentry_id)
    return True
