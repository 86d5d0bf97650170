"""Constants for the WhatsApp Presence integration."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Final

from .manager import DEFAULT_CONFIG

DOMAIN: Final = "whatsapp_presence"
LOGGER = logging.getLogger(__package__)

# Entry data: where the WhatsApp session lives.
CONF_MODE: Final = "mode"
MODE_LOCAL: Final = "local"
MODE_REMOTE: Final = "remote"
MODE_SIMULATOR: Final = "simulator"
CONF_SESSION_ID: Final = "session_id"  # folder of a child bridge's session (local, simulator)
CONF_ACCOUNT_JID: Final = "account_jid"
CONF_PUSH_NAME: Final = "push_name"
CONF_CA_CERT: Final = "ca_cert"  # PEM of a private CA trusted for a wss:// bridge
CONF_ADDON: Final = "addon"  # slug of the add-on whose discovery created a remote entry
# CONF_URL and CONF_TOKEN come from homeassistant.const.

# Entry options: pacing and behaviour.
CONF_PRESET: Final = "preset"  # a key of manager.PRESETS, or manager.CUSTOM_PRESET
CONF_BATCH_SIZE: Final = "batch_size"
CONF_BATCH_DELAY: Final = "batch_delay"
CONF_SUBSCRIPTION_DELAY: Final = "subscription_delay"
CONF_MAX_PER_MINUTE: Final = "max_per_minute"
CONF_RESUBSCRIBE_AFTER: Final = "resubscribe_after"  # hours; 0 = event-only mode
CONF_HEALTH_CHECK_INTERVAL: Final = "health_check_interval"  # minutes
CONF_MAX_BACKOFF: Final = "max_backoff"  # minutes
CONF_MARK_ONLINE: Final = "mark_online"  # before the availability modes: off = switch off
CONF_AVAILABILITY: Final = "availability"  # when the linked device is online (a mode below)
AVAILABILITY_ALWAYS: Final = "always"
AVAILABILITY_SCHEDULE: Final = "schedule"
AVAILABILITY_SAMPLING: Final = "sampling"
AVAILABILITY_MODES: Final = (AVAILABILITY_ALWAYS, AVAILABILITY_SCHEDULE, AVAILABILITY_SAMPLING)
CONF_SCHEDULE_ENTITY: Final = "schedule_entity"  # a schedule helper (or none: the window)
CONF_WINDOW_START: Final = "window_start"  # "HH:MM:SS"
CONF_WINDOW_END: Final = "window_end"
CONF_SAMPLE_SECONDS: Final = "sample_seconds"  # online this long ...
CONF_SAMPLE_EVERY: Final = "sample_every"  # ... every this many minutes
CONF_ADAPTIVE: Final = "adaptive"
CONF_GRACE_PERIOD: Final = "grace_period"  # seconds
CONF_PROMETHEUS: Final = "prometheus"
CONF_PROMETHEUS_JID: Final = "prometheus_jid_label"

# The manager's defaults (seconds), in the units the options show (hours, minutes).
DEFAULT_MAX_PER_MINUTE: Final = DEFAULT_CONFIG.max_per_minute
DEFAULT_RESUBSCRIBE_AFTER: Final = round((DEFAULT_CONFIG.resubscribe_after or 0) / 3600)
DEFAULT_HEALTH_CHECK_INTERVAL: Final = round(DEFAULT_CONFIG.health_check_interval / 60)
DEFAULT_MAX_BACKOFF: Final = round(DEFAULT_CONFIG.max_backoff / 60)
DEFAULT_MARK_ONLINE: Final = True
DEFAULT_AVAILABILITY: Final = AVAILABILITY_ALWAYS
DEFAULT_WINDOW_START: Final = "08:00:00"
DEFAULT_WINDOW_END: Final = "22:00:00"
DEFAULT_SAMPLE_SECONDS: Final = 30
DEFAULT_SAMPLE_EVERY: Final = 5
SAMPLE_SECONDS_RANGE: Final = (10, 600)
SAMPLE_EVERY_RANGE: Final = (1, 240)
DEFAULT_ADAPTIVE: Final = True
DEFAULT_GRACE_PERIOD: Final = 60
DEFAULT_PROMETHEUS: Final = True
DEFAULT_PROMETHEUS_JID: Final = False

# Safe ranges for custom pacing (WhatsApp's limit is reported at 200-300 subscriptions a
# minute: docs/rate-limiting.md).
BATCH_SIZE_RANGE: Final = (1, 50)
BATCH_DELAY_RANGE: Final = (1.0, 120.0)
SUBSCRIPTION_DELAY_RANGE: Final = (0.05, 10.0)
MAX_PER_MINUTE_RANGE: Final = (10, 300)

# Subentries.
SUBENTRY_CONTACT: Final = "contact"
SUBENTRY_GROUP: Final = "group"
CONF_JID: Final = "jid"
CONF_PHONE: Final = "phone"
CONF_PRIORITY: Final = "priority"  # stored as the int of manager.Priority, shown by its name

MAX_TRACKED_CONTACTS: Final = 4_900
"""Home Assistant enables at most 10,000 entities per config entry; a contact has two."""
MAX_ENABLED_ENTITIES: Final = 10_000
"""Home Assistant's limit of enabled entities per config entry."""
ACCOUNT_ENTITY_RESERVE: Final = 50
"""Room kept for the account device's entities within that limit."""
INSIGHT_ENTITIES_PER_CONTACT: Final = 4
"""Online today, sessions today, last session and the presence event."""

STORE_VERSION: Final = 1
"""Version of the entry's Home Assistant store (last seen, online time, the manager's state)."""
SAVE_DELAY: Final = 10.0
SILENCE_REPAIR_AFTER: Final = timedelta(hours=6)
"""With contacts subscribed but no presence at all for this long, WhatsApp is likely ignoring us."""
