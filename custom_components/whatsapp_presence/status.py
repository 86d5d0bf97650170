"""What is known of one account's connection, and the few words derived from it.

The coordinator records what the bridge says here; the account device's entities, the
diagnostics and the ``get_stats`` action read it (through the coordinator).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from homeassistant.util import dt as dt_util

from .bridge.protocol import JSON, BridgeEvent, QrCode

RECENT_EVENTS = 50
RATE_LIMITED_FOR = timedelta(hours=1)


@dataclass(slots=True)
class AccountStatus:
    """Connection figures for the account device."""

    bridge_connected: bool = False
    bridge_unresponsive: bool = False
    whatsapp_connected: bool = False
    logged_out: bool = False
    banned_until: datetime | None = None
    last_presence: datetime | None = None
    connected_since: datetime | None = None
    rate_limited_at: datetime | None = None
    recent_events: list[dict[str, JSON]] = field(default_factory=list)

    @property
    def connected(self) -> bool:
        """Bridge reachable and WhatsApp connected."""
        return self.bridge_connected and self.whatsapp_connected

    @property
    def connection_state(self) -> str:
        """One word for the account's connection (an enum sensor's state)."""
        if self.logged_out:
            return "logged_out"
        if self.banned_until is not None and self.banned_until > dt_util.utcnow():
            return "banned"
        if not self.bridge_connected:
            return "bridge_unresponsive" if self.bridge_unresponsive else "bridge_unreachable"
        return "connected" if self.whatsapp_connected else "connecting"

    @property
    def rate_limited(self) -> bool:
        """WhatsApp banned us for a while, or refused a request as over its rate limit."""
        now = dt_util.utcnow()
        banned = self.banned_until is not None and self.banned_until > now
        limited = self.rate_limited_at is not None and (
            now - self.rate_limited_at < RATE_LIMITED_FOR
        )
        return banned or limited

    def remember(self, event: BridgeEvent) -> None:
        """Keep the last few non-presence events for diagnostics (not pairing codes)."""
        if isinstance(event, QrCode):
            return
        self.recent_events.append(
            {"at": dt_util.utcnow().isoformat(), "event": str(event.name), **event.to_payload()}
        )
        del self.recent_events[:-RECENT_EVENTS]
