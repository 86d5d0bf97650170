"""Who is told of which change, and the hold that tells each of them once.

Presence is pushed, so entities do not poll a coordinator: each listens to what it shows (its
contact, its subscription, the account, who is online) and is called for that only. With
thousands of contacts, waking every entity on every presence event would cost O(contacts)
per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from homeassistant.core import CALLBACK_TYPE, callback


class Listeners:
    """The listeners of one account, by kind of change."""

    def __init__(self) -> None:
        """Start with no listener and nothing held."""
        self._account: set[CALLBACK_TYPE] = set()
        self._contact: dict[str, set[CALLBACK_TYPE]] = {}
        self._subscription: dict[str, set[CALLBACK_TYPE]] = {}
        self._online: set[CALLBACK_TYPE] = set()
        self._contacts: set[CALLBACK_TYPE] = set()
        self._holding = 0
        """Open ``once`` blocks: while any is open, notifications are collected."""
        self._held: dict[CALLBACK_TYPE, None] = {}

    # ----------------------------------------------------------------- registering

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Account-level changes (connection, manager figures)."""
        self._account.add(listener)

        def remove() -> None:
            self._account.discard(listener)
            self._held.pop(listener, None)

        return remove

    @callback
    def async_add_contact_listener(self, jid: str, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Changes of one contact (presence, subscription state, availability)."""
        return self._add_keyed(self._contact, jid, listener)

    @callback
    def async_add_online_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Who is online changed (a contact seen online, offline, or unknown again)."""
        self._online.add(listener)

        def remove() -> None:
            self._online.discard(listener)
            self._held.pop(listener, None)

        return remove

    @callback
    def async_add_subscription_listener(self, jid: str, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Changes of one contact's subscription state (queued, subscribed, backoff, ...)."""
        return self._add_keyed(self._subscription, jid, listener)

    @callback
    def async_add_contacts_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """The set of tracked contacts changed (platforms add entities for new ones)."""
        self._contacts.add(listener)
        return lambda: self._contacts.discard(listener)

    def _add_keyed(
        self, by_jid: dict[str, set[CALLBACK_TYPE]], jid: str, listener: CALLBACK_TYPE
    ) -> CALLBACK_TYPE:
        by_jid.setdefault(jid, set()).add(listener)

        def remove() -> None:
            self._held.pop(listener, None)  # a removed entity is not called later either
            listeners = by_jid.get(jid)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del by_jid[jid]

        return remove

    # ----------------------------------------------------------------- notifying

    def account(self) -> None:
        """The account's figures changed."""
        self._call(self._account)

    def contact(self, jid: str) -> None:
        """One contact's shown state changed."""
        self._call(self._contact.get(jid, ()))

    def subscription(self, jid: str | None) -> None:
        """One contact's subscription state changed (``None``: possibly every contact's)."""
        if jid is not None:
            self._call(self._subscription.get(jid, ()))
            return
        for listeners in self._subscription.values():
            self._call(listeners)

    def online(self) -> None:
        """Who is online changed."""
        self._call(self._online)

    def everything(self) -> None:
        """Availability changed: every entity must write its state."""
        with self.once():
            self.account()
            for listeners in self._contact.values():
                self._call(listeners)

    def contact_now(self, jid: str) -> None:
        """One contact's presence changed: called at once, never held.

        The hot path (one presence event is a complete change of its own) and the day's
        close and start, which the recorder must see at their time.
        """
        for listener in list(self._contact.get(jid, ())):
            listener()

    def online_now(self) -> None:
        """Who is online changed with a presence event: called at once, never held."""
        for listener in list(self._online):
            listener()

    def contacts_changed(self) -> None:
        """The set of tracked contacts changed."""
        for listener in list(self._contacts):
            listener()

    def _call(self, listeners: Iterable[CALLBACK_TYPE]) -> None:
        """Call listeners now, or once when the outermost ``once`` block ends."""
        if self._holding:
            self._held.update(dict.fromkeys(listeners))
            return
        for listener in list(listeners):
            listener()

    @contextmanager
    def once(self) -> Iterator[None]:
        """One change made of several (a disconnect moves the connection, the manager and
        every contact's trust) reaches each listener once, when it is complete.

        An entity following several kinds of change (a contact's subscription sensor follows
        its contact and its subscription) registers the same callback for each, so it is
        called once here too.
        """
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            if not self._holding:
                held, self._held = self._held, {}
                for listener in held:
                    listener()
