"""Supervisor discovery of the bridge add-on: one click from "discovered" to pairing.

The add-on (``whatsapp_presence_bridge/run.sh``) announces itself once its bridge listens, under
the discovery service ``whatsapp_presence`` with ``{"host", "port", "token"}``. Home Assistant
hands that payload to the config flow's ``hassio`` step (``HassioServiceInfo.config``).

This module has no Home Assistant import (like ``bridge/`` and ``manager/``): the payload check
is plain Python, and the flow steps are a mixin that uses only the config flow's own methods,
so the add-on tests can use the same parser the flow uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import ipaddress
import re
from typing import Any, Final, Protocol

from .bridge.protocol import WS_PATH
from .const import CONF_MODE, MODE_REMOTE

DISCOVERY_SERVICE: Final = "whatsapp_presence"
"""The service name in the add-on's ``discovery`` list; Home Assistant routes it to this domain."""

STEP_CONFIRM: Final = "hassio_confirm"
# homeassistant.const.CONF_URL and CONF_TOKEN (entry data keys).
_CONF_URL: Final = "url"
_CONF_TOKEN: Final = "token"  # noqa: S105 - a key name, not a secret
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_MAX_TOKEN_LENGTH: Final = 512


@dataclass(frozen=True, slots=True)
class DiscoveredBridge:
    """A bridge announced by the add-on: where it listens and the token it expects."""

    host: str
    port: int
    token: str
    name: str

    @property
    def url(self) -> str:
        """The bridge's WebSocket URL, e.g. ``ws://a0d7b954-whatsapp-presence-bridge:8765/ws``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{WS_PATH}"


def _host(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("no host")
    host = value.strip()
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        raise ValueError("host is not a hostname or an IP address")
    return host


def _port(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdecimal():
        value = int(value.strip())
    valid = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535
    if not valid:
        raise ValueError("port is not a number between 1 and 65535")
    return int(value)


def _token(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("no token")
    token = value.strip()
    if len(token) > _MAX_TOKEN_LENGTH or not token.isprintable():
        raise ValueError("token is not a printable string of at most 512 characters")
    return token


def bridge_from_discovery(
    config: Mapping[str, Any], name: str = "WhatsApp Presence Bridge"
) -> DiscoveredBridge:
    """The bridge in a discovery payload; ValueError (without the token) when it is unusable.

    The payload comes from an add-on, so it is checked before it becomes a URL.
    """
    valid = isinstance(config, Mapping)
    if not valid:
        raise ValueError("discovery payload is not an object")
    return DiscoveredBridge(
        host=_host(config.get("host")),
        port=_port(config.get("port")),
        token=_token(config.get("token")),
        name=str(config.get("addon") or name),
    )


class _DiscoveryFlow(Protocol):
    """What the mixin needs from WhatsAppPresenceConfigFlow (a Home Assistant ConfigFlow)."""

    hass: Any
    context: Any
    _mode: str | None
    _url: str | None
    _token: str | None
    _discovered: DiscoveredBridge | None

    async def async_set_unique_id(
        self, unique_id: str | None = None, *, raise_on_progress: bool = True
    ) -> Any: ...

    def _abort_if_unique_id_configured(self) -> None: ...

    def _async_current_entries(self, include_ignore: bool | None = None) -> list[Any]: ...

    def async_abort(self, *, reason: str) -> Any: ...

    def async_show_form(
        self,
        *,
        step_id: str | None = None,
        errors: dict[str, str] | None = None,
        description_placeholders: Mapping[str, str] | None = None,
    ) -> Any: ...

    async def _async_connect(self, url: str, token: str) -> tuple[dict[str, Any] | None, str]: ...

    async def _async_bridge_ready(self, hello: Mapping[str, Any]) -> Any: ...

    async def async_step_hassio_confirm(self, user_input: dict[str, Any] | None = None) -> Any: ...


class HassioDiscoveryMixin:
    """Config flow steps for a bridge add-on announced through the Supervisor.

    ``hassio`` checks the payload and skips bridges already configured (taking a changed token
    along); ``hassio_confirm`` asks once, connects with the announced URL and token, and goes
    on as a manually entered remote bridge would (pairing unless the bridge already holds a
    session, then the pacing preset).
    """

    _discovered: DiscoveredBridge | None = None
    # Set by the config flow's __init__; declared so the types match where both define them.
    _mode: str | None
    _url: str | None
    _token: str | None

    async def async_step_hassio(self: _DiscoveryFlow, discovery_info: Any) -> Any:
        """A bridge add-on announced itself (``discovery_info``: HassioServiceInfo)."""
        try:
            bridge = bridge_from_discovery(discovery_info.config, discovery_info.name)
        except ValueError:
            return self.async_abort(reason="invalid_discovery_info")
        # One flow per add-on; an "ignored" discovery stays ignored.
        await self.async_set_unique_id(f"hassio_{discovery_info.slug}")
        self._abort_if_unique_id_configured()
        for entry in self._async_current_entries(include_ignore=False):
            if entry.data.get(CONF_MODE) != MODE_REMOTE or entry.data.get(_CONF_URL) != bridge.url:
                continue
            if entry.data.get(_CONF_TOKEN) != bridge.token:
                self.hass.config_entries.async_update_entry(
                    entry, data={**entry.data, _CONF_TOKEN: bridge.token}
                )
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
            return self.async_abort(reason="already_configured")
        self._discovered = bridge
        self.context["title_placeholders"] = {"name": bridge.name}
        return await self.async_step_hassio_confirm()

    async def async_step_hassio_confirm(
        self: _DiscoveryFlow, user_input: dict[str, Any] | None = None
    ) -> Any:
        """Ask once; on Submit connect with the announced address and token."""
        bridge = self._discovered
        assert bridge is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            hello, error = await self._async_connect(bridge.url, bridge.token)
            if hello is not None:
                self._mode, self._url, self._token = MODE_REMOTE, bridge.url, bridge.token
                return await self._async_bridge_ready(hello)
            errors["base"] = error
        return self.async_show_form(
            step_id=STEP_CONFIRM,
            errors=errors,
            description_placeholders={"addon": bridge.name},
        )
