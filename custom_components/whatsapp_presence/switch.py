"""The switch on the account device: the linked device is online, so presence arrives."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import WhatsAppConfigEntry
from .entity import WhatsAppAccountEntity

PARALLEL_UPDATES = 0

PRESENCE = SwitchEntityDescription(key="presence_enabled", translation_key="presence_enabled")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: WhatsAppConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One switch per linked account."""
    async_add_entities([PresenceSwitch(entry.runtime_data, PRESENCE)])


class PresenceSwitch(WhatsAppAccountEntity, SwitchEntity):
    """On: WhatsApp sends presence, and the phone stops notifying. Off: the reverse.

    The mode in the options (schedule, sampling) turns it on and off at its own changes; a
    manual change holds until then. Its state is kept across restarts by the coordinator.
    """

    _coalesce_writes = False

    @property
    def available(self) -> bool:
        """Usable while disconnected too: the choice applies on the next connect."""
        return True

    @property
    def is_on(self) -> bool:
        """Whether the linked device is marked online."""
        return self.coordinator.presence_enabled

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The mode that turns the switch on and off (always, schedule, sampling)."""
        return {"mode": self.coordinator.mode.mode}

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Mark the linked device online; subscriptions are renewed, paced."""
        await self.coordinator.async_set_presence_enabled(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Mark the linked device offline; contacts become unknown until it is on again."""
        await self.coordinator.async_set_presence_enabled(False)
