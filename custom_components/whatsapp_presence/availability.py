"""When the linked device is online: always, while a schedule is on, or in short samples.

While any linked device is online, WhatsApp treats the account as active there: the phone stops
showing notifications and contacts see the account online. Presence only arrives meanwhile, so
each mode trades freshness for notifications (docs/benchmarks.md measures how much). The switch
on the account device overrides a mode until the mode's next change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, time, timedelta
from typing import Any

from homeassistant.const import STATE_ON
from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import (
    async_call_later,
    async_track_state_change_event,
    async_track_time_change,
    async_track_time_interval,
)
from homeassistant.util import dt as dt_util

from .const import (
    AVAILABILITY_SAMPLING,
    AVAILABILITY_SCHEDULE,
    CONF_AVAILABILITY,
    CONF_SAMPLE_EVERY,
    CONF_SAMPLE_SECONDS,
    CONF_SCHEDULE_ENTITY,
    CONF_WINDOW_END,
    CONF_WINDOW_START,
    DEFAULT_AVAILABILITY,
    DEFAULT_SAMPLE_EVERY,
    DEFAULT_SAMPLE_SECONDS,
    DEFAULT_WINDOW_END,
    DEFAULT_WINDOW_START,
)

MODE_KEYS = (
    CONF_AVAILABILITY,
    CONF_SCHEDULE_ENTITY,
    CONF_WINDOW_START,
    CONF_WINDOW_END,
    CONF_SAMPLE_SECONDS,
    CONF_SAMPLE_EVERY,
)
"""Options that define the mode: a change of any restarts it."""


def mode_settings(options: Mapping[str, Any]) -> tuple[Any, ...]:
    """The options that define the mode, to tell whether a change concerns it."""
    return tuple(options.get(key) for key in MODE_KEYS)


def in_window(now: time, start: time, end: time) -> bool:
    """Whether ``now`` is in ``[start, end)``; a window may span midnight (22:00-06:00)."""
    if start <= end:
        return start <= now < end
    return now >= start or now < end


class AvailabilityMode:
    """Turns the linked device on and off as the chosen mode says, on Home Assistant's clock.

    ``apply(on)`` is called at each change of the mode (never in between, so a manual change
    of the switch holds until then).
    """

    def __init__(
        self, hass: HomeAssistant, options: Mapping[str, Any], apply: Callable[[bool], None]
    ) -> None:
        """Read the mode from the options; nothing runs until ``start``."""
        self.hass = hass
        self.mode: str = options.get(CONF_AVAILABILITY, DEFAULT_AVAILABILITY)
        self._schedule_entity: str | None = options.get(CONF_SCHEDULE_ENTITY) or None
        self._start = dt_util.parse_time(options.get(CONF_WINDOW_START, DEFAULT_WINDOW_START))
        self._end = dt_util.parse_time(options.get(CONF_WINDOW_END, DEFAULT_WINDOW_END))
        self._sample = float(options.get(CONF_SAMPLE_SECONDS, DEFAULT_SAMPLE_SECONDS))
        self._every = 60.0 * float(options.get(CONF_SAMPLE_EVERY, DEFAULT_SAMPLE_EVERY))
        self._apply = apply
        self._unsubs: list[CALLBACK_TYPE] = []
        self._sample_end: CALLBACK_TYPE | None = None

    @property
    def sampling(self) -> bool:
        """Presence is seen in samples only: last seen and online time are not exact."""
        return self.mode == AVAILABILITY_SAMPLING

    @callback
    def start(self) -> bool | None:
        """Start following the mode; returns the state it wants now (None: keep the switch's)."""
        if self.mode == AVAILABILITY_SCHEDULE and self._schedule_entity:
            self._unsubs.append(
                async_track_state_change_event(
                    self.hass, self._schedule_entity, self._schedule_changed
                )
            )
            state = self.hass.states.get(self._schedule_entity)
            return state is not None and state.state == STATE_ON
        if self.mode == AVAILABILITY_SCHEDULE and self._start and self._end:
            for at, on in ((self._start, True), (self._end, False)):
                self._unsubs.append(
                    async_track_time_change(
                        self.hass,
                        self._window_edge(on),
                        hour=at.hour,
                        minute=at.minute,
                        second=at.second,
                    )
                )
            now = dt_util.as_local(dt_util.utcnow()).time()
            return in_window(now, self._start, self._end)
        if self.mode == AVAILABILITY_SAMPLING:
            self._unsubs.append(
                async_track_time_interval(
                    self.hass, self._begin_sample, timedelta(seconds=self._every)
                )
            )
            self._schedule_sample_end()
            return True  # a sample right away: the user sees presence without waiting
        return None

    @callback
    def stop(self) -> None:
        """Stop every timer and listener."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        self._cancel_sample_end()

    @callback
    def _schedule_changed(self, event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        old = event.data["old_state"]
        on = new is not None and new.state == STATE_ON
        if old is None or (old.state == STATE_ON) != on:
            self._apply(on)

    def _window_edge(self, on: bool) -> Callable[[datetime], None]:
        @callback
        def edge(_now: datetime) -> None:
            self._apply(on)

        return edge

    @callback
    def _begin_sample(self, _now: datetime) -> None:
        self._schedule_sample_end()
        self._apply(True)

    def _schedule_sample_end(self) -> None:
        self._cancel_sample_end()
        self._sample_end = async_call_later(self.hass, self._sample, self._end_sample)

    @callback
    def _end_sample(self, _now: datetime) -> None:
        self._sample_end = None
        self._apply(False)

    def _cancel_sample_end(self) -> None:
        if self._sample_end is not None:
            self._sample_end()
            self._sample_end = None
