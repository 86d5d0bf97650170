"""The listener registry on its own: each listener hears of its own change, once per change."""

from __future__ import annotations

from collections import Counter

from custom_components.whatsapp_presence.listeners import Listeners

JID_A = "491701111111@s.whatsapp.net"
JID_B = "491702222222@s.whatsapp.net"


def test_each_kind_reaches_its_own_listeners() -> None:
    """A contact's change reaches that contact's listeners only; the account's its own."""
    listeners = Listeners()
    calls: Counter[str] = Counter()
    listeners.async_add_contact_listener(JID_A, lambda: calls.update(["a"]))
    listeners.async_add_contact_listener(JID_B, lambda: calls.update(["b"]))
    listeners.async_add_subscription_listener(JID_A, lambda: calls.update(["sub_a"]))
    listeners.async_add_listener(lambda: calls.update(["account"]))
    listeners.async_add_online_listener(lambda: calls.update(["online"]))
    listeners.async_add_contacts_listener(lambda: calls.update(["contacts"]))

    listeners.contact(JID_A)
    assert calls == Counter(a=1)
    listeners.subscription(JID_B)  # nobody follows B's subscription
    assert calls == Counter(a=1)
    listeners.subscription(None)
    listeners.online()
    listeners.contacts_changed()
    assert calls == Counter(a=1, sub_a=1, online=1, contacts=1)
    listeners.everything()
    assert calls == Counter(a=2, b=1, sub_a=1, online=1, contacts=1, account=1)


def test_a_change_made_of_several_reaches_each_listener_once_at_its_end() -> None:
    """Inside ``once`` (nested too) nothing is called; at the outermost end, each listener once,
    even one registered for several kinds of change."""
    listeners = Listeners()
    calls: list[str] = []

    def entity() -> None:
        calls.append("entity")

    listeners.async_add_contact_listener(JID_A, entity)
    listeners.async_add_subscription_listener(JID_A, entity)
    listeners.async_add_listener(lambda: calls.append("account"))
    with listeners.once():
        listeners.contact(JID_A)
        with listeners.once():
            listeners.subscription(JID_A)
            listeners.everything()
        assert calls == []
        listeners.account()
    assert sorted(calls) == ["account", "entity"]


def test_presence_is_never_held() -> None:
    """The hot path's calls go out at once, even while a change is being held."""
    listeners = Listeners()
    calls: list[str] = []
    listeners.async_add_contact_listener(JID_A, lambda: calls.append("a"))
    listeners.async_add_online_listener(lambda: calls.append("online"))
    with listeners.once():
        listeners.contact_now(JID_A)
        listeners.online_now()
        assert calls == ["a", "online"]
    assert calls == ["a", "online"]


def test_a_removed_listener_is_not_called_later() -> None:
    """Removed while its call is held: it is not called when the hold ends, nor afterwards."""
    listeners = Listeners()
    calls: list[str] = []
    remove_contact = listeners.async_add_contact_listener(JID_A, lambda: calls.append("a"))
    remove_account = listeners.async_add_listener(lambda: calls.append("account"))
    with listeners.once():
        listeners.everything()
        remove_contact()
        remove_account()
    assert calls == []
    listeners.contact(JID_A)
    listeners.everything()
    assert calls == []
