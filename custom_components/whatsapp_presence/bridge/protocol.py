"""Wire protocol shared by the bridge server and client (see docs/bridge-protocol.md).

Every frame is one JSON object in a WebSocket text frame. Client to server:
``auth`` (first frame) and ``request``; server to client: ``hello``, ``result``, ``error`` and
``event``. Validation lives here so the server and client agree on it and the fuzz tests can
hit it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
import json
import math
import re
from typing import Any, Final

PROTOCOL_VERSION: Final = 1
"""Bumped on incompatible changes. Additive changes (new commands, events or fields) keep it."""

DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024
TOKEN_ENV: Final = "WHATSAPP_BRIDGE_TOKEN"  # noqa: S105 - a variable name, not a secret
MIN_TOKEN_LENGTH: Final = 32
"""Shortest token accepted from a person (add-on option, environment, the remote form).
Generated tokens are 64 hex digits (256 bits)."""
WS_PATH: Final = "/ws"

# WebSocket close codes (4000-4999 are free for applications).
CLOSE_UNAUTHORIZED: Final = 4001
CLOSE_AUTH_TIMEOUT: Final = 4002
CLOSE_PROTOCOL_VERSION: Final = 4003
CLOSE_TOO_SLOW: Final = 4004
CLOSE_TOO_MANY_CLIENTS: Final = 4005
CLOSE_SHUTDOWN: Final = 1001

MAX_RESOLVE_PHONES: Final = 50
MAX_ID_LENGTH: Final = 64


class ErrorCode(StrEnum):
    """Typed error codes carried by ``error`` frames and ``BridgeError``."""

    UNAUTHORIZED = "unauthorized"
    INVALID_MESSAGE = "invalid_message"  # not JSON, not an object, missing/odd fields
    MESSAGE_TOO_LARGE = "message_too_large"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    UNKNOWN_COMMAND = "unknown_command"
    INVALID_ARGUMENT = "invalid_argument"
    NOT_CONNECTED = "not_connected"  # WhatsApp (or, client side, the bridge) link is down
    NOT_LOGGED_IN = "not_logged_in"  # no paired WhatsApp session
    ALREADY_LOGGED_IN = "already_logged_in"  # pairing asked while a session exists
    BUSY = "busy"  # e.g. a pairing is already running
    RATE_LIMITED = "rate_limited"  # WhatsApp answered 429 rate-overlimit
    TEMPORARILY_BANNED = "temporarily_banned"
    TIMEOUT = "timeout"
    UNSUPPORTED = "unsupported"  # the backend cannot do this
    INTERNAL = "internal"


class BridgeError(Exception):
    """An error with a protocol code; raised by backends, sent as ``error`` frames."""

    def __init__(self, code: ErrorCode | str, message: str = "") -> None:
        # Unknown codes from a newer peer stay readable as plain strings.
        if code in ErrorCode.__members__.values():
            code = ErrorCode(code)
        self.code: ErrorCode | str = code
        self.message = message or str(code)
        super().__init__(f"{code}: {self.message}")


class BridgeConnectionError(BridgeError):
    """The link to the bridge is down (client side)."""

    def __init__(self, message: str = "not connected to the bridge") -> None:
        super().__init__(ErrorCode.NOT_CONNECTED, message)


class BridgeAuthError(BridgeError):
    """The bridge refused the token (client side); retrying will not help."""

    def __init__(self, message: str = "the bridge refused the token") -> None:
        super().__init__(ErrorCode.UNAUTHORIZED, message)


class Event(StrEnum):
    """Event names pushed by the server (payloads: docs/bridge-protocol.md)."""

    QR = "qr"  # {code, expires_in}
    PAIRED = "paired"  # {jid, phone, push_name}
    PAIRING_FAILED = "pairing_failed"  # {reason}
    CONNECTED = "connected"  # {jid, phone}
    DISCONNECTED = "disconnected"  # {reason}
    LOGGED_OUT = "logged_out"  # {reason, on_connect}
    PRESENCE = "presence"  # {jid, lid, online, last_seen, at}
    TEMPORARY_BAN = "temporary_ban"  # {code, expires_in, expires_at}
    STREAM_REPLACED = "stream_replaced"  # {}
    CLIENT_OUTDATED = "client_outdated"  # {}


class Command(StrEnum):
    """Commands every backend serves. ``sim.*`` commands are extra (simulator only)."""

    PING = "ping"
    STATUS = "status"
    PAIR_QR = "pair_qr"
    PAIR_PHONE = "pair_phone"
    CANCEL_PAIRING = "cancel_pairing"
    LOGOUT = "logout"
    SET_AVAILABLE = "set_available"
    SUBSCRIBE_PRESENCE = "subscribe_presence"
    CONTACTS = "contacts"
    GROUPS = "groups"
    GROUP_PARTICIPANTS = "group_participants"
    RESOLVE = "resolve"


_USER_JID_RE: Final = re.compile(r"^[1-9][0-9]{6,14}@s\.whatsapp\.net$")
_GROUP_JID_RE: Final = re.compile(r"^[0-9]{1,30}(-[0-9]{1,20})?@g\.us$")
_PHONE_STRIP_RE: Final = re.compile(r"[\s\-().]")
_PHONE_RE: Final = re.compile(r"^[1-9][0-9]{6,14}$")


def normalize_phone(value: Any) -> str:
    """Return international digits (no ``+``, no leading zero) or raise invalid_argument.

    Accepts ``+1 555-0100``-style input; WhatsApp wants 7 to 15 digits with the country code.
    """
    if not isinstance(value, str):
        raise BridgeError(ErrorCode.INVALID_ARGUMENT, "phone must be a string")
    digits = _PHONE_STRIP_RE.sub("", value)
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    if not _PHONE_RE.fullmatch(digits):
        raise BridgeError(
            ErrorCode.INVALID_ARGUMENT,
            "phone must be an international number: country code and 7-15 digits",
        )
    return digits


def phone_to_jid(phone: str) -> str:
    """Phone-number JID of international digits."""
    return f"{phone}@s.whatsapp.net"


def jid_to_phone(jid: str) -> str:
    """Digits of a user JID (device and agent suffixes dropped)."""
    user = jid.split("@", 1)[0]
    return user.split(":", 1)[0].split(".", 1)[0]


def is_user_jid(value: Any) -> bool:
    """True for ``<digits>@s.whatsapp.net``, the only contact form on the protocol."""
    return isinstance(value, str) and _USER_JID_RE.fullmatch(value) is not None


def is_group_jid(value: Any) -> bool:
    """True for ``<digits>[-<digits>]@g.us``."""
    return isinstance(value, str) and _GROUP_JID_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Request:
    """A validated request frame."""

    id: int | str
    command: str
    args: dict[str, Any]


def encode(message: dict[str, Any]) -> str:
    """Compact JSON for one frame; NaN and infinities are refused (not JSON).

    ASCII-only output: a lone surrogate echoed back from a client's id stays valid (escaped)
    instead of failing the UTF-8 encoding of the WebSocket frame.
    """
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(raw: str | bytes, max_bytes: int) -> dict[str, Any]:
    """Parse one frame into a JSON object or raise BridgeError (invalid_message, too large)."""
    size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if size > max_bytes:
        raise BridgeError(
            ErrorCode.MESSAGE_TOO_LARGE, f"frame of {size} bytes exceeds {max_bytes} bytes"
        )
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as err:
        # RecursionError: deeply nested arrays are valid JSON but not a valid frame.
        raise BridgeError(ErrorCode.INVALID_MESSAGE, "frame is not valid JSON") from err
    if not isinstance(value, dict):
        raise BridgeError(ErrorCode.INVALID_MESSAGE, "frame must be a JSON object")
    return value


def valid_id(value: Any) -> bool:
    """Request ids are non-negative integers or short strings (echoed back unchanged)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value < 2**53
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def echo_id(message: dict[str, Any]) -> int | str | None:
    """The id to put on an error answer: the request's id when it is valid, else null."""
    value = message.get("id")
    return value if valid_id(value) else None


