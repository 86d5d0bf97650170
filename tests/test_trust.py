"""What a contact's *Online* sensor shows after a lost link: the true state, or unknown.

A contact's last state is shown while its subscription is live, or within the trust gap
(60 s) of losing it; past that it may have changed unseen and is shown as unknown until
presence comes on the renewed subscription. The real bridge and simulator run on loopback;
Home Assistant's clock is frozen and moved by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import (
    EVENT_STATE_CHANGED,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.const import CONF_GRACE_PERIOD, DOMAIN
from custom_components.whatsapp_presence.coordinator import WhatsAppCoordinator

from .common import online_entity, set_presence, state_of, subscribed
from .sim import SimBridge, run_until, tick, until

TRUST_GAP = 60.0


@dataclass(frozen=True, slots=True)
class Written:
    """One state written for an *Online* sensor."""

    entity_id: str
    state: str
    at: datetime


class History:
    """Every state the *Online* sensors write, from now on."""

    def __init__(self, hass: HomeAssistant, entity_ids: list[str]) -> None:
        """Listen to state changes of ``entity_ids``."""
        self.written: list[Written] = []
        wanted = set(entity_ids)

        @callback
        def record(event: Event[EventStateChangedData]) -> None:
            new = event.data["new_state"]
            if new is not None and new.entity_id in wanted:
                self.written.append(Written(new.entity_id, new.state, dt_util.utcnow()))

        self.stop = hass.bus.async_listen(EVENT_STATE_CHANGED, record)

    def of(self, entity_id: str) -> list[str]:
        """The states written for one entity, in order."""
        return [w.state for w in self.written if w.entity_id == entity_id]


async def disconnect(
    hass: HomeAssistant, sim_bridge: SimBridge, c: WhatsAppCoordinator
) -> datetime:
    """WhatsApp drops the link (no reconnect until asked); returns when."""
    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not c.connected)
    return dt_util.utcnow()


async def reconnect(hass: HomeAssistant, sim_bridge: SimBridge, c: WhatsAppCoordinator) -> None:
    """WhatsApp is back."""
    await sim_bridge.command("sim.connect")
    await until(hass, lambda: c.connected)


def truth(contacts: list[dict[str, object]], jid: str) -> str:
    """The simulated network's state of a contact, as the sensor shows it."""
    online = next(contact["online"] for contact in contacts if contact["jid"] == jid)
    return STATE_ON if online else STATE_OFF


