"""Connection life cycle against the simulated network: restarts, logouts, bans, contacts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
import logging
from pathlib import Path
from types import MappingProxyType
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState, ConfigSubentry
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.const import (
    CONF_JID,
    CONF_PHONE,
    CONF_PRIORITY,
    DOMAIN,
    MODE_LOCAL,
    SUBENTRY_CONTACT,
    SUBENTRY_GROUP,
)
from custom_components.whatsapp_presence.coordinator import CLOCK_SKEW_ALLOWANCE
from custom_components.whatsapp_presence.launcher import bridge_args
from custom_components.whatsapp_presence.manager import ContactState

from .common import online_entity, state_of, subscribed
from .sim import SimBridge, run_until, simulator_config, tick, until


async def test_restart_keeps_last_seen_and_backoff(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Home Assistant restarts: last seen and a contact's backoff come back from storage."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, entry)
    first, second, _ = (await sim_bridge.contacts())[:3]

    # WhatsApp's own figure for a contact that was online half a minute ago.
    last_seen = int((await sim_bridge.command("sim.stats"))["time"]) - 30
    await sim_bridge.command(
        "sim.set_presence", jid=first["jid"], online=False, last_seen=last_seen
    )
    await until(
        hass,
        lambda: (
            (seen := coordinator.presence[first["jid"]].last_seen) is not None
            and seen.timestamp() == last_seen
        ),
    )

    # A reconnect re-subscribes everyone; the second contact's subscription fails.
    await sim_bridge.command("sim.fail_subscribe", jid=second["jid"], times=10)
    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not coordinator.connected)
    await sim_bridge.command("sim.connect")
    await run_until(
        hass,
        freezer,
        lambda: (
            (info := coordinator.manager.contact(second["jid"])) is not None
            and info.state is ContactState.BACKOFF
        ),
    )
    before = coordinator.manager.contact(second["jid"])
    assert before is not None
    assert before.fail_count == 1

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    restored = entry.runtime_data
    assert restored is not coordinator
    assert restored.presence[first["jid"]].last_seen.timestamp() == last_seen
    after = restored.manager.contact(second["jid"])
    assert after is not None
    assert after.fail_count == 1
    assert after.next_retry == before.next_retry
    assert after.state is ContactState.BACKOFF


async def test_logout_starts_reauth(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """WhatsApp unlinking the device starts the re-pairing flow; entities go unavailable."""
    coordinator = init_integration.runtime_data
    await sim_bridge.command("sim.logout")
    await until(hass, lambda: coordinator.status.logged_out)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert coordinator.connection_state == "logged_out"


async def test_a_disconnect_and_a_logout_without_their_details_still_arrive(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """A bridge of another version leaves out a disconnect's reason and sends a logout's of
    the wrong type: the account still shows disconnected, and reauth still starts."""
    coordinator = init_integration.runtime_data
    assert coordinator.connected
    sim_bridge.server.emit("disconnected", {})
    await until(hass, lambda: not coordinator.connected)
    sim_bridge.server.emit("logged_out", {"reason": 5})
    await until(hass, lambda: coordinator.status.logged_out)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert coordinator.connection_state == "logged_out"


@pytest.mark.parametrize("reason", ["account_locked", "account_banned"])
async def test_locked_or_banned_account_raises_a_repair(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    issue_registry: ir.IssueRegistry,
    reason: str,
) -> None:
    """Not a plain unlink: the repair says what happened and what to do before re-linking."""
    entry = init_integration
    coordinator = entry.runtime_data
    await sim_bridge.command("sim.logout", reason=reason, on_connect=True)
    await until(hass, lambda: coordinator.status.logged_out)
    issue = issue_registry.async_get_issue(DOMAIN, f"{reason}_{entry.entry_id}")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_key == reason
    other = "account_banned" if reason == "account_locked" else "account_locked"
    assert issue_registry.async_get_issue(DOMAIN, f"{other}_{entry.entry_id}") is None
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_plain_logout_raises_no_account_repair(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = init_integration
    await sim_bridge.command("sim.logout")
    await until(hass, lambda: entry.runtime_data.status.logged_out)
    assert [
        issue_id
        for (domain, issue_id) in issue_registry.issues
        if domain == DOMAIN and issue_id.startswith("account_")
    ] == []


async def test_temporary_ban_raises_a_repair_until_lifted(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A ban is a repair issue and a 'rate limited' problem; both clear on reconnect."""
    entry = init_integration
    coordinator = entry.runtime_data
    await sim_bridge.command("sim.ban", expires_in=600)
    issue_id = f"temporary_ban_{entry.entry_id}"
    await until(hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None)
    await tick(hass, freezer, 1)  # account entities write at most once a second
    assert coordinator.connection_state == "banned"
    assert state_of(hass, "binary_sensor.sam_demo_rate_limited") == STATE_ON
    assert state_of(hass, "binary_sensor.sam_demo_whatsapp_connection") == STATE_OFF

    # The pace stepped down one preset (medium is the default), live.
    assert entry.options["preset"] == "large"
    assert coordinator.manager.stats().preset == "large"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["pace"] == "Large"

    await sim_bridge.command("sim.unban")
    sim_bridge.advance(2)  # the simulated reconnect delay
    await until(hass, lambda: coordinator.connected)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    await tick(hass, freezer, 1)
    assert state_of(hass, "binary_sensor.sam_demo_rate_limited") == STATE_OFF


