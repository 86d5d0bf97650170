"""Set-up, presence, outages and restarts: real Home Assistant against the real bridge."""

from __future__ import annotations

from functools import partial
import logging
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    CONF_URL,
    EVENT_STATE_CHANGED,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.const import CONF_CA_CERT, DOMAIN
from custom_components.whatsapp_presence.launcher import session_dir

from .common import online_entity, state_of, subscribed
from .flows import sim_server
from .sim import SimBridge, run_until, simulator_config, tick, until
from .tls_certs import make_self_signed


async def test_setup_creates_a_device_per_contact(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Each tracked contact gets a device with its presence, online time and subscription."""
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    contacts = (await sim_bridge.contacts())[:3]
    for contact in contacts:
        device = device_registry.async_get_device_by_identifier(
            (DOMAIN, f"12025550100_{contact['phone']}"), entry.entry_id
        )
        assert device is not None
        assert device.name == contact["name"]
        entities = er.async_entries_for_device(entity_registry, device.id)
        assert sorted(str(e.translation_key) for e in entities) == [
            "last_seen",
            "last_session",
            "online",
            "online_today",
            "presence",
            "sessions_today",
        ]
        # The subscription state is there for whoever looks for it, off by default.
        subscription = entity_registry.async_get_entity_id(
            "sensor", DOMAIN, f"12025550100_{contact['phone']}_subscription"
        )
        assert subscription is not None
        registry_entry = entity_registry.async_get(subscription)
        assert registry_entry is not None
        assert registry_entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    # WhatsApp answers a subscription with the contact's current presence.
    online_ids = [online_entity(entity_registry, c["jid"]) for c in contacts]
    await run_until(hass, freezer, lambda: all(state_of(hass, e) == STATE_OFF for e in online_ids))


@pytest.mark.parametrize("sim_config", [simulator_config(unresponsive_fraction=1.0)])
async def test_silent_contact_is_unknown_not_offline(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Connected and subscribed, but WhatsApp never says anything: unknown, never 'off'."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    for contact in (await sim_bridge.contacts())[:3]:
        entity_id = online_entity(entity_registry, contact["jid"])
        assert state_of(hass, entity_id) == STATE_UNKNOWN
        last_seen_id = entity_id.replace("binary_sensor.", "sensor.")[:-7] + "_last_seen"
        assert state_of(hass, last_seen_id) == STATE_UNKNOWN


async def test_contacts_are_subscribed_at_the_preset_pace(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Subscriptions go out one by one, 200 ms apart, and reach the simulated network."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    stats = await sim_bridge.command("sim.stats")
    assert stats["subscribe_calls"] == 3


async def test_presence_reaches_the_entities(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A contact coming online in the simulator turns its sensor on; going offline sets last seen."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    contact = (await sim_bridge.contacts())[0]
    entity_id = online_entity(entity_registry, contact["jid"])

    await sim_bridge.command("sim.set_presence", jid=contact["jid"], online=True)
    await until(hass, lambda: state_of(hass, entity_id) == STATE_ON)

    await sim_bridge.command("sim.set_presence", jid=contact["jid"], online=False)
    await until(hass, lambda: state_of(hass, entity_id) == STATE_OFF)
    last_seen_id = entity_id.replace("binary_sensor.", "sensor.").replace("_online", "_last_seen")
    assert state_of(hass, last_seen_id) not in (STATE_UNKNOWN, STATE_UNAVAILABLE)


@pytest.mark.parametrize("tracked_count", [2])
async def test_disconnect_makes_entities_unavailable_after_grace(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Short outages are hidden; long ones make entities unavailable; reconnect re-subscribes.

    The outage is logged once each way, naming the entry by id: its title may be the number.
    """
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 2)
    contact = (await sim_bridge.contacts())[0]
    entity_id = online_entity(entity_registry, contact["jid"])

    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not coordinator.connected)
    await tick(hass, freezer, 30)
    assert state_of(hass, entity_id) != STATE_UNAVAILABLE  # within the 60 s grace
    await tick(hass, freezer, 31)
    assert state_of(hass, entity_id) == STATE_UNAVAILABLE

    calls_before = (await sim_bridge.command("sim.stats"))["subscribe_calls"]
    await sim_bridge.command("sim.connect")
    await until(hass, lambda: coordinator.connected)
    assert state_of(hass, entity_id) != STATE_UNAVAILABLE
    await subscribed(hass, freezer, coordinator.entry, 2)
    stats = await sim_bridge.command("sim.stats")
    assert stats["subscribe_calls"] == calls_before + 2  # everyone re-subscribed once
    entry_id = init_integration.entry_id
    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert f"WhatsApp account {entry_id} is disconnected" in shown
    assert f"WhatsApp account {entry_id} is connected again" in shown
    assert not [line for line in shown if init_integration.title in line]