@pytest.mark.parametrize("tracked_count", [3])
async def test_renewed_within_the_trust_gap_shows_no_unknown(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A short outage, every contact renewed at once: no unknown in any history."""
    c = init_integration.runtime_data
    await subscribed(hass, freezer, c.entry)
    jids = list(c.tracked)
    await set_presence(hass, sim_bridge, jids[0], True)
    entities = [online_entity(entity_registry, jid) for jid in jids]
    history = History(hass, entities)

    await disconnect(hass, sim_bridge, c)
    await tick(hass, freezer, 5)
    # Missed while the link is down: the renewed subscription's answer tells.
    await sim_bridge.command("sim.set_presence", jid=jids[0], online=False)
    await sim_bridge.command("sim.set_presence", jid=jids[1], online=True)
    await reconnect(hass, sim_bridge, c)
    await subscribed(hass, freezer, c.entry)
    await tick(hass, freezer, 2 * TRUST_GAP, step=5)  # past the trust gap's timer
    history.stop()

    contacts = await sim_bridge.contacts()
    for jid, entity_id in zip(jids, entities, strict=True):
        assert STATE_UNKNOWN not in history.of(entity_id)
        assert STATE_UNAVAILABLE not in history.of(entity_id)
        assert state_of(hass, entity_id) == truth(contacts, jid)
    assert history.of(entities[0]) == [STATE_OFF]
    assert history.of(entities[1]) == [STATE_ON]
    assert history.of(entities[2]) == []


@pytest.mark.parametrize("tracked_count", [2])
async def test_renewed_late_shows_unknown_then_the_true_state(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """One renewal every two minutes: the contact renewed first keeps its state throughout;
    the one renewed late is unknown from the trust gap's end until its answer comes."""
    c = init_integration.runtime_data
    await subscribed(hass, freezer, c.entry)
    await hass.services.async_call(
        DOMAIN,
        "set_batch_config",
        {"config_entry_id": init_integration.entry_id, "batch_size": 1, "batch_delay": 120},
        blocking=True,
    )
    jids = list(c.tracked)
    for jid in jids:
        await set_presence(hass, sim_bridge, jid, True)
    await tick(hass, freezer, 130, step=10)  # the first pass's calls are a cycle old
    entities = {jid: online_entity(entity_registry, jid) for jid in jids}
    history = History(hass, list(entities.values()))

    down = await disconnect(hass, sim_bridge, c)
    await tick(hass, freezer, 5)
    for jid in jids:
        await sim_bridge.command("sim.set_presence", jid=jid, online=False)
    await reconnect(hass, sim_bridge, c)
    await subscribed(hass, freezer, c.entry)
    history.stop()

    renewed: dict[str, float] = {}
    for jid in jids:
        info = c.manager.contact(jid)
        assert info is not None
        assert info.last_subscribed is not None
        renewed[jid] = info.last_subscribed - down.timestamp()
    early, late = sorted(jids, key=renewed.__getitem__)
    assert renewed[early] <= TRUST_GAP
    assert renewed[late] > TRUST_GAP
    contacts = await sim_bridge.contacts()
    assert history.of(entities[early]) == [STATE_OFF]
    assert history.of(entities[late]) == [STATE_UNKNOWN, STATE_OFF]
    unknown_at = next(w.at for w in history.written if w.state == STATE_UNKNOWN)
    # Written by the trust gap's timer, not at the next presence or renewal.
    assert TRUST_GAP < (unknown_at - down).total_seconds() <= TRUST_GAP + 1
    for jid, entity_id in entities.items():
        assert state_of(hass, entity_id) == truth(contacts, jid)


@pytest.mark.parametrize("tracked_count", [2])
async def test_link_down_past_the_trust_gap_shows_unknown(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Down longer than the trust gap (a grace period of 10 minutes keeps entities available):
    unknown at the gap's end, nothing counted or exported meanwhile, the truth once renewed."""
    entry = init_integration
    c = entry.runtime_data
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_GRACE_PERIOD: 600})
    await hass.async_block_till_done()
    await subscribed(hass, freezer, c.entry)
    jids = list(c.tracked)
    await set_presence(hass, sim_bridge, jids[0], True)
    await set_presence(hass, sim_bridge, jids[1], False)
    entities = [online_entity(entity_registry, jid) for jid in jids]

    await disconnect(hass, sim_bridge, c)
    await tick(hass, freezer, TRUST_GAP - 1)
    assert [state_of(hass, e) for e in entities] == [STATE_ON, STATE_OFF]
    await tick(hass, freezer, 2)
    assert [state_of(hass, e) for e in entities] == [STATE_UNKNOWN, STATE_UNKNOWN]
    assert [c.shown_online(jid) for jid in jids] == [None, None]  # no Prometheus gauge
    assert c.activity.online_now() == []
    await sim_bridge.command("sim.set_presence", jid=jids[1], online=True)
    await tick(hass, freezer, 120, step=10)
    assert [state_of(hass, e) for e in entities] == [STATE_UNKNOWN, STATE_UNKNOWN]

    await reconnect(hass, sim_bridge, c)
    await subscribed(hass, freezer, c.entry)
    await run_until(hass, freezer, lambda: all(c.shown_online(jid) is not None for jid in jids))
    contacts = await sim_bridge.contacts()
    assert [state_of(hass, e) for e in entities] == [STATE_ON, STATE_ON]
    assert [state_of(hass, e) for e in entities] == [truth(contacts, jid) for jid in jids]
    assert sorted(c.activity.online_now()) == sorted(jids)
