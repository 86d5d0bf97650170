"""Core behaviour of the subscription manager, in simulated time (no real sleeping)."""

from __future__ import annotations

import asyncio
import itertools
import json
import math

import pytest

from custom_components.whatsapp_presence.manager import (
    DEFAULT_PRESET,
    PRESETS,
    BatchConfig,
    ContactState,
    ManagerConfig,
    Priority,
    SubscriptionManager,
    backoff_delay,
    preset_name,
    preset_rate,
)

from .harness import jids, make, max_in_window

HOUR = 3600.0
DAY = 86400.0


async def test_seed_timeline_100_contacts_with_defaults() -> None:
    """T+0 queue 100; batches start at T+0, 9, 18, 27, 36 s; all subscribed by T+40 s."""
    manager, fake, clock = make()
    t0 = clock.time()
    manager.start()
    for jid in jids(100):
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(39.7)
    assert manager.stats().active == 99  # the last call is due at T+39.8
    await clock.advance(0.3)
    assert manager.stats().active == 100
    times = [t - t0 for t in fake.times()]
    assert len(times) == 100
    for batch in range(5):
        for i in range(20):
            assert times[batch * 20 + i] == pytest.approx(batch * 9.0 + i * 0.2, abs=1e-6)
    assert fake.order() == jids(100)  # FIFO inside one priority
    await manager.stop()


def test_preset_rates_follow_the_seed_formula() -> None:
    """batch_size / (batch_size x subscription_delay + batch_delay), per minute."""
    expected = {"small": 200.0, "medium": 133.333, "large": 81.818, "mission_critical": 50.0}
    for name, rate in expected.items():
        assert preset_rate(PRESETS[name]) == pytest.approx(rate, abs=1e-3)
        assert preset_name(PRESETS[name]) == name
    assert DEFAULT_PRESET == "medium"
    assert ManagerConfig().batch == BatchConfig(20, 5.0, 0.2)
    assert preset_name(BatchConfig(25, 5.0, 0.2)) == "custom"


@pytest.mark.parametrize("name", list(PRESETS))
async def test_simulated_rate_matches_formula(name: str) -> None:
    """With the cap out of the way, k cycles subscribe exactly k x batch_size contacts."""
    batch = PRESETS[name]
    manager, fake, clock = make(ManagerConfig(batch=batch, max_per_minute=10_000))
    t0 = clock.time()
    manager.start()
    for jid in jids(batch.batch_size * 12):
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(10 * batch.cycle - 1e-6)
    assert len(fake.calls) == 10 * batch.batch_size
    starts = [fake.calls[k * batch.batch_size][0] - t0 for k in range(10)]
    assert starts == pytest.approx([k * batch.cycle for k in range(10)])
    await manager.stop()


async def test_global_cap_binds_the_small_preset() -> None:
    """Small's batches would allow 210 calls in some 60 s window; the cap keeps it to 200."""
    manager, fake, clock = make(ManagerConfig(batch=PRESETS["small"]))
    manager.start()
    for jid in jids(1000):
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(400)
    assert len(fake.calls) > 1000 * 0.95
    assert max_in_window(fake.times(), 60.0) == 200
    assert max_in_window(fake.times(), PRESETS["small"].cycle) <= 30
    await manager.stop()


async def test_priority_order_and_no_duplicates() -> None:
    manager, fake, clock = make()
    manager.start()
    low, medium, high = jids(3, "low"), jids(3, "med"), jids(3, "high")
    for jid in low:
        manager.queue(jid, Priority.LOW)
    for jid in medium:
        manager.queue(jid, 2)
    for jid in high:
        manager.queue(jid, Priority.HIGH)
    manager.queue(low[2], Priority.HIGH)  # raised: joins the high ones in its original order
    manager.queue(high[0], Priority.LOW)  # never lowers
    manager.queue(medium[0])  # duplicate: no effect
    assert manager.stats().queue_length == 9
    manager.on_connected()
    await clock.advance(20)
    assert fake.order() == [low[2], *high, *medium, low[0], low[1]]
    info = manager.contact(high[0])
    assert info is not None
    assert info.priority is Priority.HIGH
    assert info.state is ContactState.SUBSCRIBED
    manager.set_priority(high[0], Priority.LOW)
    assert manager.contact(high[0]).priority is Priority.LOW  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        manager.queue("x@s.whatsapp.net", 4)
    await manager.stop()


