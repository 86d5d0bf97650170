"""Account safety over a matrix of network models, in simulated time (seeded, deterministic).

Nobody outside WhatsApp knows its subscription limit, whether it answers an accepted
subscription, or how it punishes excess, so the pacing is measured against several models of
each (docs/rate-limiting.md, "Network models"). Every cell drives the real
``SubscriptionManager`` (virtual clock) against the simulator's own subscription rules
(``bridge.simulator.SubscriptionLimit``: a hidden ceiling per rolling minute, silently ignored
subscriptions beyond it, 100 ignored within 10 minutes = a one-hour temporary ban) and a
population of contacts whose presence changes on a seeded schedule. A ban reaches the manager
as the coordinator passes it on (link down, ``on_banned``, one preset slower).

Dimensions: answers on subscribe (always / visible: 60 % of contacts / never), ceiling per
minute (150 / 250 / 400 / none), link (stable / a reconnect every hour / a storm: a reconnect
every 2 minutes for the first hour / a Home Assistant restart 10 minutes in), population
(100 / 1,000 / 40,000) and phase (a fresh first pass, 3 simulated hours at most; a steady
week), every preset and custom at 300 a minute. Where the network never answers or has no
ceiling, the same cell also runs with adaptation off: the adaptive run must match it.

Run: ``scripts/run python benchmarks/matrix.py [--fast]``; ``scripts/bench`` runs it and
``scripts/bench --update-docs`` writes its tables into docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
import contextlib
from dataclasses import dataclass, replace
import heapq
import itertools
import multiprocessing
import os
from pathlib import Path
import random
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.whatsapp_presence.bridge.simulator import SubscriptionLimit
from custom_components.whatsapp_presence.manager import (
    PRESETS,
    BatchConfig,
    ManagerConfig,
    Priority,
    SubscriptionManager,
    SubscriptionPaused,
    preset_rate,
    slower_preset,
)
from tests.manager.virtual_time import VirtualClock

DAY = 86_400.0
START = 1_800_000_000.0 - 1_800_000_000.0 % DAY  # a midnight
PASS_HORIZON = 3 * 3600.0
WEEK = 7 * DAY
SAMPLE = 900.0
"""Seconds between two looks at what the user is shown against the truth."""
ANSWERS = ("always", "visible", "never")
CEILINGS = (150, 250, 400, None)
LINKS = ("stable", "hourly", "storm", "restart")
PRESET_NAMES = (*PRESETS, "custom300")
CUSTOM_300 = BatchConfig(batch_size=50, batch_delay=5.0, subscription_delay=0.1)
"""Custom pacing at 300 a minute, the most the options flow accepts."""
VISIBLE_SHARE = 0.6
CLASSES = {"active": 0.3, "occasional": 0.3, "quiet": 0.4}


@dataclass(frozen=True, slots=True)
class Cell:
    """One network model, population and pace."""

    phase: str
    contacts: int
    answers: str
    ceiling: int | None
    link: str
    preset: str
    adaptive: bool = True

    @property
    def label(self) -> str:
        """The cell's key=value form, as printed."""
        return (
            f"phase={self.phase} contacts={self.contacts} answers={self.answers} "
            f"ceiling={self.ceiling or 'none'} link={self.link} preset={self.preset} "
            f"adaptive={'on' if self.adaptive else 'off'}"
        )


@dataclass(frozen=True, slots=True)
class Result:
    """What one cell produced."""

    cell: Cell
    bans: int
    peak: int
    cap: int
    calls: int
    ignored: int
    delivered: float | None
    calls_per_day: float | None
    wrong: float | None
    unknown: float | None
    rate_after_10: float | None
    pass_minutes: float | None
    wall: float

    def line(self) -> str:
        """One line of figures for the cell."""

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{value:.1%}"

        def num(value: float | None, digits: int = 1) -> str:
            return "-" if value is None else f"{value:.{digits}f}"

        return (
            f"matrix {self.cell.label} bans={self.bans} peak60={self.peak}/{self.cap} "
            f"calls={self.calls} ignored={self.ignored} delivered={pct(self.delivered)} "
            f"calls_per_contact_day={num(self.calls_per_day, 2)} wrong={pct(self.wrong)} "
            f"unknown={pct(self.unknown)} rate_after_10min={num(self.rate_after_10)} "
            f"pass_min={num(self.pass_minutes)}"
        )


