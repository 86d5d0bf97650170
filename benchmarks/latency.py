"""Presence latency: simulator event to Home Assistant state change, against a direct baseline.

One process, one event loop, real time: a real Home Assistant core (benchmarks/harness.py),
the real bridge server with the simulator backend on loopback, and this integration set up
against it as a remote-mode entry tracking ``CONTACTS`` contacts. Each event is a
``sim.set_presence`` that flips one contact's online state: the simulator emits it, the server
frames it onto the WebSocket, the integration's client decodes it, the coordinator updates
the contact and its *online* binary sensor writes its state. The clock stops in a
``state_changed`` listener for that sensor.

The baseline, in the same process and run: the same number of ``hass.states.async_set`` calls
flipping ``CONTACTS`` plain entities at the same rate, timed the same way (call to
``state_changed``). Events are sent open-loop on a fixed schedule (late ones go at once, none
is skipped). Ratio = integration / baseline, per percentile.

Run: ``scripts/run python benchmarks/latency.py`` (about half a minute).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
import gc
from pathlib import Path
import sys
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util import dt as dt_util

from benchmarks.harness import TOKEN, contact_entity_id, make_entry, percentile, running_hass
from benchmarks.report import measured_table
from custom_components.whatsapp_presence.bridge.client import BridgeClient
from custom_components.whatsapp_presence.bridge.protocol import BridgeEvent, Presence
from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend, SimulatorConfig

CONTACTS = 100
RATES = ((10, 100), (100, 1_000), (1_000, 3_000))  # (events per second, events)
TARGET_P99_MS_AT_100 = 10.0
TARGET_RATIO = 3.0


class Run:
    """What one driven series produced."""

    def __init__(self) -> None:
        self.online: list[float] = []  # send -> the online entity's state_changed
        self.full: list[float] = []  # send -> every entity of the contact changed
        self.partial = 0  # events after which a secondary entity did not change
        self.held = 0  # events held back until the contact's previous one had landed
        self.rate = 0.0  # achieved send rate


async def drive(
    hass: HomeAssistant,
    groups: Sequence[tuple[str, ...]],
    fire: Callable[[int, bool], Any],
    rate: float,
    count: int,
) -> Run:
    """Send ``count`` flips at ``rate``/s, round robin over ``groups`` (online entity first).

    Times, per event, the ``state_changed`` of the online entity and of the last of the
    group's entities to change.
    """
    run = Run()
    started: dict[int, float] = {}
    waiting: dict[int, set[str]] = {}
    owner = {entity_id: index for index, group in enumerate(groups) for entity_id in group}

    @callback
    def on_change(event: Event[EventStateChangedData]) -> None:
        now = time.perf_counter()
        entity_id = event.data["entity_id"]
        index = owner[entity_id]
        left = waiting.get(index)
        if left is None or entity_id not in left:
            return
        left.discard(entity_id)
        if entity_id == groups[index][0]:
            run.online.append(now - started[index])
        if not left:
            run.full.append(now - started[index])
            del waiting[index]

    unsub = hass.bus.async_listen(
        EVENT_STATE_CHANGED,
        on_change,
        event_filter=callback(lambda data: data["entity_id"] in owner),
    )
    # Start from what each entity shows (a simulated contact may begin online), so every
    # flip is a real change.
    online = [(state := hass.states.get(g[0])) is not None and state.state == "on" for g in groups]
    loop = asyncio.get_running_loop()
    begin = loop.time()
    for i in range(count):
        due = begin + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        index = i % len(groups)
        if index in waiting and groups[index][0] in waiting[index]:
            # The contact's previous event is still on its way (the integration is behind the
            # schedule): sending now would time the wrong state change, so this one waits.
            run.held += 1
            for _ in range(5000):
                if index not in waiting or groups[index][0] not in waiting[index]:
                    break
                await asyncio.sleep(0.001)
            else:
                raise RuntimeError("an event did not reach its state change within 5 s")
        if index in waiting:
            run.partial += 1
        online[index] = not online[index]
        waiting[index] = set(groups[index])
        started[index] = time.perf_counter()
        await fire(index, online[index])
    run.rate = count / (loop.time() - begin)
    for _ in range(500):  # let the last events land (at most ~5 s)
        if not waiting:
            break
        await asyncio.sleep(0.01)
    unsub()
    if any(groups[index][0] in left for index, left in waiting.items()):
        raise RuntimeError("events never reached a state change of the online entity")
    run.partial += len(waiting)
    return run


async def reconnect_writes(
    hass: HomeAssistant,
    backend: SimulatorBackend,
    coordinator: Any,
    ours: Sequence[tuple[str, ...]],
) -> None:
    """State writes one WhatsApp reconnect causes (each is a recorder row in a real install).

    WhatsApp forgets subscriptions on reconnect, so every contact is subscribed again; count
    the ``state_changed`` events of contact entities and of the account's entities meanwhile.
    """
    online_ids = {group[0] for group in ours}
    # Every enabled entity of the contacts' devices (presence, online time, events, ...).
    registry = er.async_get(hass)
    devices = {registry.async_get(group[0]).device_id for group in ours}  # type: ignore[union-attr]
    contact_ids = {
        entry.entity_id
        for entry in registry.entities.values()
        if entry.device_id in devices and entry.disabled_by is None
    }
    counts = {"contact": 0, "online": 0, "account": 0, "attributes_only": 0}

    @callback
    def on_change(event: Event[EventStateChangedData]) -> None:
        entity_id = event.data["entity_id"]
        if entity_id in contact_ids:
            counts["contact"] += 1
            counts["online"] += entity_id in online_ids
            old, new = event.data["old_state"], event.data["new_state"]
            if old is not None and new is not None and old.state == new.state:
                counts["attributes_only"] += 1
        elif entity_id.startswith(("sensor.benchmark_", "binary_sensor.benchmark_")):
            counts["account"] += 1

    unsub = hass.bus.async_listen(EVENT_STATE_CHANGED, on_change)
    reconnects = coordinator.manager.stats().reconnects_total
    await backend.command("sim.disconnect", {"reconnect_after": 0.5})
    for _ in range(3000):
        await asyncio.sleep(0.01)
        stats = coordinator.manager.stats()
        if stats.reconnects_total > reconnects and stats.active == len(ours):
            break
    else:
        raise RuntimeError("not all contacts subscribed again within 30 s of a reconnect")
    await asyncio.sleep(0.2)
    await hass.async_block_till_done()
    unsub()
    n = len(ours)
    print(
        f"reconnect_state_writes_per_contact {counts['contact'] / n:.2f} "
        f"(online sensor {counts['online'] / n:.2f}, of all contact writes "
        f"{counts['attributes_only'] / n:.2f} change attributes only; account entities "
        f"{counts['account'] / n:.2f} per contact; {n} contacts, one WhatsApp reconnect)"
    )


async def transport(
    hass: HomeAssistant,
    backend: SimulatorBackend,
    url: str,
    jids: list[str],
    *,
    rate: float,
    count: int,
) -> list[float]:
    """Latencies from ``sim.set_presence`` to a bare client's ``on_event`` callback."""
    started: dict[str, float] = {}
    hops: list[float] = []

    def on_event(event: BridgeEvent) -> None:
        if isinstance(event, Presence) and (t := started.pop(event.jid, None)) is not None:
            hops.append(time.perf_counter() - t)

    client = BridgeClient(
        url, TOKEN, session=async_get_clientsession(hass), on_event=on_event, heartbeat=None
    )
    await client.connect()
    loop = asyncio.get_running_loop()
    online = dict.fromkeys(jids, False)
    begin = loop.time()
    for i in range(count):
        delay = begin + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        jid = jids[i % len(jids)]
        online[jid] = not online[jid]
        started[jid] = time.perf_counter()
        await backend.command("sim.set_presence", {"jid": jid, "online": online[jid]})
    for _ in range(500):
        if not started:
            break
        await asyncio.sleep(0.01)
    await client.close()
    if started:
        raise RuntimeError(f"{len(started)} events never reached the bare client")
    return hops


