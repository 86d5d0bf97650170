"""Silently ignored subscriptions are noticed, and the pace comes down, in simulated time."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import replace

import pytest

from custom_components.whatsapp_presence.manager import PRESETS, ManagerConfig, SubscriptionManager
from custom_components.whatsapp_presence.manager.adaptive import (
    CUT,
    MAX_RUN,
    MIN_HITS,
    AnswerWatch,
    _Class,
)

from .harness import jids
from .virtual_time import VirtualClock


class CeilingWhatsApp:
    """WhatsApp as the simulator models it: past ``ceiling`` subscriptions in a rolling minute
    it ignores them silently; an accepted one is answered with the contact's presence after
    0.3 s, unless the contact hides it."""

    def __init__(self, clock: VirtualClock, ceiling: int | None, hidden: set[str]) -> None:
        self.clock = clock
        self.ceiling = ceiling
        self.hidden = hidden
        self.accepted_at: deque[float] = deque()
        self.accepted: set[str] = set()
        self.ignored = 0
        self.manager: SubscriptionManager | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def subscribe(self, jid: str) -> None:
        now = self.clock.time()
        while self.accepted_at and self.accepted_at[0] <= now - 60:
            self.accepted_at.popleft()
        if self.ceiling is not None and len(self.accepted_at) >= self.ceiling:
            self.ignored += 1
            return
        self.accepted_at.append(now)
        self.accepted.add(jid)
        if jid not in self.hidden:
            task = asyncio.ensure_future(self._answer(jid))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _answer(self, jid: str) -> None:
        await self.clock.sleep(0.3)
        assert self.manager is not None
        self.manager.on_presence(jid, self.clock.time())


async def run(
    ceiling: int | None, *, adaptive: bool, hidden_share: float = 0.2, contacts: int = 1000
) -> tuple[CeilingWhatsApp, SubscriptionManager]:
    """The small preset (200 a minute) against a hidden ceiling: a first pass with no ceiling
    (every contact gets known), then a reconnect storm renewing everyone under the ceiling."""
    clock = VirtualClock()
    people = jids(contacts)
    hidden = set(people[: int(contacts * hidden_share)])
    whatsapp = CeilingWhatsApp(clock, ceiling, hidden)
    config = replace(ManagerConfig(batch=PRESETS["small"]), adaptive=adaptive)
    manager = SubscriptionManager(
        whatsapp.subscribe, config=config, clock=clock.time, sleep=clock.sleep
    )
    whatsapp.manager = manager
    manager.start()
    for jid in people[::-1]:  # hidden contacts last, as a group of strangers would be
        manager.queue(jid)
    whatsapp.ceiling = None
    manager.on_connected()
    await clock.advance(600)
    assert manager.stats().queue_length == 0
    whatsapp.accepted.clear()
    whatsapp.ceiling = ceiling
    manager.on_disconnected()
    manager.on_connected()
    await clock.advance(1800)
    await manager.stop()
    for task in list(whatsapp.tasks):
        task.cancel()
    return whatsapp, manager


async def test_a_hidden_ceiling_slows_the_pace_down() -> None:
    """Against a 150-a-minute ceiling the 200-a-minute preset backs off instead of piling up
    ignored subscriptions, and still gets every contact subscribed."""
    fixed, _ = await run(150, adaptive=False)
    adaptive, manager = await run(150, adaptive=True)
    assert adaptive.ignored * 4 < fixed.ignored
    assert manager.stats().subscribe_calls_total > 2000  # the ignored ones were renewed
    assert len(adaptive.accepted) >= 990


async def test_contacts_that_never_answer_do_not_slow_anything() -> None:
    """Half the contacts hide their presence and no ceiling is hit: the pace stays full."""
    whatsapp, manager = await run(None, adaptive=True, hidden_share=0.5)
    assert whatsapp.ignored == 0
    assert manager.stats().slowdown == 1
    # A block of 500 new contacts that never answer costs one probe run at most.
    assert 2000 <= manager.stats().subscribe_calls_total <= 2000 + MAX_RUN


def test_the_run_needed_follows_the_usual_answer_rate() -> None:
    """Rarely answered subscriptions need a longer silent run; too rare ones prove nothing."""
    often = _Class(rate=0.99, hits=50).needed()
    sometimes = _Class(rate=0.6, hits=50).needed()
    assert often is not None
    assert sometimes is not None
    assert often < sometimes <= MAX_RUN
    assert _Class(rate=0.05, hits=50).needed() is None  # a network that hardly answers
    assert _Class(rate=0.99, hits=MIN_HITS - 1).needed() is None  # not enough evidence yet


def _known(watch: AnswerWatch, count: int, at: float = 0.0) -> None:
    for index in range(count):
        watch.sent(f"known{index}", at)
        watch.answered(f"known{index}")


def test_strangers_do_not_keep_the_pace_down() -> None:
    """A block of new contacts that never answer looks like a limit for a moment: the pace
    drops, the run is subscribed again once as a probe, stays silent, and the cut is undone;
    the block is left out from then on."""
    watch = AnswerWatch(window=10)
    _known(watch, 100)
    requeued: list[str] = []
    now = 1.0
    queue = [f"stranger{index}" for index in range(500)]
    while queue:  # one call every 0.3 s, subscribing again what the watch hands back
        released = watch.resolve(now, share=200)
        requeued += released
        queue[:0] = released
        watch.sent(queue.pop(0), now)
        now += 0.3
    requeued += watch.resolve(now + 100, share=200)
    assert 0 < len(requeued) <= MAX_RUN  # one probe run, nothing else
    assert watch.pace == 1.0
    assert watch.slowdowns == 0
    for index in range(500):  # silent twice: no evidence from then on
        watch.sent(f"stranger{index}", 2000)
    assert watch.resolve(3000, share=200) == []
    assert watch.pace == 1.0


def test_an_answer_at_the_lower_pace_confirms_the_cut() -> None:
    """Known contacts go silent past the limit: the pace drops below the accepted calls of
    the minute before, the silent run is probed once the limit's window turned over, and
    its answer brings every ignored contact back."""
    watch = AnswerWatch(window=10)
    _known(watch, 100)
    _known(watch, 100, at=1)  # answered twice: judged as "again"
    for index in range(100):  # 60 answered in the first 30 s, then silence
        watch.sent(f"known{index}", 100 + index * 0.5)
        if index < 60:
            watch.answered(f"known{index}")
    assert watch.resolve(160, share=200) == []  # held while the limit's window turns over
    assert watch.pace < 1.0
    assert watch.pace == pytest.approx(CUT * 60 / 200)  # 60 accepted in the minute
    assert watch.reason == "ignored"
    probes = watch.resolve(191, share=200)
    assert len(probes) >= 3
    assert probes == [f"known{index}" for index in range(60, 60 + len(probes))]
    watch.sent("known60", 192)
    watch.answered("known60")
    rest = watch.resolve(193, share=200)
    assert set(rest) == {f"known{index}" for index in range(60 + len(probes), 100)}
    assert watch.pace < 1.0  # the cut stays: the limit was real


async def test_who_answers_survives_a_restart() -> None:
    """A restart renews every contact: what was learnt about who answers is kept for it."""
    clock = VirtualClock()
    people = jids(100)
    whatsapp = CeilingWhatsApp(clock, None, set())
    config = ManagerConfig(batch=PRESETS["small"])
    manager = SubscriptionManager(
        whatsapp.subscribe, config=config, clock=clock.time, sleep=clock.sleep
    )
    whatsapp.manager = manager
    manager.start()
    for jid in people:
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(120)
    manager.on_disconnected()
    manager.on_connected()  # a second pass: now the answers count
    await clock.advance(120)
    saved = manager.to_dict()
    await manager.stop()
    assert saved["answers"]["answering"] == sorted(people)
    assert saved["answers"]["classes"]["again"][1] == 100

    # After the restart WhatsApp ignores everything: the first pass is judged at once.
    whatsapp.ceiling = 0
    restarted = SubscriptionManager(
        whatsapp.subscribe, config=config, clock=clock.time, sleep=clock.sleep
    )
    whatsapp.manager = restarted
    restarted.restore(saved)
    restarted.start()
    for jid in people:
        restarted.queue(jid)
    restarted.on_connected()
    await clock.advance(120)
    assert restarted.stats().slowdown > 1
    await restarted.stop()
