"""Pausing the manager while the linked device is unavailable, and resuming it paced."""

from __future__ import annotations

from custom_components.whatsapp_presence.manager import ContactState, ManagerConfig

from .harness import jids, make, max_in_window

HOUR = 3600.0


async def test_pause_spends_no_subscription_and_resume_renews_paced() -> None:
    """Paused: not one call, even for new contacts; resumed: everyone again, under the cap."""
    manager, fake, clock = make(ManagerConfig(max_per_minute=50))
    contacts = jids(100)
    manager.start()
    for jid in contacts[:60]:
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(HOUR)
    assert manager.stats().active == 60
    manager.pause()
    assert manager.paused
    before = len(fake.calls)
    for jid in contacts[60:]:
        manager.queue(jid)
    manager.resubscribe()
    await clock.advance(2 * HOUR)  # health checks and re-subscriptions would call: paused
    assert len(fake.calls) == before
    assert manager.stats().queue_length == 100

    t_resume = clock.time()
    manager.resume()
    assert not manager.paused
    await clock.advance(HOUR)
    renewed = [t for t in fake.times() if t >= t_resume]
    assert len(renewed) == 100
    assert max_in_window(renewed, 60.0) <= 50
    assert manager.stats().active == 100
    await manager.stop()


async def test_contacts_heard_while_paused_or_before_their_turn_are_not_renewed() -> None:
    """A contact whose presence arrives needs no new call: its subscription still delivers."""
    manager, fake, clock = make()
    a, b, c, *others = jids(40)

    def state(jid: str) -> ContactState:
        info = manager.contact(jid)
        assert info is not None
        return info.state

    manager.start()
    for jid in (a, b, c, *others):
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(HOUR)
    manager.pause()
    manager.on_presence(a, clock.time())  # heard while paused (in flight as it turned off)
    await clock.advance(60.0)
    before = len(fake.calls)
    manager.resume()
    assert state(a) is ContactState.SUBSCRIBED
    assert state(b) is ContactState.QUEUED
    manager.on_presence(b, clock.time())  # WhatsApp resent b's presence before its turn
    assert state(b) is ContactState.SUBSCRIBED
    await clock.advance(HOUR)
    renewed = fake.order()[before:]
    assert a not in renewed
    assert b not in renewed
    assert sorted(renewed) == sorted([c, *others])
    await manager.stop()


async def test_a_reconnect_while_paused_subscribes_everyone_on_resume() -> None:
    """A reconnect loses every subscription: on resume nobody is spared, and nothing before."""
    manager, fake, clock = make()
    contacts = jids(10)
    manager.start()
    for jid in contacts:
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(60.0)
    manager.pause()
    manager.on_presence(contacts[0], clock.time())
    manager.on_disconnected()
    manager.on_connected()
    before = len(fake.calls)
    await clock.advance(HOUR)
    assert len(fake.calls) == before
    manager.resume()
    manager.on_presence(contacts[1], clock.time())  # cannot spare it: its subscription is gone
    await clock.advance(60.0)
    assert sorted(fake.order()[before:]) == sorted(contacts)
    await manager.stop()


async def test_pause_and_resume_are_idempotent() -> None:
    """A second pause or resume changes nothing and renews nothing twice."""
    manager, fake, clock = make()
    manager.start()
    for jid in jids(5):
        manager.queue(jid)
    manager.on_connected()
    await clock.advance(60.0)
    manager.resume()  # not paused: nothing to renew
    await clock.advance(60.0)
    assert len(fake.calls) == 5
    manager.pause()
    manager.pause()
    manager.resume()
    manager.resume()
    await clock.advance(60.0)
    assert len(fake.calls) == 10
    await manager.stop()
