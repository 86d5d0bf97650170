"""Subscription rate against a hidden ceiling, per preset, in simulated time.

WhatsApp silently ignores subscriptions beyond an unpublished rate and bans accounts that keep
pushing. The simulator models exactly that (``sub_ceiling`` per ``sub_window``; 100 ignored
ones within 600 s give a one-hour ``temporary_ban`` and a disconnect). Here the real
``SubscriptionManager`` (virtual clock from tests/manager/virtual_time.py) drives an in-process
``SimulatorBackend`` (manual clock kept in step) by calling its ``subscribe_presence``
directly, wrapped the way the coordinator wraps the bridge client (a link that is down pauses
the manager; ``connected``/``disconnected``/``temporary_ban`` events reach the manager as in
coordinator.py, which also halves the pace and steps the preset down on a ban). No bridge
server or WebSocket: this figure is about pacing only. The queued contacts are not in the
simulator's address book, so no subscription is answered: the network model where adaptive
pacing has nothing to learn from (benchmarks/matrix.py covers the others).

More contacts are queued than any preset can reach in the horizon, so the figure is a
sustained rate: distinct contacts whose subscription the simulator accepted (not ignored),
per simulated minute, over ``HORIZON``; plus temporary bans suffered and calls wasted
(ignored). The bar: the default preset (medium, 133/min) with zero bans.

Run: ``scripts/run python benchmarks/ceiling.py`` (seconds of wall time).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path
import sys
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.whatsapp_presence.bridge.clock import ManualClock
from custom_components.whatsapp_presence.bridge.protocol import BridgeError, BridgeEvent, ErrorCode
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend, SimulatorConfig
from custom_components.whatsapp_presence.manager import (
    PRESETS,
    ManagerConfig,
    SubscriptionManager,
    SubscriptionPaused,
    preset_rate,
    slower_preset,
)
from tests.manager.virtual_time import VirtualClock

CEILINGS = (150, 250, 400)
HORIZON = 3 * 3600.0  # simulated seconds: a one-hour ban and what follows fit in
CONTACTS = 40_000  # more than 200/min x 180 min: the queue never runs dry
START = 1_800_000_000.0


async def run(preset: str, ceiling: int) -> dict[str, Any]:
    """One simulated hour of one preset against one hidden ceiling."""
    vclock = VirtualClock(START)
    sim_clock = ManualClock(start=START)
    manager: SubscriptionManager | None = None
    link = {"up": False}
    bans: list[float] = []

    def emit(record: BridgeEvent) -> None:
        event = str(record.name)
        assert manager is not None
        if event == "connected":
            link["up"] = True
            manager.on_connected()
        elif event in ("disconnected", "temporary_ban"):
            link["up"] = False
            manager.on_disconnected()
            if event == "temporary_ban":  # as the coordinator: slower, one preset down
                bans.append(vclock.time() - START)
                manager.on_banned()
                slower = slower_preset(manager.config.batch)
                if slower is not None:
                    manager.update_config(replace(manager.config, batch=slower))

    sim = SimulatorBackend(
        emit,
        SimulatorConfig(
            seed=3,
            contacts=10,
            groups=0,
            paired=True,
            manual_clock=True,
            presence_churn=0.0,
            disconnect_rate=0.0,
            connect_delay=0.0,
            presence_latency=0.0,
            sub_ceiling=ceiling,
            sub_window=60.0,
            ban_threshold=100,
            ban_window=600.0,
            ban_duration=3600.0,
            query_limit=0,
        ),
        clock=sim_clock,
    )

    def sync() -> None:
        """Bring the simulator's clock to the manager's (its timers run on the way)."""
        lag = vclock.time() - sim_clock.now()
        if lag > 0:
            sim_clock.advance(lag)

    async def subscribe(jid: str) -> None:
        sync()
        if not link["up"]:
            raise SubscriptionPaused
        try:
            await sim.subscribe_presence(jid)
        except BridgeError as err:
            if err.code in (ErrorCode.NOT_CONNECTED, ErrorCode.NOT_LOGGED_IN):
                raise SubscriptionPaused from err
            raise

    async def ticker() -> None:
        """Let simulator timers (ban end, reconnect) fire while the manager is idle."""
        while True:
            await vclock.sleep(1.0)
            sync()

    config = ManagerConfig(batch=PRESETS[preset])
    manager = SubscriptionManager(subscribe, config=config, clock=vclock.time, sleep=vclock.sleep)
    for i in range(CONTACTS):
        manager.queue(f"1{i:09d}@s.whatsapp.net")
    manager.start()
    await sim.start()  # paired: connects after connect_delay (0) on the next sync
    tick = asyncio.get_running_loop().create_task(ticker())
    await vclock.advance(HORIZON)
    tick.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await tick
    await manager.stop()
    stats = sim.stats()
    await sim.stop()
    ignored = stats["ignored"]
    accepted = [jid for jid, n in stats["subscriptions"].items() if n > ignored.get(jid, 0)]
    return {
        "rate": len(accepted) / (HORIZON / 60),
        "bans": len(bans),
        "first_ban": bans[0] if bans else None,
        "calls": stats["subscribe_calls"],
        "ignored": stats["ceiling_hits"],
        "formula": preset_rate(config.batch),
    }


def tables() -> dict[str, str]:
    """docs/benchmarks.md: sustained rate and bans per ceiling and preset (adaptive pacing)."""
    rows = [
        "| Ceiling / min | Preset | Accepted contacts / min | Bans in 3 h | First ban (min) | Calls | Ignored |",
        "|---|---|---|---|---|---|---|",
    ]

    async def _all() -> list[tuple[int, str, dict[str, Any]]]:
        return [(c, p, await run(p, c)) for c in CEILINGS for p in PRESETS]

    for ceiling, preset, r in asyncio.run(_all()):
        first = f"{r['first_ban'] / 60:.1f}" if r["first_ban"] is not None else "-"
        rows.append(
            f"| {ceiling} | {preset} | {r['rate']:.1f} | {r['bans']} | {first} "
            f"| {r['calls']:,} | {r['ignored']:,} |"
        )
    return {"ceiling": "\n".join(rows)}


async def main() -> None:
    """One line per ceiling and preset."""
    wall = time.perf_counter()
    for ceiling in CEILINGS:
        for preset in PRESETS:
            r = await run(preset, ceiling)
            first = f"{r['first_ban'] / 60:.1f}" if r["first_ban"] is not None else "-"
            print(
                f"ceiling_rate ceiling={ceiling} preset={preset} "
                f"{r['rate']:.1f} contacts/min bans={r['bans']} "
                f"ratio_to_default_target={r['rate'] / 133.3:.2f} "
                f"(formula {r['formula']:.1f}/min; first ban at min {first}; "
                f"calls {r['calls']}, ignored {r['ignored']}; "
                f"{HORIZON / 60:.0f} simulated min)"
            )
    print(f"ceiling wall_time {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
