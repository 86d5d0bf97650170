"""Scale: what tracking 1,000 and 5,000 contacts costs the Home Assistant host.

Each measurement runs in a fresh child process (memory figures from one process that already
held another scenario would be meaningless), all in the same run:

* ``template N``: a real Home Assistant core with ``N`` bare template binary sensors (with
  unique ids, so they get entity registry entries like ours). The baseline for setup time
  and memory per entity.
* ``integration N``: a real Home Assistant core, and the real bridge as a separate process
  (``python -m bridge --backend simulator``) with ``N`` simulated contacts churning presence at
  about 1,000 changes per second once subscribed; this integration set up as a remote-mode
  entry with one contact subentry per contact (fast pacing: see harness.FAST_PACING).
  Measured: entry setup time (until Home Assistant is idle, entities written), the time until
  every contact is subscribed, resident memory added (after a full GC), then over a 10 s
  window the CPU share of the Home Assistant process (CPU time / wall time) and of the bridge
  process (/proc/<pid>/stat), and the presence events the bridge delivered. Then the bridge
  is stopped and, in the same process, a baseline writes the same number of states per second
  straight with ``hass.states.async_set`` (two per event: the online and the last-seen entity
  both change) to give the CPU-share ratio.

Run: ``scripts/run python benchmarks/scale.py`` (a few minutes).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
from pathlib import Path
import secrets
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component

from benchmarks.harness import ROOT, cpu_seconds, make_entry, rss_kib, running_hass
from benchmarks.report import measured_table
from custom_components.whatsapp_presence.const import INSIGHT_ENTITIES_PER_CONTACT
from tests.bridge.common import call

SIZES = (1_000, 5_000)
TARGET_EVENTS = 1_000.0  # per second
WINDOW = 10.0  # seconds of sustained load measured
PACKAGE = ROOT / "custom_components" / "whatsapp_presence"


async def settle(hass: HomeAssistant) -> None:
    """Let pending work finish, then collect garbage so RSS means live objects."""
    await hass.async_block_till_done()
    gc.collect()
    await asyncio.sleep(0.2)
    gc.collect()


async def child_template(count: int) -> dict[str, Any]:
    """Setup time and memory of ``count`` bare template binary sensors."""
    async with running_hass() as hass:
        assert await async_setup_component(hass, "homeassistant", {})
        await settle(hass)
        before = rss_kib()
        config = {
            "template": [
                {
                    "binary_sensor": [
                        {"name": f"bench {i}", "unique_id": f"bench_{i}", "state": "{{ false }}"}
                        for i in range(count)
                    ]
                }
            ]
        }
        started = time.perf_counter()
        assert await async_setup_component(hass, "template", config)
        await hass.async_block_till_done()
        setup = time.perf_counter() - started
        await settle(hass)
        entities = len(hass.states.async_entity_ids("binary_sensor"))
        assert entities >= count, f"only {entities} template sensors"
        return {"setup": setup, "rss_added_kib": rss_kib() - before, "entities": entities}


def start_bridge(count: int, token: str) -> tuple[subprocess.Popen[str], str]:
    """The real bridge process with ``count`` churning simulated contacts; (process, url)."""
    churn = 570.0 * TARGET_EVENTS / count  # chatty contacts: 2 changes per 1,140 s each
    args = [
        sys.executable,
        "-m",
        "bridge",
        "--backend",
        "simulator",
        "--contacts",
        str(count),
        "--groups",
        "0",
        "--paired",
        "--chatty-fraction",
        "1",
        "--presence-churn",
        f"{churn:.3f}",
        "--unresponsive-fraction",
        "0",
        "--hidden-last-seen-fraction",
        "0",
        "--lid-fraction",
        "0",
        "--sub-ceiling",
        "0",
        "--query-limit",
        "0",
        "--disconnect-rate",
        "0",
        "--connect-delay",
        "0",
        "--presence-latency",
        "0",
        "--heartbeat",
        "0",
        "--max-message-bytes",
        str(4 * 1024 * 1024),
        "--log-level",
        "WARNING",
        "--exit-on-stdin-eof",
    ]
    env = {**os.environ, "WHATSAPP_BRIDGE_TOKEN": token}
    proc = subprocess.Popen(
        args,
        cwd=PACKAGE,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = json.loads(proc.stdout.readline())
    return proc, str(line["url"])


async def child_integration(count: int) -> dict[str, Any]:
    """Setup, memory, CPU under load, and the bridge's own figures, for ``count`` contacts."""
    token = secrets.token_hex(16)
    proc, url = start_bridge(count, token)
    try:
        async with running_hass() as hass:
            from homeassistant.helpers.aiohttp_client import async_get_clientsession

            from custom_components.whatsapp_presence.bridge.client import BridgeClient

            # Every client gets every event: this one leaves before the load.
            probe = BridgeClient(
                url, token, session=async_get_clientsession(hass), on_event=lambda *_: None
            )
            await probe.connect()
            contacts = await call(probe, "sim.contacts")
            await probe.close()
            entry = make_entry(url, token, contacts)
            await settle(hass)
            before = rss_kib()
            started = time.perf_counter()
            entry.add_to_hass(hass)
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            setup = time.perf_counter() - started
            coordinator = entry.runtime_data
            client = coordinator.client
            assert client is not None
            while coordinator.manager.stats().active < count:
                if time.perf_counter() - started > 240:
                    raise RuntimeError("contacts were not all subscribed within 240 s")
                await asyncio.sleep(0.05)
            subscribed = time.perf_counter() - started
            await settle(hass)
            rss_added = rss_kib() - before
            # What the integration means to create (presence entities for every contact,
            # insights for those it enables them for, the account's) against what exists.
            enabled = [
                registered
                for registered in er.async_entries_for_config_entry(
                    er.async_get(hass), entry.entry_id
                )
                if registered.disabled_by is None
            ]
            entities = sum(hass.states.get(e.entity_id) is not None for e in enabled)
            account = {
                device.id
                for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
                if coordinator.device_identifier(None) in device.identifiers
            }
            account_entities = sum(e.device_id in account for e in enabled)
            expected = (
                2 * count
                + INSIGHT_ENTITIES_PER_CONTACT * len(coordinator.insights_by_default)
                + account_entities
            )
            bridge_rss = rss_kib(proc.pid)

            # Sustained load: the bridge churns presence on its own.
            events_before = (await call(client, "sim.stats"))["presence_events"]
            wall0, cpu0, bridge0 = time.perf_counter(), time.process_time(), cpu_seconds(proc.pid)
            await asyncio.sleep(WINDOW)
            wall1, cpu1, bridge1 = time.perf_counter(), time.process_time(), cpu_seconds(proc.pid)
            events_after = (await call(client, "sim.stats"))["presence_events"]
            wall = wall1 - wall0
            rate = (events_after - events_before) / wall
            share = (cpu1 - cpu0) / wall
            bridge_share = (bridge1 - bridge0) / wall
            bridge_rss_loaded = rss_kib(proc.pid)
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
            proc.terminate()
            proc.wait(timeout=10)

            # Baseline, same process: the same state writes per second, straight.
            base_share = await baseline_writes(hass, count, 2 * rate)
            return {
                "setup": setup,
                "subscribed": subscribed,
                "rss_added_kib": rss_added,
                "entities": entities,
                "entities_expected": expected,
                "events_per_s": rate,
                "cpu_share": share,
                "baseline_cpu_share": base_share,
                "bridge_cpu_share": bridge_share,
                "bridge_rss_kib": bridge_rss,
                "bridge_rss_loaded_kib": bridge_rss_loaded,
            }
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def baseline_writes(hass: HomeAssistant, count: int, writes_per_s: float) -> float:
    """CPU share of ``writes_per_s`` plain ``async_set`` calls over ``count`` entities."""
    ids = [f"binary_sensor.scale_baseline_{i}" for i in range(count)]
    for entity_id in ids:
        hass.states.async_set(entity_id, "off")
    await settle(hass)
    loop = asyncio.get_running_loop()
    total = int(writes_per_s * WINDOW)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    begin = loop.time()
    for i in range(total):
        delay = begin + i / writes_per_s - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        hass.states.async_set(ids[i % count], "on" if (i // count) % 2 == 0 else "off")
    await hass.async_block_till_done()
    return (time.process_time() - cpu0) / (time.perf_counter() - wall0)


def run_child(kind: str, count: int) -> dict[str, Any]:
    """Run one scenario in a fresh interpreter; its last stdout line is the JSON result."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(count)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Both scenarios per size; one line per figure."""
    wall = time.perf_counter()
    results: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for count in SIZES:
        base = run_child("template", count)
        ours = run_child("integration", count)
        results[count] = base, ours
        per_contact = ours["rss_added_kib"] / count
        per_template = base["rss_added_kib"] / count
        print(
            f"scale_setup contacts={count} {ours['setup']:.2f} s "
            f"ratio={ours['setup'] / base['setup']:.2f} "
            f"(baseline {count} template binary sensors {base['setup']:.2f} s)"
        )
        print(
            f"scale_all_subscribed contacts={count} {ours['subscribed']:.2f} s "
            f"ratio={ours['subscribed'] / base['setup']:.2f} "
            "(fast pacing; vs template setup time)"
        )
        print(
            f"scale_memory_per_contact contacts={count} {per_contact:.1f} KiB "
            f"ratio={per_contact / per_template:.2f} "
            f"(baseline {per_template:.1f} KiB per template binary sensor; "
            f"{ours['entities']} entities written)"
        )
        missing = ours["entities_expected"] - ours["entities"]
        print(
            f"scale_entities contacts={count} {ours['entities']} entities "
            f"of {ours['entities_expected']} expected"
            + (
                f" MISSING {missing} (Home Assistant adds at most 10,000 enabled entities "
                "per config entry)"
                if missing
                else ""
            )
        )
        print(
            f"scale_cpu_share contacts={count} {ours['cpu_share']:.1%} "
            f"at {ours['events_per_s']:.0f} events/s "
            f"ratio={ours['cpu_share'] / ours['baseline_cpu_share']:.2f} "
            f"(baseline {2 * ours['events_per_s']:.0f} async_set/s "
            f"{ours['baseline_cpu_share']:.1%})"
        )
        print(
            f"scale_bridge_cpu_share contacts={count} {ours['bridge_cpu_share']:.1%} "
            f"at {ours['events_per_s']:.0f} events/s "
            f"ratio={ours['bridge_cpu_share'] / ours['cpu_share']:.2f} (vs Home Assistant's share)"
        )
        print(
            f"scale_bridge_rss contacts={count} {ours['bridge_rss_loaded_kib'] / 1024:.1f} MiB "
            f"({ours['bridge_rss_kib'] / 1024:.1f} MiB before the load window)"
        )
    (small, (base_s, ours_s)), (large, (base_l, ours_l)) = sorted(results.items())
    span = large - small
    ours_slope = (ours_l["rss_added_kib"] - ours_s["rss_added_kib"]) / span
    base_slope = (base_l["rss_added_kib"] - base_s["rss_added_kib"]) / span
    bridge_slope = (ours_l["bridge_rss_kib"] - ours_s["bridge_rss_kib"]) / span
    print(
        f"scale_memory_marginal_per_contact {ours_slope:.1f} KiB "
        f"ratio={ours_slope / base_slope:.2f} "
        f"(from {small} to {large}; baseline {base_slope:.1f} KiB per template binary sensor)"
    )
    print(
        f"scale_bridge_memory_marginal_per_contact {bridge_slope:.1f} KiB "
        f"(bridge process RSS from {small} to {large} simulated contacts)"
    )
    print(f"scale wall_time {time.perf_counter() - wall:.1f} s")


def tables() -> dict[str, str]:
    """The figures as the docs' ``scale`` table (real time: machine-dependent)."""
    return {"scale": measured_table(main)}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        kind, size = sys.argv[2], int(sys.argv[3])
        job = child_template if kind == "template" else child_integration
        print(json.dumps(asyncio.run(job(size))))
    else:
        main()
