"""The subscription manager itself: queue, pacing, backoff, staleness, reconnects, persistence."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field, replace
import heapq
import itertools
import logging
import math
import time
from typing import Any, Final

from .adaptive import AnswerWatch
from .model import (
    DEFAULT_CONFIG,
    WINDOW,
    BatchConfig,
    ContactInfo,
    ContactState,
    ManagerConfig,
    Priority,
    Stats,
    SubscriptionPaused,
    backoff_delay,
    preset_name,
    preset_rate,
)

_LOGGER = logging.getLogger(__name__)

_HOUR: Final = 3600.0
_EPSILON: Final = 1e-6
"""Slack when comparing a due time with the clock: unix-time floats resolve ~0.2 us."""
_ERROR_PAUSE: Final = 5.0
"""Seconds the worker waits after an unexpected error before it carries on."""
STATE_VERSION: Final = 1


@dataclass(slots=True, eq=False)
class _Contact:
    jid: str
    priority: Priority
    state: ContactState
    fail_count: int = 0
    next_retry: float | None = None
    last_event: float | None = None
    last_subscribed: float | None = None
    queued_at: float | None = None
    qkey: tuple[int, int] | None = None
    """(priority, sequence) of this contact's live queue entry; None when not queued."""
    rkey: int | None = None
    """Sequence of this contact's live retry entry; None when not in backoff."""
    requeue_after_call: bool = False
    renewal: bool = False
    """Queued by ``resume()``: presence heard before its turn makes the call unnecessary."""
    online: bool | None = None
    """The state last reported for the contact (None: never reported)."""
    live_epoch: int = -1
    """Connection epoch of the contact's last accepted subscription."""
    trusted: bool = False
    """Whether its reported state is current: see ``SubscriptionManager.trusted``."""
    heard: bool = False
    """Presence came while its subscribe call was in flight (the call's own answer, often)."""


@dataclass(slots=True)
class _Counters:
    calls: int = 0
    failures: int = 0
    reconnects: int = 0
    states: dict[ContactState, int] = field(default_factory=lambda: dict.fromkeys(ContactState, 0))
    failed: int = 0
    queued: int = 0


