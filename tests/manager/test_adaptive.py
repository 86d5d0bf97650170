"""Silently ignored subscriptions are noticed, and the pace comes down, in simulated time."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import replace

from custom_components.whatsapp_presence.manager import PRESETS, ManagerConfig, SubscriptionManager
from custom_components.whatsapp_presence.manager.adaptive import AnswerWatch

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
    assert manager.stats().subscribe_calls_total == 2000


def test_the_run_needed_follows_the_usual_answer_rate() -> None:
    """Rarely answered subscriptions need a longer silent run before anything is concluded."""
    watch = AnswerWatch(window=10)
    people = [str(index) for index in range(60)]
    for jid in people:  # everyone answers once: all known
        watch.sent(jid, 0)
        watch.answered(jid)
    for jid in people[:40]:
        watch.sent(jid, 1)
        watch.answered(jid)
    often = watch.run_needed()
    for index, jid in enumerate(people):  # now only one in three answers, scattered
        watch.sent(jid, 2)
        if index % 3 == 0:
            watch.answered(jid)
        assert watch.resolve(2 + 10 * (index + 1)) == []
    assert watch.run_needed() > often


def test_strangers_never_count() -> None:
    """Contacts that never answered are no evidence, however many stay silent."""
    watch = AnswerWatch(window=10)
    for index in range(100):
        watch.sent(f"known{index}", 0)
        watch.answered(f"known{index}")
        watch.sent(f"known{index}", 1)
        watch.answered(f"known{index}")
    for index in range(500):
        watch.sent(f"stranger{index}", 2)
    assert watch.resolve(100) == []
    assert watch.factor == 1
    for index in range(5):
        watch.sent(f"known{index}", 200)
    assert watch.resolve(300) == ["known0", "known1", "known2"]
    assert watch.factor == 2


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
    assert saved["answers"]["hits"] == 100

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
