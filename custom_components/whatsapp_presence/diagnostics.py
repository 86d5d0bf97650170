"""Diagnostics: connection, pacing and per-contact subscription state, with personal data hidden."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant

from .const import CONF_ACCOUNT_JID, CONF_JID, CONF_PHONE, CONF_PUSH_NAME
from .coordinator import WhatsAppConfigEntry, WhatsAppCoordinator

TO_REDACT = {
    CONF_TOKEN,
    CONF_URL,
    CONF_ACCOUNT_JID,
    CONF_PUSH_NAME,
    CONF_JID,
    CONF_PHONE,
    "lid",
    "name",
    "title",
    "unique_id",
    "account",
    "push_name",
    "code",
}
DROPPED_EVENTS = frozenset({"qr"})
"""Events that are nothing but a secret (a pairing QR code links a device to the account)."""


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: WhatsAppConfigEntry
) -> dict[str, Any]:
    """What a maintainer needs to understand a report, and no phone number or name."""
    coordinator = entry.runtime_data
    manager = coordinator.manager
    contacts = []
    # Plain sequence numbers: any function of the JID (even a hash) can be reversed by trying
    # every phone number. The order is the manager's, so the report can follow one contact.
    for number, info in enumerate(manager.contacts(), start=1):
        presence = coordinator.presence.get(info.jid)
        contact = coordinator.tracked.get(info.jid)
        contacts.append(
            {
                "contact": f"contact-{number}",
                "subentry_type": entry.subentries[contact.subentry_id].subentry_type
                if contact and contact.subentry_id in entry.subentries
                else None,
                "priority": int(info.priority),
                "state": info.state.value,
                "fail_count": info.fail_count,
                "next_retry": info.next_retry,
                "last_event": info.last_event,
                "last_subscribed": info.last_subscribed,
                "online": presence.online if presence else None,
                "last_seen_source": presence.last_seen_source if presence else None,
            }
        )
    status = coordinator.status
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "connection": {
            "state": coordinator.connection_state,
            "bridge_connected": status.bridge_connected,
            "whatsapp_connected": status.whatsapp_connected,
            "reconnects": manager.stats().reconnects_total,
            "banned_until": status.banned_until.isoformat() if status.banned_until else None,
            "bridge_restarts": coordinator.process.restarts if coordinator.process else None,
            "online_for_presence": coordinator.presence_enabled,
            "availability_mode": coordinator.mode.mode,
            "subscriptions_paused": manager.paused,
        },
        "manager": {
            "config": async_redact_data(_config(coordinator), TO_REDACT),
            "stats": manager.stats().as_dict(),
            "contacts": contacts,
        },
        "recent_events": [
            async_redact_data(event, TO_REDACT)
            for event in status.recent_events
            if event.get("event") not in DROPPED_EVENTS
        ],
    }


def _config(coordinator: WhatsAppCoordinator) -> dict[str, Any]:
    config = coordinator.manager.config
    return {
        "batch_size": config.batch.batch_size,
        "batch_delay": config.batch.batch_delay,
        "subscription_delay": config.batch.subscription_delay,
        "max_per_minute": config.max_per_minute,
        "resubscribe_after": config.resubscribe_after,
        "health_check_interval": config.health_check_interval,
        "max_backoff": config.max_backoff,
    }