def parse_request(message: dict[str, Any]) -> Request:
    """Validate a decoded ``request`` frame (``type`` already checked by the caller)."""
    req_id = message.get("id")
    if not valid_id(req_id):
        raise BridgeError(
            ErrorCode.INVALID_MESSAGE, "request id must be a non-negative integer or short string"
        )
    assert isinstance(req_id, int | str)
    command = message.get("command")
    if not isinstance(command, str) or not command or len(command) > 64:
        raise BridgeError(ErrorCode.INVALID_MESSAGE, "request needs a command name")
    args = message.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise BridgeError(ErrorCode.INVALID_ARGUMENT, "args must be a JSON object")
    return Request(req_id, command, args)


# --- argument helpers (used by the server and the simulator control commands) ---------------


def arg_str(args: dict[str, Any], name: str, *, max_length: int = 256) -> str:
    """A required non-empty string argument."""
    value = args.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise BridgeError(ErrorCode.INVALID_ARGUMENT, f"{name} must be a non-empty string")
    return value


def arg_bool(args: dict[str, Any], name: str, default: bool | None = None) -> bool:
    """A boolean argument (required when no default)."""
    value = args.get(name, default)
    if not isinstance(value, bool):
        raise BridgeError(ErrorCode.INVALID_ARGUMENT, f"{name} must be true or false")
    return value