class SubscriptionManager:
    """Priority queue, pacing, global cap, backoff, staleness and reconnect handling."""

    def __init__(
        self,
        subscribe: Callable[[str], Awaitable[None]],
        *,
        config: ManagerConfig = DEFAULT_CONFIG,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Start disconnected and empty; ``start()`` launches the tasks on the running loop."""
        self._subscribe = subscribe
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._contacts: dict[str, _Contact] = {}
        self._queue: list[tuple[int, int, str]] = []
        self._retries: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._recent: deque[float] = deque()
        """Start times of subscribe calls over the last hour (or cycle, if longer)."""
        self._minute: deque[float] = deque()
        """Start times of subscribe calls over the last minute (for the stats, O(1))."""
        self._n = _Counters()
        self._connected = False
        self._ever_connected = False
        self._paused = False
        self._heard: set[str] = set()
        """Contacts heard from since ``pause()`` (their subscription still delivers)."""
        self._epoch = 0
        """Bumped on every connect and disconnect: a call that spans one is not trusted."""
        self._listeners: list[Callable[[str | None], None]] = []
        self._wake = asyncio.Event()
        self._health_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._watch = AnswerWatch(config.answer_window)
        self._down_at: float | None = None
        """When the link last went down: every subscription was lost then."""

    # ----------------------------------------------------------------- lifecycle

    @property
    def config(self) -> ManagerConfig:
        """The configuration in force."""
        return self._config

    @property
    def connected(self) -> bool:
        """Whether the manager believes the WhatsApp link is up."""
        return self._connected

    @property
    def paused(self) -> bool:
        """Whether ``pause()`` holds every subscribe call."""
        return self._paused

    def start(self) -> None:
        """Start the worker and the health check on the running loop (idempotent)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._worker(), name="whatsapp_presence subscription worker"),
            loop.create_task(self._health_loop(), name="whatsapp_presence health check"),
        ]

    async def stop(self) -> None:
        """Cancel the tasks and wait for them; an in-flight contact goes back to its place."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -------------------------------------------------------------- queue API

    def queue(self, jid: str, priority: int = Priority.MEDIUM) -> None:
        """Track ``jid``; for a tracked contact this only ever raises its priority."""
        prio = Priority(priority)
        contact = self._contacts.get(jid)
        if contact is None:
            contact = _Contact(jid=jid, priority=prio, state=ContactState.QUEUED)
            self._contacts[jid] = contact
            self._n.states[ContactState.QUEUED] += 1
            self._enqueue(contact, ContactState.QUEUED)
            self._wake.set()
            self._notify(jid)
        elif prio < contact.priority:
            self._reprioritise(contact, prio)

    def set_priority(self, jid: str, priority: int) -> None:
        """Set the priority of a tracked contact, lower or higher (unknown jid: no-op)."""
        prio = Priority(priority)
        contact = self._contacts.get(jid)
        if contact is not None and prio != contact.priority:
            self._reprioritise(contact, prio)

    def remove(self, jid: str) -> None:
        """Forget ``jid`` everywhere (queue, backoff, in-flight result is ignored)."""
        contact = self._contacts.pop(jid, None)
        if contact is None:
            return
        self._watch.forget(jid)
        self._n.states[contact.state] -= 1
        if contact.qkey is not None:
            self._n.queued -= 1
        if contact.fail_count:
            self._n.failed -= 1
        contact.qkey = contact.rkey = None
        self._maybe_compact()
        self._notify(jid)

    def resubscribe(self, jid: str | None = None) -> None:
        """Queue one contact (even out of backoff) or every non-backoff contact again now."""
        if jid is not None:
            contact = self._contacts.get(jid)
            if contact is None:
                return
            if contact.state is ContactState.SUBSCRIBING:
                contact.requeue_after_call = True
            elif contact.state is ContactState.STALE:  # asked for: an event must not cancel it
                self._set_state(contact, ContactState.QUEUED)
                self._notify(jid)
            elif contact.qkey is None:
                self._enqueue(contact, ContactState.QUEUED)
                self._wake.set()
                self._notify(jid)
            return
        if self._requeue_all():
            self._wake.set()
        self._notify(None)

    # ---------------------------------------------------------- configuration

    def set_batch_config(
        self, batch_size: int, batch_delay: float, subscription_delay: float | None = None
    ) -> None:
        """Change the batch pacing (the *Set batch config* action); applies to the next call."""
        delay = (
            self._config.batch.subscription_delay
            if subscription_delay is None
            else subscription_delay
        )
        batch = BatchConfig(batch_size, batch_delay, delay)
        self.update_config(replace(self._config, batch=batch))

    def update_config(self, config: ManagerConfig) -> None:
        """Apply options-flow changes without a restart (running backoffs keep their time)."""
        old, self._config = self._config, config
        self._watch.window = config.answer_window
        if config.health_check_interval != old.health_check_interval:
            self._health_wake.set()
        self._wake.set()
        self._notify(None)

    # -------------------------------------------------------------- events

    def on_presence(self, jid: str, when: float, online: bool | None = None) -> None:
        """Record activity (O(1)): a stale contact that speaks up needs no re-subscription.

        ``online``: the state reported, so that contacts shown online are renewed first.
        """
        contact = self._contacts.get(jid)
        if contact is None:
            return
        answer = (
            contact.last_subscribed is not None
            and 0 <= when - contact.last_subscribed <= self._config.answer_window
        )
        if not answer and (contact.last_event is None or when > contact.last_event):
            contact.last_event = when  # an answer to a subscription is no sign of activity
        if online is not None:
            contact.online = online
        contact.trusted = self._connected
        contact.heard = True
        self._watch.answered(jid)
        if self._paused:
            self._heard.add(jid)
        if contact.state is ContactState.STALE or (
            contact.renewal and contact.state is ContactState.QUEUED
        ):
            contact.renewal = False
            self._dequeue(contact)
            self._set_state(contact, ContactState.SUBSCRIBED)
            self._notify(jid)

    def on_connected(self) -> None:
        """The link is up (again): every subscription is gone, so queue every contact."""
        if self._ever_connected:
            self._n.reconnects += 1
            _LOGGER.debug("Reconnected: queueing every tracked contact again")
        self._ever_connected = True
        self._connected = True
        self._epoch += 1
        self._watch.forget()
        self._requeue_all()
        self._wake.set()
        self._notify(None)

    def on_disconnected(self) -> None:
        """Pause subscribing; the queue, backoffs and fail counts are kept."""
        if not self._connected:
            return
        self._connected = False
        self._down_at = self._clock()
        self._epoch += 1
        self._watch.forget()
        self._wake.set()
        self._notify(None)

    def pause(self) -> None:
        """Hold every subscribe call: the linked device is unavailable, nothing would arrive.

        Queue, backoffs and subscriptions are kept; the adaptive pace does not judge
        subscriptions that could not be answered.
        """
        if self._paused:
            return
        self._paused = True
        self._heard.clear()
        self._watch.forget()
        self._wake.set()
        self._notify(None)

    def resume(self) -> None:
        """Subscribe again, paced: every subscribed contact is renewed unless it speaks first.

        Whether WhatsApp resends everyone's presence when the device becomes available again is
        not known; a contact heard from since ``pause()`` (or before its turn in the queue)
        needs no new call, the others get one.
        """
        if not self._paused:
            return
        self._paused = False
        for contact in self._contacts.values():
            if contact.state is ContactState.SUBSCRIBED and contact.jid not in self._heard:
                self._enqueue(contact, ContactState.QUEUED)
                contact.renewal = True
        self._heard.clear()
        self._wake.set()
        self._notify(None)

    # ------------------------------------------------------------- reading

    def contact(self, jid: str) -> ContactInfo | None:
        """Snapshot of one contact, or None when it is not tracked."""
        contact = self._contacts.get(jid)
        return None if contact is None else _info(contact)

    def contacts(self) -> list[ContactInfo]:
        """Snapshots of every tracked contact, in the order they were first queued."""
        return [_info(contact) for contact in self._contacts.values()]

    def trusted(self, jid: str, now: float | None = None) -> bool:
        """Whether the state last reported for ``jid`` can still be shown as current.

        While its subscription is live: once presence came on it, or when it was renewed
        within ``trust_gap`` of losing the previous one (a short outage changes nothing
        shown). Without a live subscription: for ``trust_gap`` after the link went down.
        Past that, what was last reported may be wrong, and is better shown as unknown.
        """
        contact = self._contacts.get(jid)
        if contact is None or contact.online is None:
            return False
        if self._connected and contact.live_epoch == self._epoch:
            return contact.trusted
        now = self._clock() if now is None else now
        lost = self._down_at if self._down_at is not None else contact.last_subscribed
        return contact.trusted and lost is not None and now - lost <= self._config.trust_gap

    def trust_expiry(self, now: float | None = None) -> float | None:
        """When the states not renewed since the link went down stop being trusted.

        One time for every contact (``trust_gap`` after the loss), so a single timer can
        re-evaluate what is shown; None once it has passed or when the link never went down.
        """
        if self._down_at is None:
            return None
        expiry = self._down_at + self._config.trust_gap
        now = self._clock() if now is None else now
        return expiry if expiry >= now else None

    def stats(self) -> Stats:
        """Counters, O(1) amortised: listeners may call this on every change."""
        now = self._clock()
        self._prune_recent(now)
        last_hour = len(self._recent)
        if self._recent and self._recent[0] <= now - _HOUR:  # a cycle longer than an hour
            last_hour = sum(1 for started in self._recent if started > now - _HOUR)
        states = self._n.states
        return Stats(
            tracked=len(self._contacts),
            active=states[ContactState.SUBSCRIBED],
            stale=states[ContactState.STALE],
            failed=self._n.failed,
            queue_length=self._n.queued,
            in_backoff=states[ContactState.BACKOFF],
            next_retry=self._earliest_retry(),
            calls_last_minute=len(self._minute),
            calls_last_hour=last_hour,
            preset=preset_name(self._config.batch),
            subscribe_calls_total=self._n.calls,
            subscribe_failures_total=self._n.failures,
            reconnects_total=self._n.reconnects,
            connected=self._connected,
            slowdown=round(self._factor, 2),
            pace=round(self.pace, 1),
            pace_reason=self.pace_reason,
        )

    def add_listener(self, listener: Callable[[str | None], None]) -> Callable[[], None]:
        """Call ``listener(jid)`` on each state change (None: many or manager-wide changes)."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    # --------------------------------------------------------- health check

    def check_health(self) -> int:
        """Queue contacts with neither an event nor a subscription for ``resubscribe_after``.

        O(n); runs every ``health_check_interval``. Returns how many were queued.
        """
        limit = self._config.resubscribe_after
        if limit is None or not self._connected or self._paused:
            return 0
        cutoff = self._clock() - limit
        stale = 0
        for contact in self._contacts.values():
            if (
                contact.state is ContactState.SUBSCRIBED
                and contact.last_subscribed is not None
                and contact.last_subscribed < cutoff
                and (contact.last_event is None or contact.last_event < cutoff)
            ):
                self._enqueue(contact, ContactState.STALE)
                stale += 1
        if stale:
            _LOGGER.debug("Health check: %d stale contacts queued", stale)
            self._wake.set()
            self._notify(None)
        return stale

    # ---------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state that must survive a restart (queued contacts in queue order)."""
        queued = sorted(
            (c for c in self._contacts.values() if c.qkey is not None),
            key=lambda c: c.qkey or (0, 0),
        )
        others = [c for c in self._contacts.values() if c.qkey is None]
        horizon = max(WINDOW, self._config.batch.cycle)
        now = self._clock()
        keep = max(self._config.max_per_minute, self._config.batch.batch_size)
        recent = [t for t in list(self._recent)[-keep:] if t > now - horizon]
        return {
            "version": STATE_VERSION,
            "contacts": [
                {
                    "jid": c.jid,
                    "priority": int(c.priority),
                    "fail_count": c.fail_count,
                    "next_retry": c.next_retry,
                    "last_event": c.last_event,
                    "last_subscribed": c.last_subscribed,
                }
                for c in (*queued, *others)
            ],
            "recent_calls": recent,
            "answers": self._watch.to_dict(self._contacts),
        }

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        subscribe: Callable[[str], Awaitable[None]],
        *,
        config: ManagerConfig = DEFAULT_CONFIG,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> SubscriptionManager:
        """A new manager with the state saved by ``to_dict``."""
        manager = cls(subscribe, config=config, clock=clock, sleep=sleep)
        manager.restore(data)
        return manager

    def restore(self, data: Any) -> None:
        """Load ``to_dict`` output; call before ``queue()``.

        Saved state may be of any shape (edited by hand, written by a broken version): records
        that are not what ``to_dict`` writes are skipped with one warning, the rest is loaded.
        """
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            _LOGGER.warning("Ignoring saved subscription state of unknown version or shape")
            return
        now = self._clock()
        skipped = 0
        records = data.get("contacts", [])
        if not isinstance(records, list):
            skipped += 1
            records = []
        for record in records:
            try:
                restored = _restore_contact(record)
            except TypeError, ValueError, KeyError, AttributeError:
                skipped += 1
                continue
            self.remove(restored.jid)
            self._contacts[restored.jid] = restored
            if restored.fail_count:
                self._n.failed += 1
            if restored.next_retry is not None and restored.next_retry > now:
                restored.state = ContactState.BACKOFF
                self._n.states[ContactState.BACKOFF] += 1
                self._push_retry(restored)
            else:
                restored.next_retry = None
                self._n.states[ContactState.QUEUED] += 1
                self._enqueue(restored, ContactState.QUEUED)
        saved_calls = data.get("recent_calls", [])
        if not isinstance(saved_calls, list):
            skipped += 1
            saved_calls = []
        if skipped:
            _LOGGER.warning("Skipped %d unreadable saved subscription records", skipped)
        calls = sorted(float(t) for t in saved_calls if _is_time(t) and float(t) <= now)
        self._recent = deque(sorted([*self._recent, *calls]))
        self._minute = deque(t for t in self._recent if t > now - WINDOW)
        self._watch.restore(data.get("answers"), self._contacts, now)
        self._wake.set()
        self._notify(None)

    # ------------------------------------------------------------ internals

    def _notify(self, jid: str | None) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(jid)
            except Exception:
                _LOGGER.exception("Subscription state listener failed")

    def _set_state(self, contact: _Contact, state: ContactState) -> None:
        if contact.state is not state:
            self._n.states[contact.state] -= 1
            self._n.states[state] += 1
            contact.state = state

    def _enqueue(
        self, contact: _Contact, state: ContactState, key: tuple[int, int] | None = None
    ) -> None:
        """Put ``contact`` in the queue (``key`` keeps an old place); no-op if queued."""
        if contact.qkey is None:
            if key is None:
                key = (int(contact.priority), next(self._seq))
                contact.queued_at = self._clock()
            contact.qkey = key
            heapq.heappush(self._queue, (key[0], key[1], contact.jid))
            self._n.queued += 1
            contact.rkey = None
            contact.next_retry = None
        self._set_state(contact, state)

    def _dequeue(self, contact: _Contact) -> None:
        if contact.qkey is not None:
            contact.qkey = None
            contact.queued_at = None
            self._n.queued -= 1
            self._maybe_compact()

    def _reprioritise(self, contact: _Contact, priority: Priority) -> None:
        contact.priority = priority
        if contact.qkey is not None:
            key = (int(priority), contact.qkey[1])
            contact.qkey = key
            heapq.heappush(self._queue, (key[0], key[1], contact.jid))
            self._maybe_compact()
        self._wake.set()
        self._notify(contact.jid)

    def _peek(self) -> _Contact | None:
        """The contact at the head of the queue, dropping dead entries (lazy deletion)."""
        queue = self._queue
        while queue:
            prio, seq, jid = queue[0]
            contact = self._contacts.get(jid)
            if contact is not None and contact.qkey == (prio, seq):
                return contact
            heapq.heappop(queue)
        return None

    def _maybe_compact(self) -> None:
        """Rebuild a heap that is mostly dead entries, so memory stays O(contacts)."""
        if len(self._queue) > 2 * self._n.queued + 1024:
            self._queue = [(c.qkey[0], c.qkey[1], c.jid) for c in self._contacts.values() if c.qkey]
            heapq.heapify(self._queue)
        live_retries = self._n.states[ContactState.BACKOFF]
        if len(self._retries) > 2 * live_retries + 1024:
            self._retries = [
                (c.next_retry, c.rkey, c.jid)
                for c in self._contacts.values()
                if c.rkey is not None and c.next_retry is not None
            ]
            heapq.heapify(self._retries)

    def _push_retry(self, contact: _Contact) -> None:
        assert contact.next_retry is not None
        contact.rkey = next(self._seq)
        heapq.heappush(self._retries, (contact.next_retry, contact.rkey, contact.jid))

    def _live_retry_head(self) -> tuple[float, _Contact] | None:
        retries = self._retries
        while retries:
            when, seq, jid = retries[0]
            contact = self._contacts.get(jid)
            if contact is not None and contact.rkey == seq:
                return when, contact
            heapq.heappop(retries)
        return None

    def _earliest_retry(self) -> float | None:
        head = self._live_retry_head()
        return None if head is None else head[0]

    def _promote_due_retries(self, now: float) -> None:
        promoted = False
        while (head := self._live_retry_head()) is not None and head[0] <= now + _EPSILON:
            heapq.heappop(self._retries)
            contact = head[1]
            self._enqueue(contact, ContactState.QUEUED)
            self._notify(contact.jid)
            promoted = True
        if promoted:
            self._maybe_compact()

    def _requeue_all(self) -> int:
        """Queue every contact not queued, in flight or in backoff; stale ones become queued.

        Within a priority the contacts shown online since a recent change go first (a change
        missed for them leaves the most visible mistake: online periods are short), then the
        most recently active: they are the ones whose presence is most likely to change while
        the others wait (O(n log n), once a reconnect).
        """
        count = 0
        recent = self._clock() - _HOUR

        def order(contact: _Contact) -> tuple[bool, float]:
            last = contact.last_event if contact.last_event is not None else -math.inf
            return not (contact.online and last > recent), -last

        by_activity = sorted(self._contacts.values(), key=order)
        for contact in by_activity:
            contact.renewal = False  # a new connection: no old subscription can answer
            if contact.state is ContactState.SUBSCRIBED:
                self._enqueue(contact, ContactState.QUEUED)
                count += 1
            elif contact.state is ContactState.STALE:
                self._set_state(contact, ContactState.QUEUED)
            elif contact.state is ContactState.SUBSCRIBING:
                contact.requeue_after_call = True
        return count

    def _prune_recent(self, now: float) -> None:
        recent, minute = self._recent, self._minute
        if recent and recent[-1] > now + _EPSILON:
            # The wall clock went backwards: clamp history so pacing does not stall.
            self._recent = recent = deque(min(t, now) for t in recent)
            self._minute = minute = deque(min(t, now) for t in minute)
        horizon = now - max(_HOUR, self._config.batch.cycle * self._factor)
        while recent and recent[0] <= horizon:
            recent.popleft()
        while minute and minute[0] <= now - WINDOW:
            minute.popleft()

    def _next_call_time(self, now: float) -> float:
        """Earliest time the next call respects the batch window and the global cap."""
        self._prune_recent(now)
        recent = self._recent
        batch = self._config.batch
        factor = self._factor
        due = now
        if len(recent) >= batch.batch_size:
            due = max(due, recent[-batch.batch_size] + batch.cycle * factor)
        cap = max(1, math.floor(self._config.max_per_minute / factor + _EPSILON))
        if len(recent) >= cap:
            due = max(due, recent[-cap] + WINDOW)
        return due

    async def _wait(self, event: asyncio.Event, delay: float | None) -> None:
        """Wait for ``event`` or, when ``delay`` is given, that many seconds of injected sleep."""
        if event.is_set():
            return
        if delay is None:
            await event.wait()
            return
        waiter = asyncio.ensure_future(event.wait())
        sleeper = asyncio.ensure_future(self._sleep(max(delay, 0.0)))
        try:
            await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                task.cancel()
            await asyncio.wait((waiter, sleeper))

    @property
    def _factor(self) -> float:
        """Divides the preset's pace while WhatsApp seems to ignore subscriptions."""
        return self._watch.factor if self._config.adaptive else 1.0

    def _watch_deadline(self) -> float | None:
        return self._watch.next_deadline() if self._config.adaptive else None

    def _full_rate(self) -> float:
        """Calls per minute at the preset's pace, the global cap included."""
        return min(preset_rate(self._config.batch), float(self._config.max_per_minute))

    def on_banned(self) -> None:
        """WhatsApp banned the account for a while: halve the pace (when adapting)."""
        if self._config.adaptive:
            self._watch.banned(self._clock())
            _LOGGER.info("Temporary ban: pace %.0f a minute", self.pace)
            self._notify(None)

    @property
    def pace(self) -> float:
        """Subscribe calls per minute in force."""
        return self._full_rate() / self._factor

    @property
    def pace_reason(self) -> str:
        """Why the pace last changed: preset, ignored, answered or ban."""
        return self._watch.reason if self._config.adaptive else "preset"

    def _requeue_ignored(self, now: float) -> None:
        """Follow the answer watch: its pace, and the contacts it found ignored."""
        if not self._config.adaptive:
            return
        pace = self._watch.pace
        ignored = self._watch.resolve(now, self._full_rate())
        if self._watch.pace < pace:
            _LOGGER.info("Subscriptions went unanswered: pace %.0f a minute", self.pace)
        elif self._watch.pace > pace:
            _LOGGER.debug("Subscriptions are answered: pace %.0f a minute", self.pace)
        for jid in ignored:  # first in their priority: they were due already
            contact = self._contacts.get(jid)
            if contact is not None and contact.state is ContactState.SUBSCRIBED:
                self._enqueue(
                    contact, ContactState.QUEUED, (int(contact.priority), -next(self._seq))
                )
                contact.queued_at = now
                self._notify(jid)
        if ignored or self._watch.pace != pace:
            self._notify(None)

    async def _worker(self) -> None:
        """Run ``_work`` forever; a bug must not silently end all subscribing."""
        while True:
            try:
                await self._work()
            except Exception:
                _LOGGER.exception("Subscription worker failed; resuming in %.0f s", _ERROR_PAUSE)
                await self._sleep(_ERROR_PAUSE)

    async def _work(self) -> None:
        """Forever: take the head of the queue when pacing allows, and subscribe it."""
        while True:
            self._wake.clear()
            if not self._connected or self._paused:
                await self._wake.wait()
                continue
            now = self._clock()
            self._promote_due_retries(now)
            self._requeue_ignored(now)
            contact = self._peek()
            if contact is None:
                wake_at = min(
                    (t for t in (self._earliest_retry(), self._watch_deadline()) if t is not None),
                    default=None,
                )
                await self._wait(self._wake, None if wake_at is None else wake_at - now)
                continue
            due = self._next_call_time(now)
            if due - now > _EPSILON:
                await self._sleep(due - now)
                continue
            await self._call(contact, now)
            await self._sleep(self._config.batch.subscription_delay * self._factor)

    async def _call(self, contact: _Contact, now: float) -> None:
        key = contact.qkey
        assert key is not None
        before, queued_at = contact.state, contact.queued_at
        heapq.heappop(self._queue)
        self._dequeue(contact)
        self._set_state(contact, ContactState.SUBSCRIBING)
        contact.requeue_after_call = False
        contact.renewal = False
        contact.heard = False
        self._notify(contact.jid)
        self._recent.append(now)
        self._minute.append(now)
        self._n.calls += 1
        epoch = self._epoch
        try:
            await self._subscribe(contact.jid)
        except asyncio.CancelledError:
            self._put_back(contact, key, before, queued_at)
            raise
        except SubscriptionPaused:
            _LOGGER.debug("Subscribe paused: link down, waiting for a reconnect")
            self._put_back(contact, key, before, queued_at)
            self.on_disconnected()
            return
        except Exception as err:  # noqa: BLE001  (any subscribe error means backoff)
            if epoch != self._epoch or not self._connected:
                self._put_back(contact, key, before, queued_at)
            else:
                self._fail(contact, err)
            return
        if self._contacts.get(contact.jid) is not contact:
            return  # removed while in flight
        if epoch != self._epoch:
            self._put_back(contact, key, before, queued_at)  # the link changed under the call
            return
        if contact.fail_count:
            self._n.failed -= 1
        contact.fail_count = 0
        gap = (
            self._down_at is not None
            and (contact.last_subscribed is None or contact.last_subscribed < self._down_at)
            and now - self._down_at > self._config.trust_gap
        )
        # Presence that came during the call is current: it answered the new subscription.
        contact.trusted = contact.trusted and (contact.heard or not gap)
        contact.live_epoch = self._epoch
        contact.last_subscribed = now
        if self._config.adaptive:
            self._watch.sent(contact.jid, now)
        self._set_state(contact, ContactState.SUBSCRIBED)
        if contact.requeue_after_call:
            self._enqueue(contact, ContactState.QUEUED)
        self._notify(contact.jid)

    def _put_back(
        self,
        contact: _Contact,
        key: tuple[int, int],
        state: ContactState,
        queued_at: float | None,
    ) -> None:
        """Return an interrupted contact to its old place in the queue (not a failure)."""
        if self._contacts.get(contact.jid) is not contact or contact.state is not (
            ContactState.SUBSCRIBING
        ):
            return
        self._enqueue(contact, state, (int(contact.priority), key[1]))
        contact.queued_at = queued_at
        self._notify(contact.jid)

    def _fail(self, contact: _Contact, err: Exception) -> None:
        self._n.failures += 1
        if self._contacts.get(contact.jid) is not contact:
            return
        if not contact.fail_count:
            self._n.failed += 1
        contact.fail_count += 1
        delay = backoff_delay(
            contact.fail_count, self._config.base_backoff, self._config.max_backoff
        )
        contact.next_retry = self._clock() + delay
        self._set_state(contact, ContactState.BACKOFF)
        self._push_retry(contact)
        _LOGGER.debug(
            "Subscribe to %s failed (%s); retry %d in %.0f s",
            contact.jid,
            type(err).__name__,
            contact.fail_count,
            delay,
        )
        self._notify(contact.jid)

    async def _health_loop(self) -> None:
        while True:
            self._health_wake.clear()
            await self._wait(self._health_wake, self._config.health_check_interval)
            if self._health_wake.is_set():
                continue  # the interval changed: start a new period
            try:
                self.check_health()
            except Exception:
                _LOGGER.exception("Subscription health check failed")


