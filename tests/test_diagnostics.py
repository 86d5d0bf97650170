"""Diagnostics say what a maintainer needs and no phone number, name or token."""

from __future__ import annotations

import hashlib
import json

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.diagnostics import async_get_config_entry_diagnostics

from .common import subscribed
from .sim import TOKEN, SimBridge, until


async def test_diagnostics_are_redacted(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Subscription states are there; numbers, names, the URL and the token are not."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    text = json.dumps(diagnostics, default=str)
    for contact in (await sim_bridge.contacts())[:3]:
        assert contact["phone"] not in text
        assert contact["name"] not in text
    assert "12025550100" not in text
    assert "Sam Demo" not in text
    assert TOKEN not in text
    assert sim_bridge.url not in text
    assert diagnostics["connection"]["state"] == "connected"
    assert diagnostics["connection"]["online_for_presence"] is True
    assert diagnostics["connection"]["availability_mode"] == "always"
    assert diagnostics["connection"]["subscriptions_paused"] is False
    assert diagnostics["manager"]["stats"]["active"] == 3
    assert {c["state"] for c in diagnostics["manager"]["contacts"]} == {"subscribed"}


async def test_contact_aliases_carry_nothing_of_the_jid(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Aliases are plain sequence numbers: no hash of a JID to reverse by trying numbers."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    first = await async_get_config_entry_diagnostics(hass, entry)
    second = await async_get_config_entry_diagnostics(hass, entry)
    aliases = [c["contact"] for c in first["manager"]["contacts"]]
    assert aliases == ["contact-1", "contact-2", "contact-3"]
    assert [c["contact"] for c in second["manager"]["contacts"]] == aliases
    text = json.dumps(first, default=str)
    for jid in coordinator.tracked:
        for algorithm in ("sha256", "sha1", "blake2b"):
            assert hashlib.new(algorithm, jid.encode()).hexdigest()[:8] not in text


async def test_recent_events_hold_no_pairing_code(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """A QR code links a device to the account: never kept; other codes are redacted."""
    entry = init_integration
    coordinator = entry.runtime_data
    sim_bridge.server.emit("qr", {"code": "2@secret-qr-payload", "expires_in": 60})
    sim_bridge.server.emit("temporary_ban", {"code": 1234567, "expires_in": 60})
    await until(
        hass,
        lambda: any(e["event"] == "temporary_ban" for e in coordinator.status.recent_events),
    )
    events = (await async_get_config_entry_diagnostics(hass, entry))["recent_events"]
    assert [e["event"] for e in events][-1:] == ["temporary_ban"]
    assert all(e["event"] != "qr" for e in events)
    assert events[-1]["code"] == "**REDACTED**"
    text = json.dumps(events, default=str)
    assert "secret-qr-payload" not in text
    assert "1234567" not in text