def arg_number(
    args: dict[str, Any],
    name: str,
    default: float | None = None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    allow_null: bool = False,
) -> float | None:
    """A finite number argument within bounds; ``None`` only when allow_null."""
    value = args.get(name, default)
    if value is None and allow_null:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BridgeError(ErrorCode.INVALID_ARGUMENT, f"{name} must be a number")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise BridgeError(ErrorCode.INVALID_ARGUMENT, f"{name} is out of range")
    return float(value)


def arg_user_jid(args: dict[str, Any], name: str = "jid") -> str:
    """A contact JID in phone-number form."""
    value = args.get(name)
    if not is_user_jid(value):
        raise BridgeError(
            ErrorCode.INVALID_ARGUMENT, f"{name} must be a JID like 15550100001@s.whatsapp.net"
        )
    assert isinstance(value, str)
    return value


def arg_group_jid(args: dict[str, Any], name: str = "jid") -> str:
    """A group JID."""
    value = args.get(name)
    if not is_group_jid(value):
        raise BridgeError(ErrorCode.INVALID_ARGUMENT, f"{name} must be a group JID (…@g.us)")
    assert isinstance(value, str)
    return value


def arg_phones(args: dict[str, Any], name: str = "phones") -> list[str]:
    """A non-empty list of phone numbers, as given (normalised later per entry)."""
    value = args.get(name)
    if (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_RESOLVE_PHONES
        or not all(isinstance(item, str) and 0 < len(item) <= 32 for item in value)
    ):
        raise BridgeError(
            ErrorCode.INVALID_ARGUMENT,
            f"{name} must be a list of 1 to {MAX_RESOLVE_PHONES} phone-number strings",
        )
    return list(value)


# --- frame builders -----------------------------------------------------------------------


def result_frame(req_id: int | str, result: Any) -> dict[str, Any]:
    """Successful answer to a request."""
    return {"type": "result", "id": req_id, "result": result}


def error_frame(req_id: int | str | None, code: ErrorCode | str, message: str) -> dict[str, Any]:
    """Error answer; ``id`` is null when the frame had no usable id."""
    return {"type": "error", "id": req_id, "code": str(code), "message": message}


def event_frame(name: str, data: dict[str, Any], seq: int) -> dict[str, Any]:
    """Pushed event; ``seq`` grows by one per event on a connection (gaps mean drops)."""
    return {"type": "event", "event": name, "data": data, "seq": seq}
