"""What the presence insights cost: memory per contact, state writes, recorder rows.

Two configurations of the same code, each in a fresh child process (memory figures from a
process that already held the other would be meaningless):

* ``presence``: the entities a contact had before the insights (*online* and *last seen*),
  with the subscription state as visible as it was (its sensor enabled: the three flips per
  reconnect that the *subscription* attribute used to cost) and account entities writing at
  every change (no coalescing). The baseline: this code with the insight entities off, not
  the old code (the account's new *contacts online now* sensor is there in both).
* ``insights``: the shipped defaults: *online today*, *sessions today*, *last session* and the
  *presence* event entity added, the subscription sensor disabled by default, account entities
  coalesced to one write per second.

Each child runs a real Home Assistant core (benchmarks/harness.py) and the real bridge server
with the simulator backend on loopback, tracking ``CONTACTS`` contacts, and measures:

* memory per contact: Python heap added by the entry's set-up (``tracemalloc``, after a full
  GC), divided by the contacts;
* state writes per presence change: ``state_changed`` events of the contact's entities per
  ``sim.set_presence`` flip (sessions two minutes long, two minutes apart, on the activity
  tracker's injected clock so online time really accrues);
* state writes of one WhatsApp reconnect, per contact (contact entities; account entities);
* recorder rows per active contact per day: a simulated day of ``SESSIONS_PER_DAY`` sessions
  and a local midnight (the day closed and reset), on the same injected clock. Each
  ``state_changed`` is one row of the recorder's ``states`` table.

Run: ``scripts/run python benchmarks/insights.py`` (about a minute). ``tables()`` returns the
markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import gc
import json
from pathlib import Path
import subprocess
import sys
import time
import tracemalloc
from typing import Any
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from benchmarks.harness import TOKEN, make_entry, running_hass
from custom_components.whatsapp_presence import entity as entity_module
from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend, SimulatorConfig
from custom_components.whatsapp_presence.const import DOMAIN

CONTACTS = 200
FLIPS = 300  # presence changes driven: half the contacts end online (for the reconnect)
SESSIONS_PER_DAY = 20  # an active contact
SESSION = 120.0  # seconds online per session, and offline between sessions
CONFIGS = ("presence", "insights")


class Clock:
    """The activity tracker's clock: real time plus what the benchmark adds."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def wait_for(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Poll (real time) until ``condition`` holds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {what}")
        await asyncio.sleep(0.01)


class Writes:
    """Counts ``state_changed`` events of contact entities and of account entities."""

    def __init__(self, hass: HomeAssistant, contact_ids: set[str]) -> None:
        self.contact = 0
        self.account = 0
        self._contact_ids = contact_ids

        @callback
        def on_change(event: Event[EventStateChangedData]) -> None:
            entity_id = event.data["entity_id"]
            if entity_id in self._contact_ids:
                self.contact += 1
            elif entity_id.startswith(("sensor.benchmark_", "binary_sensor.benchmark_")):
                self.account += 1

        self.stop = hass.bus.async_listen(EVENT_STATE_CHANGED, on_change)


