"""The switch 'Online for presence' and the availability modes, in simulated time.

Real Home Assistant against the real bridge and its simulator: while the switch is off the
simulated WhatsApp delivers nothing, so whatever the entities show comes from the integration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.availability import in_window
from custom_components.whatsapp_presence.bridge.simulator import SimulatorConfig
from custom_components.whatsapp_presence.const import DOMAIN

from .common import SWITCH, known, online_entity, state_of, switch
from .sim import SimBridge, simulator_config, tick, until


def attributes(hass: HomeAssistant, entity_id: str) -> Mapping[str, Any]:
    """The attributes of an entity that must exist."""
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.attributes


def calls(sim_bridge: SimBridge) -> int:
    """Subscribe calls the simulated WhatsApp received."""
    return int(sim_bridge.backend.stats()["subscribe_calls"])


def contact_states(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, entry: Any
) -> list[str]:
    """The online sensors' states, in tracking order."""
    return [
        state_of(hass, online_entity(entity_registry, jid)) for jid in entry.runtime_data.tracked
    ]


async def test_switch_off_makes_contacts_unknown_and_spends_nothing(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
) -> None:
    """Off: unknown (not off), device unavailable, no calls for hours; on: renewed, paced."""
    entry = init_integration
    await known(hass, freezer, entry)
    assert state_of(hass, SWITCH) == STATE_ON
    first = next(iter(entry.runtime_data.tracked))
    await sim_bridge.command("sim.set_presence", jid=first, online=True)
    await until(hass, lambda: entry.runtime_data.presence[first].online is True)
    seen_before = entry.runtime_data.presence[first].last_seen

    await switch(hass, False)
    assert state_of(hass, SWITCH) == STATE_OFF
    assert sim_bridge.backend.stats()["available"] is False
    assert contact_states(hass, entity_registry, entry) == [STATE_UNKNOWN] * 3
    spent = calls(sim_bridge)
    await sim_bridge.command("sim.set_presence", jid=first, online=False)  # not delivered
    await tick(hass, freezer, 3 * 3600, step=60)  # health checks run: nothing to renew
    assert calls(sim_bridge) == spent
    assert contact_states(hass, entity_registry, entry) == [STATE_UNKNOWN] * 3
    # No offline period was invented: last seen is still when we saw the contact online.
    assert entry.runtime_data.presence[first].last_seen == seen_before

    await switch(hass, True)
    assert sim_bridge.backend.stats()["available"] is True
    await known(hass, freezer, entry)
    assert calls(sim_bridge) == spent + 3  # the default model resends nothing: all renewed
    assert STATE_UNKNOWN not in contact_states(hass, entity_registry, entry)
    assert entry.runtime_data.presence[first].online is False


@pytest.mark.parametrize("last", [True, False])
async def test_quick_toggles_end_in_the_last_state(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    last: bool,
) -> None:
    """Toggles overtaking each other on the wire: the device and the manager end as asked."""
    coordinator = init_integration.runtime_data
    await known(hass, freezer, init_integration)
    wanted = [False, True, False, True, last]
    await asyncio.gather(*(coordinator.async_set_presence_enabled(on) for on in wanted))
    await hass.async_block_till_done()
    assert coordinator.presence_enabled is last
    assert coordinator.manager.paused is not last
    assert sim_bridge.backend.stats()["available"] is last
    assert state_of(hass, SWITCH) == (STATE_ON if last else STATE_OFF)


@pytest.mark.parametrize(
    ("sim_config", "renewed"),
    [(simulator_config(on_available="resend"), 0), (simulator_config(on_available="changes"), 3)],
)
async def test_resume_renews_only_contacts_whatsapp_did_not_resend(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    sim_config: SimulatorConfig,
    renewed: int,
    freezer: FrozenDateTimeFactory,
) -> None:
    """If WhatsApp resends everyone's presence on availability, no call is spent on resume."""
    entry = init_integration
    await known(hass, freezer, entry)
    await switch(hass, False)
    spent = calls(sim_bridge)
    await switch(hass, True)
    await known(hass, freezer, entry)
    await tick(hass, freezer, 60)
    assert calls(sim_bridge) == spent + renewed


async def test_reconnect_while_off_stays_off(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
) -> None:
    """A reconnect while off neither marks the device online nor subscribes anyone."""
    entry = init_integration
    await known(hass, freezer, entry)
    await switch(hass, False)
    spent = calls(sim_bridge)
    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not entry.runtime_data.connected)
    await sim_bridge.command("sim.connect")
    await until(hass, lambda: entry.runtime_data.connected)
    await tick(hass, freezer, 600, step=10)
    assert sim_bridge.backend.stats()["available"] is False
    assert calls(sim_bridge) == spent
    assert contact_states(hass, entity_registry, entry) == [STATE_UNKNOWN] * 3
    await switch(hass, True)
    await known(hass, freezer, entry)
    assert calls(sim_bridge) == spent + 3


async def test_restart_while_off_stays_off(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
    hass_storage: dict[str, Any],
) -> None:
    """The switch's state is kept across a restart of Home Assistant (unload, set up again)."""
    entry = init_integration
    await known(hass, freezer, entry)
    await switch(hass, False)
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert hass_storage[f"{DOMAIN}.{entry.entry_id}"]["data"]["presence_enabled"] is False
    spent = calls(sim_bridge)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await until(hass, lambda: entry.runtime_data.connected)
    await tick(hass, freezer, 300, step=10)
    assert state_of(hass, SWITCH) == STATE_OFF
    assert sim_bridge.backend.stats()["available"] is False
    assert calls(sim_bridge) == spent
    assert contact_states(hass, entity_registry, entry) == [STATE_UNKNOWN] * 3
    await switch(hass, True)
    await known(hass, freezer, entry)
    assert calls(sim_bridge) == spent + 3