def _config(preset: str, adaptive: bool) -> ManagerConfig:
    if preset == "custom300":
        return ManagerConfig(batch=CUSTOM_300, max_per_minute=300, adaptive=adaptive)
    return ManagerConfig(batch=PRESETS[preset], adaptive=adaptive)


class World:
    """The simulated network around one manager: truth, answers, link, limit and ban."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell
        rng = random.Random(f"matrix/{cell.contacts}")
        self.jids = [f"1{i:09d}@s.whatsapp.net" for i in range(cell.contacts)]
        kinds = rng.choices(list(CLASSES), weights=list(CLASSES.values()), k=cell.contacts)
        self.kind = dict(zip(self.jids, kinds, strict=True))
        self.priority = {jid: rng.choice(list(Priority)) for jid in self.jids}
        answer_rng = random.Random(f"matrix/answers/{cell.contacts}")
        share = {"always": 1.0, "visible": VISIBLE_SHARE, "never": 0.0}[cell.answers]
        self.answers = {jid for jid in self.jids if answer_rng.random() < share}
        self.horizon = WEEK if cell.phase == "week" else PASS_HORIZON
        self.clock = VirtualClock(START)
        self.limit = SubscriptionLimit(cell.ceiling or 0, 60.0, 100, 600.0)
        self.truth: dict[str, bool] = dict.fromkeys(self.jids, False)
        self.shown: dict[str, bool] = {}
        self.live: dict[str, int] = {}
        self.epoch = 0
        self.up = False
        self.banned = False
        self.bans = 0
        self.calls = 0
        self.ignored = 0
        self.window: deque[float] = deque()
        self.peak = 0
        self.first_accepted: dict[str, float] = {}
        self.events = 0
        self.delivered = 0
        self.samples = 0
        self.wrong = 0
        self.unknown = 0
        self.config = _config(cell.preset, cell.adaptive)
        self.manager = self._new_manager()
        self.timeline: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()
        self._presence_schedule(rng)
        self._link_schedule()

    # --- schedule --------------------------------------------------------------------------

    def _at(self, when: float, kind: str, jid: str = "") -> None:
        heapq.heappush(self.timeline, (when, next(self._seq), kind, jid))

    def _presence_schedule(self, rng: random.Random) -> None:
        end = START + self.horizon
        for jid, kind in self.kind.items():
            if kind == "quiet":
                continue
            mean_gap = 45 * 60.0 if kind == "active" else 36 * 3600.0
            t = START + rng.expovariate(1 / mean_gap)
            while t < end:
                hour = (t - START) % DAY / 3600
                if kind != "active" or 7 <= hour < 23:
                    self._at(t, "flip", jid)
                t += rng.expovariate(1 / mean_gap)
        t = START + SAMPLE
        while t < end and self.cell.phase == "week":
            self._at(t, "sample")
            t += SAMPLE

    def _link_schedule(self) -> None:
        link, end = self.cell.link, START + self.horizon
        if link == "hourly":
            t = START + 3600 - 10
            while t < end:
                self._at(t, "down")
                self._at(t + 10, "up")
                t += 3600
        elif link == "storm":
            for minute in range(2, 62, 2):
                self._at(START + minute * 60 - 5, "down")
                self._at(START + minute * 60, "up")
        elif link == "restart":
            self._at(START + 600, "restart")

    # --- the network -----------------------------------------------------------------------

    def _new_manager(self, saved: dict[str, object] | None = None) -> SubscriptionManager:
        manager = SubscriptionManager(
            self.subscribe, config=self.config, clock=self.clock.time, sleep=self.clock.sleep
        )
        if saved is not None:
            manager.restore(saved)
        for jid in self.jids:
            manager.queue(jid, self.priority[jid])
        return manager

    async def subscribe(self, jid: str) -> None:
        """What WhatsApp does with one subscription under this cell's model."""
        if not self.up:
            raise SubscriptionPaused
        now = self.clock.time()
        self.calls += 1
        window = self.window
        window.append(now)
        while window[0] <= now - 60.0:
            window.popleft()
        self.peak = max(self.peak, len(window))
        admitted = self.limit.admit(now)
        if not admitted:
            self.ignored += 1
            if admitted is None:
                self._ban(now)
            return
        self.live[jid] = self.epoch
        self.first_accepted.setdefault(jid, now)
        if jid in self.answers:
            asyncio.get_running_loop().call_soon(self._answer, jid, self.epoch)

    def _answer(self, jid: str, epoch: int) -> None:
        if self.up and epoch == self.epoch:
            self.shown[jid] = self.truth[jid]
            self.manager.on_presence(jid, self.clock.time(), self.truth[jid])

    def _ban(self, now: float) -> None:
        """As the coordinator handles ``temporary_ban``: link down, slower, one preset down."""
        self.bans += 1
        self.banned = True
        self._down()
        self.manager.on_banned()
        slower = slower_preset(self.manager.config.batch)
        if slower is not None:
            self.manager.update_config(replace(self.manager.config, batch=slower))
            self.config = self.manager.config
        self._at(now + 3600.0, "unban")

    def _down(self) -> None:
        if self.up:
            self.up = False
            self.epoch += 1
            asyncio.get_running_loop().call_soon(self.manager.on_disconnected)

    def _up(self) -> None:
        if not self.up and not self.banned:
            self.up = True
            self.epoch += 1
            self.manager.on_connected()

    def _flip(self, jid: str) -> None:
        self.truth[jid] = not self.truth[jid]
        self.events += 1
        if self.up and self.live.get(jid) == self.epoch:
            self.delivered += 1
            self.shown[jid] = self.truth[jid]
            self.manager.on_presence(jid, self.clock.time(), self.truth[jid])

    def _sample(self) -> None:
        now = self.clock.time()
        self.samples += 1
        for jid, shown in self.shown.items():
            if not self.manager.trusted(jid, now):
                self.unknown += 1
            elif shown != self.truth[jid]:
                self.wrong += 1

    async def _restart(self) -> None:
        saved = self.manager.to_dict()
        await self.manager.stop()
        self._down()
        await self.clock.sleep(30)
        self.manager = self._new_manager(saved)
        self.manager.start()
        self._up()

    async def run(self) -> Result:
        """Play the timeline to the horizon."""
        wall = time.perf_counter()
        self.manager.start()
        self._up()
        end = START + self.horizon
        driver = asyncio.get_running_loop().create_task(self._drive(end))
        await self.clock.advance_to(end)
        driver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driver
        await self.manager.stop()
        return self._result(time.perf_counter() - wall)

    async def _drive(self, end: float) -> None:
        while self.timeline:
            when, _, kind, jid = heapq.heappop(self.timeline)
            if when > end:
                return
            if when > self.clock.time():
                await self.clock.sleep(when - self.clock.time())
            if kind == "flip":
                self._flip(jid)
            elif kind == "sample":
                self._sample()
            elif kind == "down":
                self._down()
            elif kind == "up":
                self._up()
            elif kind == "unban":
                self.banned = False
                self.limit.clear()
                self._up()
            elif kind == "restart":
                await self._restart()

    def _result(self, wall: float) -> Result:
        cell, contacts = self.cell, self.cell.contacts
        week = cell.phase == "week"
        accepted = sorted(self.first_accepted.values())
        done = len(accepted) == contacts
        pass_end = accepted[-1] if done else START + self.horizon
        rate10 = None
        if not week and pass_end - START >= 1200:  # a pass this short has no steady rate
            later = sum(1 for t in accepted if t >= START + 600)
            rate10 = later / ((pass_end - START - 600) / 60)
        seen = self.samples * contacts
        return Result(
            cell=cell,
            bans=self.bans,
            peak=self.peak,
            cap=_config(cell.preset, cell.adaptive).max_per_minute,
            calls=self.calls,
            ignored=self.ignored,
            delivered=self.delivered / self.events if week and self.events else None,
            calls_per_day=self.calls / contacts / 7 if week else None,
            wrong=self.wrong / seen if week and seen else None,
            unknown=self.unknown / seen if week and seen else None,
            rate_after_10=rate10,
            pass_minutes=(pass_end - START) / 60 if done and not week else None,
            wall=wall,
        )


