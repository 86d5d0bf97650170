"""Constants for the WhatsApp Presence integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "whatsapp_presence"
LOGGER = logging.getLogger(__package__)

# Where the WhatsApp session lives (entry data key CONF_MODE).
CONF_MODE: Final = "mode"
MODE_LOCAL: Final = "local"
MODE_REMOTE: Final = "remote"
MODE_SIMULATOR: Final = "simulator"
