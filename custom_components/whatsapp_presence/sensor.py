"""Sensors: a contact's last seen, online time and sessions; the account's figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .activity import Snapshot
from .coordinator import WhatsAppConfigEntry, WhatsAppCoordinator
from .entity import WhatsAppAccountEntity, WhatsAppContactEntity, async_setup_contact_entities
from .manager import CUSTOM_PRESET, PRESETS, ContactState
from .presence import TrackedContact

PARALLEL_UPDATES = 0

LAST_SEEN = SensorEntityDescription(
    key="last_seen", translation_key="last_seen", device_class=SensorDeviceClass.TIMESTAMP
)
SUBSCRIPTION = SensorEntityDescription(
    key="subscription",
    translation_key="subscription",
    device_class=SensorDeviceClass.ENUM,
    options=[state.value for state in ContactState],
    entity_category=EntityCategory.DIAGNOSTIC,
    # Flips three times per contact on every reconnect: off unless someone looks for it.
    entity_registry_enabled_default=False,
)
CONNECTION_STATES = [
    "connected",
    "connecting",
    "bridge_unreachable",
    "bridge_unresponsive",
    "logged_out",
    "banned",
]


@dataclass(frozen=True, kw_only=True)
class WhatsAppActivitySensorDescription(SensorEntityDescription):
    """A contact's online time or sessions, read from the activity tracker."""

    value_fn: Callable[[Snapshot], StateType]


ACTIVITY_SENSORS: tuple[WhatsAppActivitySensorDescription, ...] = (
    # Starts again at local midnight; total_increasing gives the statistics a daily sum.
    WhatsAppActivitySensorDescription(
        key="online_today",
        translation_key="online_today",
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_unit_of_measurement=UnitOfTime.MINUTES,
        suggested_display_precision=0,
        value_fn=lambda snapshot: round(snapshot.online_today),
    ),
    WhatsAppActivitySensorDescription(
        key="sessions_today",
        translation_key="sessions_today",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda snapshot: snapshot.sessions_today,
    ),
    WhatsAppActivitySensorDescription(
        key="last_session",
        translation_key="last_session",
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_unit_of_measurement=UnitOfTime.MINUTES,
        suggested_display_precision=0,
        value_fn=lambda snapshot: (
            None if snapshot.last_session is None else round(snapshot.last_session)
        ),
    ),
)


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


def _online_names(coordinator: WhatsAppCoordinator) -> dict[str, Any]:
    names = [
        contact.name or f"+{contact.jid.split('@', 1)[0]}"
        for jid in coordinator.activity.online_now()
        if (contact := coordinator.tracked.get(jid)) is not None
    ]
    return {"contacts": sorted(names, key=str.casefold)}


def _next_retry(coordinator: WhatsAppCoordinator) -> dict[str, Any]:
    retry = coordinator.manager.stats().next_retry
    return {"next_retry": dt_util.utc_from_timestamp(retry).isoformat() if retry else None}


ONLINE_NOW = WhatsAppAccountSensorDescription(
    key="online_now",
    translation_key="online_now",
    state_class=SensorStateClass.MEASUREMENT,
    value_fn=lambda coordinator: len(coordinator.activity.online_now()),
    attributes_fn=_online_names,
)

ACCOUNT_SENSORS: tuple[WhatsAppAccountSensorDescription, ...] = (
    ONLINE_NOW,
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
        key="pace",
        translation_key="pace",
        native_unit_of_measurement="subscriptions/min",
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda coordinator: coordinator.manager.stats().pace,
        attributes_fn=lambda coordinator: {"reason": coordinator.manager.pace_reason},
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
    """Account sensors now; each tracked contact's sensors, now and later."""
    coordinator = entry.runtime_data
    async_add_entities(
        WhatsAppAccountSensor(coordinator, description) for description in ACCOUNT_SENSORS
    )

    def build(contact: TrackedContact) -> list[SensorEntity]:
        return [
            ContactLastSeenSensor(coordinator, contact, LAST_SEEN),
            *(
                ContactActivitySensor(coordinator, contact, description)
                for description in ACTIVITY_SENSORS
            ),
            ContactSubscriptionSensor(coordinator, contact, SUBSCRIPTION),
        ]

    async_setup_contact_entities(coordinator, async_add_entities, build)


class ContactLastSeenSensor(WhatsAppContactEntity, SensorEntity):
    """When the contact was last online: WhatsApp's own figure, or what we observed.

    Unknown when WhatsApp hides it and we never saw the contact online; never made up from the
    time we subscribed. Not a restore entity: the account's store keeps last seen across
    restarts (see ``AccountStore.to_dict`` in store.py).
    """

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


class ContactActivitySensor(WhatsAppContactEntity, SensorEntity):
    """Online time or sessions of a contact, counted from observed presence only.

    Stays available through outages: what was counted stays true, and unknown time is simply
    not counted.
    """

    entity_description: WhatsAppActivitySensorDescription

    def __init__(
        self,
        coordinator: WhatsAppCoordinator,
        contact: TrackedContact,
        description: WhatsAppActivitySensorDescription,
    ) -> None:
        """Enabled by default while Home Assistant's entity limit leaves room."""
        super().__init__(coordinator, contact, description)
        self._attr_entity_registry_enabled_default = contact.jid in coordinator.insights_by_default
        self._shown: tuple[StateType, bool] | None = None

    @property
    def available(self) -> bool:
        """Available while the contact is tracked."""
        return self.jid in self.coordinator.tracked

    @callback
    def _async_contact_changed(self) -> None:
        """Write only when the figure moved: most presence events leave two of three alone."""
        shown = (self.native_value, self.available)
        if shown != self._shown:
            self._shown = shown
            self.async_write_ha_state()

    @property
    def native_value(self) -> StateType:
        """The figure as of now (a running session included)."""
        snapshot = self.coordinator.activity.snapshot(self.jid)
        return None if snapshot is None else self.entity_description.value_fn(snapshot)


class ContactSubscriptionSensor(WhatsAppContactEntity, SensorEntity):
    """Where the contact's subscription stands (queued, subscribed, backoff, ...)."""

    _follows_subscription = True

    @property
    def native_value(self) -> str | None:
        """The subscription manager's state of the contact."""
        info = self.coordinator.manager.contact(self.jid)
        return info.state.value if info else None


class WhatsAppAccountSensor(WhatsAppAccountEntity, SensorEntity):
    """A sensor of the linked account (diagnostic, but for who is online now)."""

    entity_description: WhatsAppAccountSensorDescription

    # The names of who is online would make a recorder row of their own at every change.
    _unrecorded_attributes = frozenset({"contacts"})

    @property
    def available(self) -> bool:
        """The connection sensor reports outages, so it stays available through them."""
        return self.entity_description.key == "connection" or super().available

    async def async_added_to_hass(self) -> None:
        """*Contacts online now* also follows presence (other account entities need not)."""
        await super().async_added_to_hass()
        if self.entity_description.key == ONLINE_NOW.key:
            self.async_on_remove(
                self.coordinator.async_add_online_listener(self._async_coalesced_write)
            )

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
