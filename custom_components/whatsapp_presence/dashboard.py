"""The "WhatsApp" dashboard: a dashboard strategy served to the frontend.

A strategy builds the dashboard from this integration's entities whenever it opens, so it
follows contacts added or removed, needs no YAML, and is offered in *Settings > Dashboards >
Add dashboard*. A user who takes control of it gets an ordinary dashboard that nothing here
ever writes to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from homeassistant.components.http import StaticPathConfig
from homeassistant.core import HomeAssistant

from .const import DOMAIN

STRATEGY_FILE: Final = Path(__file__).parent / "frontend" / "whatsapp-presence-strategy.js"
STRATEGY_URL: Final = f"/{DOMAIN}/whatsapp-presence-strategy.js"
STRATEGY_TYPE: Final = "custom:whatsapp-presence"
DASHBOARD_URL: Final = "/whatsapp-presence"
"""Where the demo's dashboard lives (and the README suggests)."""


async def async_register_strategy(hass: HomeAssistant) -> bool:
    """Serve the strategy and load it in every frontend; False without a frontend."""
    if hass.http is None or "frontend" not in hass.config.components:
        return False
    from homeassistant.components.frontend import add_extra_js_url

    await hass.http.async_register_static_paths(
        [StaticPathConfig(STRATEGY_URL, str(STRATEGY_FILE), cache_headers=False)]
    )
    add_extra_js_url(hass, STRATEGY_URL)
    return True
