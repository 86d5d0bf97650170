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
    "retained",
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

GO_LOGGERS: tuple[str, ...] = (
    # Its level is also what connect() passes to Go: NOTSET would ship every Go DEBUG line
    # across the FFI.
    "neonize.utils.log",
    "whatsmeow",  # whatsmeow.Client and whatsmeow.<module> loggers
    "Whatsmeow",  # "Whatsmeow.Database" (capital W)
)

_LEVEL_SET_HERE: set[str] = set()
"""Go loggers whose level ``prepare`` chose (and may choose again)."""

_RETAINED: list[Any] = []
"""Every client built in this process, kept until it ends (see ``new_client``)."""


def prepare(loop: Any, *, debug: bool = False) -> None:
    """Point neonize's event dispatch at ``loop`` and set the Go loggers' level.

    ``event_global_loop`` is first-wins inside neonize (only the first ``connect()`` sets it);
    a bridge has one loop, but a test runner has one per test, so it is set outright here.

    Go filters its own logs with the level of ``neonize.utils.log`` at connect time. With
    ``debug`` (the bridge runs at DEBUG) Go and the whatsmeow loggers log everything: the
    privacy-token, post-pairing and authentication messages a real-account problem needs.
    Otherwise WARNING: whatsmeow's INFO lines carry the account's JID, which must not reach
    an info-level log. Loggers someone configured explicitly (not NOTSET) are left alone.
    """
    _events.event_global_loop = loop
    level = logging.DEBUG if debug else logging.WARNING
    for name in GO_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or name in _LEVEL_SET_HERE:
            logger.setLevel(level)
            _LEVEL_SET_HERE.add(name)
    ffmpeg = logging.getLogger("neonize.utils.ffmpeg")  # "ffmpeg not found": media unused
    if ffmpeg.level == logging.NOTSET:
        ffmpeg.setLevel(logging.ERROR)


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
    """A client on the SQLite file ``db_path``; ``device_name`` shows in "Linked devices".

    The client is kept alive for the rest of the process: its ctypes callbacks (QR, login
    status, events, Go's log) die with it, and a goroutine of a stopped session (a blocked
    QR emitter, the log writer) may still call one, which would jump into freed memory. The
    backend bounds how many clients a process builds (``max_go_sessions``).
    """
    props = _aclient.DeviceProps(os=device_name, platformType=_aclient.DeviceProps.CHROME)
    client = HookedClient(
        db_path,
        uuid=uuid,
        props=props,
        on_device=on_device,
        on_login_status=on_login_status,
    )
    _RETAINED.append(client)
    return client


def retained() -> int:
    """How many clients this process keeps alive."""
    return len(_RETAINED)


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