async def test_short_outage_never_shows_unavailable(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A reconnect within the grace period writes no 'unavailable' state, not even briefly."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    written: list[str] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        if (new := event.data["new_state"]) is not None and new.state == STATE_UNAVAILABLE:
            written.append(new.entity_id)

    unsubscribe = hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not coordinator.connected)
    await tick(hass, freezer, 5)
    await sim_bridge.command("sim.connect")
    await until(hass, lambda: coordinator.connected)
    await subscribed(hass, freezer, coordinator.entry, 3)
    unsubscribe()
    assert written == []


async def test_refused_token_is_a_setup_error(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """A token the bridge refuses: not an endless retry; reauth asks for a new one
    (tests/test_self_healing.py follows that through)."""
    entry = mock_config_entry
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, data={**entry.data, "token": "wrong"})
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.reason is not None
    assert entry.reason.startswith("The WhatsApp bridge refused the token")


async def test_unreachable_bridge_is_retried(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """A bridge that is down at start-up: Home Assistant retries the set-up later."""
    await sim_bridge.server.stop()
    mock_config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_removing_the_entry_deletes_its_data(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    """Deleting the integration deletes its saved state; nothing of it stays on disk."""
    entry = init_integration
    assert await hass.config_entries.async_unload(entry.entry_id)
    key = f"{DOMAIN}.{entry.entry_id}"
    assert key in hass_storage
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage


async def test_removing_a_local_entry_deletes_its_session(hass: HomeAssistant) -> None:
    """A child bridge's session folder goes with the entry."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="12025550100",
        data={
            "mode": "simulator",
            "session_id": "abc123",
            "account_jid": "12025550100@s.whatsapp.net",
        },
    )
    entry.add_to_hass(hass)
    folder = session_dir(hass, "abc123")
    await hass.async_add_executor_job(partial(folder.mkdir, parents=True))
    await hass.async_add_executor_job((folder / "session.json").write_text, "{}")
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert not await hass.async_add_executor_job(folder.exists)


@pytest.mark.usefixtures("socket_enabled")
async def test_a_wss_bridge_is_verified_with_the_entry_ca(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, tmp_path: Path
) -> None:
    """The stored CA certificate is what the entry's client trusts for wss://."""
    cert = make_self_signed(tmp_path)
    async with sim_server(ssl_context=cert.server_context()) as bridge:
        entry = MockConfigEntry(
            domain=DOMAIN,
            title=mock_config_entry.title,
            unique_id=mock_config_entry.unique_id,
            data={**mock_config_entry.data, CONF_URL: bridge.url, CONF_CA_CERT: cert.cert_pem},
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        await until(hass, lambda: entry.runtime_data.connected)
        assert entry.runtime_data.client is not None
        assert entry.runtime_data.client.url.startswith("wss://")
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_bridge_that_cannot_tell_its_status_is_retried(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    sim_bridge: SimBridge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backend's status is of the wrong shape at the hello: the bridge refuses the hello
    rather than claim "not paired", so the set-up is retried and no reauth is started for an
    account that is still paired."""
    answer = await sim_bridge.backend.status()

    async def broken_status() -> dict[str, Any]:
        return {**answer, "paired": "yes"}

    monkeypatch.setattr(sim_bridge.backend, "status", broken_status)
    mock_config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
