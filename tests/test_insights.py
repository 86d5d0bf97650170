"""Online time, sessions, presence events and who is online, in a real Home Assistant.

Time is simulated (the freezer); the bridge is the real server with the simulator backend.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo
from itertools import pairwise

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNKNOWN
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.activity import MERGE_GAP

from .common import entity_of, set_presence, state_of, subscribed, switch
from .sim import SimBridge, run_until, tick, until


def minutes(hass: HomeAssistant, entity_id: str) -> float:
    """A duration sensor's state (shown in minutes)."""
    return float(state_of(hass, entity_id))


async def test_online_time_sessions_and_merged_gaps(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Two pieces a short gap apart are one session; a long gap starts another."""
    await subscribed(hass, freezer, init_integration)
    jid = (await sim_bridge.contacts())[0]["jid"]
    today = entity_of(entity_registry, "sensor", jid, "online_today")
    sessions = entity_of(entity_registry, "sensor", jid, "sessions_today")
    last = entity_of(entity_registry, "sensor", jid, "last_session")
    assert (minutes(hass, today), state_of(hass, sessions)) == (0.0, "0")
    assert state_of(hass, last) == STATE_UNKNOWN

    await set_presence(hass, sim_bridge, jid, True)
    await tick(hass, freezer, 600, step=60)
    await set_presence(hass, sim_bridge, jid, False)
    assert (minutes(hass, today), state_of(hass, sessions), minutes(hass, last)) == (
        10.0,
        "1",
        10.0,
    )
    await tick(hass, freezer, MERGE_GAP)  # WhatsApp splits the session: merged
    await set_presence(hass, sim_bridge, jid, True)
    await tick(hass, freezer, 240, step=60)
    await set_presence(hass, sim_bridge, jid, False)
    assert (minutes(hass, today), state_of(hass, sessions), minutes(hass, last)) == (
        15.0,
        "1",
        15.0,
    )
    await tick(hass, freezer, 600, step=60)  # a real break
    await set_presence(hass, sim_bridge, jid, True)
    await tick(hass, freezer, 120, step=60)
    await set_presence(hass, sim_bridge, jid, False)
    assert (minutes(hass, today), state_of(hass, sessions), minutes(hass, last)) == (
        17.0,
        "2",
        2.0,
    )


@pytest.mark.parametrize("tracked_count", [2])
async def test_reconnect_time_is_unknown_not_online(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """WhatsApp drops for five minutes mid-session: those minutes are not online time."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, init_integration)
    jid = (await sim_bridge.contacts())[0]["jid"]
    today = entity_of(entity_registry, "sensor", jid, "online_today")
    sessions = entity_of(entity_registry, "sensor", jid, "sessions_today")
    await set_presence(hass, sim_bridge, jid, True)
    await tick(hass, freezer, 600, step=60)

    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not coordinator.connected)
    await tick(hass, freezer, 300, step=30)
    assert minutes(hass, today) == 10.0
    await sim_bridge.command("sim.connect")
    await until(hass, lambda: coordinator.connected)
    # Until the renewed subscription answers, the contact's state is unknown.
    assert coordinator.activity.online_now() == []
    elapsed = await run_until(hass, freezer, lambda: coordinator.activity.online_now() == [jid])
    await tick(hass, freezer, 600 - elapsed, step=60)
    await set_presence(hass, sim_bridge, jid, False)
    assert (minutes(hass, today), state_of(hass, sessions)) == (20.0, "1")