async def test_stream_replaced_raises_a_repair(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Another connection took the session over: the user is told, nothing fights it."""
    entry = init_integration
    await sim_bridge.command("sim.stream_replaced")
    issue_id = f"stream_replaced_{entry.entry_id}"
    await until(hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None)
    assert not entry.runtime_data.connected


async def test_contacts_come_and_go_without_reload(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A new contact subentry adds a device live; removing it removes device and subscription."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, entry)
    newcomer = (await sim_bridge.contacts())[5]
    subentry = ConfigSubentry(
        data=MappingProxyType(
            {CONF_JID: newcomer["jid"], CONF_PHONE: newcomer["phone"], CONF_PRIORITY: 1}
        ),
        subentry_type=SUBENTRY_CONTACT,
        title=newcomer["name"],
        unique_id=newcomer["jid"],
    )
    hass.config_entries.async_add_subentry(entry, subentry)
    await hass.async_block_till_done()
    assert entry.runtime_data is coordinator  # no reload
    entity_id = online_entity(entity_registry, newcomer["jid"])
    expected = STATE_ON if newcomer["online"] else STATE_OFF
    await run_until(hass, freezer, lambda: state_of(hass, entity_id) == expected, limit=5)
    identifier = (DOMAIN, f"12025550100_{newcomer['phone']}")
    assert device_registry.async_get_device_by_identifier(identifier, entry.entry_id)

    hass.config_entries.async_remove_subentry(entry, subentry.subentry_id)
    await hass.async_block_till_done()
    assert device_registry.async_get_device_by_identifier(identifier, entry.entry_id) is None
    assert hass.states.get(entity_id) is None
    assert coordinator.manager.contact(newcomer["jid"]) is None
    assert newcomer["jid"] not in coordinator.tracked


async def test_group_tracks_every_member(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A group subentry tracks each participant, with the group's devices and priority."""
    entry = init_integration
    coordinator = entry.runtime_data
    client = coordinator.client
    assert client is not None
    group = (await client.groups())[0]
    members = await client.group_participants(group.jid)
    subentry = ConfigSubentry(
        data=MappingProxyType({CONF_JID: group.jid, "name": group.name, CONF_PRIORITY: 3}),
        subentry_type=SUBENTRY_GROUP,
        title=group.name,
        unique_id=group.jid,
    )
    hass.config_entries.async_add_subentry(entry, subentry)
    member_jids = {m.jid for m in members} - {"12025550100@s.whatsapp.net"}
    await until(hass, lambda: member_jids <= coordinator.tracked.keys())
    await subscribed(hass, freezer, entry)
    own = {jid for jid, c in coordinator.tracked.items() if c.subentry_id == subentry.subentry_id}
    devices = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    in_group = [d for d in devices if d.config_subentry_id == subentry.subentry_id]
    assert len(in_group) == len(own)
    # A member tracked on its own keeps its own device and the higher priority.
    for jid in member_jids - own:
        assert coordinator.tracked[jid].subentry_id != subentry.subentry_id


@pytest.mark.parametrize("sim_config", [simulator_config(unresponsive_fraction=1.0)])
async def test_hours_of_silence_raise_a_repair(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Subscribed and connected, yet not one presence event for six hours: the user is told."""
    entry = init_integration
    await subscribed(hass, freezer, entry)
    issue_id = f"presence_silent_{entry.entry_id}"
    await tick(hass, freezer, 5 * 3600, step=20)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    await tick(hass, freezer, 2 * 3600, step=20)  # checked hourly
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    assert entry.runtime_data.connected  # the link stayed up through the hours


async def test_legacy_mark_online_off_starts_with_the_switch_off(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """An entry whose old option said 'do not mark online' keeps the device offline."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(mock_config_entry, options={"mark_online": False})
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await until(hass, lambda: mock_config_entry.runtime_data.connected)
    await hass.async_block_till_done()
    assert state_of(hass, "switch.sam_demo_online_for_presence") == STATE_OFF
    assert sim_bridge.backend.stats()["available"] is False
    assert sim_bridge.backend.stats()["subscribe_calls"] == 0


async def test_state_is_saved_while_presence_keeps_changing(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """A busy contact does not postpone the save forever: it happens within seconds."""
    entry = init_integration
    await subscribed(hass, freezer, entry)
    key = f"{DOMAIN}.{entry.entry_id}"
    hass_storage.pop(key, None)
    first = (await sim_bridge.contacts())[0]
    for second in range(15):
        await sim_bridge.command("sim.set_presence", jid=first["jid"], online=second % 2 == 0)
        await tick(hass, freezer, 2)
    saved = hass_storage[key]["data"]
    assert first["jid"] in saved["presence"]
    assert first["jid"] in {c["jid"] for c in saved["manager"]["contacts"]}


async def test_malformed_bridge_events_are_dropped(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broken presence event is logged and ignored; the next good one still lands."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, entry)
    first = (await sim_bridge.contacts())[0]
    sim_bridge.server.emit("presence", {"jid": first["jid"], "online": True, "at": "soon"})
    sim_bridge.server.emit("presence", {"jid": first["jid"], "online": True, "last_seen": []})
    await sim_bridge.command("sim.set_presence", jid=first["jid"], online=True)
    await until(hass, lambda: coordinator.presence[first["jid"]].online is True)
    assert "Ignored a malformed presence event" in caplog.text
    assert first["phone"] not in caplog.text
    assert coordinator.connected


async def test_contact_limit_is_enforced_and_reported(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    issue_registry: ir.IssueRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the entity cap a group is tracked only up to the limit, and the user is told."""
    entry = init_integration
    coordinator = entry.runtime_data
    monkeypatch.setattr("custom_components.whatsapp_presence.coordinator.MAX_TRACKED_CONTACTS", 4)
    assert coordinator.client is not None
    group = max(await coordinator.client.groups(), key=lambda g: g.participants)
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType({CONF_JID: group.jid, "name": group.name, CONF_PRIORITY: 3}),
            subentry_type=SUBENTRY_GROUP,
            title=group.name,
            unique_id=group.jid,
        ),
    )
    issue_id = f"too_many_contacts_{entry.entry_id}"
    await until(hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None)
    assert len(coordinator.tracked) == 4


async def test_last_seen_never_goes_back(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An older last seen (e.g. a subscription's answer after a restart) keeps the newer one."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, entry)
    first = (await sim_bridge.contacts())[0]
    presence = coordinator.presence[first["jid"]]

    async def offline_since(when: int) -> None:
        await sim_bridge.command("sim.set_presence", jid=first["jid"], online=True)
        await until(hass, lambda: presence.online is True)
        await sim_bridge.command("sim.set_presence", jid=first["jid"], online=False, last_seen=when)
        await until(hass, lambda: presence.online is False)

    await offline_since(1_790_000_000)
    newest = presence.last_seen
    assert newest is not None
    await offline_since(1_780_000_000)
    assert presence.last_seen == newest


def test_debug_logging_runs_the_bridge_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """Debug logging for the integration reaches the bridge and WhatsApp's own library."""
    package = "custom_components.whatsapp_presence"
    with caplog.at_level(logging.DEBUG, logger=package):
        assert bridge_args(MODE_LOCAL, Path("/data"))[-2:] == ["--log-level", "DEBUG"]
    with caplog.at_level(logging.INFO, logger=package):
        assert "--log-level" not in bridge_args(MODE_LOCAL, Path("/data"))


async def _spin(condition: Callable[[], bool], rounds: int = 2000) -> None:
    """Wait for loopback I/O without ``async_block_till_done`` (a held request would block it)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def test_a_disconnect_during_the_connect_round_trip_is_not_held(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While WhatsApp is told the device's availability after a connect (a bridge round
    trip), other changes of the account reach their listeners at once; a disconnect
    arriving meanwhile wins: the account does not show connected afterwards."""
    entry = init_integration
    coordinator = entry.runtime_data
    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not coordinator.connected)
    gate = asyncio.Event()
    asked: list[bool] = []
    set_available = sim_bridge.backend.set_available

    async def slow_set_available(available: bool) -> None:
        asked.append(available)
        await gate.wait()
        await set_available(available)

    monkeypatch.setattr(sim_bridge.backend, "set_available", slow_set_available)
    told: list[bool] = []
    entry.async_on_unload(
        coordinator.async_add_listener(lambda: told.append(coordinator.connected))
    )
    await sim_bridge.command("sim.connect")
    await _spin(lambda: asked == [True])
    reconnects = coordinator.manager.stats().reconnects_total
    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await _spin(lambda: bool(told))  # not held until the round trip ends
    assert not gate.is_set()
    gate.set()
    await hass.async_block_till_done()
    assert not coordinator.connected
    assert coordinator.connection_state != "connected"
    assert coordinator.manager.stats().reconnects_total == reconnects
    assert True not in told


async def test_presence_from_the_future_does_not_stick(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A bridge clock a day ahead dates presence now at the latest (the contact can still go
    stale); a last seen a year ahead is ignored, one within the clocks' allowance is kept."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, entry)
    await tick(hass, freezer, 120)
    jid = next(iter(coordinator.tracked))
    now = dt_util.utcnow()

    def presence(at: datetime, last_seen: datetime) -> dict[str, Any]:
        return {
            "jid": jid,
            "lid": None,
            "online": False,
            "last_seen": last_seen.timestamp(),
            "at": at.timestamp(),
        }

    heard: list[None] = []
    entry.async_on_unload(coordinator.async_add_contact_listener(jid, lambda: heard.append(None)))
    sim_bridge.server.emit("presence", presence(now + timedelta(days=1), now + timedelta(days=365)))
    await until(hass, lambda: len(heard) == 1)
    assert coordinator.status.last_presence == now
    info = coordinator.manager.contact(jid)
    assert info is not None
    assert info.last_event is not None
    assert info.last_event <= now.timestamp()
    kept = coordinator.presence[jid].last_seen
    assert kept is None or kept <= now

    near = now + CLOCK_SKEW_ALLOWANCE - timedelta(seconds=1)
    sim_bridge.server.emit("presence", presence(now, near))
    await until(hass, lambda: coordinator.presence[jid].last_seen == near)
    assert coordinator.presence[jid].last_seen_source == "whatsapp"


async def test_unload_waits_for_the_tasks_of_bridge_events(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The work a bridge event starts (a connect's availability and renewal) is the entry's:
    unloading while it waits on the bridge ends it, nothing outlives the entry."""
    entry = init_integration
    coordinator = entry.runtime_data
    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not coordinator.connected)
    gate = asyncio.Event()
    asked: list[bool] = []

    async def stuck_set_available(available: bool) -> None:
        asked.append(available)
        await gate.wait()

    monkeypatch.setattr(sim_bridge.backend, "set_available", stuck_set_available)
    await sim_bridge.command("sim.connect")
    await _spin(lambda: asked == [True])
    tasks = [task for task in asyncio.all_tasks() if entry.entry_id in task.get_name()]
    assert tasks
    assert not any(task.done() for task in tasks)
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert all(task.done() for task in tasks)
    assert not coordinator.connected
    gate.set()
