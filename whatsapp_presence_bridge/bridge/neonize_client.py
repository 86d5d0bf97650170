"""The only module that imports neonize; ``neonize_backend`` loads it lazily, off the event loop.

Importing neonize dlopens an 18 MB Go runtime, calls ``logging.basicConfig``, starts a daemon
log thread and runs ``uname`` twice, so it must not happen at bridge import time. This module
also holds the two hooks neonize 0.5.2 offers no public way to reach: the code-0 ``Device`` event
(``Event.execute`` stores it in ``client.me`` and calls no handler) and the QR channel's end
(``success``/``timeout``/``err-…``, delivered to a private no-op method).
"""

from __future__ import annotations

from collections.abc import Callable
import ctypes
import logging
from typing import Any

import neonize.aioze.client as _aclient
import neonize.aioze.events as _events
from neonize.aioze.events import (
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    OfflineSyncCompletedEv,
    PairStatusEv,
    PresenceEv,
    StreamErrorEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.exc import NeonizeError
from neonize.proto.Neonize_pb2 import JID
from neonize.utils.enum import ClientName, ClientType, Presence

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "EVENTS",
    "JID",
    "ClientName",
    "ClientType",
    "HookedClient",
    "NeonizeError",
    "Presence",
    "enum_name",
    "jid",
    "jid_str",
    "new_client",
    "prepare",
    "proxy_settings",
]

EVENTS: dict[str, Any] = {
    "connected": ConnectedEv,
    "disconnected": DisconnectedEv,
    "keepalive_timeout": KeepAliveTimeoutEv,
    "keepalive_restored": KeepAliveRestoredEv,
    "logged_out": LoggedOutEv,
    "stream_replaced": StreamReplacedEv,
    "temporary_ban": TemporaryBanEv,
    "client_outdated": ClientOutdatedEv,
    "connect_failure": ConnectFailureEv,
    "stream_error": StreamErrorEv,
    "pair_status": PairStatusEv,
    "offline_sync_completed": OfflineSyncCompletedEv,
    "presence": PresenceEv,
}
"""Handler name -> neonize event class; every one is registered before ``connect()``."""

QUIET_LOGGERS: dict[str, int] = {
    # Its level is also what connect() passes to Go: NOTSET would ship every Go DEBUG line
    # across the FFI.
    "neonize.utils.log": logging.WARNING,
    "whatsmeow": logging.WARNING,  # whatsmeow.Client and whatsmeow.<module> loggers
    "Whatsmeow": logging.WARNING,  # "Whatsmeow.Database" (capital W)
    "neonize.utils.ffmpeg": logging.ERROR,  # "ffmpeg not found": media is never used here
}


def prepare(loop: Any) -> None:
    """Point neonize's event dispatch at ``loop`` and quiet the Go loggers.

    ``event_global_loop`` is first-wins inside neonize (only the first ``connect()`` sets it);
    a bridge has one loop, but a test runner has one per test, so it is set outright here.
    Loggers someone configured explicitly (level not NOTSET) are left alone.
    """
    _events.event_global_loop = loop
    for name, level in QUIET_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


class HookedEvent(_events.Event):  # type: ignore[misc]
    """neonize's dispatcher, plus a callback for the Device (code 0) event; never raises."""

    def __init__(self, client: Any, on_device: Callable[[Any], None]) -> None:
        super().__init__(client)
        self._on_device = on_device

    def execute(self, uuid: Any, binary: int, size: int, code: int) -> None:
        """Runs on a Go thread: an exception here would only be printed by ctypes."""
        try:
            super().execute(uuid, binary, size, code)
            if code == 0:
                self._on_device(self.client.me)
        except Exception:
            _LOGGER.exception("Could not dispatch neonize event code %s", code)


class HookedClient(_aclient.NewAClient):  # type: ignore[misc]
    """``NewAClient`` that reports the Device event and the QR channel's end."""

    def __init__(
        self,
        name: str,
        *,
        uuid: str,
        props: Any,
        on_device: Callable[[Any], None],
        on_login_status: Callable[[str], None],
    ) -> None:
        super().__init__(name, props=props, uuid=uuid)
        self.event = HookedEvent(self, on_device)
        self.qr = self.event.qr
        self.paircode = self.event.paircode
        self._on_login_status = on_login_status

    def _NewAClient__onLoginStatus(self, _uuid: int, status: int) -> None:  # noqa: N802
        """Overrides neonize's private no-op (name-mangled); called on a Go thread."""
        try:
            text = ctypes.string_at(status).decode("utf-8", "replace") if status else ""
            self._on_login_status(text)
        except Exception:
            _LOGGER.exception("Could not handle the QR login status")


def new_client(
    db_path: str,
    *,
    uuid: str,
    device_name: str,
    on_device: Callable[[Any], None],
    on_login_status: Callable[[str], None],
) -> HookedClient:
    """A client on the SQLite file ``db_path``; ``device_name`` shows in "Linked devices"."""
    props = _aclient.DeviceProps(os=device_name, platformType=_aclient.DeviceProps.CHROME)
    return HookedClient(
        db_path,
        uuid=uuid,
        props=props,
        on_device=on_device,
        on_login_status=on_login_status,
    )


def proxy_settings(proxy: str | None) -> Any:
    """``ProxySettings`` for ``connect()`` (socks5:// or http(s)://), or None."""
    if not proxy:
        return None
    return _aclient.ProxySettings(proxy_address=proxy)


def jid(user: str, server: str) -> Any:
    """A neonize JID protobuf."""
    return JID(User=user, Server=server, Device=0, RawAgent=0, Integrator=0, IsEmpty=False)


def jid_str(value: Any) -> str | None:
    """``user@server`` without device or agent parts; None for an empty JID."""
    user = str(value.User)
    server = str(value.Server)
    if not user or not server:
        return None
    return f"{user}@{server}"


def enum_name(message: Any, field: str) -> str:
    """Lower-case name of an enum field's value (``GENERIC`` when unset: proto2 default)."""
    descriptor = message.DESCRIPTOR.fields_by_name[field].enum_type
    number = getattr(message, field)
    value = descriptor.values_by_number.get(number)
    return str(value.name).lower() if value is not None else str(number)
