"""What each availability mode costs in freshness, on both models of WhatsApp's behaviour.

The real subscription manager subscribes to the real simulated network (seeded; chatty and
quiet contacts, random disconnects, the hidden ceiling) for one simulated day, while the
linked device is online as each mode says: *always*; *schedule* 08:00-22:00; *sampling* 30 s
every 5 min. Switching follows the integration's order: off pauses the manager, then marks the
device unavailable; on marks it available, then resumes the manager (contacts not heard from
are renewed, paced). When the device becomes available again the simulated WhatsApp either
resends every subscribed contact's presence (*resend*) or only sends later changes
(*changes*); which one WhatsApp does is not known here, so both are measured.

Figures, per mode and model, all in simulated time:

* age of the shown presence: for each contact every 10 s, how long ago the integration last
  had live knowledge of it (0 while the device is online and the contact's state was
  received); median and 95th percentile;
* online periods missed: the share of the contacts' online periods during which the
  integration never saw the contact online;
* account looks online: the share of the day the linked device was available (the phone's
  notifications are silenced meanwhile);
* subscribe calls per contact per day.

Run: ``scripts/run python benchmarks/availability.py`` (prints the figures, then the table);
``tables()`` returns the markdown table for docs/benchmarks.md and the README.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.whatsapp_presence.bridge.clock import ManualClock
from custom_components.whatsapp_presence.bridge.protocol import (
    BridgeError,
    BridgeEvent,
    Connected,
    Disconnected,
    ErrorCode,
    Presence,
)
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend, SimulatorConfig
from custom_components.whatsapp_presence.manager import (
    ManagerConfig,
    SubscriptionManager,
    SubscriptionPaused,
)
from tests.manager.virtual_time import VirtualClock

CONTACTS = 40
DAY = 86_400.0
MIDNIGHT = 1_800_000_000.0 - 1_800_000_000.0 % DAY  # UTC, so 08:00 means something
START = MIDNIGHT + 8 * 3600.0  # 08:00 to 08:00: the whole night is measured
STEP = 1.0
SAMPLE_EVERY = 10.0
MODELS = ("resend", "changes")


def _always(_t: float) -> bool:
    return True


def _schedule(t: float) -> bool:
    return 8 <= (t - MIDNIGHT) % 86_400.0 / 3600 < 22


def _sampling(t: float) -> bool:
    return (t - START) % 300.0 < 30.0


MODES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "always": ("Always", _always),
    "schedule": ("Schedule 08:00-22:00", _schedule),
    "sampling": ("Sampling 30 s / 5 min", _sampling),
}


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Run:
    """One simulated day of one mode on one model."""

    wanted: Callable[[float], bool]
    model: str
    backend: SimulatorBackend = field(init=False)
    manager: SubscriptionManager = field(init=False)
    clock: VirtualClock = field(init=False)
    on: bool = False
    connected: bool = False
    heard: set[str] = field(default_factory=set)
    """Contacts whose state arrived since the device last became available."""
    last_live: dict[str, float] = field(default_factory=dict)
    period_start: dict[str, float] = field(default_factory=dict)
    """Contacts online now (in truth), and since when."""
    seen_online: dict[str, float] = field(default_factory=dict)
    """When the integration last received 'online' for each contact."""
    periods: int = 0
    missed: int = 0
    ages: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        """The simulated network and a manager with default settings, on one timeline."""
        self.clock = VirtualClock(START)
        self.sim_clock = ManualClock(start=START)
        config = SimulatorConfig(
            seed=11,
            contacts=CONTACTS,
            groups=0,
            manual_clock=True,
            start_time=START,
            paired=True,
            connect_delay=0.0,
            unresponsive_fraction=0.0,
            on_available=self.model,
        )
        self.backend = SimulatorBackend(self._on_event, config, clock=self.sim_clock)
        self.manager = SubscriptionManager(
            self._subscribe, config=ManagerConfig(), clock=self.clock.time, sleep=self.clock.sleep
        )

    async def _subscribe(self, jid: str) -> None:
        try:
            await self.backend.subscribe_presence(jid)
        except BridgeError as err:
            if err.code in (ErrorCode.NOT_CONNECTED, ErrorCode.TEMPORARILY_BANNED):
                raise SubscriptionPaused from err
            raise

    def _on_event(self, event: BridgeEvent) -> None:
        if isinstance(event, Presence):
            jid = event.jid
            self.heard.add(jid)
            self.manager.on_presence(jid, self.clock.time())
            if event.online:
                self.seen_online[jid] = self.clock.time()
        elif isinstance(event, Connected):
            self.connected = True
            self.heard.clear()
            asyncio.get_running_loop().create_task(self._on_connected())
        elif isinstance(event, Disconnected):
            self.connected = False
            self.heard.clear()
            self.manager.on_disconnected()

    async def _on_connected(self) -> None:
        await self.backend.set_available(self.on)
        self.manager.on_connected()

    async def _switch(self, on: bool) -> None:
        self.on = on
        if not on:
            self.manager.pause()
            self.heard.clear()
        if self.connected:
            await self.backend.set_available(on)
        if on:
            self.manager.resume()

    def _observe(self, now: float, truth: dict[str, bool]) -> None:
        for jid, online in truth.items():
            start = self.period_start.get(jid)
            if online and start is None:
                self.period_start[jid] = now - STEP  # it began within the last step
            elif not online and start is not None:
                self.periods += 1
                self.missed += self.seen_online.get(jid, -1.0) < start
                del self.period_start[jid]
            live = self.on and self.connected and jid in self.heard
            if live:
                self.last_live[jid] = now
            if jid in self.last_live and (now - START) % SAMPLE_EVERY < STEP:
                self.ages.append(now - self.last_live[jid])

    async def run(self) -> dict[str, float]:
        """Simulate the day; the figures."""
        self.on = self.wanted(START)
        if not self.on:
            self.manager.pause()
        await self.backend.start()
        self.manager.start()
        for contact in await self.backend.contacts():
            self.manager.queue(contact["jid"])
        steps = int(DAY / STEP)
        for i in range(steps):
            now = START + i * STEP
            wanted = self.wanted(now)
            if wanted != self.on:
                await self._switch(wanted)
            await self.clock.advance(STEP)
            self.sim_clock.advance(STEP)
            await self.clock.settle()
            truth = {c["jid"]: c["online"] for c in await self.backend.command("sim.contacts", {})}
            self._observe(now + STEP, truth)
        stats = self.backend.stats()
        await self.manager.stop()
        await self.backend.stop()
        return {
            "age_median_s": percentile(self.ages, 0.5),
            "age_p95_s": percentile(self.ages, 0.95),
            "missed_share": self.missed / max(1, self.periods),
            "online_share": stats["available_seconds"] / DAY,
            "calls_per_contact_day": stats["subscribe_calls"] / CONTACTS,
            "periods": float(self.periods),
        }


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


async def measure() -> dict[tuple[str, str], dict[str, float]]:
    """Every mode on every model."""
    results = {}
    for mode, (_, wanted) in MODES.items():
        for model in MODELS:
            results[mode, model] = await Run(wanted, model).run()
    return results


def render(results: dict[tuple[str, str], dict[str, float]]) -> str:
    """The markdown table of the results."""
    lines = [
        (
            "| Mode | WhatsApp on availability | Age of shown presence, median | p95 "
            "| Online periods missed | Account looks online | Subscribe calls per contact per day |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (mode, model), r in results.items():
        lines.append(
            f"| {MODES[mode][0]} | {'resends presence' if model == 'resend' else 'only changes'} "
            f"| {_duration(r['age_median_s'])} | {_duration(r['age_p95_s'])} "
            f"| {100 * r['missed_share']:.0f} % | {100 * r['online_share']:.0f} % "
            f"| {r['calls_per_contact_day']:.1f} |"
        )
    return "\n".join(lines)


def tables() -> dict[str, str]:
    """NAME -> markdown table, for the docs updater."""
    return {"availability": render(asyncio.run(measure()))}


def main() -> None:
    """One line per figure, then the table."""
    results = asyncio.run(measure())
    for (mode, model), r in results.items():
        for key, value in r.items():
            print(f"availability_{key} mode={mode} model={model} {value:.4g}")
    print(render(results))


if __name__ == "__main__":
    main()