def run_cell(cell: Cell) -> Result:
    """One cell in a fresh event loop (picklable, for the process pool)."""
    return asyncio.run(World(cell).run())


def cells(fast: bool = False) -> list[Cell]:
    """The matrix, cheapest cells first; ``fast``: the subset the docs test regenerates."""
    if fast:
        return [
            Cell("first_pass", 1000, answers, 150, "stable", "small", adaptive)
            for answers in ANSWERS
            for adaptive in (True, False)
        ] + [
            Cell("week", 100, answers, None, "hourly", "medium", adaptive)
            for answers in ("visible", "never")
            for adaptive in (True, False)
        ]
    out: list[Cell] = []
    for phase, contacts, links, presets in (
        ("first_pass", 100, ("stable",), PRESET_NAMES),
        ("first_pass", 1000, LINKS, PRESET_NAMES),
        ("first_pass", 40_000, ("stable", "restart"), PRESET_NAMES),
        ("week", 100, LINKS, PRESET_NAMES),
        ("week", 1000, LINKS, ("medium",)),
    ):
        for answers, ceiling, link, preset in itertools.product(ANSWERS, CEILINGS, links, presets):
            out.append(Cell(phase, contacts, answers, ceiling, link, preset))
            if answers == "never" or ceiling is None:
                out.append(Cell(phase, contacts, answers, ceiling, link, preset, False))
    return sorted(out, key=lambda cell: -COST.get((cell.phase, cell.contacts), 1))


