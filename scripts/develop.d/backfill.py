"""Past days of the demo's *Online today* statistics, played from the simulated network.

A fresh demo has no past: the WhatsApp dashboard's chart of online time per day would stay
empty for days. So the demo plays the simulator's own presence model (the random seed and time scale
of the demo's bridge) over the days before today, counts it with the integration's activity
model (``activity.py``: merged gaps, local midnight) and imports the result as the hourly
long-term statistics the recorder would have compiled from the *Online today* sensors. Today
is not played: it is what the running demo observes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from custom_components.whatsapp_presence.activity import ActivityTracker

HOUR = 3600.0
UNIT_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
"""Seconds per unit an *Online today* sensor may show (its unit can be changed in the UI)."""


@dataclass(frozen=True, slots=True)
class Window:
    """Whole local days before today: statistics hours run from ``start`` to ``end``."""

    start: float
    end: float

    @classmethod
    def days_before(cls, now: datetime, days: int) -> Window:
        """The ``days`` whole local days before ``now``'s day (``now`` carries the zone)."""
        today = datetime.combine(now.date(), time(), now.tzinfo)
        first = datetime.combine(now.date() - timedelta(days=days), time(), now.tzinfo)
        return cls(first.timestamp(), today.timestamp())


def hourly_online_today(
    history: Iterable[tuple[float, str, bool]],
    jids: Iterable[str],
    window: Window,
    time_zone: tzinfo,
) -> dict[str, list[tuple[float, float]]]:
    """Each contact's *Online today* in seconds at the end of each hour: [(hour start, s)].

    ``history`` is (time, jid, online) in time order, as ``presence_history`` gives it; a
    contact with none stays unknown, so at zero, like the live sensor.
    """
    now = [window.start]
    tracker = ActivityTracker(lambda: now[0], lambda: time_zone)
    wanted = list(jids)
    for jid in wanted:
        tracker.track(jid)
    changes = iter(history)
    pending = next(changes, None)
    rows: dict[str, list[tuple[float, float]]] = {jid: [] for jid in wanted}
    hour = window.start
    while hour < window.end:
        # The state at the end of the hour; a hair before it, as midnight starts a new day.
        end = min(hour + HOUR, window.end) - 1e-3
        while pending is not None and pending[0] <= end:
            at, jid, online = pending
            now[0] = max(at, window.start)
            tracker.observe(jid, online)
            pending = next(changes, None)
        now[0] = end
        for jid in wanted:
            snapshot = tracker.snapshot(jid)
            assert snapshot is not None
            rows[jid].append((hour, snapshot.online_today))
        hour += HOUR
    return rows


def statistics_rows(hourly: list[tuple[float, float]], unit: str) -> list[dict[str, Any]]:
    """Hourly rows as the recorder keeps a ``total_increasing`` sensor's: state and sum.

    The sum grows by each increase and by the whole new value after a reset (midnight), as
    the recorder counts it. It ends at zero: the recorder starts the live sensor's sum at zero
    from its first state, and a day's bar is the sum's change, so the past must end there.
    """
    per = UNIT_SECONDS[unit]
    rows: list[dict[str, Any]] = []
    total, previous = 0.0, None
    for start, seconds in hourly:
        state = round(seconds / per, 3)
        total += state if previous is None or state < previous else state - previous
        previous = state
        rows.append(
            {
                "start": datetime.fromtimestamp(start, UTC).isoformat(),
                "state": state,
                "sum": total,
            }
        )
    for row in rows:
        row["sum"] = round(row["sum"] - total, 3)
    return rows


def import_command(entity_id: str, unit: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``recorder/import_statistics`` WebSocket command for one sensor's rows."""
    return {
        "type": "recorder/import_statistics",
        "metadata": {
            "statistic_id": entity_id,
            "source": "recorder",
            "name": None,
            "unit_of_measurement": unit,
            "unit_class": "duration",
            "has_sum": True,
            "mean_type": 0,
        },
        "stats": rows,
    }