async def test_restart_in_the_middle_of_a_session(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Home Assistant restarts while a contact is online: one session, downtime not counted."""
    entry = init_integration
    await subscribed(hass, freezer, entry)
    jid = (await sim_bridge.contacts())[0]["jid"]
    today = entity_of(entity_registry, "sensor", jid, "online_today")
    sessions = entity_of(entity_registry, "sensor", jid, "sessions_today")
    last = entity_of(entity_registry, "sensor", jid, "last_session")
    await set_presence(hass, sim_bridge, jid, True)
    await tick(hass, freezer, 1800, step=60)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await tick(hass, freezer, 120)  # Home Assistant is down
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    assert minutes(hass, today) == 30.0  # kept, not counting the downtime
    elapsed = await run_until(hass, freezer, lambda: coordinator.activity.online_now() == [jid])
    await tick(hass, freezer, 1200 - elapsed, step=60)
    await set_presence(hass, sim_bridge, jid, False)
    assert (minutes(hass, today), state_of(hass, sessions), minutes(hass, last)) == (
        50.0,
        "1",
        50.0,
    )


HOUR = timedelta(hours=1)
ZERO = timedelta(0)


class SpringForward(tzinfo):
    """A local zone whose clocks jump an hour forward at ``switch`` (UTC), as on DST days.

    Built around the frozen start time: Home Assistant's timers fire only while the frozen
    clock stays near the real one, so the zone moves to the clock, not the clock to a zone.
    """

    def __init__(self, standard: timedelta, switch: datetime) -> None:
        self.standard = standard
        self.switch = switch.replace(tzinfo=None)  # UTC

    def _summer(self, utc: datetime) -> bool:
        return utc >= self.switch

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return self.standard
        wall_switch = self.switch + self.standard  # 02:00 local jumps to 03:00
        return self.standard + (HOUR if dt.replace(tzinfo=None) >= wall_switch else ZERO)

    def dst(self, dt: datetime | None) -> timedelta:
        return self.utcoffset(dt) - self.standard

    def tzname(self, dt: datetime | None) -> str:
        return "SPRING"

    def fromutc(self, dt: datetime) -> datetime:
        utc = dt.replace(tzinfo=None)
        offset = self.standard + (HOUR if self._summer(utc) else ZERO)
        return (utc + offset).replace(tzinfo=self)


@pytest.fixture
def spring_forward(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> SpringForward:
    """Local time is 23:30 now; tomorrow has 23 hours (02:00 becomes 03:00).

    Set before the entry is set up (the hass fixture restores the zone afterwards).
    """
    now = dt_util.utcnow().replace(tzinfo=None)
    standard = (datetime.combine(now.date(), time(23, 30)) - now) % timedelta(days=1)
    if standard >= timedelta(hours=12):
        standard -= timedelta(days=1)
    tomorrow = (now + standard).date() + timedelta(days=1)
    switch = datetime.combine(tomorrow, time(2)) - standard
    zone = SpringForward(standard, switch)
    dt_util.set_default_time_zone(zone)
    return zone


@pytest.mark.parametrize("tracked_count", [1])
async def test_midnight_reset_in_local_time_across_dst(
    hass: HomeAssistant,
    spring_forward: SpringForward,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Online across local midnight: the day's figure is written before the reset, and the
    next reset comes a local day later (23 hours of real time on the day clocks go forward)."""
    await subscribed(hass, freezer, init_integration)
    jid = (await sim_bridge.contacts())[0]["jid"]
    today = entity_of(entity_registry, "sensor", jid, "online_today")
    sessions = entity_of(entity_registry, "sensor", jid, "sessions_today")
    written: list[tuple[datetime, str]] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        if event.data["entity_id"] == today and (new := event.data["new_state"]) is not None:
            written.append((dt_util.utcnow(), new.state))

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    online_at = dt_util.utcnow()
    local = dt_util.as_local(online_at)
    assert (local.hour, local.minute) == (23, 30)
    await set_presence(hass, sim_bridge, jid, True)
    midnight = dt_util.start_of_local_day(local.date() + timedelta(days=1))
    await tick(hass, freezer, (midnight - online_at).total_seconds() - 5, step=60)
    await tick(hass, freezer, 605)  # second by second, as the timers would fire
    # A second before midnight the whole evening is written (for the day's statistics);
    # at midnight the figure starts again.
    evening = ((midnight - online_at).total_seconds() - 1) / 60
    closing = [value for at, value in written if at == midnight - timedelta(seconds=1)]
    assert [float(value) for value in closing] == [pytest.approx(evening)]
    assert (midnight, "0.0") in written
    await set_presence(hass, sim_bridge, jid, False)
    assert (minutes(hass, today), state_of(hass, sessions)) == (10.0, "1")

    # The next local midnight is 23 hours later (02:00 became 03:00).
    next_midnight = dt_util.start_of_local_day(midnight.date() + timedelta(days=1))
    assert next_midnight.timestamp() - midnight.timestamp() == 23 * 3600
    await tick(hass, freezer, (next_midnight - dt_util.utcnow()).total_seconds() - 2, step=900)
    assert (minutes(hass, today), state_of(hass, sessions)) == (10.0, "1")
    await tick(hass, freezer, 2)
    assert (minutes(hass, today), state_of(hass, sessions)) == (0.0, "0")


async def test_presence_events_fire_on_real_changes_only(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Came online / went offline fire once each; a reconnect's answers fire nothing."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, init_integration)
    jid = (await sim_bridge.contacts())[0]["jid"]
    event_id = entity_of(entity_registry, "event", jid, "presence")
    fired: list[str] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if event.data["entity_id"] == event_id and new is not None and new.state != "unknown":
            fired.append(new.attributes["event_type"])

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    await set_presence(hass, sim_bridge, jid, True)
    await set_presence(hass, sim_bridge, jid, False)
    assert fired == ["came_online", "went_offline"]
    state = hass.states.get(event_id)
    assert state is not None
    assert state.attributes["event_types"] == ["came_online", "went_offline"]

    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not coordinator.connected)
    await sim_bridge.command("sim.connect")
    await until(hass, lambda: coordinator.connected)
    await subscribed(hass, freezer, init_integration)
    assert fired == ["came_online", "went_offline"]


async def test_contacts_online_now(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The account counts who is online, names in an attribute kept out of the recorder."""
    await subscribed(hass, freezer, init_integration)
    first, second, _ = (await sim_bridge.contacts())[:3]
    entity_id = "sensor.sam_demo_contacts_online_now"
    await tick(hass, freezer, 1)
    assert state_of(hass, entity_id) == "0"
    await set_presence(hass, sim_bridge, second["jid"], True)
    await set_presence(hass, sim_bridge, first["jid"], True)
    await tick(hass, freezer, 1)  # at most one write a second
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == "2"
    assert state.attributes["contacts"] == sorted([first["name"], second["name"]], key=str.casefold)
    entity = hass.data["entity_components"]["sensor"].get_entity(entity_id)
    assert entity is not None
    assert "contacts" in entity._unrecorded_attributes


@pytest.mark.parametrize("tracked_count", [10])
async def test_reconnect_writes_only_what_changed(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A reconnect where nobody's presence changed writes no contact state but the online
    time of contacts online at the disconnect (once each), and each account entity at most
    once per second."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, init_integration)
    await tick(hass, freezer, 2)
    online = set(coordinator.activity.online_now())
    # An online contact's online time stops counting at the disconnect: that figure changes.
    allowed = {entity_of(er.async_get(hass), "sensor", jid, "online_today") for jid in online}
    contact_writes: list[str] = []
    account_writes: dict[str, list[datetime]] = {}

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        entity_id = event.data["entity_id"]
        if entity_id.startswith(("sensor.sam_demo_", "binary_sensor.sam_demo_")):
            account_writes.setdefault(entity_id, []).append(dt_util.utcnow())
        else:
            contact_writes.append(entity_id)

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    reconnects = coordinator.manager.stats().reconnects_total
    began = dt_util.utcnow()
    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not coordinator.connected)
    await tick(hass, freezer, 5)
    await sim_bridge.command("sim.connect")
    await run_until(
        hass,
        freezer,
        lambda: (
            coordinator.manager.stats().reconnects_total > reconnects
            and coordinator.manager.stats().active == 10
        ),
    )
    await tick(hass, freezer, 2)
    assert set(contact_writes) <= allowed
    assert len(contact_writes) == len(set(contact_writes))  # at most once each
    assert account_writes  # the account's figures moved (queue, active subscriptions)
    seconds = (dt_util.utcnow() - began).total_seconds()
    for times in account_writes.values():
        assert len(times) <= seconds + 1
        # The test harness fires timers up to half a second early (async_fire_time_changed).
        gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
        assert all(gap >= 0.5 for gap in gaps), gaps


async def test_insights_enabled_only_while_the_entity_limit_leaves_room(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Presence entities of every contact come first; insights fill the room that is left,
    highest priority first, and the rest are created disabled (enable them by hand)."""
    # Room for the three contacts' presence entities and one contact's insights.
    monkeypatch.setattr(
        "custom_components.whatsapp_presence.coordinator.MAX_ENABLED_ENTITIES", 50 + 2 * 3 + 4
    )
    entry = mock_config_entry
    entry.add_to_hass(hass)
    first = list(entry.subentries.values())[-1]  # the last one, ranked first by priority
    hass.config_entries.async_update_subentry(entry, first, data={**first.data, "priority": 1})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    contacts = (await sim_bridge.contacts())[:3]

    def is_enabled(jid: str, platform: str, key: str) -> bool:
        registry_entry = entity_registry.async_get(entity_of(entity_registry, platform, jid, key))
        assert registry_entry is not None
        return not registry_entry.disabled

    enabled = {
        contact["jid"]: [
            is_enabled(contact["jid"], platform, key)
            for platform, key in (
                ("sensor", "online_today"),
                ("sensor", "sessions_today"),
                ("sensor", "last_session"),
                ("event", "presence"),
                ("binary_sensor", "online"),
                ("sensor", "last_seen"),
            )
        ]
        for contact in contacts
    }
    assert enabled == {
        first.data["jid"]: [True] * 6,
        **{
            contact["jid"]: [False, False, False, False, True, True]
            for contact in contacts
            if contact["jid"] != first.data["jid"]
        },
    }


async def test_switched_off_time_is_not_online_time(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """*Online for presence* off: contacts are unknown, so their online time stops counting."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, init_integration)
    jid = (await sim_bridge.contacts())[0]["jid"]
    today = entity_of(entity_registry, "sensor", jid, "online_today")
    await set_presence(hass, sim_bridge, jid, True)
    await tick(hass, freezer, 600, step=60)
    await switch(hass, False)
    assert coordinator.activity.online_now() == []
    await tick(hass, freezer, 1800, step=60)
    assert minutes(hass, today) == 10.0
    snapshot = coordinator.activity.snapshot(jid)
    assert snapshot is not None
    assert snapshot.total == 600.0