COST = {("week", 1000): 30, ("first_pass", 40_000): 10, ("week", 100): 3}
"""Rough relative cost, so the slowest cells start first and the pool ends together."""


def run_all(todo: Iterable[Cell], workers: int | None = None) -> list[Result]:
    """Every cell, on every core (results in the order given)."""
    todo = list(todo)
    workers = workers or min(len(todo), os.cpu_count() or 1)
    if workers <= 1:
        return [run_cell(cell) for cell in todo]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(run_cell, todo, chunksize=1)


# --- targets and tables ----------------------------------------------------------------------

REACHABLE = 120.0
"""Contacts a minute to reach at a ceiling of 150 (80 %), for presets at least that fast."""


def _rate(preset: str) -> float:
    return 300.0 if preset == "custom300" else min(200.0, preset_rate(PRESETS[preset]))


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 0.01 * max(abs(b), 1e-9)


def targets(results: list[Result]) -> list[tuple[str, list[Result], list[Result], str]]:
    """(target, cells judged, cells missing it, worst figure) for every target of the issue."""
    on = [r for r in results if r.cell.adaptive]
    off = {replace(r.cell, adaptive=True): r for r in results if not r.cell.adaptive}
    out: list[tuple[str, list[Result], list[Result], str]] = []

    judged = on
    missed = [r for r in judged if r.bans]
    out.append(("zero temporary bans", judged, missed, f"{max(r.bans for r in judged)} bans"))

    judged = results
    missed = [r for r in judged if r.peak > r.cap]
    worst = max(judged, key=lambda r: r.peak / r.cap)
    out.append(("calls in any 60 s <= the cap", judged, missed, f"{worst.peak}/{worst.cap}"))

    # A ban is answered by halving the pace: that is the reaction, not a misfire.
    pairs = [(r, off[r.cell]) for r in on if r.cell in off and not (r.bans or off[r.cell].bans)]
    judged = [r for r, _ in pairs]
    missed = [
        r
        for r, base in pairs
        if not (
            _close(r.calls, base.calls)
            and _close(r.delivered, base.delivered)
            and _close(r.pass_minutes, base.pass_minutes)
        )
    ]
    worst_calls = max((abs(r.calls - b.calls) / max(b.calls, 1) for r, b in pairs), default=0.0)
    out.append(
        (
            "no misfire: never answers / no ceiling (no ban) within 1 % of adaptation off",
            judged,
            missed,
            f"calls {worst_calls:+.1%}",
        )
    )

    judged = [
        r
        for r in on
        if r.cell.ceiling == 150
        and r.cell.phase == "first_pass"
        and r.rate_after_10 is not None
        and _rate(r.cell.preset) >= REACHABLE
    ]
    missed = [r for r in judged if (r.rate_after_10 or 0.0) < REACHABLE]
    low = min((r.rate_after_10 or 0.0 for r in judged), default=0.0)
    out.append(
        (">= 120 contacts/min after 10 min at a ceiling of 150", judged, missed, f"{low:.1f}/min")
    )

    hourly = [r for r in on if r.cell.phase == "week" and r.cell.link == "hourly"]
    missed = [r for r in hourly if (r.delivered or 0.0) < 0.95]
    low = min((r.delivered or 0.0 for r in hourly), default=0.0)
    out.append(("hourly reconnects: >= 95 % of events delivered", hourly, missed, f"{low:.1%}"))
    missed = [r for r in hourly if (r.calls_per_day or 0.0) > 24.5]
    high = max((r.calls_per_day or 0.0 for r in hourly), default=0.0)
    out.append(("hourly reconnects: <= 24.5 calls/contact/day", hourly, missed, f"{high:.2f}"))
    missed = [r for r in hourly if (r.wrong or 0.0) > 0.01]
    high = max((r.wrong or 0.0 for r in hourly), default=0.0)
    out.append(("hourly reconnects: shown state wrong <= 1 %", hourly, missed, f"{high:.2%}"))
    return out


