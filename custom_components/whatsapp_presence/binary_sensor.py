"""Binary sensors: a contact is online; the account is connected, or rate limited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import WhatsAppConfigEntry, WhatsAppCoordinator
from .entity import WhatsAppAccountEntity, WhatsAppContactEntity, async_setup_contact_entities

PARALLEL_UPDATES = 0

ONLINE = BinarySensorEntityDescription(key="online", translation_key="online")


@dataclass(frozen=True, kw_only=True)
class WhatsAppAccountBinarySensorDescription(BinarySensorEntityDescription):
    """An account-level binary sensor read from the coordinator."""

    is_on_fn: Callable[[WhatsAppCoordinator], bool]


ACCOUNT_SENSORS: tuple[WhatsAppAccountBinarySensorDescription, ...] = (
    WhatsAppAccountBinarySensorDescription(
        key="connected",
        translation_key="connected",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda coordinator: coordinator.connected,
    ),
    WhatsAppAccountBinarySensorDescription(
        key="rate_limited",
        translation_key="rate_limited",
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda coordinator: coordinator.rate_limited,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: WhatsAppConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Account sensors now; one *online* sensor per tracked contact, now and later."""
    coordinator = entry.runtime_data
    async_add_entities(
        WhatsAppAccountBinarySensor(coordinator, description) for description in ACCOUNT_SENSORS
    )
    async_setup_contact_entities(
        coordinator,
        async_add_entities,
        lambda contact: [ContactOnlineBinarySensor(coordinator, contact, ONLINE)],
    )


class ContactOnlineBinarySensor(WhatsAppContactEntity, BinarySensorEntity):
    """On while WhatsApp says the contact is online; unknown when that is not known now.

    Unknown until WhatsApp says anything, and once the last state may have changed unseen
    (see ``WhatsAppCoordinator.shown_online``).

    The subscription state has its own (diagnostic) sensor: as an attribute here it cost three
    state writes per contact on every reconnect.
    """

    @property
    def is_on(self) -> bool | None:
        """Online, offline, or None (unknown: hidden by privacy, no news yet, or untrusted)."""
        return self.coordinator.shown_online(self.jid)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Whether presence is only sampled (an account-wide mode: it rarely changes)."""
        return {"sampled": self.coordinator.mode.sampling}


class WhatsAppAccountBinarySensor(WhatsAppAccountEntity, BinarySensorEntity):
    """A binary sensor of the linked account."""

    entity_description: WhatsAppAccountBinarySensorDescription

    @property
    def available(self) -> bool:
        """Connection problems are exactly what these report: always available."""
        return True

    @property
    def is_on(self) -> bool:
        """Read from the coordinator."""
        return self.entity_description.is_on_fn(self.coordinator)
