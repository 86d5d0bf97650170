"""Event entities: a contact came online or went offline.

Automations trigger on them without templates, and the logbook shows one readable line per
change. Only real changes between online and offline fire: a first report, or the answer to a
renewed subscription that says what was known already, is not an event.
"""

from __future__ import annotations

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import WhatsAppConfigEntry, WhatsAppCoordinator
from .entity import WhatsAppContactEntity, async_setup_contact_entities
from .presence import TrackedContact

PARALLEL_UPDATES = 0

CAME_ONLINE = "came_online"
WENT_OFFLINE = "went_offline"

PRESENCE = EventEntityDescription(
    key="presence", translation_key="presence", event_types=[CAME_ONLINE, WENT_OFFLINE]
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: WhatsAppConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One presence event entity per tracked contact, now and later."""
    coordinator = entry.runtime_data
    async_setup_contact_entities(
        coordinator,
        async_add_entities,
        lambda contact: [ContactPresenceEvent(coordinator, contact, PRESENCE)],
    )


class ContactPresenceEvent(WhatsAppContactEntity, EventEntity):
    """Fires *came online* and *went offline*."""

    def __init__(
        self,
        coordinator: WhatsAppCoordinator,
        contact: TrackedContact,
        description: EventEntityDescription,
    ) -> None:
        """Start from what is known now: that is not a change."""
        super().__init__(coordinator, contact, description)
        presence = coordinator.presence.get(contact.jid)
        self._online = presence.online if presence else None
        self._shown_available = True
        # Enabled by default while Home Assistant's entity limit leaves room.
        self._attr_entity_registry_enabled_default = contact.jid in coordinator.insights_by_default

    @callback
    def _async_contact_changed(self) -> None:
        """Fire on a real change; otherwise write only if availability changed."""
        presence = self.coordinator.presence.get(self.jid)
        online = presence.online if presence else None
        was, self._online = self._online, online
        if was is False and online is True:
            self._trigger_event(CAME_ONLINE)
        elif was is True and online is False:
            self._trigger_event(WENT_OFFLINE)
        elif self.available == self._shown_available:
            return
        self._shown_available = self.available
        self.async_write_ha_state()