async def test_schedule_helper_drives_the_switch(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Schedule mode follows the helper; a manual change holds until the helper changes."""
    entry = init_integration
    hass.states.async_set("schedule.evenings", STATE_OFF)
    hass.config_entries.async_update_entry(
        entry,
        options={
            **entry.options,
            "availability": "schedule",
            "schedule_entity": "schedule.evenings",
        },
    )
    await until(hass, lambda: sim_bridge.backend.stats()["available"] is False)
    assert state_of(hass, SWITCH) == STATE_OFF
    assert attributes(hass, SWITCH)["mode"] == "schedule"
    hass.states.async_set("schedule.evenings", STATE_ON)
    await until(hass, lambda: sim_bridge.backend.stats()["available"] is True)
    await known(hass, freezer, entry)
    await switch(hass, False)  # manual override
    hass.states.async_set("schedule.evenings", STATE_ON, {"next_event": "later"})
    await hass.async_block_till_done()
    assert state_of(hass, SWITCH) == STATE_OFF  # not a change of the schedule: still off
    hass.states.async_set("schedule.evenings", STATE_OFF)
    hass.states.async_set("schedule.evenings", STATE_ON)
    await until(hass, lambda: sim_bridge.backend.stats()["available"] is True)
    assert state_of(hass, SWITCH) == STATE_ON


async def test_time_window_drives_the_switch(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Schedule mode without a helper: online from the window's start to its end."""
    entry = init_integration
    now = dt_util.as_local(dt_util.utcnow()).replace(microsecond=0)
    start, end = now + timedelta(minutes=2), now + timedelta(minutes=4)
    hass.config_entries.async_update_entry(
        entry,
        options={
            **entry.options,
            "availability": "schedule",
            "window_start": start.strftime("%H:%M:%S"),
            "window_end": end.strftime("%H:%M:%S"),
        },
    )
    await until(hass, lambda: sim_bridge.backend.stats()["available"] is False)
    # The window's edges are whole seconds, now is not, and async_fire_time_changed fires up
    # to 0.5 s ahead: a margin of 1.5 s either side of each edge.
    await tick(hass, freezer, 118)
    assert state_of(hass, SWITCH) == STATE_OFF
    await tick(hass, freezer, 3)
    assert state_of(hass, SWITCH) == STATE_ON
    assert sim_bridge.backend.stats()["available"] is True
    await tick(hass, freezer, 117)
    assert state_of(hass, SWITCH) == STATE_ON
    await tick(hass, freezer, 3)
    assert state_of(hass, SWITCH) == STATE_OFF
    assert sim_bridge.backend.stats()["available"] is False


async def test_sampling_marks_presence_as_sampled(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
) -> None:
    """30 s online every 5 min: unknown between samples, last seen marked as sampled."""
    entry = init_integration
    coordinator = entry.runtime_data
    await known(hass, freezer, entry)
    hass.config_entries.async_update_entry(
        entry,
        options={
            **entry.options,
            "availability": "sampling",
            "sample_seconds": 30,
            "sample_every": 5,
        },
    )
    await hass.async_block_till_done()
    assert state_of(hass, SWITCH) == STATE_ON  # a sample starts at once
    first = next(iter(coordinator.tracked))
    entity = online_entity(entity_registry, first)
    assert attributes(hass, entity)["sampled"] is True
    await sim_bridge.command("sim.set_presence", jid=first, online=True)
    await until(hass, lambda: coordinator.presence[first].online is True)
    assert coordinator.presence[first].last_seen_source == "sampled"
    await tick(hass, freezer, 31)
    assert state_of(hass, SWITCH) == STATE_OFF
    assert sim_bridge.backend.stats()["available"] is False
    assert state_of(hass, entity) == STATE_UNKNOWN
    await tick(hass, freezer, 270)
    assert state_of(hass, SWITCH) == STATE_ON
    await known(hass, freezer, entry)
    assert state_of(hass, entity) == STATE_ON
    await tick(hass, freezer, 40)
    assert state_of(hass, SWITCH) == STATE_OFF
    # Back to always: on, and nothing is marked as sampled any more.
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, "availability": "always"}
    )
    await until(hass, lambda: sim_bridge.backend.stats()["available"] is True)
    assert attributes(hass, entity)["sampled"] is False


@pytest.mark.parametrize(
    ("now", "start", "end", "inside"),
    [
        ("12:00", "08:00", "22:00", True),
        ("22:00", "08:00", "22:00", False),  # the end is excluded
        ("07:59", "08:00", "22:00", False),
        ("23:30", "22:00", "06:00", True),  # across midnight
        ("05:59", "22:00", "06:00", True),
        ("12:00", "22:00", "06:00", False),
    ],
)
def test_time_window(now: str, start: str, end: str, inside: bool) -> None:
    """A window is [start, end), and may span midnight."""
    times = [dt_util.parse_time(value) for value in (now, start, end)]
    assert None not in times
    assert in_window(*times) is inside  # type: ignore[arg-type]
