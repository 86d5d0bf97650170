"""Sensors: a contact's last seen; the account's connection and subscription figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .coordinator import WhatsAppConfigEntry, WhatsAppCoordinator
from .entity import WhatsAppAccountEntity, WhatsAppContactEntity, async_setup_contact_entities
from .manager import CUSTOM_PRESET, PRESETS

PARALLEL_UPDATES = 0

LAST_SEEN = SensorEntityDescription(
    key="last_seen", translation_key="last_seen", device_class=SensorDeviceClass.TIMESTAMP
)
CONNECTION_STATES = ["connected", "connecting", "bridge_unreachable", "logged_out", "banned"]


@dataclass(frozen=True, kw_only=True)
class WhatsAppAccountSensorDescription(SensorEntityDescription):
    """An account-level sensor read from the coordinator."""

    value_fn: Callable[[WhatsAppCoordinator], StateType | datetime]
    attributes_fn: Callable[[WhatsAppCoordinator], dict[str, Any]] | None = None


def _count(key: str, **kwargs: Any) -> WhatsAppAccountSensorDescription:
    """A subscription count taken from the manager's stats."""
    return WhatsAppAccountSensorDescription(
        key=key,
        translation_key=key,
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda coordinator: getattr(coordinator.manager.stats(), key),
        **kwargs,
    )


def _next_retry(coordinator: WhatsAppCoordinator) -> dict[str, Any]:
    retry = coordinator.manager.stats().next_retry
    return {"next_retry": dt_util.utc_from_timestamp(retry).isoformat() if retry else None}


ACCOUNT_SENSORS: tuple[WhatsAppAccountSensorDescription, ...] = (
    WhatsAppAccountSensorDescription(
        key="connection",
        translation_key="connection",
        device_class=SensorDeviceClass.ENUM,
        options=CONNECTION_STATES,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda coordinator: coordinator.connection_state,
    ),
    _count("queue_length"),
    _count("active"),
    _count("stale"),
    _count("failed"),
    _count("in_backoff", attributes_fn=_next_retry),
    # Changes with every subscribe call: off by default to keep the recorder quiet.
    _count("calls_last_hour", entity_registry_enabled_default=False),
    WhatsAppAccountSensorDescription(
        key="slowdown",
        translation_key="slowdown",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda coordinator: coordinator.manager.stats().slowdown,
    ),
    WhatsAppAccountSensorDescription(
        key="preset",
        translation_key="preset",
        device_class=SensorDeviceClass.ENUM,
        options=[*PRESETS, CUSTOM_PRESET],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda coordinator: coordinator.manager.stats().preset,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: WhatsAppConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Account sensors now; one *last seen* sensor per tracked contact, now and later."""
    coordinator = entry.runtime_data
    async_add_entities(
        WhatsAppAccountSensor(coordinator, description) for description in ACCOUNT_SENSORS
    )
    async_setup_contact_entities(
        coordinator,
        async_add_entities,
        lambda contact: [ContactLastSeenSensor(coordinator, contact, LAST_SEEN)],
    )


class ContactLastSeenSensor(WhatsAppContactEntity, RestoreSensor):
    """When the contact was last online: WhatsApp's own figure, or what we observed.

    Unknown when WhatsApp hides it and we never saw the contact online; never made up from the
    time we subscribed.
    """

    async def async_added_to_hass(self) -> None:
        """Restore the last figure when the coordinator's store has none."""
        await super().async_added_to_hass()
        presence = self.coordinator.presence.get(self.jid)
        if presence is None or presence.last_seen is not None:
            return
        if (last := await self.async_get_last_sensor_data()) and isinstance(
            last.native_value, datetime
        ):
            presence.last_seen = last.native_value
            presence.last_seen_source = "restored"

    @property
    def native_value(self) -> datetime | None:
        """The last seen time, or None when unknown."""
        presence = self.coordinator.presence.get(self.jid)
        return presence.last_seen if presence else None

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Whether the time is WhatsApp's figure or our observation."""
        presence = self.coordinator.presence.get(self.jid)
        return {"source": presence.last_seen_source if presence else None}


class WhatsAppAccountSensor(WhatsAppAccountEntity, SensorEntity):
    """A diagnostic sensor of the linked account."""

    entity_description: WhatsAppAccountSensorDescription

    @property
    def available(self) -> bool:
        """The connection sensor reports outages, so it stays available through them."""
        return self.entity_description.key == "connection" or super().available

    @property
    def native_value(self) -> StateType | datetime:
        """Read from the coordinator."""
        return self.entity_description.value_fn(self.coordinator)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Extra context for some sensors (next retry of the backoff count)."""
        if self.entity_description.attributes_fn is None:
            return None
        return self.entity_description.attributes_fn(self.coordinator)
