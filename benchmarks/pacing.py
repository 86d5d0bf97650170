"""Pacing of the subscription manager per preset, in simulated time.

For each preset and 100 / 1,000 / 5,000 contacts queued at once (link up, WhatsApp accepting
everything, default global cap of 200 per minute) it prints one line: simulated time until the
last contact is subscribed, the formula's estimate ``contacts / rate`` (docs/rate-limiting.md), their ratio (below 1
because the last batch needs no trailing pause), and the most calls seen in any 60 s window
next to the cap (the formula is an average: 7 medium batches fit in some 60 s windows).

Run: ``scripts/run python benchmarks/pacing.py`` (a few seconds of wall time).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.whatsapp_presence.manager import (
    PRESETS,
    ManagerConfig,
    SubscriptionManager,
    preset_rate,
)
from tests.manager.virtual_time import VirtualClock

SIZES = (100, 1_000, 5_000)


def peak_in_window(times: list[float], window: float) -> int:
    """Most calls in any half-open window of ``window`` seconds (times sorted)."""
    best = lo = 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window + 1e-6:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def run(preset: str, contacts: int) -> dict[str, float]:
    """Queue ``contacts`` at T+0, connect, and run until every one is subscribed."""
    clock = VirtualClock()
    calls: list[float] = []

    async def subscribe(jid: str) -> None:
        calls.append(clock.time())

    config = ManagerConfig(batch=PRESETS[preset])
    manager = SubscriptionManager(subscribe, config=config, clock=clock.time, sleep=clock.sleep)
    start = clock.time()
    for i in range(contacts):
        manager.queue(f"bench{i:05d}@s.whatsapp.net")
    manager.start()
    manager.on_connected()
    done = await clock.run_until(lambda: manager.stats().active == contacts, within=7 * 86400)
    await manager.stop()
    assert done, "not everything got subscribed"
    relative = [t - start for t in calls]
    last = relative[-1]
    rate = preset_rate(config.batch)
    return {
        "elapsed": last,
        "formula": contacts / rate * 60.0,
        "rate": rate,
        "peak": peak_in_window(relative, 60.0),
        "cap": config.max_per_minute,
        "calls": len(calls),
    }


async def _all() -> list[tuple[str, int, dict[str, float]]]:
    return [(preset, n, await run(preset, n)) for preset in PRESETS for n in SIZES]


def tables() -> dict[str, str]:
    """docs/benchmarks.md: time to subscribe everyone and the busiest minute, per preset."""
    rows = [
        "| Preset | Contacts | All subscribed (simulated s) | Ratio to the formula | Peak calls in 60 s (cap) |",
        "|---|---|---|---|---|",
    ]
    for preset, contacts, r in asyncio.run(_all()):
        rows.append(
            f"| {preset} | {contacts:,} | {r['elapsed']:.1f} | {r['elapsed'] / r['formula']:.3f} "
            f"| {r['peak']:.0f} ({r['cap']:.0f}) |"
        )
    return {"pacing": "\n".join(rows)}


async def main() -> None:
    """Print one line per preset and size."""
    wall = time.perf_counter()
    for preset in PRESETS:
        for contacts in SIZES:
            r = await run(preset, contacts)
            print(
                f"pacing_all_subscribed preset={preset} contacts={contacts} "
                f"{r['elapsed']:.1f} s ratio={r['elapsed'] / r['formula']:.3f} "
                f"(formula {r['formula']:.1f} s at {r['rate']:.1f}/min; "
                f"calls {r['calls']:.0f})"
            )
            print(
                f"pacing_peak_60s preset={preset} contacts={contacts} "
                f"{r['peak']:.0f} calls (cap {r['cap']:.0f})"
            )
    print(f"pacing wall_time {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