async def main() -> None:
    """Set up, measure each rate through the integration and the baseline, print figures."""
    wall = time.perf_counter()
    sim_config = SimulatorConfig(
        seed=11,
        contacts=CONTACTS,
        groups=0,
        paired=True,
        manual_clock=False,  # real time: "at" and last seen move as they would
        presence_churn=0.0,
        disconnect_rate=0.0,
        connect_delay=0.0,
        presence_latency=0.0,
        hidden_last_seen_fraction=0.0,
        unresponsive_fraction=0.0,
        lid_fraction=0.0,
        sub_ceiling=0,
        query_limit=0,
    )
    server = BridgeServer(lambda emit: SimulatorBackend(emit, sim_config), TOKEN, heartbeat=None)
    url = await server.start()
    backend = server.backend
    assert isinstance(backend, SimulatorBackend)
    contacts = await backend.command("sim.contacts", {})
    async with running_hass() as hass:
        entry = make_entry(url, TOKEN, contacts)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data
        for _ in range(3000):
            if coordinator.manager.stats().active == CONTACTS:
                break
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError("contacts were not all subscribed within 30 s")
        jids = [c["jid"] for c in contacts]
        ours = [
            (
                contact_entity_id(hass, jid, "binary_sensor", "online"),
                contact_entity_id(hass, jid, "sensor", "last_seen"),
            )
            for jid in jids
        ]
        plain = [
            (f"binary_sensor.latency_baseline_{i}", f"sensor.latency_baseline_{i}_last_seen")
            for i in range(CONTACTS)
        ]
        for online_id, last_seen_id in plain:
            hass.states.async_set(online_id, "off")
            hass.states.async_set(last_seen_id, "unknown")

        async def via_integration(index: int, online: bool) -> Any:
            return await backend.command("sim.set_presence", {"jid": jids[index], "online": online})

        async def direct_online(index: int, online: bool) -> None:
            hass.states.async_set(plain[index][0], "on" if online else "off")

        async def direct_both(index: int, online: bool) -> None:
            now = dt_util.utcnow().isoformat()
            hass.states.async_set(plain[index][1], now, {"source": "observed"})
            hass.states.async_set(plain[index][0], "on" if online else "off")

        baselines: dict[float, list[float]] = {}
        integrated: dict[float, list[float]] = {}
        two_writes: dict[float, list[float]] = {}
        integrated_full: dict[float, list[float]] = {}
        gc.collect()
        for rate, count in RATES:
            # Interleaved so drifting machine load hits all three alike.
            one = await drive(hass, [g[:1] for g in plain], direct_online, rate, count)
            two = await drive(hass, plain, direct_both, rate, count)
            real = await drive(hass, ours, via_integration, rate, count)
            baselines[rate], integrated[rate] = one.online, real.online
            two_writes[rate], integrated_full[rate] = two.full, real.full
            for name, mine, base, what in (
                ("latency", real.online, one.online, "online sensor; baseline 1 async_set"),
                (
                    "latency_full",
                    real.full,
                    two.full,
                    "online and last-seen sensors; baseline 2 async_set",
                ),
            ):
                for label, q in (("p50", 0.5), ("p99", 0.99)):
                    value, ref = percentile(mine, q) * 1e3, percentile(base, q) * 1e3
                    print(
                        f"{name}_{label} rate={rate}/s {value:.3f} ms ratio={value / ref:.2f} "
                        f"({what} {ref:.3f} ms; {len(mine)} events at {real.rate:.0f}/s)"
                    )
            if real.partial:
                print(f"latency_note rate={rate}/s {real.partial} events left last seen unchanged")
            if real.held:
                print(
                    f"latency_behind rate={rate}/s {real.held} events held back "
                    f"(achieved {real.rate:.0f}/s: the integration did not keep up)"
                )
            if rate == 100:
                p99 = percentile(real.online, 0.99) * 1e3
                ratio = p99 / (percentile(one.online, 0.99) * 1e3)
                met = p99 < TARGET_P99_MS_AT_100 and ratio < TARGET_RATIO
                print(
                    f"latency_target rate=100/s p99<{TARGET_P99_MS_AT_100:.0f}ms "
                    f"and ratio<{TARGET_RATIO:.0f}: {'met' if met else 'MISSED'} "
                    f"(p99 {p99:.3f} ms, ratio {ratio:.2f})"
                )
        await reconnect_writes(hass, backend, entry.runtime_data, ours)
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        # The bridge hop alone: the same events to a bare client (no Home Assistant work).
        # Subscriptions outlive the integration's client (WhatsApp keeps them per account).
        for rate, count in RATES:
            hop = await transport(hass, backend, url, jids, rate=rate, count=count)
            for label, q in (("p50", 0.5), ("p99", 0.99)):
                value = percentile(hop, q) * 1e3
                ref = percentile(baselines[rate], q) * 1e3
                share = value / (percentile(integrated[rate], q) * 1e3)
                print(
                    f"latency_bridge_hop_{label} rate={rate}/s {value:.3f} ms "
                    f"ratio={value / ref:.2f} (vs 1 async_set; {share:.0%} of the integration's "
                    f"{label}; sim.set_presence to a bare BridgeClient's callback, {len(hop)} events)"
                )
            # The integration against a baseline that has the same transport: hop + 2 writes.
            hop50 = percentile(hop, 0.5)
            both50 = percentile(two_writes[rate], 0.5)
            mine50 = percentile(integrated_full[rate], 0.5)
            print(
                f"latency_full_p50_vs_transport rate={rate}/s {mine50 * 1e3:.3f} ms "
                f"ratio={mine50 / (hop50 + both50):.2f} (baseline: bridge hop p50 + 2 async_set "
                f"p50 = {(hop50 + both50) * 1e3:.3f} ms)"
            )
    await server.stop()
    print(f"latency wall_time {time.perf_counter() - wall:.1f} s")


def tables() -> dict[str, str]:
    """The figures as the docs' ``latency`` table (real time: machine-dependent)."""
    return {"latency": measured_table(lambda: asyncio.run(main()))}


if __name__ == "__main__":
    asyncio.run(main())
