"""Noticing subscriptions that WhatsApp silently ignores, and pacing below where it starts.

WhatsApp never answers "too many" to a presence subscription; past its hidden limit it just
ignores them, and sustained excess ends in a temporary ban. Nobody outside WhatsApp knows the
limit, nor whether a given contact answers an accepted subscription (privacy settings, missing
privacy tokens and strangers all stop that), so the watch learns answer rates instead of
assuming them (docs/rate-limiting.md, "Adaptation"):

* every subscription is judged by the class its contact is in: *again* (it answered its last
  subscription) or *first* (never judged before); contacts whose subscription went unanswered
  by chance become *silent* at that first silence and are no evidence from then on;
* each class keeps its usual answer rate; a run of unanswered subscriptions that chance
  explains less often than ``CHANCE`` at that rate means the limit was hit. Where the usual
  rate is too low for any run to mean anything (a network that does not answer), nothing is
  ever concluded, so the pace is exactly the preset's;
* on a hit the pace drops at once to ``CUT`` of the calls accepted in the minute before (about
  the limit), and the run's contacts are subscribed again; after each quiet minute in which
  WhatsApp kept answering it climbs back by ``STEP`` of the preset's rate, to just below the
  limit found for an hour, then on. The preset's rate stays the ceiling.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Container
from dataclasses import dataclass, field
import math
from typing import Any, Final

CHANCE: Final = 1e-4
"""A run of misses is acted on when chance alone would give it less often than this."""
MIN_HITS: Final = 10
"""Answers a class must have had before its answer rate is trusted."""
MAX_RUN: Final = 40
"""Longest run looked at: a class answering so rarely that it needs more proves nothing."""
SMOOTHING: Final = 0.005
"""Weight of each new outcome in a class's running answer rate (about the last 200)."""
MARGIN: Final = 0.1
"""The usual rate is taken this much lower when judging a run: it is an estimate."""
CUT: Final = 0.9
"""Share of the accepted calls of the minute before the run's end the pace drops to."""
STEP: Final = 0.01
"""Share of the preset's rate the pace climbs back per quiet minute."""
MIN_WINDOW: Final = 20
"""Outcomes in the last minute before their share of misses is judged."""
SLACK: Final = 0.005
"""Added to twice the usual miss rate when judging a minute's misses (it is an estimate)."""
BELOW: Final = 0.95
"""Share of the limit found at the last cut that the pace climbs back to..."""
MEMORY: Final = 3600.0
"""...and stays at; past it, one step per ``MEMORY`` seconds (the limit may have risen)."""
FLOOR: Final = 0.125
"""Lowest share of the preset's rate the pace ever drops to."""
QUIET: Final = 60.0
"""Seconds without a hit, with answers coming or no calls, before the pace climbs a step."""
WINDOW: Final = 60.0

AGAIN: Final = "again"
FIRST: Final = "first"
RETRY: Final = "retry"
"""A held contact subscribed again: it may have been silent by nature, so it is not judged."""


@dataclass(slots=True)
class _Class:
    """The usual answer rate of one class of subscriptions, and its current run of misses."""

    rate: float = 0.5
    hits: int = 0
    run: list[tuple[str, float]] | None = None
    recent: deque[tuple[float, str, bool]] = field(default_factory=deque)
    """(sent at, jid, answered) of the subscriptions judged over the last minute."""
    blocked: bool = False
    """A run here proved to be contacts that do not answer: wait for a hit to judge again."""

    def needed(self) -> int | None:
        """Misses in a row that chance explains less often than CHANCE; None: never."""
        if self.hits < MIN_HITS or self.blocked:
            return None
        miss = min(1.0, 1.0 - self.rate + MARGIN)
        if miss <= 0.0:
            return 3
        needed = max(3, math.ceil(math.log(CHANCE) / math.log(miss))) if miss < 1.0 else None
        return needed if needed is not None and needed <= MAX_RUN else None

    def too_many_misses(self) -> bool:
        """More misses in the last minute than chance gives less often than CHANCE.

        Catches a pace just past the limit, where ignored subscriptions are scattered among
        accepted ones and never make a run.
        """
        if self.hits < MIN_HITS or self.blocked or len(self.recent) < MIN_WINDOW:
            return False
        misses = sum(1 for _, _, hit in self.recent if not hit)
        expected = len(self.recent) * min(1.0, 2 * (1.0 - self.rate) + SLACK)
        return _poisson_tail(misses, expected) < CHANCE

    def count(self, hit: bool) -> None:
        self.rate = self.rate * (1 - SMOOTHING) + (SMOOTHING if hit else 0.0)
        self.hits += hit
        self.blocked = self.blocked and not hit