def _short(cell: Cell) -> str:
    return (
        f"{cell.phase} {cell.contacts} {cell.answers} {cell.ceiling or 'none'} "
        f"{cell.link} {cell.preset}"
    )


def targets_table(results: list[Result]) -> str:
    """One row per target: cells judged, missed, the worst figure, examples of misses."""
    rows = [
        "| Target | Cells | Missed | Worst | Examples of misses (phase contacts answers ceiling link preset) |",
        "|---|---|---|---|---|",
    ]
    for name, judged, missed, worst in targets(results):
        examples = "; ".join(_short(r.cell) for r in missed[:3])
        more = f" (+{len(missed) - 3})" if len(missed) > 3 else ""
        rows.append(f"| {name} | {len(judged)} | {len(missed)} | {worst} | {examples}{more} |")
    return "\n".join(rows)


def summary_table(results: list[Result]) -> str:
    """Adaptive cells grouped by phase, population, answers and ceiling (links and presets)."""
    groups: dict[tuple[str, int, str, str], list[Result]] = {}
    for r in results:
        if r.cell.adaptive:
            key = (r.cell.phase, r.cell.contacts, r.cell.answers, str(r.cell.ceiling or "none"))
            groups.setdefault(key, []).append(r)
    rows = [
        "| Phase | Contacts | Answers | Ceiling | Cells | With bans | Peak/cap | Min rate after 10 min (presets >= 120/min) | Min delivered | Max calls/contact/day | Max wrong | Max unknown |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def low(values: list[float | None], fmt: str) -> str:
        found = [v for v in values if v is not None]
        return format(min(found), fmt) if found else "-"

    def high(values: list[float | None], fmt: str) -> str:
        found = [v for v in values if v is not None]
        return format(max(found), fmt) if found else "-"

    for (phase, contacts, answers, ceiling), group in sorted(
        groups.items(), key=lambda item: (item[0][0], item[0][1], ANSWERS.index(item[0][2]))
    ):
        peak = max(group, key=lambda r: r.peak / r.cap)
        rows.append(
            f"| {phase} | {contacts:,} | {answers} | {ceiling} | {len(group)} "
            f"| {sum(1 for r in group if r.bans)} | {peak.peak}/{peak.cap} "
            f"| {low([r.rate_after_10 for r in group if _rate(r.cell.preset) >= REACHABLE], '.1f')} "
            f"| {low([r.delivered for r in group], '.1%')} "
            f"| {high([r.calls_per_day for r in group], '.2f')} "
            f"| {high([r.wrong for r in group], '.2%')} "
            f"| {high([r.unknown for r in group], '.1%')} |"
        )
    return "\n".join(rows)


def cells_table(results: list[Result]) -> str:
    """One row per cell (for the fast subset)."""
    rows = [
        "| Cell | Adaptive | Bans | Peak/cap | Calls | Ignored | Pass (min) | Delivered | Calls/contact/day | Wrong | Unknown |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c = r.cell

        def fmt(value: float | None, spec: str) -> str:
            return "-" if value is None else format(value, spec)

        rows.append(
            f"| {_short(c)} | {'on' if c.adaptive else 'off'} | {r.bans} | {r.peak}/{r.cap} "
            f"| {r.calls} | {r.ignored} | {fmt(r.pass_minutes, '.1f')} "
            f"| {fmt(r.delivered, '.1%')} | {fmt(r.calls_per_day, '.2f')} "
            f"| {fmt(r.wrong, '.2%')} | {fmt(r.unknown, '.1%')} |"
        )
    return "\n".join(rows)


def fast_tables() -> dict[str, str]:
    """The fast subset's table (tests/test_bench_docs.py regenerates it)."""
    return {"matrix-fast": cells_table(run_all(cells(fast=True), workers=1))}


def tables() -> dict[str, str]:
    """Every matrix table of docs/benchmarks.md (runs the whole matrix)."""
    results = run_all(cells())
    return {
        "matrix-targets": targets_table(results),
        "matrix-summary": summary_table(results),
        **fast_tables(),
    }


if __name__ == "__main__":
    started = time.perf_counter()
    results = run_all(cells(fast="--fast" in sys.argv))
    results.sort(key=lambda result: result.cell.label)
    for result in results:
        print(result.line())
    print(f"matrix wall_time {time.perf_counter() - started:.1f} s ({len(results)} cells)")
