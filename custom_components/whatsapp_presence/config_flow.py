"""Config flow for WhatsApp Presence."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult

from .const import DOMAIN, MODE_LOCAL, MODE_REMOTE, MODE_SIMULATOR


class WhatsAppPresenceConfigFlow(ConfigFlow, domain=DOMAIN):
    """Link a WhatsApp account: choose where WhatsApp runs, then pair."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask where the WhatsApp session runs."""
        return self.async_show_menu(
            step_id="user", menu_options=[MODE_LOCAL, MODE_REMOTE, MODE_SIMULATOR]
        )