async def measure(config: str) -> dict[str, float]:
    """One configuration's figures (runs in its own process)."""
    sim_config = SimulatorConfig(
        seed=11,
        contacts=CONTACTS,
        groups=0,
        paired=True,
        manual_clock=False,
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
    jids = [c["jid"] for c in contacts]
    baseline = config == "presence"
    figures: dict[str, float] = {}
    with patch.object(entity_module, "ACCOUNT_WRITE_INTERVAL", 0.0 if baseline else 1.0):
        async with running_hass() as hass:
            entry = make_entry(url, TOKEN, contacts)
            entry.add_to_hass(hass)
            registry = er.async_get(hass)
            if baseline:
                # The subscription state shown as before, and no insight entities.
                for jid in jids:
                    phone = jid.split("@", maxsplit=1)[0]
                    registry.async_get_or_create(
                        "sensor",
                        DOMAIN,
                        f"12025550100_{phone}_subscription",
                        config_entry=entry,
                        disabled_by=None,
                    )
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
            original_sync = None
            if baseline:
                from custom_components.whatsapp_presence import coordinator as coordinator_module

                original_sync = coordinator_module.WhatsAppCoordinator._sync_tracked

                def sync_without_insights(self: Any) -> None:
                    assert original_sync is not None
                    original_sync(self)
                    self.insights_by_default = set()

                coordinator_module.WhatsAppCoordinator._sync_tracked = sync_without_insights  # type: ignore[method-assign]
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            coordinator = entry.runtime_data
            await wait_for(
                lambda: coordinator.manager.stats().active == CONTACTS, "every contact subscribed"
            )
            await hass.async_block_till_done()
            gc.collect()
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            added = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
            figures["memory_per_contact_kib"] = added / CONTACTS / 1024
            contact_ids = {
                entity.entity_id
                for entity in registry.entities.values()
                if entity.config_entry_id == entry.entry_id
                and entity.disabled_by is None
                and "_12025550100" not in entity.unique_id
                and entity.unique_id.count("_") >= 2
                and entity.unique_id.split("_")[1].isdigit()
            }
            figures["entities_per_contact"] = len(contact_ids) / CONTACTS
            clock = Clock()
            coordinator.activity._clock = clock

            # Presence changes: two-minute sessions, two minutes apart (on the tracker's clock).
            online = dict.fromkeys(jids, False)
            writes = Writes(hass, contact_ids)
            for i in range(FLIPS):
                jid = jids[i % CONTACTS]
                if i % CONTACTS == 0:
                    clock.offset += SESSION
                online[jid] = not online[jid]
                await _flip(hass, backend, coordinator, jid, online[jid])
            await asyncio.sleep(1.2)  # coalesced account writes land
            await hass.async_block_till_done()
            writes.stop()
            figures["writes_per_presence_change"] = writes.contact / FLIPS
            figures["account_writes_per_presence_change"] = writes.account / FLIPS

            # One WhatsApp reconnect.
            writes = Writes(hass, contact_ids)
            reconnects = coordinator.manager.stats().reconnects_total
            await backend.command("sim.disconnect", {"reconnect_after": 0.5})
            await wait_for(
                lambda: (
                    coordinator.manager.stats().reconnects_total > reconnects
                    and coordinator.manager.stats().active == CONTACTS
                ),
                "re-subscribed after a reconnect",
            )
            await asyncio.sleep(1.2)
            await hass.async_block_till_done()
            writes.stop()
            figures["reconnect_writes_per_contact"] = writes.contact / CONTACTS
            figures["reconnect_account_writes_per_contact"] = writes.account / CONTACTS

            # A day of an active contact: sessions, then local midnight (closed, then reset).
            jid = jids[0]
            ids = {
                i for i in contact_ids if i.split(".", 1)[1].startswith(_object_prefix(hass, jid))
            }
            writes = Writes(hass, ids)
            if online[jid]:
                await _flip(hass, backend, coordinator, jid, False)
            for _ in range(SESSIONS_PER_DAY):
                clock.offset += SESSION
                await _flip(hass, backend, coordinator, jid, True)
                clock.offset += SESSION
                await _flip(hass, backend, coordinator, jid, False)
            clock.offset += SESSION
            await _flip(hass, backend, coordinator, jid, True)  # online at midnight
            clock.offset = coordinator.activity.next_midnight() - time.time() - 1
            coordinator.days.close_day(None)
            clock.offset += 1
            coordinator.days.new_day(None)
            await hass.async_block_till_done()
            writes.stop()
            figures["rows_per_active_contact_day"] = float(writes.contact)
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
    await server.stop()
    return figures


def _object_prefix(hass: HomeAssistant, jid: str) -> str:
    """The object id prefix of a contact's entities (its device name, slugified)."""
    registry = er.async_get(hass)
    phone = jid.split("@", maxsplit=1)[0]
    online = registry.async_get_entity_id("binary_sensor", DOMAIN, f"12025550100_{phone}_online")
    assert online is not None
    return online.split(".", 1)[1].removesuffix("_online")


async def _flip(
    hass: HomeAssistant, backend: SimulatorBackend, coordinator: Any, jid: str, online: bool
) -> None:
    await backend.command("sim.set_presence", {"jid": jid, "online": online})
    await wait_for(lambda: coordinator.presence[jid].online is online, "presence")
    await hass.async_block_till_done()


def run_children() -> dict[str, dict[str, float]]:
    """Each configuration in a fresh process."""
    results = {}
    for config in CONFIGS:
        output = subprocess.run(
            [sys.executable, __file__, "--child", config],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[config] = json.loads(output.strip().splitlines()[-1])
    return results


ROWS = (
    ("entities_per_contact", "Enabled entities per contact", "{:.0f}"),
    ("memory_per_contact_kib", "Memory per contact (Python heap, KiB)", "{:.1f}"),
    ("writes_per_presence_change", "State writes per presence change (contact entities)", "{:.2f}"),
    ("account_writes_per_presence_change", "Account-entity writes per presence change", "{:.2f}"),
    ("reconnect_writes_per_contact", "State writes per contact, one reconnect", "{:.2f}"),
    (
        "reconnect_account_writes_per_contact",
        "Account-entity writes per contact, one reconnect",
        "{:.2f}",
    ),
    (
        "rows_per_active_contact_day",
        f"Recorder rows per active contact per day ({SESSIONS_PER_DAY} sessions)",
        "{:.0f}",
    ),
)


def tables(results: dict[str, dict[str, float]] | None = None) -> dict[str, str]:
    """NAME -> markdown table, for the ``<!-- bench:NAME -->`` markers of docs/benchmarks.md."""
    results = results or run_children()
    lines = [
        f"| Figure ({CONTACTS} contacts) | Presence entities only (before) | With insights | Ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, label, fmt in ROWS:
        before, after = results["presence"][key], results["insights"][key]
        ratio = f"{after / before:.2f}" if before else "n/a"
        lines.append(f"| {label} | {fmt.format(before)} | {fmt.format(after)} | {ratio} |")
    return {"insights": "\n".join(lines)}


def main() -> None:
    """Print one line per figure, then the table."""
    wall = time.perf_counter()
    results = run_children()
    for key, _, fmt in ROWS:
        before, after = results["presence"][key], results["insights"][key]
        ratio = after / before if before else float("nan")
        print(
            f"insights_{key} {fmt.format(after)} ratio={ratio:.2f} "
            f"(presence entities only: {fmt.format(before)}; {CONTACTS} contacts)"
        )
    print(tables(results)["insights"])
    print(f"insights wall_time {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(asyncio.run(measure(sys.argv[2]))))
    else:
        main()
