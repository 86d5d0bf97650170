"""Local midnight: each contact's day is closed, then started again.

``activity.py`` counts the days without a clock of its own; these timers tell it when one
ends, and tell the contacts' entities so the recorder sees both the closing figure and the
new day's start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .activity import ActivityTracker
from .listeners import Listeners

DAY_CLOSE_BEFORE_MIDNIGHT = timedelta(seconds=1)
"""Online contacts write their day's figure this long before midnight (for the statistics)."""


class DayTimers:
    """The two timers of each local midnight, scheduled again after every new day."""

    def __init__(
        self,
        hass: HomeAssistant,
        activity: ActivityTracker,
        listeners: Listeners,
        on_new_day: Callable[[], None],
    ) -> None:
        """Nothing scheduled until ``start``; ``on_new_day`` saves the rolled figures."""
        self._hass = hass
        self._activity = activity
        self._listeners = listeners
        self._on_new_day = on_new_day
        self._timers: list[CALLBACK_TYPE] = []

    def start(self) -> None:
        """Close the day a second before local midnight; start the new one at midnight."""
        self.stop()
        midnight = dt_util.utc_from_timestamp(self._activity.next_midnight())
        self._timers = [
            async_track_point_in_utc_time(
                self._hass, self.close_day, midnight - DAY_CLOSE_BEFORE_MIDNIGHT
            ),
            async_track_point_in_utc_time(self._hass, self.new_day, midnight),
        ]

    def stop(self) -> None:
        """Cancel the pending timers."""
        for cancel in self._timers:
            cancel()
        self._timers = []

    @callback
    def close_day(self, _now: datetime | None) -> None:
        """Online contacts' *online today* reaches the recorder before it starts again."""
        for jid in self._activity.online_now():
            self._listeners.contact_now(jid)

    @callback
    def new_day(self, _now: datetime | None) -> None:
        """Every contact's day starts again (a session running at midnight counts in it)."""
        for jid in self._activity.roll_all():
            self._listeners.contact_now(jid)
        self._on_new_day()
        self.start()
