"""Noticing subscriptions that WhatsApp silently ignores, and slowing down when it does.

WhatsApp never answers "too many" to a presence subscription; past its hidden limit it just
ignores them, and sustained abuse ends in a temporary ban. What it does do is answer a
subscription it accepts with the contact's current presence, within a second or so, for every
contact whose presence the account may see. So once a contact has answered a subscription, its
next subscription should be answered too. A *run* of such known-answering contacts that stay
silent, longer than chance explains, means the limit was hit: the pace halves (down to an
eighth), the contacts of that run are queued again, and the pace recovers one step per quiet
``recovery`` period.

Only contacts that answered before count: a group of strangers (who never answer) must not
look like a limit. The price is that the very first subscription of a contact is not
judged; re-subscriptions, and the reconnect storms where every contact is renewed at once,
are.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Container
import math
from typing import Any, Final

MIN_HITS: Final = 10
"""Answers seen before the answer rate is trusted enough to act on a run."""
CHANCE: Final = 0.01
"""A run of misses is acted on when chance alone would give it less often than this."""
SMOOTHING: Final = 0.05
"""Weight of each new outcome in the running answer rate."""
RUN_BOUNDS: Final = (3, 30)


class AnswerWatch:
    """Expects an answer after each subscription and paces down on a run of silence."""

    def __init__(self, window: float, max_factor: int = 8, recovery: float = 600.0) -> None:
        """``window``: seconds an answer may take; ``factor`` divides the rate (1 = full)."""
        self.window = window
        self.max_factor = max_factor
        self.recovery = recovery
        self.factor = 1
        self.slowdowns = 0
        self._pending: dict[str, float] = {}
        """jid -> deadline of the answer to its latest subscription."""
        self._deadlines: deque[tuple[float, str]] = deque()
        self._run: list[str] = []
        self._answering: set[str] = set()
        """Contacts that answered a subscription before: only their silence is evidence."""
        self._rate = 0.5
        self._hits = 0
        self._changed_at = 0.0

    def sent(self, jid: str, now: float) -> None:
        """A subscription went out (O(1))."""
        deadline = now + self.window
        self._pending[jid] = deadline
        self._deadlines.append((deadline, jid))

    def answered(self, jid: str) -> None:
        """Presence came for ``jid`` (O(1) unless it ends a run, O(run) then)."""
        if self._pending.pop(jid, None) is None:
            return
        if jid not in self._answering:
            self._answering.add(jid)
            return
        for _ in self._run:  # the run was chance after all: count its misses
            self._rate *= 1 - SMOOTHING
        self._run.clear()
        self._rate = self._rate * (1 - SMOOTHING) + SMOOTHING
        self._hits += 1

    def to_dict(self, tracked: Container[str]) -> dict[str, Any]:
        """What was learnt, for a restart (which renews every subscription at once)."""
        return {
            "answering": sorted(jid for jid in self._answering if jid in tracked),
            "rate": self._rate,
            "hits": self._hits,
        }

    def restore(self, data: Any, tracked: Container[str]) -> None:
        """Load ``to_dict`` output; anything malformed is ignored."""
        if not isinstance(data, dict):
            return
        answering = data.get("answering")
        if isinstance(answering, list):
            self._answering.update(j for j in answering if isinstance(j, str) and j in tracked)
        rate, hits = data.get("rate"), data.get("hits")
        if isinstance(rate, float) and 0.0 <= rate <= 1.0:
            self._rate = rate
        if isinstance(hits, int) and not isinstance(hits, bool) and hits >= 0:
            self._hits = hits

    def forget(self, jid: str | None = None) -> None:
        """Stop expecting answers: for one contact, or for all (the link went down)."""
        if jid is not None:
            self._pending.pop(jid, None)
            self._answering.discard(jid)
            return
        self._pending.clear()
        self._deadlines.clear()
        self._run.clear()

    def next_deadline(self) -> float | None:
        """When the next unanswered subscription would count as a miss."""
        while self._deadlines and self._pending.get(self._deadlines[0][1]) != self._deadlines[0][0]:
            self._deadlines.popleft()
        return self._deadlines[0][0] if self._deadlines else None

    def run_needed(self) -> int:
        """Misses in a row that chance explains less often than CHANCE, at the usual rate."""
        miss = 1.0 - self._rate
        if miss <= 0.0:
            return RUN_BOUNDS[0]
        needed = math.ceil(math.log(CHANCE) / math.log(miss)) if miss < 1.0 else RUN_BOUNDS[1]
        return min(max(needed, RUN_BOUNDS[0]), RUN_BOUNDS[1])

    def resolve(self, now: float) -> list[str]:
        """Count the answers that did not come in time.

        Returns the contacts to subscribe again when their run of misses made the pace
        slow down (their subscriptions were most likely ignored), else an empty list.
        """
        self._recover(now)
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, jid = self._deadlines.popleft()
            del self._pending[jid]
            if jid not in self._answering:
                continue  # never answered: no evidence either way
            self._run.append(jid)
            if self._hits >= MIN_HITS and len(self._run) >= self.run_needed():
                ignored, self._run = self._run, []
                if self.factor < self.max_factor:
                    self.factor *= 2
                    self.slowdowns += 1
                self._changed_at = now
                return ignored
        return []

    def _recover(self, now: float) -> None:
        if self.factor > 1 and now - self._changed_at >= self.recovery:
            self.factor //= 2
            self._changed_at = now