async def test_high_priority_queued_mid_run_goes_next() -> None:
    manager, fake, clock = make()
    manager.start()
    for jid in jids(50, "med"):
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(1.1)  # calls at 0.0 ... 1.0
    manager.queue("vip@s.whatsapp.net", Priority.HIGH)
    await clock.advance(0.2)
    assert fake.order()[6] == "vip@s.whatsapp.net"
    await manager.stop()


async def test_remove_drops_a_contact_everywhere() -> None:
    manager, fake, clock = make()
    manager.start()
    queued, failing, flying = "q@s.whatsapp.net", "f@s.whatsapp.net", "x@s.whatsapp.net"
    fake.failing.add(failing)
    manager.queue(failing)
    manager.on_connected()
    await clock.advance(1)
    assert manager.contact(failing).state is ContactState.BACKOFF  # type: ignore[union-attr]
    manager.remove(failing)
    fake.latency = 5.0
    manager.queue(flying)
    await clock.advance(1)  # the call for ``flying`` is in flight
    assert manager.contact(flying).state is ContactState.SUBSCRIBING  # type: ignore[union-attr]
    manager.queue(queued)
    manager.remove(queued)
    manager.remove(flying)
    manager.remove("unknown@s.whatsapp.net")
    await clock.advance(3 * HOUR)
    assert fake.order() == [failing, flying]
    assert manager.contacts() == []
    stats = manager.stats()
    assert (stats.tracked, stats.queue_length, stats.failed) == (0, 0, 0)
    await manager.stop()