class AnswerWatch:
    """Expects an answer after each subscription and sets the pace from the silences.

    A cut is a hypothesis: the contacts of its run (and any others found silent in the same
    minute of excess) are *held*; once the limit's window has turned over, the run is
    subscribed again as a probe. If one of them answers, the limit was real: the cut stays
    and every held contact is subscribed again. If all stay silent, they are contacts that do
    not answer: they and the other held ones are left out, and the pace goes back.
    """

    def __init__(self, window: float) -> None:
        """``window``: seconds an answer may take."""
        self.window = window
        self.pace = 1.0
        """Share of the preset's rate in force (1 = the preset's pace)."""
        self.reason = "preset"
        """Why the pace last changed: preset, ignored, answered or ban."""
        self.slowdowns = 0
        self._classes = {AGAIN: _Class(), FIRST: _Class()}
        self._pending: dict[str, tuple[float, float, str]] = {}
        """jid -> (sent at, deadline, class) of its latest subscription."""
        self._deadlines: deque[tuple[float, str]] = deque()
        self._answering: set[str] = set()
        self._silent: set[str] = set()
        self._sends: deque[float] = deque()
        self._quiet_since = 0.0
        self._answers_since = False
        self._excess = (math.inf, math.inf)
        """Send times of the minute of excess behind the last cut (from, until)."""
        self._pace_before = 1.0
        self._held: list[str] = []
        """Contacts found ignored in the excess, until the window turned over."""
        self._probes: set[str] = set()
        """Held contacts subscribed again: one answer confirms the cut, all silent undo it."""
        self._probe_misses = 0
        self._probe_size = 0
        self._waiting: list[str] = []
        self._confirmed = False
        """The other held contacts, subscribed again once a probe answered."""
        self._release: list[str] = []
        self._limit: tuple[float, float] | None = None
        self._limit_before: tuple[float, float] | None = None
        """(share of the preset's rate, when) the limit was found at the last cut."""
        self._retries: set[str] = set()

    @property
    def factor(self) -> float:
        """How many times slower than the preset (1 = its pace)."""
        return 1.0 / self.pace

    def sent(self, jid: str, now: float) -> None:
        """A subscription went out (O(1))."""
        kind = AGAIN if jid in self._answering else None if jid in self._silent else FIRST
        if jid in self._probes:
            kind = kind or FIRST
        elif jid in self._retries:
            kind = RETRY
        self._sends.append(now)
        while self._sends and self._sends[0] <= now - WINDOW - self.window:
            self._sends.popleft()
        if kind is None:
            return
        deadline = now + self.window
        self._pending[jid] = (now, deadline, kind)
        self._deadlines.append((deadline, jid))

    def answered(self, jid: str) -> None:
        """Presence came for ``jid`` (O(1) unless it ends a run, O(run) then)."""
        pending = self._pending.pop(jid, None)
        if pending is None:
            return  # not an answer to a subscription: says nothing about answering
        self._silent.discard(jid)
        self._answering.add(jid)
        if pending[2] == RETRY:
            self._retries.discard(jid)
            return
        if jid in self._probes:  # an ignored contact answers at the lower pace: confirmed
            self._probes.clear()
            self._release.extend(self._waiting)
            self._waiting.clear()
            self._confirmed = True
        watched = self._classes[pending[2]]
        for missed, sent_at in watched.run or ():  # the run was chance after all...
            if self._excess[0] <= sent_at < self._excess[1]:
                self._held.append(missed)  # ...or the tail of the excess behind the cut
                continue
            watched.count(False)
            self._silence(missed)
        watched.run = None
        watched.count(True)
        self._remember(watched, pending[0], jid, True)
        self._answers_since = True

    def banned(self, now: float) -> None:
        """WhatsApp banned the account: whatever the answers said, the pace was too high."""
        self._probes.clear()
        self._set(max(FLOOR, self.pace / 2), "ban", now)

    def to_dict(self, tracked: Container[str]) -> dict[str, Any]:
        """What was learnt, for a restart (which renews every subscription at once)."""
        return {
            "answering": sorted(jid for jid in self._answering if jid in tracked),
            "silent": sorted(jid for jid in self._silent if jid in tracked),
            "classes": {name: [c.rate, c.hits] for name, c in self._classes.items()},
            "pace": self.pace,
            "limit": None if self._limit is None else self._limit[0],
        }

    def restore(self, data: Any, tracked: Container[str], now: float = 0.0) -> None:
        """Load ``to_dict`` output; anything malformed is ignored."""
        if not isinstance(data, dict):
            return
        for key, target in (("answering", self._answering), ("silent", self._silent)):
            jids = data.get(key)
            if isinstance(jids, list):
                target.update(j for j in jids if isinstance(j, str) and j in tracked)
        classes = data.get("classes")
        if isinstance(classes, dict):
            for name, value in classes.items():
                if name in self._classes and isinstance(value, list) and len(value) == 2:
                    rate, hits = value
                    if _is_rate(rate) and _is_count(hits):
                        self._classes[name].rate, self._classes[name].hits = rate, hits
        pace = data.get("pace")
        if isinstance(pace, float) and FLOOR <= pace <= 1.0:
            self.pace = pace
        limit = data.get("limit")
        if isinstance(limit, float) and 0.0 < limit <= 1.0:
            self._limit = (limit, now)  # found just before the restart: remembered anew

    def forget(self, jid: str | None = None) -> None:
        """Stop expecting answers: for one contact, or for all (the link went down)."""
        if jid is not None:
            self._pending.pop(jid, None)
            self._answering.discard(jid)
            self._silent.discard(jid)
            return
        self._pending.clear()
        self._deadlines.clear()
        self._held.clear()  # every contact is subscribed again anyway
        self._probes.clear()
        self._waiting.clear()
        for watched in self._classes.values():
            watched.run = None

    def next_deadline(self) -> float | None:
        """When the watch next needs to look: a missed answer, held contacts, a step up."""
        deadlines = self._deadlines
        while deadlines and (
            (pending := self._pending.get(deadlines[0][1])) is None or pending[1] != deadlines[0][0]
        ):
            deadlines.popleft()
        due = [deadlines[0][0]] if deadlines else []
        if self._held:
            due.append(self._excess[1])
        if self.pace < 1.0:
            due.append(self._quiet_since + QUIET)
        return min(due, default=None)

    def resolve(self, now: float, share: float = 1.0) -> list[str]:
        """Count the answers that did not come in time.

        ``share``: calls per minute the pace allows at 1.0, to turn a count into a share.
        Returns the contacts to subscribe again: those found ignored, once the limit's window
        has turned over since the excess.
        """
        self._recover(now)
        while (deadline := self._next_miss()) is not None and deadline <= now:
            _, jid = self._deadlines.popleft()
            sent_at, _, kind = self._pending.pop(jid)
            if jid in self._probes:
                self._probe_miss(now)
                continue
            if kind == RETRY:
                self._retries.discard(jid)
                self._silence(jid)
                continue
            watched = self._classes[kind]
            if watched.run is None:
                watched.run = []
            watched.run.append((jid, sent_at))
            self._remember(watched, sent_at, jid, False)
            needed = watched.needed()
            if needed is not None and len(watched.run) >= needed:
                self._hit(watched, now, share)
            elif watched.too_many_misses():
                watched.run = [(j, t) for t, j, hit in watched.recent if not hit]
                self._hit(watched, now, share)
            elif len(watched.run) > MAX_RUN:  # too long for the limit: a real miss
                missed, _ = watched.run.pop(0)
                watched.count(False)
                self._silence(missed)
        if self._held and now >= self._excess[1]:
            if self._confirmed:  # a probe answered already: the rest of the excess was ignored
                self._release.extend(self._held)
            elif self._probes or self._waiting:  # the open hypothesis decides for them too
                self._waiting.extend(self._held)
            else:
                probes = self._held[: self._probe_size]
                self._probes.update(probes)
                self._probe_misses = 0
                self._waiting.extend(self._held[self._probe_size :])
                self._release.extend(probes)
            self._held.clear()
        released, self._release = self._release, []
        self._retries.update(jid for jid in released if jid not in self._probes)
        return released

    @staticmethod
    def _remember(watched: _Class, sent_at: float, jid: str, hit: bool) -> None:
        recent = watched.recent
        recent.append((sent_at, jid, hit))
        while recent and recent[0][0] <= sent_at - WINDOW:
            recent.popleft()

    def _next_miss(self) -> float | None:
        deadlines = self._deadlines
        while deadlines and (
            (pending := self._pending.get(deadlines[0][1])) is None or pending[1] != deadlines[0][0]
        ):
            deadlines.popleft()
        return deadlines[0][0] if deadlines else None

    def _hit(self, watched: _Class, now: float, share: float) -> None:
        """A run too long for chance: cut the pace (once per minute of excess)."""
        run, watched.run = watched.run or [], None
        watched.recent.clear()
        first = run[0][1]
        self._held.extend(jid for jid, _ in run)
        if self._excess[0] <= first < self._excess[1]:
            return  # sent in the minute of excess already cut for
        last = run[-1][1]
        accepted = sum(1 for t in self._sends if last - WINDOW < t <= last) - len(run)
        estimate = max(0, accepted) / share if share > 0 else self.pace
        if self._confirmed or not (self._probes or self._waiting):
            self._pace_before = self.pace  # a new hypothesis (else: the open one grows)
            self._limit_before = self._limit
        self._set(max(FLOOR, CUT * min(estimate, self.pace)), "ignored", now)
        self._limit = (estimate, now)
        self._excess = (first, first + WINDOW)
        self._probe_size = len(run)
        self._confirmed = False
        self.slowdowns += 1

    def _probe_miss(self, now: float) -> None:
        self._probe_misses += 1
        if self._probe_misses < len(self._probes):
            return
        # Every ignored contact stayed silent at the lower pace: they do not answer at all.
        for jid in (*self._probes, *self._waiting):
            self._silence(jid)
        self._probes.clear()
        self._waiting.clear()
        self._classes[FIRST].blocked = True
        self.slowdowns -= 1
        self._limit = self._limit_before
        self._set(self._pace_before, "answered", now)

    def _silence(self, jid: str) -> None:
        self._answering.discard(jid)
        self._silent.add(jid)

    def _set(self, pace: float, reason: str, now: float) -> None:
        self.pace = min(1.0, pace)
        self.reason = reason
        self._quiet_since = now
        self._answers_since = False

    def _recover(self, now: float) -> None:
        if now - self._quiet_since < QUIET:
            return
        idle = not self._sends or self._sends[-1] < self._quiet_since
        top = 1.0
        if self._limit is not None and self.pace + STEP > BELOW * self._limit[0]:
            if now - self._limit[1] < MEMORY:  # just below the limit found: stay a while
                top = max(self.pace, BELOW * self._limit[0])
            elif self._answers_since or idle:  # one step past it, then stay another while
                self._limit = (self._limit[0], now)
        if self.pace < top and not self._held and (self._answers_since or idle):
            self.pace = min(top, self.pace + STEP)
            self.reason = "answered"
        self._quiet_since = now
        self._answers_since = False


def _poisson_tail(count: int, mean: float) -> float:
    """P(X >= count) for X ~ Poisson(mean)."""
    if count <= 0:
        return 1.0
    term = total = math.exp(-mean)
    for k in range(1, count):
        term *= mean / k
        total += term
    return max(0.0, 1.0 - total)


def _is_rate(value: object) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
