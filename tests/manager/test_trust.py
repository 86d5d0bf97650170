"""Whether a contact's last reported state is still current after a lost link."""

from __future__ import annotations

from custom_components.whatsapp_presence.manager import ManagerConfig, SubscriptionManager

from .harness import jids, make

GAP = ManagerConfig().trust_gap


async def test_trust_ends_a_gap_after_the_link_went_down() -> None:
    """Down: trusted for the gap (one expiry for everyone), then not until presence comes."""
    manager, _fake, clock = make()
    manager.start()
    jid = jids(1)[0]
    manager.queue(jid)
    manager.on_connected()
    await clock.advance(1)
    assert not manager.trusted(jid)  # never reported
    manager.on_presence(jid, clock.time(), True)
    assert manager.trusted(jid)
    assert manager.trust_expiry() is None
    down = clock.time()
    manager.on_disconnected()
    assert manager.trust_expiry() == down + GAP
    assert manager.trusted(jid, down + GAP)
    assert not manager.trusted(jid, down + GAP + 0.01)
    await clock.advance(GAP + 1)
    assert manager.trust_expiry() is None
    manager.on_connected()
    await clock.advance(1)  # renewed late: still unknown
    assert not manager.trusted(jid)
    manager.on_presence(jid, clock.time(), False)
    assert manager.trusted(jid)
    await manager.stop()


async def test_renewed_within_the_gap_stays_trusted() -> None:
    """A short outage: the renewal keeps the last state trusted, past the gap too."""
    manager, _fake, clock = make()
    manager.start()
    jid = jids(1)[0]
    manager.queue(jid)
    manager.on_connected()
    await clock.advance(1)
    manager.on_presence(jid, clock.time(), True)
    manager.on_disconnected()
    await clock.advance(5)
    manager.on_connected()
    await clock.advance(2 * GAP)
    assert manager.trusted(jid)
    await manager.stop()


async def test_presence_during_a_late_renewal_is_trusted() -> None:
    """WhatsApp answers the renewed subscription before the call returns: that is current."""
    _unused, _fake, clock = make()

    async def subscribe(jid: str) -> None:
        await clock.sleep(0.5)
        manager.on_presence(jid, clock.time(), True)  # the answer, ahead of the call's result

    manager = SubscriptionManager(subscribe, clock=clock.time, sleep=clock.sleep)
    manager.start()
    jid = jids(1)[0]
    manager.queue(jid)
    manager.on_connected()
    await clock.advance(1)
    assert manager.trusted(jid)
    manager.on_disconnected()
    await clock.advance(GAP + 30)
    assert not manager.trusted(jid)
    manager.on_connected()
    await clock.advance(1)
    assert manager.trusted(jid)
    await manager.stop()