async def test_backoff_table_and_fail_count_survives_requeue() -> None:
    """2, 4, 8, 16, 32, then 60 min; queue() and reconnects keep the count; success resets."""
    manager, fake, clock = make()
    manager.start()
    jid = "flaky@s.whatsapp.net"
    fake.failing.add(jid)
    manager.queue(jid)
    manager.on_connected()
    await clock.advance(30)
    assert manager.contact(jid).fail_count == 1  # type: ignore[union-attr]
    manager.queue(jid, Priority.HIGH)  # re-queueing must not reset the count
    manager.on_disconnected()
    manager.on_connected()  # nor must a reconnect bypass the backoff
    await clock.advance(10 * HOUR)
    times = fake.times(jid)
    gaps = [round(b - a) for a, b in itertools.pairwise(times)]
    assert gaps[:8] == [120, 240, 480, 960, 1920, 3600, 3600, 3600]
    info = manager.contact(jid)
    assert info is not None
    assert info.state is ContactState.BACKOFF
    assert info.fail_count == len(times)
    assert info.next_retry == pytest.approx(times[-1] + 3600)
    stats = manager.stats()
    assert (stats.failed, stats.in_backoff, stats.next_retry) == (1, 1, info.next_retry)
    fake.failing.clear()
    await clock.advance(HOUR)
    info = manager.contact(jid)
    assert info is not None
    assert (info.state, info.fail_count, info.next_retry) == (ContactState.SUBSCRIBED, 0, None)
    assert manager.stats().failed == 0
    assert [backoff_delay(n) / 60 for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    await manager.stop()


async def test_resubscribe_one_contact_bypasses_backoff_keeps_count() -> None:
    manager, fake, clock = make()
    manager.start()
    jid = "flaky@s.whatsapp.net"
    fake.failing.add(jid)
    manager.queue(jid)
    manager.on_connected()
    await clock.advance(1)
    manager.resubscribe(jid)
    await clock.advance(1)
    assert len(fake.times(jid)) == 2
    assert manager.contact(jid).fail_count == 2  # type: ignore[union-attr]
    await manager.stop()


async def test_quiet_contact_costs_one_resubscription_a_day() -> None:
    """Both conditions stale (strictly older than 24 h) at an hourly check: every 25 h."""
    manager, fake, clock = make()
    t0 = clock.time()
    manager.start()
    manager.queue("quiet@s.whatsapp.net")
    manager.on_connected()
    await clock.advance(10 * DAY)
    relative = [round((t - t0) / HOUR, 6) for t in fake.times()]
    assert relative == [0.0, 25.0, 50.0, 75.0, 100.0, 125.0, 150.0, 175.0, 200.0, 225.0]
    await manager.stop()


async def test_active_contact_costs_nothing_and_event_resets_the_clock() -> None:
    manager, fake, clock = make()
    t0 = clock.time()
    manager.start()
    active, once = "active@s.whatsapp.net", "once@s.whatsapp.net"
    manager.queue(active)
    manager.queue(once)
    manager.on_connected()
    for hour in range(1, 24 * 10):
        await clock.advance_to(t0 + hour * HOUR - 30)
        manager.on_presence(active, clock.time())
        if hour == 10:
            manager.on_presence(once, clock.time())
    await clock.advance(HOUR)
    assert len(fake.times(active)) == 1
    # ``once`` spoke at T+9h59m30s: stale only once that event is > 24 h old too (34 h check).
    assert (fake.times(once)[1] - t0) / HOUR == pytest.approx(34.0)
    await manager.stop()


async def test_stale_contact_that_speaks_up_leaves_the_queue() -> None:
    manager, fake, clock = make()
    manager.start()
    jid = "c@s.whatsapp.net"
    manager.queue(jid)
    manager.on_connected()
    await clock.advance(1)
    await manager.stop()  # no worker: the stale contact stays queued
    await clock.advance(DAY + 60)
    assert manager.check_health() == 1
    stats = manager.stats()
    assert (stats.stale, stats.queue_length, stats.active) == (1, 1, 0)
    manager.on_presence(jid, clock.time())
    info = manager.contact(jid)
    assert info is not None
    assert (info.state, info.last_event) == (ContactState.SUBSCRIBED, clock.time())
    assert manager.stats().queue_length == 0
    assert len(fake.calls) == 1


async def test_event_only_mode_never_resubscribes() -> None:
    manager, fake, clock = make(ManagerConfig(resubscribe_after=None))
    manager.start()
    manager.queue("quiet@s.whatsapp.net")
    manager.on_connected()
    await clock.advance(5 * DAY)
    assert len(fake.calls) == 1
    manager.on_disconnected()
    manager.on_connected()  # reconnects still re-subscribe: WhatsApp forgot everything
    await clock.advance(10)
    assert len(fake.calls) == 2
    await manager.stop()


async def test_reconnect_requeues_everything_highest_first_and_paced() -> None:
    manager, fake, clock = make()
    manager.start()
    contacts = dict.fromkeys(jids(30, "low"), Priority.LOW)
    contacts |= dict.fromkeys(jids(10, "high"), Priority.HIGH)
    for jid, prio in contacts.items():
        manager.queue(jid, prio)
    assert manager.stats().connected is False
    await clock.advance(60)
    assert fake.calls == []  # starts disconnected
    manager.on_connected()
    await clock.advance(60)
    assert len(fake.calls) == 40
    fake.calls.clear()
    manager.on_disconnected()
    manager.on_connected()
    stats = manager.stats()
    assert (stats.queue_length, stats.reconnects_total, stats.connected) == (40, 1, True)
    await clock.advance(60)
    order = fake.order()
    assert sorted(order) == sorted(contacts)
    assert set(order[:10]) == set(jids(10, "high"))
    assert max_in_window(fake.times(), 9.0) <= 20
    await manager.stop()


async def test_reconnect_renews_recently_active_contacts_first() -> None:
    """Within a priority, who spoke last is subscribed first after a reconnect."""
    manager, fake, clock = make()
    manager.start()
    quiet, active = jids(5, "quiet"), jids(5, "active")
    for jid in [*quiet, *active]:
        manager.queue(jid, Priority.MEDIUM)
    manager.on_connected()
    await clock.advance(60)
    for offset, jid in enumerate(active):
        manager.on_presence(jid, clock.time() + offset)  # active[-1] spoke last
    fake.calls.clear()
    manager.on_connected()  # a silent reconnect: everyone again
    await clock.advance(60)
    assert fake.order() == [*reversed(active), *quiet]
    await manager.stop()


async def test_reconnect_storm_respects_cap_and_batches() -> None:
    manager, fake, clock = make()
    manager.start()
    for jid in jids(500):
        manager.queue(jid)
    manager.on_connected()
    for _ in range(30):
        await clock.advance(7)
        manager.on_disconnected()
        await clock.advance(1)
        manager.on_connected()
    await clock.advance(600)
    times = fake.times()
    assert max_in_window(times, 60.0) <= 200
    assert max_in_window(times, 9.0) <= 20
    assert all(b - a >= 0.2 - 1e-9 for a, b in itertools.pairwise(times))
    assert manager.stats().active == 500
    await manager.stop()


async def test_disconnect_pauses_and_nothing_fails_meanwhile() -> None:
    manager, fake, clock = make()
    manager.start()
    for jid in jids(40):
        manager.queue(jid)
    manager.on_connected()
    fake.latency = 0.1
    await clock.advance(1.25)  # a call is in flight
    in_flight = fake.order()[-1]
    manager.on_disconnected()
    fake.failing.add(in_flight)  # the link is down: its error is no failure
    await clock.advance(3600)
    calls = len(fake.calls)
    info = manager.contact(in_flight)
    assert info is not None
    assert (info.state, info.fail_count) == (ContactState.QUEUED, 0)
    assert manager.stats().queue_length == 40 - calls + 1
    fake.failing.clear()
    manager.on_connected()
    await clock.advance(120)
    assert fake.order()[calls] == in_flight  # back at its old place: first
    assert manager.stats().active == 40
    assert manager.stats().subscribe_failures_total == 0
    await manager.stop()


async def test_subscription_paused_keeps_place_and_pauses() -> None:
    manager, fake, clock = make()
    manager.start()
    for jid in jids(10):
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(0.5)  # three calls done
    fake.link_down = True
    await clock.advance(0.2)
    assert manager.connected is False
    assert len(fake.calls) == 4
    paused = fake.order()[-1]
    assert manager.contact(paused).state is ContactState.QUEUED  # type: ignore[union-attr]
    await clock.advance(600)
    assert len(fake.calls) == 4
    fake.link_down = False
    manager.on_connected()
    await clock.advance(60)
    assert fake.order()[4] == paused
    assert manager.stats().failed == 0
    assert manager.stats().active == 10
    await manager.stop()


async def test_set_batch_config_applies_without_restart() -> None:
    manager, fake, clock = make()
    t0 = clock.time()
    manager.start()
    for jid in jids(200):
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(9.1)  # batch 1 done, batch 2 started at 9.0
    manager.set_batch_config(10, 10.0)
    assert manager.stats().preset == "mission_critical"
    await clock.advance(120)
    times = [t - t0 for t in fake.times()]
    # From the next call on, every call sees at most 10 calls in the 12 s up to it,
    # counting the calls made under the old settings.
    for t in times[21:]:
        assert sum(1 for u in times if t - 12.0 + 1e-6 < u <= t) <= 10
    assert times[21] == pytest.approx(14.2)  # 2.2 ... 3.8 and 9.0 fill the window until 14.2
    assert sum(1 for t in times if 60.0 <= t < 120.0) == 50  # 10 per 12 s from then on
    await manager.stop()


async def test_listeners_are_told_and_a_failing_listener_is_harmless(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager, _, clock = make()
    seen: list[str | None] = []

    def broken(_: str | None) -> None:
        raise RuntimeError("listener bug")

    remove = manager.add_listener(seen.append)
    manager.add_listener(broken)
    manager.start()
    manager.queue("a@s.whatsapp.net")
    manager.on_connected()
    await clock.advance(1)
    assert seen == ["a@s.whatsapp.net", None, "a@s.whatsapp.net", "a@s.whatsapp.net"]
    assert manager.contact("a@s.whatsapp.net").state is ContactState.SUBSCRIBED  # type: ignore[union-attr]
    assert "listener failed" in caplog.text
    remove()
    remove()
    manager.on_disconnected()
    assert seen[-1] == "a@s.whatsapp.net"
    await manager.stop()


async def test_persistence_round_trip_through_json() -> None:
    manager, fake, clock = make()
    manager.start()
    good, bad, later = "good@s.whatsapp.net", "bad@s.whatsapp.net", "later@s.whatsapp.net"
    fake.failing.add(bad)
    manager.queue(good, Priority.HIGH)
    manager.queue(bad, Priority.LOW)
    manager.on_connected()
    await clock.advance(200)  # bad failed twice: backoff 4 min until ~T+360
    manager.on_presence(good, clock.time() - 5)
    manager.on_disconnected()
    manager.queue(later)
    await manager.stop()
    saved = json.loads(json.dumps(manager.to_dict()))

    restored = SubscriptionManager.from_dict(
        saved, fake.subscribe, clock=clock.time, sleep=clock.sleep
    )
    before = {c.jid: c for c in manager.contacts()}
    after = {c.jid: c for c in restored.contacts()}
    assert set(after) == {good, bad, later}
    assert after[bad].fail_count == 2
    assert after[bad].state is ContactState.BACKOFF
    assert after[bad].next_retry == before[bad].next_retry
    assert after[good].last_event == before[good].last_event
    assert after[good].last_subscribed == before[good].last_subscribed
    assert after[good].priority is Priority.HIGH
    assert after[good].state is ContactState.QUEUED  # a new process needs new subscriptions

    fake.calls.clear()
    fake.failing.clear()
    restored.start()
    restored.on_connected()
    await clock.advance(HOUR)
    assert fake.order()[:2] == [good, later]
    assert fake.times(bad)[0] == pytest.approx(after[bad].next_retry)
    assert restored.stats().active == 3
    await restored.stop()


async def test_persisted_recent_calls_keep_the_cap_across_a_restart() -> None:
    config = ManagerConfig(batch=BatchConfig(100, 0.0, 0.0), max_per_minute=50)
    manager, fake, clock = make(config)
    manager.start()
    for jid in jids(100):
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(1)
    assert len(fake.calls) == 50
    await manager.stop()
    restored = SubscriptionManager.from_dict(
        manager.to_dict(), fake.subscribe, config=config, clock=clock.time, sleep=clock.sleep
    )
    restored.start()
    restored.on_connected()
    await clock.advance(120)
    assert max_in_window(fake.times(), 60.0) == 50
    await restored.stop()


def test_restore_skips_bad_records(caplog: pytest.LogCaptureFixture) -> None:
    manager, _, _ = make()
    manager.restore({"version": 99, "contacts": [{"jid": "a"}]})
    assert manager.contacts() == []
    manager.restore(
        {
            "version": 1,
            "contacts": [
                {"jid": "a@s.whatsapp.net", "priority": 1},
                {"jid": 5},
                {"jid": "b@s.whatsapp.net", "priority": 9},
                {"jid": "c@s.whatsapp.net", "fail_count": -1},
                {"jid": "d@s.whatsapp.net", "last_event": "yesterday"},
            ],
            "recent_calls": ["x", math.nan, 1.0],
        }
    )
    assert [c.jid for c in manager.contacts()] == ["a@s.whatsapp.net"]
    assert "Skipped 4" in caplog.text


async def test_stop_leaves_no_task_and_returns_in_flight_contact() -> None:
    manager, fake, clock = make()
    fake.latency = 10.0
    manager.start()
    manager.start()  # idempotent
    manager.queue("a@s.whatsapp.net")
    manager.on_connected()
    await clock.advance(1)
    assert manager.contact("a@s.whatsapp.net").state is ContactState.SUBSCRIBING  # type: ignore[union-attr]
    await manager.stop()
    await clock.settle()
    assert manager.contact("a@s.whatsapp.net").state is ContactState.QUEUED  # type: ignore[union-attr]
    assert manager.stats().queue_length == 1
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current] == []


async def test_stats_names_and_call_windows() -> None:
    manager, _, clock = make()
    manager.start()
    for jid in jids(25):
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(30)
    stats = manager.stats().as_dict()
    for key in ("total_subscriptions", "active", "stale", "failed", "queue_length"):
        assert key in stats
    assert stats["total_subscriptions"] == 25
    assert stats["active"] == 25
    assert (stats["calls_last_minute"], stats["calls_last_hour"]) == (25, 25)
    assert stats["subscribe_calls_total"] == 25
    assert stats["preset"] == "medium"
    await clock.advance(HOUR)
    stats = manager.stats().as_dict()
    assert (stats["calls_last_minute"], stats["calls_last_hour"]) == (0, 0)
    await manager.stop()


async def test_wall_clock_going_backwards_does_not_stall() -> None:
    times = [1_000_000.0]
    calls: list[str] = []

    async def subscribe(jid: str) -> None:
        calls.append(jid)

    async def sleep(delay: float) -> None:
        times[0] += delay
        await asyncio.sleep(0)

    manager = SubscriptionManager(subscribe, clock=lambda: times[0], sleep=sleep)
    for jid in jids(40):
        manager.queue(jid)
    manager.start()
    manager.on_connected()
    for _ in range(200):
        await asyncio.sleep(0)
        if len(calls) >= 20:
            break
    times[0] -= 3 * HOUR  # NTP steps the clock back three hours
    for _ in range(2000):
        await asyncio.sleep(0)
        if len(calls) == 40:
            break
    assert len(calls) == 40
    await manager.stop()


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        BatchConfig(0, 5.0)
    with pytest.raises(ValueError):
        BatchConfig(10, -1.0)
    with pytest.raises(TypeError):
        BatchConfig(2.5, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ManagerConfig(max_per_minute=0)
    with pytest.raises(ValueError):
        ManagerConfig(base_backoff=600, max_backoff=60)
    with pytest.raises(ValueError):
        ManagerConfig(resubscribe_after=0)


async def test_resubscribe_all_and_during_a_call() -> None:
    manager, fake, clock = make()
    manager.start()
    ok, failing = jids(3), "f@s.whatsapp.net"
    fake.failing.add(failing)
    for jid in [*ok, failing]:
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(10)
    fake.calls.clear()
    manager.resubscribe()  # everyone not in backoff
    await clock.advance(10)
    assert sorted(fake.order()) == sorted(ok)
    fake.calls.clear()
    fake.latency = 1.0
    manager.resubscribe(ok[0])
    await clock.advance(0.5)  # in flight
    manager.resubscribe(ok[0])  # asked again mid-call: one more call afterwards
    await clock.advance(10)
    assert fake.order() == [ok[0], ok[0]]
    assert manager.contact(ok[0]).state is ContactState.SUBSCRIBED  # type: ignore[union-attr]
    await manager.stop()


async def test_reconnect_during_a_call_does_not_trust_its_result() -> None:
    manager, fake, clock = make()
    manager.start()
    fake.latency = 1.0
    manager.queue("a@s.whatsapp.net")
    manager.on_connected()
    await clock.advance(0.5)
    manager.on_connected()  # whatsmeow reconnected silently while the call was in flight
    await clock.advance(10)
    assert fake.order() == ["a@s.whatsapp.net", "a@s.whatsapp.net"]
    assert manager.stats().reconnects_total == 1
    await manager.stop()


async def test_health_interval_change_applies_without_restart() -> None:
    manager, fake, clock = make(ManagerConfig(resubscribe_after=600.0))
    t0 = clock.time()
    manager.start()
    manager.queue("q@s.whatsapp.net")
    manager.on_connected()
    await clock.advance(1800)  # the hourly check has not run yet
    manager.update_config(ManagerConfig(resubscribe_after=600.0, health_check_interval=300.0))
    await clock.advance(1800)
    # New period from the change: checks at 2100, 2400, ...; stale (strictly older than
    # 600 s) at 2100, then at every third check.
    assert [round(t - t0) for t in fake.times()] == [0, 2100, 3000]
    await manager.stop()


async def test_restore_then_queue_keeps_fail_counts() -> None:
    """The coordinator's order on start: restore the saved state, then queue the contacts."""
    manager, fake, clock = make()
    manager.start()
    fake.failing.add("f@s.whatsapp.net")
    manager.queue("f@s.whatsapp.net", Priority.LOW)
    manager.on_connected()
    await clock.advance(1)
    saved = manager.to_dict()
    await manager.stop()
    restored, _, _ = make(start=clock.time())
    restored.restore(saved)
    restored.queue("f@s.whatsapp.net", Priority.HIGH)
    info = restored.contact("f@s.whatsapp.net")
    assert info is not None
    assert (info.fail_count, info.state, info.priority) == (1, ContactState.BACKOFF, 1)


async def test_worker_survives_an_unexpected_error(caplog: pytest.LogCaptureFixture) -> None:
    """A bug inside the loop is logged and the worker carries on after a short pause."""
    manager, fake, clock = make()
    broken = [True]

    def clock_with_a_glitch() -> float:
        if broken[0] and len(fake.calls) == 2:
            broken[0] = False
            raise RuntimeError("glitch")
        return clock.time()

    manager._clock = clock_with_a_glitch
    manager.start()
    for jid in jids(5):
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(60)
    assert "Subscription worker failed" in caplog.text
    assert manager.stats().active == 5
    await manager.stop()
