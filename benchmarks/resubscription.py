"""Re-subscription overhead over a simulated week, 1,000 contacts of mixed activity.

Contacts: 30 % active (presence events about every 45 min from 07:00 to 23:00), 30 %
occasional (an event every 36 h on average), 40 % quiet (never). An event reaches the
manager only while the contact is subscribed on the current connection, as with WhatsApp.
Two runs with the default settings: a stable link, and a link that drops every hour
(10 s down). Prints subscribe calls per contact per day per class, the initial subscription
included and excluded, next to the naive alternatives (everyone daily / every health check).

Run: ``scripts/run python benchmarks/resubscription.py`` (seconds of wall time).
"""

from __future__ import annotations

import asyncio
from collections import Counter
import contextlib
from dataclasses import dataclass
import heapq
from pathlib import Path
import random
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.whatsapp_presence.manager import ManagerConfig, Priority, SubscriptionManager
from tests.manager.virtual_time import VirtualClock

CONTACTS = 1_000
DAYS = 7
DAY = 86_400.0
START = 1_800_000_000.0 - 1_800_000_000.0 % DAY  # a midnight, so "07:00" means something
CLASSES = {"active": 0.3, "occasional": 0.3, "quiet": 0.4}


def population(rng: random.Random) -> dict[str, str]:
    """jid -> activity class."""
    kinds = rng.choices(list(CLASSES), weights=list(CLASSES.values()), k=CONTACTS)
    return {f"week{i:04d}@s.whatsapp.net": kind for i, kind in enumerate(kinds)}


def presence_events(rng: random.Random, people: dict[str, str]) -> list[tuple[float, str]]:
    """Sorted (time, jid) of every presence change the contacts would emit this week."""
    events: list[tuple[float, str]] = []
    end = START + DAYS * DAY
    for jid, kind in people.items():
        if kind == "quiet":
            continue
        mean_gap = 45 * 60.0 if kind == "active" else 36 * 3600.0
        t = START + rng.expovariate(1 / mean_gap)
        while t < end:
            hour = (t - START) % DAY / 3600
            if kind != "active" or 7 <= hour < 23:
                events.append((t, jid))
            t += rng.expovariate(1 / mean_gap)
    events.sort()
    return events


@dataclass
class Week:
    """What one simulated week produced."""

    people: dict[str, str]
    calls: Counter[str]
    events: int
    delivered: int
    reconnects: int


async def simulate(hourly_reconnects: bool, seed: int = 2026) -> Week:
    """One simulated week; returns calls per contact and event delivery counts."""
    rng = random.Random(seed)
    people = population(rng)
    events = presence_events(rng, people)
    clock = VirtualClock(START)
    epoch = [0]
    subscribed_in: dict[str, int] = {}
    calls: Counter[str] = Counter()
    delivered = [0]

    async def subscribe(jid: str) -> None:
        calls[jid] += 1
        subscribed_in[jid] = epoch[0]

    manager = SubscriptionManager(
        subscribe, config=ManagerConfig(), clock=clock.time, sleep=clock.sleep
    )

    async def deliver() -> None:
        pending = list(events)
        heapq.heapify(pending)
        while pending:
            when, jid = heapq.heappop(pending)
            if when > clock.time():
                await clock.sleep(when - clock.time())
            if subscribed_in.get(jid) == epoch[0] and manager.connected:
                manager.on_presence(jid, clock.time())
                delivered[0] += 1

    async def flap() -> None:
        while True:
            await clock.sleep(3600 - 10)
            epoch[0] += 1
            manager.on_disconnected()
            await clock.sleep(10)
            epoch[0] += 1
            manager.on_connected()

    priorities = (Priority.HIGH, Priority.MEDIUM, Priority.LOW)
    for jid in people:
        manager.queue(jid, rng.choice(priorities))
    manager.start()
    manager.on_connected()
    loop = asyncio.get_running_loop()
    world = [loop.create_task(deliver())]
    if hourly_reconnects:
        world.append(loop.create_task(flap()))
    await clock.advance(DAYS * DAY)
    for task in world:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    reconnects = manager.stats().reconnects_total
    await manager.stop()
    return Week(people, calls, len(events), delivered[0], reconnects)


def report(name: str, result: Week) -> None:
    """One line per activity class, then the whole population."""
    people, calls = result.people, result.calls
    groups = {kind: [j for j, k in people.items() if k == kind] for kind in CLASSES}
    groups["all"] = list(people)
    for kind, members in groups.items():
        total = sum(calls[j] for j in members)
        per_day = total / len(members) / DAYS
        resubs = (total - len(members)) / len(members) / DAYS
        print(
            f"resubscription_calls run={name} class={kind} "
            f"{per_day:.3f} calls/contact/day "
            f"({resubs:.3f} excluding the first subscription; {len(members)} contacts)"
        )
    events, delivered = result.events, result.delivered
    print(
        f"resubscription_delivered run={name} {delivered / events:.1%} "
        f"({delivered}/{events} presence events; {result.reconnects} reconnects)"
    )


def tables() -> dict[str, str]:
    """docs/benchmarks.md: calls per contact per day and events delivered, both links."""
    rows = [
        "| Link | Class | Calls/contact/day | Excluding the first | Events delivered |",
        "|---|---|---|---|---|",
    ]

    async def _both() -> list[tuple[str, Week]]:
        return [
            ("stable", await simulate(hourly_reconnects=False)),
            ("hourly reconnects", await simulate(hourly_reconnects=True)),
        ]

    for name, week in asyncio.run(_both()):
        delivered = f"{week.delivered / week.events:.1%}"
        for kind in (*CLASSES, "all"):
            members = [j for j, k in week.people.items() if kind in ("all", k)]
            total = sum(week.calls[j] for j in members)
            rows.append(
                f"| {name} | {kind} | {total / len(members) / DAYS:.3f} "
                f"| {(total - len(members)) / len(members) / DAYS:.3f} | {delivered} |"
            )
    return {"resubscription": "\n".join(rows)}


async def main() -> None:
    """Both runs, then the naive baselines for comparison."""
    wall = time.perf_counter()
    stable = await simulate(hourly_reconnects=False)
    report("stable_link", stable)
    flapping = await simulate(hourly_reconnects=True)
    report("hourly_reconnects", flapping)
    smart = (sum(stable.calls.values()) - CONTACTS) / CONTACTS / DAYS
    for label, naive in (("everyone daily", 1.0), ("everyone at each hourly check", 24.0)):
        print(
            f"resubscription_saving baseline={label.replace(' ', '_')} "
            f"{1 - smart / naive:.1%} (naive {naive:.3f} calls/contact/day, "
            f"stable-link manager {smart:.3f} excluding the first subscription)"
        )
    print(f"resubscription wall_time {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
