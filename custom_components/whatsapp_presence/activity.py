"""Online time and sessions per contact, counted from observed presence only.

Free of Home Assistant: the clock and the local time zone are injected, so tests drive time
and days directly. The coordinator feeds it what it learns (``observe``) and when it stops
knowing (``forget``: the link dropped, Home Assistant stopped).

Rules (also in docs/insights.md):

- Only observed time counts. Time whose state is unknown (link down, a contact not answering
  yet after a reconnect or a restart, presence hidden) is neither online nor offline.
- WhatsApp splits long sessions into pieces: an offline gap of at most ``MERGE_GAP`` between
  two online pieces is part of the session and counts as online time.
- A session interrupted by unknown time goes on when the contact is online again within
  ``RESUME_WITHIN`` of the interruption (the unknown time itself is not counted); otherwise it
  ended at the interruption.
- *Online today* and *sessions today* start again at local midnight; a session running at
  midnight counts as one session of the new day too.
- *Last session* is the counted online time of the latest session, shown when the contact goes
  offline (a session merged with its next piece replaces it when that ends); a session
  interrupted by unknown time is shown once it is known to have ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

MERGE_GAP = 60.0
"""Seconds offline between two online pieces that still make one session."""
RESUME_WITHIN = 900.0
"""Seconds of unknown state after which an interrupted session is taken as ended."""


class Known(StrEnum):
    """What is known of a contact now."""

    ONLINE = "online"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class Figures:
    """One contact's counts; times are Unix seconds."""

    day: str = ""  # local date (ISO) the daily figures belong to
    online_today: float = 0.0  # counted seconds today, up to ``since`` when online
    sessions_today: int = 0
    last_session: float | None = None  # counted seconds of the latest ended session
    total: float = 0.0  # counted seconds since tracking began (the Prometheus counter)
    known: Known = Known.UNKNOWN
    since: float | None = None  # online: start of the running piece; else when it began
    session: float | None = None  # counted seconds of the open session (closed pieces)
    session_counted: bool = False  # the open session is among today's sessions
    piece_end: float | None = None  # end of the open session's last piece (offline/unknown)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A contact's figures as of one instant (the running piece included)."""

    online_today: float
    sessions_today: int
    last_session: float | None
    total: float
    known: Known


