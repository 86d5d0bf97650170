"""WhatsApp Presence: which WhatsApp contacts are online, without risking the account."""

from __future__ import annotations

from typing import Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.storage import Store
from homeassistant.helpers.typing import ConfigType

from .const import CONF_SESSION_ID, DOMAIN, STORE_VERSION
from .coordinator import WhatsAppConfigEntry, WhatsAppCoordinator
from .dashboard import async_register_strategy
from .metrics import async_setup_metrics
from .pairing import async_remove_session
from .services import async_setup_services

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)
PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.EVENT,
    Platform.SENSOR,
    Platform.SWITCH,
]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions and the dashboard strategy once, whatever the number of accounts."""
    async_setup_services(hass)
    await async_register_strategy(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: WhatsAppConfigEntry) -> bool:
    """Set up one linked WhatsApp account."""
    coordinator = WhatsAppCoordinator(hass, entry)
    await coordinator.async_setup()
    entry.runtime_data = coordinator
    entry.async_on_unload(coordinator.async_shutdown)
    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))
    async_setup_metrics(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_entry_updated(hass: HomeAssistant, entry: WhatsAppConfigEntry) -> None:
    """Options and subentries change without a reload: a reload would reconnect WhatsApp and
    re-subscribe every contact, which is exactly the traffic this integration avoids."""
    await entry.runtime_data.async_entry_updated()


async def async_unload_entry(hass: HomeAssistant, entry: WhatsAppConfigEntry) -> bool:
    """Unload one linked WhatsApp account (the coordinator stops through async_on_unload)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: WhatsAppConfigEntry) -> None:
    """The entry is deleted: delete what it kept on disk (its state, its bridge's session).

    The linked device stays listed on the phone until it is logged out there (WhatsApp >
    Settings > Linked devices); the README's removal steps say so.
    """
    await Store[dict[str, Any]](hass, STORE_VERSION, f"{DOMAIN}.{entry.entry_id}").async_remove()
    # Every repair of an entry ends with its id: none may outlive the entry.
    issues = ir.async_get(hass).issues
    for domain, issue_id in list(issues):
        if domain == DOMAIN and issue_id.endswith(f"_{entry.entry_id}"):
            ir.async_delete_issue(hass, DOMAIN, issue_id)
    if session_id := entry.data.get(CONF_SESSION_ID):
        await async_remove_session(hass, session_id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: WhatsAppConfigEntry, device: dr.DeviceEntry
) -> bool:
    """A contact's device may be deleted once the contact is no longer tracked."""
    coordinator = entry.runtime_data
    tracked = {coordinator.device_identifier(jid) for jid in coordinator.tracked}
    tracked.add(coordinator.device_identifier(None))
    return not any(identifier in tracked for identifier in device.identifiers)
