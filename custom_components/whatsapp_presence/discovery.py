"""Supervisor discovery of the bridge add-on: one click from "discovered" to pairing.

The add-on (``whatsapp_presence_bridge/run.sh``) announces itself once its bridge listens, under
the discovery service ``whatsapp_presence`` with ``{"host", "port", "token"}``. Home Assistant
hands that payload to the config flow's ``hassio`` step (``HassioServiceInfo.config``).

This module holds the payload check, in plain Python with no Home Assistant import, so the
add-on's tests use the same parser as the config flow's ``hassio`` step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import ipaddress
import re
from typing import Any, Final

from .bridge.protocol import WS_PATH

DISCOVERY_SERVICE: Final = "whatsapp_presence"
"""The service name in the add-on's ``discovery`` list; Home Assistant routes it to this domain."""

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
