"""Trust for a wss:// bridge whose certificate comes from a private CA (or is self-signed)."""

from __future__ import annotations

import ssl

from homeassistant.core import HomeAssistant


class InvalidCACertError(ValueError):
    """The text given as a CA certificate is not a usable PEM certificate."""


def _context(ca_cert: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cadata=ca_cert)
    except (ssl.SSLError, ValueError) as err:
        raise InvalidCACertError(str(err)) from err


async def async_client_ssl_context(
    hass: HomeAssistant, ca_cert: str | None
) -> ssl.SSLContext | None:
    """A context trusting ``ca_cert`` only (PEM), or None for Home Assistant's own CAs.

    Loading certificates is file-system-like work that Home Assistant keeps off its loop.
    """
    if not ca_cert:
        return None
    return await hass.async_add_executor_job(_context, ca_cert)