class ActivityTracker:
    """Online time and sessions of every tracked contact."""

    def __init__(self, clock: Callable[[], float], time_zone: Callable[[], tzinfo]) -> None:
        """``clock`` gives Unix seconds; ``time_zone`` the local zone (it may change)."""
        self._clock = clock
        self._time_zone = time_zone
        self.contacts: dict[str, Figures] = {}

    # ------------------------------------------------------------------ days

    def _day(self, at: float) -> date:
        return datetime.fromtimestamp(at, self._time_zone()).date()

    def _start_of(self, day: date) -> float:
        return datetime.combine(day, time(), self._time_zone()).timestamp()

    def next_midnight(self) -> float:
        """When the next local day begins (for the midnight reset)."""
        return self._start_of(self._day(self._clock()) + timedelta(days=1))

    def _roll(self, figures: Figures, at: float) -> None:
        """Start a new day when ``at`` is past the figures' day; close the old day first."""
        day = self._day(at)
        if figures.day >= day.isoformat():
            return  # same day (or a clock stepping back: never undo a day)
        if figures.day and figures.known is Known.ONLINE and figures.since is not None:
            start = self._start_of(day)
            if figures.since < start:
                self._count(figures, figures.since, start)
                figures.since = start
        figures.day = day.isoformat()
        figures.online_today = 0.0
        figures.sessions_today = int(figures.known is Known.ONLINE)
        figures.session_counted = figures.known is Known.ONLINE

    def _count(self, figures: Figures, start: float, end: float) -> None:
        """Add online time; only its part within the figures' day goes to *online today*."""
        if end <= start:
            return
        figures.total += end - start
        if figures.session is not None:
            figures.session += end - start
        day_start = self._start_of(date.fromisoformat(figures.day))
        figures.online_today += max(0.0, end - max(start, day_start))

    # ------------------------------------------------------------------ contacts

    def track(self, jid: str) -> None:
        """Follow a contact (unknown until observed)."""
        if jid not in self.contacts:
            self.contacts[jid] = Figures(day=self._day(self._clock()).isoformat())

    def untrack(self, jid: str) -> None:
        """Forget a contact entirely."""
        self.contacts.pop(jid, None)

    def observe(self, jid: str, online: bool) -> bool:
        """WhatsApp reported the contact online or offline now; True if figures changed."""
        figures = self.contacts.get(jid)
        if figures is None:
            return False
        now = self._clock()
        self._roll(figures, now)
        before = (figures.known, figures.sessions_today, figures.last_session)
        if online:
            self._went_online(figures, now)
        elif figures.known is Known.ONLINE:
            self._end_piece(figures, now, offline=True)
            figures.known, figures.since = Known.OFFLINE, now
        elif figures.known is Known.UNKNOWN:
            if figures.session is not None:
                figures.last_session = figures.session  # it ended at the interruption
            figures.known, figures.since = Known.OFFLINE, now
            figures.session = figures.piece_end = None
        return (figures.known, figures.sessions_today, figures.last_session) != before

    def _went_online(self, figures: Figures, now: float) -> None:
        if figures.known is Known.ONLINE:
            return
        end = figures.piece_end
        if figures.session is not None and end is not None:
            gap = now - end
            if figures.known is Known.OFFLINE and gap <= MERGE_GAP:
                self._count(figures, end, now)  # a piece boundary WhatsApp made: online
                self._continue(figures)
            elif figures.known is Known.UNKNOWN and gap <= RESUME_WITHIN:
                self._continue(figures)  # unknown time counts neither way
            else:
                if figures.known is Known.UNKNOWN:
                    figures.last_session = figures.session  # it ended at the interruption
                self._new_session(figures)
        else:
            self._new_session(figures)
        figures.known, figures.since, figures.piece_end = Known.ONLINE, now, None

    def _continue(self, figures: Figures) -> None:
        if not figures.session_counted:
            figures.sessions_today += 1
            figures.session_counted = True

    def _new_session(self, figures: Figures) -> None:
        figures.session = 0.0
        figures.sessions_today += 1
        figures.session_counted = True

    def _end_piece(self, figures: Figures, now: float, *, offline: bool) -> None:
        """The running online piece ends now; the session may go on (merge or resume).

        Going offline shows the session as the last one at once (a merge later extends it);
        an interruption does not: most sessions go on once the contact answers again.
        """
        assert figures.since is not None
        self._count(figures, figures.since, now)
        if offline:
            figures.last_session = figures.session
        figures.piece_end = now

    def forget(self, jid: str, at: float | None = None) -> bool:
        """The contact's state is unknown from ``at`` (default now); True if figures changed."""
        figures = self.contacts.get(jid)
        if figures is None or figures.known is Known.UNKNOWN:
            return False
        now = self._clock() if at is None else at
        self._roll(figures, now)
        if figures.known is Known.ONLINE:
            self._end_piece(figures, now, offline=False)
        else:
            # Offline, maybe within a merge gap: the session ended at its last piece.
            figures.session = figures.piece_end = None
        figures.known, figures.since = Known.UNKNOWN, now
        return True

    def forget_all(self, at: float | None = None) -> list[str]:
        """Every contact becomes unknown; returns those whose figures changed."""
        return [jid for jid in list(self.contacts) if self.forget(jid, at)]

    def roll_all(self) -> list[str]:
        """At midnight: start the new day; returns contacts whose shown figures changed."""
        now = self._clock()
        changed = []
        for jid, figures in self.contacts.items():
            before = self._shown(figures, now)
            self._roll(figures, now)
            if self._shown(figures, now) != before:
                changed.append(jid)
        return changed

    @staticmethod
    def _shown(figures: Figures, now: float) -> tuple[float, int]:
        running = 0.0
        if figures.known is Known.ONLINE and figures.since is not None:
            running = max(0.0, now - figures.since)
        return figures.online_today + running, figures.sessions_today

    def snapshot(self, jid: str) -> Snapshot | None:
        """The figures now, the running online piece included."""
        figures = self.contacts.get(jid)
        if figures is None:
            return None
        now = self._clock()
        self._roll(figures, now)
        online_today, _ = self._shown(figures, now)
        running = online_today - figures.online_today
        return Snapshot(
            online_today=online_today,
            sessions_today=figures.sessions_today,
            last_session=figures.last_session,
            total=figures.total + running,
            known=figures.known,
        )

    def online_now(self) -> list[str]:
        """Contacts observed online now."""
        return [jid for jid, f in self.contacts.items() if f.known is Known.ONLINE]

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """What to save; a running piece is saved as running until the save time."""
        return {
            "saved_at": self._clock(),
            "contacts": {jid: asdict(figures) for jid, figures in self.contacts.items()},
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load saved figures; the state is unknown from the save on (a restart is unknown)."""
        saved_at = float(data.get("saved_at") or self._clock())
        for jid, saved in data.get("contacts", {}).items():
            figures = Figures(**{**saved, "known": Known(saved.get("known", Known.UNKNOWN))})
            self.contacts[jid] = figures
            self.forget(jid, saved_at)