def _info(contact: _Contact) -> ContactInfo:
    return ContactInfo(
        jid=contact.jid,
        priority=contact.priority,
        state=contact.state,
        fail_count=contact.fail_count,
        next_retry=contact.next_retry,
        last_event=contact.last_event,
        last_subscribed=contact.last_subscribed,
        queued_at=contact.queued_at,
    )


def _is_time(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _optional_time(value: object) -> float | None:
    if value is None:
        return None
    if not _is_time(value):
        raise ValueError("not a time")
    assert isinstance(value, int | float)
    return float(value)


def _restore_contact(record: Any) -> _Contact:
    jid = record["jid"]
    if not isinstance(jid, str) or not jid:
        raise ValueError("bad jid")
    fail_count = record.get("fail_count", 0)
    if isinstance(fail_count, bool) or not isinstance(fail_count, int) or fail_count < 0:
        raise ValueError("bad fail_count")
    return _Contact(
        jid=jid,
        priority=Priority(record.get("priority", Priority.MEDIUM)),
        state=ContactState.QUEUED,
        fail_count=fail_count,
        next_retry=_optional_time(record.get("next_retry")) if fail_count else None,
        last_event=_optional_time(record.get("last_event")),
        last_subscribed=_optional_time(record.get("last_subscribed")),
    )
