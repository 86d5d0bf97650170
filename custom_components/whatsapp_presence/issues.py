"""The repair issues of one account: one per kind, titled with the account's name.

Most are raised and cleared where their cause is seen (the coordinator's bridge events); the
ones that need memory or time live here: presence silent for hours, the pace lowered because
answers stopped, and a child bridge that stays down.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_time_interval

from .const import DOMAIN
from .manager import SubscriptionManager

_LOGGER = logging.getLogger(__name__)

SILENCE_CHECK_INTERVAL = timedelta(hours=1)
BRIDGE_DOWN_REPAIR_AFTER = timedelta(minutes=10)
"""A child bridge down this long (restarts keep failing) gets a repair issue."""


class AccountIssues:
    """Raises and clears the repair issues of one config entry."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Nothing raised yet."""
        self._hass = hass
        self._entry = entry
        self._pace_lowered = False
        self._bridge_down_timer: CALLBACK_TYPE | None = None

    def create(
        self,
        kind: str,
        severity: ir.IssueSeverity = ir.IssueSeverity.WARNING,
        *,
        translation_key: str | None = None,
        **placeholders: str,
    ) -> None:
        """A repair issue of this entry (one per kind), titled with the account's name."""
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            f"{kind}_{self._entry.entry_id}",
            is_fixable=False,
            severity=severity,
            translation_key=translation_key or kind,
            translation_placeholders={"title": self._entry.title, **placeholders},
        )

    def delete(self, kind: str) -> None:
        """The cause of this kind of issue is gone."""
        ir.async_delete_issue(self._hass, DOMAIN, f"{kind}_{self._entry.entry_id}")

    @callback
    def watch_silence(self, silent: Callable[[], bool]) -> CALLBACK_TYPE:
        """Check every hour whether presence went silent; returns the unsubscribe."""

        @callback
        def check(_now: datetime) -> None:
            if silent():
                self.create("presence_silent")
            else:
                self.delete("presence_silent")

        return async_track_time_interval(self._hass, check, SILENCE_CHECK_INTERVAL)

    def pace_changed(self, manager: SubscriptionManager) -> None:
        """Tell the user while the pace is below the chosen one because answers stopped."""
        reason, pace = manager.pace_reason, manager.pace
        if reason == "ignored" and not self._pace_lowered:
            self._pace_lowered = True
            _LOGGER.warning("Subscriptions went unanswered: pace lowered to %.0f a minute", pace)
            self.create("pace_lowered", pace=f"{pace:.0f}")
        elif self._pace_lowered and (reason == "preset" or manager.stats().slowdown == 1):
            self._pace_lowered = False
            self.delete("pace_lowered")

    @callback
    def bridge_down(self, still_down: Callable[[], bool]) -> None:
        """The child bridge died (restarts are under way): a repair if it stays down."""
        self.cancel_bridge_down()

        @callback
        def down_too_long(_now: datetime) -> None:
            self._bridge_down_timer = None
            if still_down():
                minutes = str(int(BRIDGE_DOWN_REPAIR_AFTER.total_seconds() // 60))
                self.create("bridge_down", ir.IssueSeverity.ERROR, minutes=minutes)

        self._bridge_down_timer = async_call_later(
            self._hass, BRIDGE_DOWN_REPAIR_AFTER, down_too_long
        )

    @callback
    def bridge_restarted(self) -> None:
        """The child bridge runs again."""
        self.cancel_bridge_down()
        self.delete("bridge_down")

    def cancel_bridge_down(self) -> None:
        """Forget a pending bridge-down check (on restart and shutdown)."""
        if self._bridge_down_timer is not None:
            self._bridge_down_timer()
            self._bridge_down_timer = None
