"""The online-time and session model, on an injected clock (no Home Assistant needed)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest

from custom_components.whatsapp_presence.activity import (
    MERGE_GAP,
    RESUME_WITHIN,
    ActivityTracker,
    Known,
)

BERLIN = ZoneInfo("Europe/Berlin")
JID = "447700900001@s.whatsapp.net"


class Clock:
    """Unix seconds that a test moves."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def tracker_at(start: datetime, zone: tzinfo = BERLIN) -> tuple[ActivityTracker, Clock]:
    clock = Clock(start)
    tracker = ActivityTracker(clock, lambda: zone)
    tracker.track(JID)
    return tracker, clock


def figures(tracker: ActivityTracker) -> tuple[float, int, float | None]:
    snapshot = tracker.snapshot(JID)
    assert snapshot is not None
    return snapshot.online_today, snapshot.sessions_today, snapshot.last_session


def test_sessions_and_online_time_add_up() -> None:
    """Two sessions: their online time adds up, each is counted, the last one is shown."""
    tracker, clock = tracker_at(datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN))
    assert figures(tracker) == (0.0, 0, None)
    tracker.observe(JID, False)
    clock.advance(600)
    tracker.observe(JID, True)
    clock.advance(300)
    assert figures(tracker) == (300.0, 1, None)  # the running session counts as it runs
    tracker.observe(JID, False)
    assert figures(tracker) == (300.0, 1, 300.0)
    clock.advance(3600)
    tracker.observe(JID, True)
    clock.advance(120)
    tracker.observe(JID, False)
    assert figures(tracker) == (420.0, 2, 120.0)
    snapshot = tracker.snapshot(JID)
    assert snapshot is not None
    assert snapshot.total == 420.0


def test_a_short_gap_is_part_of_the_session() -> None:
    """WhatsApp splits a long session: a gap up to MERGE_GAP merges, and counts as online."""
    tracker, clock = tracker_at(datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN))
    tracker.observe(JID, True)
    clock.advance(600)
    tracker.observe(JID, False)
    assert figures(tracker) == (600.0, 1, 600.0)
    clock.advance(MERGE_GAP)
    tracker.observe(JID, True)
    clock.advance(600)
    tracker.observe(JID, False)
    assert figures(tracker) == (1200.0 + MERGE_GAP, 1, 1200.0 + MERGE_GAP)
    # One second more than the gap: a new session, the gap is offline time.
    clock.advance(MERGE_GAP + 1)
    tracker.observe(JID, True)
    clock.advance(10)
    tracker.observe(JID, False)
    assert figures(tracker) == (1210.0 + MERGE_GAP, 2, 10.0)


def test_unknown_time_counts_neither_way() -> None:
    """A reconnect in the middle of a session: the unknown time is not online time."""
    tracker, clock = tracker_at(datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN))
    tracker.observe(JID, True)
    clock.advance(600)
    assert tracker.forget(JID)  # the link dropped
    assert figures(tracker) == (600.0, 1, None)
    clock.advance(300)  # reconnecting, subscribing again
    assert figures(tracker) == (600.0, 1, None)
    snapshot = tracker.snapshot(JID)
    assert snapshot is not None
    assert snapshot.known is Known.UNKNOWN
    tracker.observe(JID, True)  # the answer to the new subscription: still online
    clock.advance(600)
    tracker.observe(JID, False)
    assert figures(tracker) == (1200.0, 1, 1200.0)


def test_a_long_unknown_time_ends_the_session() -> None:
    """Back online only after RESUME_WITHIN: the old session ended at the interruption."""
    tracker, clock = tracker_at(datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN))
    tracker.observe(JID, True)
    clock.advance(600)
    tracker.forget(JID)
    clock.advance(RESUME_WITHIN + 1)
    tracker.observe(JID, True)
    assert figures(tracker) == (600.0, 2, 600.0)
    clock.advance(60)
    tracker.observe(JID, False)
    assert figures(tracker) == (660.0, 2, 60.0)


def test_offline_after_unknown_shows_the_interrupted_session() -> None:
    """Online, unknown, then offline: the session ended at the interruption."""
    tracker, clock = tracker_at(datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN))
    tracker.observe(JID, True)
    clock.advance(600)
    tracker.forget(JID)
    clock.advance(60)
    tracker.observe(JID, False)
    assert figures(tracker) == (600.0, 1, 600.0)


