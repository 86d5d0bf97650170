"""Property tests: random queue/remove/fail/presence/reconnect sequences in simulated time.

Checked on every run: pacing (spacing, batch window, global cap) is never exceeded in any
window; nothing waiting has a better place than the contact being subscribed; backoff
delays follow the table and fail counts only reset on success; the manager's counters agree
with its contacts; and once the link is up and WhatsApp accepts everything, every tracked
contact is subscribed exactly once: none lost, none duplicated.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
import itertools

from hypothesis import HealthCheck, event, given, settings, strategies as st

from custom_components.whatsapp_presence.manager import (
    BatchConfig,
    ContactInfo,
    ContactState,
    ManagerConfig,
    SubscriptionManager,
    SubscriptionPaused,
)

from .virtual_time import VirtualClock

JIDS = [f"p{i}@s.whatsapp.net" for i in range(8)]
WAITING = (ContactState.QUEUED, ContactState.STALE)
SLACK = 1e-6

configs = st.builds(
    ManagerConfig,
    batch=st.builds(
        BatchConfig,
        batch_size=st.integers(1, 5),
        batch_delay=st.sampled_from([0.0, 1.0, 5.0]),
        subscription_delay=st.sampled_from([0.0, 0.2, 1.0]),
    ),
    max_per_minute=st.sampled_from([1, 3, 7, 200]),
    resubscribe_after=st.sampled_from([None, 600.0, 600.0, 86400.0]),
    health_check_interval=st.sampled_from([60.0, 3600.0]),
    base_backoff=st.just(120.0),
    max_backoff=st.sampled_from([600.0, 3600.0, 3600.0]),
)

jid_index = st.integers(0, len(JIDS) - 1)
queue_op = st.tuples(st.just("queue"), jid_index, st.integers(1, 3))
advance_op = st.tuples(
    st.just("advance"), st.sampled_from([0.1, 0.5, 1.0, 7.0, 65.0, 700.0, 4000.0])
)
random_op = st.one_of(
    queue_op,
    advance_op,
    advance_op,
    advance_op,
    advance_op,
    st.tuples(st.just("remove"), jid_index),
    st.tuples(st.just("fail"), jid_index, st.booleans()),
    st.tuples(st.just("fail"), jid_index, st.just(True)),
    st.tuples(st.just("presence"), jid_index),
    st.tuples(st.just("presence_all")),
    st.tuples(st.just("resubscribe"), st.one_of(st.none(), jid_index)),
    st.tuples(st.just("connect")),
    st.tuples(st.just("disconnect")),
    st.tuples(st.just("link_drops")),
    st.tuples(st.just("health"), st.booleans()),
)
# A few contacts, the link up, then anything: keeps most examples doing real work.
operations = st.builds(
    lambda setup, rest: [
        *(step for op in setup for step in (op, ("advance", 0.01))),  # distinct queue times
        ("connect",),
        *rest,
    ],
    st.lists(queue_op, min_size=1, max_size=8),
    st.lists(random_op, min_size=10, max_size=60),
)


@dataclass
class World:
    """The fake WhatsApp side plus everything the checks need to remember."""

    clock: VirtualClock
    config: ManagerConfig
    latency: float
    manager: SubscriptionManager | None = None
    calls: list[tuple[float, str]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    link_down: bool = False
    queued_at: dict[str, float | None] = field(default_factory=dict)
    earliest: dict[str, float] = field(default_factory=dict)
    fail_counts: dict[str, int] = field(default_factory=dict)
    subscribed_at: dict[str, float | None] = field(default_factory=dict)
    outcome_failures: int = 0
    errors: list[AssertionError] = field(default_factory=list)

    async def subscribe(self, jid: str) -> None:
        """Check ordering at the moment of the call, then answer like WhatsApp would."""
        now = self.clock.time()
        assert self.manager is not None
        self.check_call(jid, now)
        self.calls.append((now, jid))
        if self.latency:
            await self.clock.sleep(self.latency)
        if self.link_down:
            raise SubscriptionPaused
        if jid in self.failing:
            raise ConnectionError("rejected")

    def check_call(self, jid: str, now: float) -> None:
        """Pacing, priority, FIFO and backoff, at the instant a call starts."""
        assert self.manager is not None
        batch = self.config.batch
        if self.calls:
            assert now - self.calls[-1][0] >= batch.subscription_delay + self.latency - SLACK
        in_cycle = sum(1 for t, _ in self.calls if t > now - batch.cycle + SLACK)
        assert in_cycle + 1 <= batch.batch_size
        in_minute = sum(1 for t, _ in self.calls if t > now - 60.0 + SLACK)
        assert in_minute + 1 <= self.config.max_per_minute
        assert now >= self.earliest.get(jid, -1.0) - SLACK, "retried before its backoff ended"
        called = self.manager.contact(jid)
        assert called is not None
        assert called.state is ContactState.SUBSCRIBING
        called_at = self.queued_at.get(jid)
        assert called_at is not None
        for other in self.manager.contacts():
            if other.state in WAITING:
                assert other.priority >= called.priority, "a better priority was waiting"
                if other.priority == called.priority:
                    assert other.queued_at is not None
                    assert other.queued_at >= called_at - SLACK, "FIFO broken"

    def on_change(self, jid: str | None) -> None:
        """Listener: the manager logs and swallows listener errors, so keep them for the test."""
        try:
            self.check_change(jid)
        except AssertionError as err:
            self.errors.append(err)

    def check_change(self, jid: str | None) -> None:
        """Remember queue entry times; check backoff and fail counts on transitions."""
        assert self.manager is not None
        infos = self.manager.contacts() if jid is None else [self.manager.contact(jid)]
        for info in infos:
            if info is not None:
                self.observe(info)

    def observe(self, info: ContactInfo) -> None:
        """Bookkeeping for one contact snapshot."""
        if info.state in WAITING:
            self.queued_at[info.jid] = info.queued_at
        previous = self.fail_counts.get(info.jid, 0)
        if info.state is ContactState.BACKOFF and info.fail_count != previous:
            assert info.fail_count == previous + 1
            assert info.next_retry is not None
            # The table, written out independently of the code under test.
            expected = min(
                self.config.base_backoff * 2 ** (info.fail_count - 1), self.config.max_backoff
            )
            assert abs(info.next_retry - (self.clock.time() + expected)) < SLACK
            self.earliest[info.jid] = info.next_retry
            self.outcome_failures += 1
            if info.fail_count >= 6 and self.config.max_backoff >= 3600:
                event("six failures in a row, up to the 60 min cap")
        if info.state is ContactState.SUBSCRIBED:
            assert info.fail_count == 0
        if info.fail_count < previous:  # only a success resets the count, and only to 0
            assert info.fail_count == 0
            assert info.last_subscribed is not None
            assert info.last_subscribed != self.subscribed_at.get(info.jid)
        self.fail_counts[info.jid] = info.fail_count
        self.subscribed_at[info.jid] = info.last_subscribed


def check_consistency(manager: SubscriptionManager) -> None:
    """Counters, queue and retry heaps agree with the contacts."""
    infos = manager.contacts()
    stats = manager.stats()
    by_state = {state: sum(1 for i in infos if i.state is state) for state in ContactState}
    assert stats.tracked == len(infos) == len({i.jid for i in infos})
    assert stats.active == by_state[ContactState.SUBSCRIBED]
    assert stats.stale == by_state[ContactState.STALE]
    assert stats.in_backoff == by_state[ContactState.BACKOFF]
    assert stats.queue_length == by_state[ContactState.QUEUED] + by_state[ContactState.STALE]
    assert stats.failed == sum(1 for i in infos if i.fail_count)
    retries = [i.next_retry for i in infos if i.next_retry is not None]
    assert stats.next_retry == (min(retries) if retries else None)
    live = {
        (prio, seq, jid)
        for prio, seq, jid in manager._queue
        if (c := manager._contacts.get(jid)) is not None and c.qkey == (prio, seq)
    }
    assert sorted(jid for _, _, jid in live) == sorted(i.jid for i in infos if i.state in WAITING)
    for info in infos:
        assert (info.state in WAITING) == (info.queued_at is not None)
        assert (info.state is ContactState.BACKOFF) == (info.next_retry is not None)


async def scenario(config: ManagerConfig, latency: float, ops: list[tuple[object, ...]]) -> None:
    clock = VirtualClock()
    world = World(clock, config, latency)
    manager = SubscriptionManager(
        world.subscribe, config=config, clock=clock.time, sleep=clock.sleep
    )
    world.manager = manager
    manager.add_listener(world.on_change)
    manager.start()
    tracked: set[str] = set()
    try:
        for op in ops:
            match op:
                case ("queue", int(i), int(prio)):
                    manager.queue(JIDS[i], prio)
                    tracked.add(JIDS[i])
                case ("remove", int(i)):
                    manager.remove(JIDS[i])
                    tracked.discard(JIDS[i])
                    world.earliest.pop(JIDS[i], None)
                    world.fail_counts.pop(JIDS[i], None)
                    world.subscribed_at.pop(JIDS[i], None)
                case ("fail", int(i), bool(on)):
                    (world.failing.add if on else world.failing.discard)(JIDS[i])
                case ("presence", int(i)):
                    manager.on_presence(JIDS[i], clock.time())
                case ("presence_all",):
                    for jid in JIDS:
                        manager.on_presence(jid, clock.time())
                case ("resubscribe", target):
                    manager.resubscribe(None if target is None else JIDS[int(str(target))])
                    if target is not None:
                        world.earliest.pop(JIDS[int(str(target))], None)
                case ("connect",):
                    world.link_down = False
                    manager.on_connected()
                case ("disconnect",):
                    manager.on_disconnected()
                case ("link_drops",):
                    world.link_down = True
                case ("health", bool(speak_up)):
                    manager.check_health()
                    if speak_up:  # events arrive in the same instant, before the worker runs
                        if manager.stats().stale:
                            event("a stale contact speaks up")
                        for jid in JIDS:
                            manager.on_presence(jid, clock.time())
                case ("advance", float(seconds)):
                    await clock.advance(seconds)
            await clock.settle()
            check_consistency(manager)
            if world.errors:
                raise world.errors[0]

        # Final phase: the link is up, WhatsApp accepts everything. Staleness is switched
        # off so that every call in the drain below must come from the final reconnect.
        manager.update_config(replace(config, resubscribe_after=None))
        world.failing.clear()
        world.link_down = False
        await clock.settle()
        manager.on_connected()
        calls_before = len(world.calls)
        drain = len(JIDS) * (config.batch.cycle + 60.0 + latency) + config.max_backoff + 60
        await clock.advance(drain)
        check_consistency(manager)
        if world.errors:
            raise world.errors[0]
        infos = {i.jid: i for i in manager.contacts()}
        assert set(infos) == tracked, "a contact was lost or invented"
        assert all(i.state is ContactState.SUBSCRIBED for i in infos.values())
        after = sorted(jid for _, jid in world.calls[calls_before:])
        assert after == sorted(tracked), "a contact was skipped or subscribed twice"
        stats = manager.stats()
        assert stats.subscribe_calls_total == len(world.calls)
        assert stats.subscribe_failures_total >= world.outcome_failures
    finally:
        await manager.stop()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(config=configs, latency=st.sampled_from([0.0, 0.05]), ops=operations)
def test_random_sequences_keep_every_promise(
    config: ManagerConfig, latency: float, ops: list[tuple[object, ...]]
) -> None:
    asyncio.run(scenario(config, latency, ops))


@settings(max_examples=40, deadline=None, database=None)
@given(
    config=configs,
    storm=st.lists(st.sampled_from([0.0, 0.3, 2.0, 9.0, 30.0]), min_size=1, max_size=25),
)
def test_reconnect_storms_never_break_the_cap(config: ManagerConfig, storm: list[float]) -> None:
    """Many contacts, reconnects at random gaps: windows stay within the configured limits."""

    config = replace(config, resubscribe_after=None)  # only reconnects cause calls here

    async def run() -> None:
        clock = VirtualClock()
        world = World(clock, config, 0.0)
        manager = SubscriptionManager(
            world.subscribe, config=config, clock=clock.time, sleep=clock.sleep
        )
        world.manager = manager
        manager.add_listener(world.on_change)
        manager.start()
        try:
            for i in range(40):
                manager.queue(f"s{i}@s.whatsapp.net", 1 + i % 3)
            for gap in storm:
                manager.on_connected()
                await clock.advance(gap)
            await clock.advance(sum(storm) + 40 * (config.batch.cycle + 60.0))
            if world.errors:
                raise world.errors[0]
            assert manager.stats().active == 40
            times = [t for t, _ in world.calls]
            assert all(b >= a for a, b in itertools.pairwise(times))
        finally:
            await manager.stop()

    asyncio.run(run())
