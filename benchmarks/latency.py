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
from collections.abc import Callable
import gc
from pathlib import Path
import sys
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback

from benchmarks.harness import TOKEN, make_entry, median, online_entity_id, percentile, running_hass
from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend, SimulatorConfig

CONTACTS = 100
RATES = ((10, 100), (100, 1_000), (1_000, 3_000))  # (events per second, events)
TARGET_P99_MS_AT_100 = 10.0
TARGET_RATIO = 3.0


async def drive(
    hass: HomeAssistant,
    entity_ids: list[str],
    fire: Callable[[int, bool], Any],
    rate: float,
    count: int,
) -> tuple[list[float], float]:
    """Send ``count`` flips at ``rate``/s; latencies (s) from send to ``state_changed``."""
    pending: dict[str, float] = {}
    latencies: list[float] = []
    watched = set(entity_ids)

    @callback
    def on_change(event: Event[EventStateChangedData]) -> None:
        started = pending.pop(event.data["entity_id"], None)
        if started is not None:
            latencies.append(time.perf_counter() - started)

    unsub = hass.bus.async_listen(
        EVENT_STATE_CHANGED,
        on_change,
        event_filter=callback(lambda data: data["entity_id"] in watched),
    )
    # Start from what each entity shows (a simulated contact may begin online), so every
    # flip is a real change.
    online = [(state := hass.states.get(e)) is not None and state.state == "on" for e in entity_ids]
    loop = asyncio.get_running_loop()
    begin = loop.time()
    for i in range(count):
        due = begin + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        index = i % len(entity_ids)
        online[index] = not online[index]
        pending[entity_ids[index]] = time.perf_counter()
        await fire(index, online[index])
    sent_over = loop.time() - begin
    for _ in range(500):  # let the last events land (at most ~5 s)
        if not pending:
            break
        await asyncio.sleep(0.01)
    unsub()
    if pending:
        raise RuntimeError(f"{len(pending)} events never reached a state change: {pending}")
    return latencies, count / sent_over


async def main() -> None:
    """Set up, measure each rate through the integration and the baseline, print figures."""
    wall = time.perf_counter()
    sim_config = SimulatorConfig(
        seed=11,
        contacts=CONTACTS,
        groups=0,
        paired=True,
        manual_clock=True,
        start_time=time.time(),
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
        sensors = [online_entity_id(hass, jid) for jid in jids]
        plain = [f"binary_sensor.latency_baseline_{i}" for i in range(CONTACTS)]
        for entity_id in plain:
            hass.states.async_set(entity_id, "off")

        async def via_integration(index: int, online: bool) -> Any:
            return await backend.command("sim.set_presence", {"jid": jids[index], "online": online})

        async def direct(index: int, online: bool) -> None:
            hass.states.async_set(plain[index], "on" if online else "off")

        gc.collect()
        for rate, count in RATES:
            # Alternate the two so drifting machine load hits both alike.
            base, base_rate = await drive(hass, plain, direct, rate, count)
            real, real_rate = await drive(hass, sensors, via_integration, rate, count)
            p50, p99 = median(real) * 1e3, percentile(real, 0.99) * 1e3
            b50, b99 = median(base) * 1e3, percentile(base, 0.99) * 1e3
            print(
                f"latency_p50 rate={rate}/s {p50:.3f} ms ratio={p50 / b50:.2f} "
                f"(baseline async_set {b50:.3f} ms; {count} events, achieved {real_rate:.0f}/s)"
            )
            print(
                f"latency_p99 rate={rate}/s {p99:.3f} ms ratio={p99 / b99:.2f} "
                f"(baseline async_set {b99:.3f} ms; achieved baseline {base_rate:.0f}/s)"
            )
            if rate == 100:
                met = p99 < TARGET_P99_MS_AT_100 and p99 / b99 < TARGET_RATIO
                print(
                    f"latency_target rate=100/s p99<{TARGET_P99_MS_AT_100:.0f}ms "
                    f"and ratio<{TARGET_RATIO:.0f}: {'met' if met else 'MISSED'}"
                )
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    await server.stop()
    print(f"latency wall_time {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