def test_unknown_after_going_offline_closes_the_session() -> None:
    """Offline, then unknown within the merge gap: coming back is a new session."""
    tracker, clock = tracker_at(datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN))
    tracker.observe(JID, True)
    clock.advance(100)
    tracker.observe(JID, False)
    clock.advance(10)
    tracker.forget(JID)
    clock.advance(10)
    tracker.observe(JID, True)
    clock.advance(100)
    assert figures(tracker) == (200.0, 2, 100.0)


def test_presence_never_known_counts_nothing() -> None:
    """A contact hiding presence: all zero, no session, no last session."""
    tracker, clock = tracker_at(datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN))
    clock.advance(86_400 * 2)
    assert figures(tracker) == (0.0, 0, None)
    assert tracker.online_now() == []


def test_restart_in_the_middle_of_a_session() -> None:
    """Saved while online, stopped for a while, back online: one session, stop time not counted."""
    tracker, clock = tracker_at(datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN))
    tracker.observe(JID, True)
    clock.advance(1800)
    tracker.forget_all()  # Home Assistant stops
    saved = tracker.to_dict()

    clock.advance(240)  # Home Assistant is down
    restored = ActivityTracker(clock, lambda: BERLIN)
    restored.restore(saved)
    restored.track(JID)
    clock.advance(60)  # subscribing again
    restored.observe(JID, True)
    clock.advance(1200)
    restored.observe(JID, False)
    snapshot = restored.snapshot(JID)
    assert snapshot is not None
    assert (snapshot.online_today, snapshot.sessions_today, snapshot.last_session) == (
        3000.0,
        1,
        3000.0,
    )


def test_a_crash_counts_up_to_the_last_save() -> None:
    """No clean stop: the figures saved while online count up to the save, no further."""
    tracker, clock = tracker_at(datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN))
    tracker.observe(JID, True)
    clock.advance(100)
    saved = tracker.to_dict()  # a delayed save while online, then the process dies
    clock.advance(1000)
    restored = ActivityTracker(clock, lambda: BERLIN)
    restored.restore(saved)
    assert restored.snapshot(JID) is not None
    assert restored.online_now() == []
    snapshot = restored.snapshot(JID)
    assert snapshot is not None
    assert (snapshot.online_today, snapshot.known) == (100.0, Known.UNKNOWN)


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        (datetime(2026, 3, 28, 23, 30), 23),  # the night before spring forward: a 23 h day
        (datetime(2026, 10, 24, 23, 30), 25),  # the night before fall back: a 25 h day
    ],
)
def test_midnight_in_local_time_across_dst(day: datetime, hours: int) -> None:
    """The day starts again at local midnight, whatever the length of the day (DST)."""
    start = day.replace(tzinfo=BERLIN)
    tracker, clock = tracker_at(start)
    tracker.observe(JID, True)
    clock.advance(3600)  # 23:30 to 00:30: half an hour each side of midnight
    assert tracker.roll_all() == [JID]
    assert figures(tracker) == (1800.0, 1, None)  # a session running at midnight is today's
    tracker.observe(JID, False)
    assert figures(tracker) == (1800.0, 1, 3600.0)
    # The next midnight is a whole local day later, 23 or 25 hours of real time.
    midnight = tracker.next_midnight()
    assert midnight - clock.now == hours * 3600 - 1800
    clock.now = midnight - 1
    assert figures(tracker) == (1800.0, 1, 3600.0)
    clock.now = midnight
    assert figures(tracker) == (0.0, 0, 3600.0)
    snapshot = tracker.snapshot(JID)
    assert snapshot is not None
    assert snapshot.total == 3600.0


def test_midnight_inside_a_merge_gap() -> None:
    """Offline across midnight for less than the gap: the session is today's once it goes on."""
    tracker, clock = tracker_at(datetime(2026, 6, 1, 23, 59, 30, tzinfo=BERLIN))
    tracker.observe(JID, True)
    clock.advance(20)
    tracker.observe(JID, False)  # 23:59:50
    clock.advance(20)  # 00:00:10
    assert figures(tracker) == (0.0, 0, 20.0)
    tracker.observe(JID, True)
    clock.advance(50)
    tracker.observe(JID, False)
    assert figures(tracker) == (60.0, 1, 90.0)  # 10 s of the gap after midnight, 50 s online


def test_untracked_contacts_are_ignored() -> None:
    """Presence of a contact not tracked changes nothing."""
    tracker, _ = tracker_at(datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN))
    assert not tracker.observe("other@s.whatsapp.net", True)
    assert tracker.snapshot("other@s.whatsapp.net") is None
    tracker.untrack(JID)
    assert tracker.snapshot(JID) is None
