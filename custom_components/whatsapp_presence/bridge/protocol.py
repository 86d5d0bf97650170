"""Wire protocol shared by the bridge server and client (see docs/bridge-protocol.md).

Every frame is one JSON object in a WebSocket text frame. Client to server:
``auth`` (first frame) and ``request``; server to client: ``hello``, ``result``, ``error`` and
``event``. Validation lives here so the server and client agree on it and the fuzz tests can
hit it directly.

Every payload of the protocol's own frames (the hello, the answers to its commands, its
events) has a typed record here; only the simulator's ``sim.*`` answers stay plain JSON. The
server builds its payloads from the records and the client decodes each message into one,
once, at the edge: past the client, bridge data is valid by construction and nobody reads
``.get()`` chains or catches ``KeyError``. The records are frozen, slotted dataclasses:
immutable (one event may reach several listeners, none can change it for the others), small
and quick to build (presence events are the hot path), compared by value (a group's members
are compared with the cached ones), and plain enough for mypy --strict to follow through
``match``; a TypedDict would still be a mutable dict that nothing checks at run time.

A decoder checks types and ranges, not meaning: whether a ``paired`` JID is usable is for the
pairing to judge (and say so); the one exception is a presence's JID, which everything after
it is keyed by. Unknown fields are ignored (a newer bridge may add some); a missing documented
field, a wrong type, a bool where a number belongs (or a number where a bool does) or a
timestamp that is not finite or beyond what any clock holds is refused.

The connection-state events (``connected``, ``disconnected``, ``logged_out``,
``temporary_ban``) are the exception: their name is the news, and losing one to a detail
would leave the account shown connected after a disconnect, or never asking to link again
after a logout. Their details fall back to a default (``UNKNOWN_REASON``, ``None``) when
missing or malformed, so a bridge of another version still gets the change through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
import json
import math
import re
from typing import Any, ClassVar, Final, Self

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
CLOSE_INTERNAL: Final = 1011
"""The bridge cannot say where it stands (its backend failed): try again later."""

MAX_RESOLVE_PHONES: Final = 50
MAX_ID_LENGTH: Final = 64
MAX_TIMESTAMP: Final = 253_402_300_799.0
"""9999-12-31T23:59:59Z: the last second every datetime library can represent."""

UNKNOWN_REASON: Final = "unknown"
"""The reason of a disconnect or logout whose bridge gave none (or none readable)."""

type JSON = bool | int | float | str | list[JSON] | dict[str, JSON] | None
"""A JSON value, as one frame carries it."""


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


def event_frame(name: str, data: Mapping[str, Any], seq: int) -> dict[str, Any]:
    """Pushed event; ``seq`` grows by one per event on a connection (gaps mean drops)."""
    return {"type": "event", "event": name, "data": dict(data), "seq": seq}


# --- typed records (why: the module docstring) ---------------------------------------


class MalformedPayloadError(BridgeError):
    """A payload of the wrong shape. Its message names fields, never their values (which may
    be phone numbers or names)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_MESSAGE, message)


def _value(data: Mapping[str, object], key: str, *, optional: bool = False) -> object:
    if key in data:
        return data[key]
    if optional:
        return None
    raise MalformedPayloadError(f"{key} is missing")


def _str(data: Mapping[str, object], key: str) -> str:
    value = _value(data, key)
    if not isinstance(value, str):
        raise MalformedPayloadError(f"{key} must be a string")
    return value


def _opt_str(data: Mapping[str, object], key: str, *, optional: bool = False) -> str | None:
    value = _value(data, key, optional=optional)
    if value is not None and not isinstance(value, str):
        raise MalformedPayloadError(f"{key} must be a string or null")
    return value


def _or_default[T](read: Callable[[], T | None], default: T) -> T:
    """A detail of a connection-state event: ``default`` when missing, null or malformed
    (the event still arrives; see the module docstring)."""
    try:
        value = read()
    except MalformedPayloadError:
        return default
    return default if value is None else value


def _bool(data: Mapping[str, object], key: str) -> bool:
    value = _value(data, key)
    if not isinstance(value, bool):  # 0 and 1 are not booleans on this protocol
        raise MalformedPayloadError(f"{key} must be true or false")
    return value


def _opt_bool(data: Mapping[str, object], key: str) -> bool | None:
    value = _value(data, key, optional=True)
    if value is not None and not isinstance(value, bool):
        raise MalformedPayloadError(f"{key} must be true, false or null")
    return value


def _number(value: object, key: str, minimum: float, maximum: float) -> float:
    """A finite JSON number within bounds, as given (an int stays an int)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedPayloadError(f"{key} must be a number")
    try:
        within = math.isfinite(value) and minimum <= value <= maximum
    except OverflowError:  # an int too large for a float
        within = False
    if not within:
        raise MalformedPayloadError(f"{key} is out of range")
    return value


def _timestamp(data: Mapping[str, object], key: str) -> float:
    return _number(_value(data, key), key, 0.0, MAX_TIMESTAMP)


def _opt_timestamp(data: Mapping[str, object], key: str, *, optional: bool = False) -> float | None:
    value = _value(data, key, optional=optional)
    return None if value is None else _number(value, key, 0.0, MAX_TIMESTAMP)


def _duration(data: Mapping[str, object], key: str) -> float:
    return _number(_value(data, key), key, 0.0, MAX_TIMESTAMP)


def _opt_duration(data: Mapping[str, object], key: str) -> float | None:
    value = _value(data, key, optional=True)
    return None if value is None else _number(value, key, 0.0, MAX_TIMESTAMP)


def _count(data: Mapping[str, object], key: str) -> int:
    value = _value(data, key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise MalformedPayloadError(f"{key} must be a non-negative integer")
    return value


def as_object(value: object, what: str) -> Mapping[str, object]:
    """A JSON object with string keys, or MalformedPayloadError naming ``what``."""
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise MalformedPayloadError(f"{what} must be an object")
    return value


def _ban_code(data: Mapping[str, object], key: str, *, optional: bool = False) -> int | str | None:
    value = _value(data, key, optional=optional)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MalformedPayloadError(f"{key} must be a number or a string")
    return value


def decode_list[T](
    value: object, decode: Callable[[Mapping[str, object]], T], what: str
) -> list[T]:
    """A JSON array of objects, each decoded; one malformed item refuses the whole answer."""
    if not isinstance(value, list):
        raise MalformedPayloadError(f"{what} must be a list")
    return [decode(as_object(item, f"each item of {what}")) for item in value]


def _drop_none(payload: dict[str, JSON], *keys: str) -> dict[str, JSON]:
    """Leave out optional fields that are unknown (rather than sending them as null)."""
    for key in keys:
        if payload.get(key) is None:
            payload.pop(key, None)
    return payload


@dataclass(frozen=True, slots=True)
class Account:
    """The linked WhatsApp account (``status.account``)."""

    jid: str
    phone: str
    push_name: str | None

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        return cls(
            _str(data, "jid"), _str(data, "phone"), _opt_str(data, "push_name", optional=True)
        )

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {"jid": self.jid, "phone": self.phone, "push_name": self.push_name}


@dataclass(frozen=True, slots=True)
class Ban:
    """A temporary ban in force (``status.ban``); ``code`` only where the backend knows it."""

    expires_at: float
    expires_in: float
    code: int | str | None = None

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        return cls(
            _timestamp(data, "expires_at"),
            _duration(data, "expires_in"),
            _ban_code(data, "code", optional=True),
        )

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return _drop_none(
            {"code": self.code, "expires_in": self.expires_in, "expires_at": self.expires_at},
            "code",
        )


@dataclass(frozen=True, slots=True)
class Status:
    """Where the backend stands (the ``status`` command, and the hello's ``status``).

    ``pairing`` and ``account`` may be missing from an older or a minimal bridge; ``available``
    and ``ban`` are backend extras (``None``: not reported).
    """

    paired: bool
    connected: bool
    pairing: str | None = None
    account: Account | None = None
    available: bool | None = None
    ban: Ban | None = None

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        account = _value(data, "account", optional=True)
        ban = _value(data, "ban", optional=True)
        return cls(
            paired=_bool(data, "paired"),
            connected=_bool(data, "connected"),
            pairing=_opt_str(data, "pairing", optional=True),
            account=None
            if account is None
            else Account.from_payload(as_object(account, "account")),
            available=_opt_bool(data, "available"),
            ban=None if ban is None else Ban.from_payload(as_object(ban, "ban")),
        )

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {
            "paired": self.paired,
            "connected": self.connected,
            "pairing": self.pairing,
            "account": None if self.account is None else self.account.to_payload(),
            "available": self.available,
            "ban": None if self.ban is None else self.ban.to_payload(),
        }


@dataclass(frozen=True, slots=True)
class Hello:
    """The server's first frame after a good token."""

    protocol: int
    backend: str
    status: Status
    max_message_bytes: int | None = None

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode (the frame's ``type`` already checked); raises MalformedPayloadError."""
        limit = _value(data, "max_message_bytes", optional=True)
        return cls(
            protocol=_count(data, "protocol"),
            backend=_str(data, "backend"),
            status=Status.from_payload(as_object(_value(data, "status"), "status")),
            max_message_bytes=None if limit is None else _count(data, "max_message_bytes"),
        )

    def to_payload(self) -> dict[str, JSON]:
        """The wire form (a whole frame)."""
        return _drop_none(
            {
                "type": "hello",
                "protocol": self.protocol,
                "backend": self.backend,
                "status": self.status.to_payload(),
                "max_message_bytes": self.max_message_bytes,
            },
            "max_message_bytes",
        )


@dataclass(frozen=True, slots=True)
class Contact:
    """An address-book entry or a group member (``name`` may be unknown)."""

    jid: str
    phone: str
    name: str | None

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        return cls(_str(data, "jid"), _str(data, "phone"), _opt_str(data, "name"))

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {"jid": self.jid, "phone": self.phone, "name": self.name}


@dataclass(frozen=True, slots=True)
class Group:
    """A joined group and its number of participants."""

    jid: str
    name: str | None
    participants: int

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        return cls(_str(data, "jid"), _opt_str(data, "name"), _count(data, "participants"))

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {"jid": self.jid, "name": self.name, "participants": self.participants}


@dataclass(frozen=True, slots=True)
class Resolution:
    """Whether one queried number has WhatsApp, and its JID if so."""

    query: str
    on_whatsapp: bool
    jid: str | None

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        return cls(_str(data, "query"), _bool(data, "on_whatsapp"), _opt_str(data, "jid"))

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {"query": self.query, "on_whatsapp": self.on_whatsapp, "jid": self.jid}


@dataclass(frozen=True, slots=True)
class PhoneCode:
    """The answer to ``pair_phone``: the code to type on the phone."""

    code: str

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        return cls(_str(data, "code"))

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {"code": self.code}


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QrCode:
    """``qr``: a pairing QR code to show (secret: it links a device to the account)."""

    name: ClassVar[Event] = Event.QR
    code: str
    expires_in: float

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        return cls(_str(data, "code"), _duration(data, "expires_in"))

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {"code": self.code, "expires_in": self.expires_in}


@dataclass(frozen=True, slots=True)
class Paired:
    """``paired``: the pairing succeeded (whether the JID is usable is the pairing's call)."""

    name: ClassVar[Event] = Event.PAIRED
    jid: str
    phone: str | None
    push_name: str | None

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        return cls(
            _str(data, "jid"),
            _opt_str(data, "phone", optional=True),
            _opt_str(data, "push_name", optional=True),
        )

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {"jid": self.jid, "phone": self.phone, "push_name": self.push_name}


@dataclass(frozen=True, slots=True)
class PairingFailed:
    """``pairing_failed``: why the pairing ended without an account."""

    name: ClassVar[Event] = Event.PAIRING_FAILED
    reason: str

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        return cls(_str(data, "reason"))

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {"reason": self.reason}


@dataclass(frozen=True, slots=True)
class Connected:
    """``connected``: WhatsApp is connected (again): availability and subscriptions are gone."""

    name: ClassVar[Event] = Event.CONNECTED
    jid: str | None
    phone: str | None

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        return cls(
            _or_default(lambda: _opt_str(data, "jid", optional=True), None),
            _or_default(lambda: _opt_str(data, "phone", optional=True), None),
        )

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {"jid": self.jid, "phone": self.phone}


@dataclass(frozen=True, slots=True)
class Disconnected:
    """``disconnected``: WhatsApp's link dropped (``reason``: docs/bridge-protocol.md)."""

    name: ClassVar[Event] = Event.DISCONNECTED
    reason: str = UNKNOWN_REASON

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; never refuses (the details fall back to their defaults)."""
        return cls(_or_default(lambda: _str(data, "reason"), UNKNOWN_REASON))

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {"reason": self.reason}


@dataclass(frozen=True, slots=True)
class LoggedOut:
    """``logged_out``: the session is gone; pairing again is the only way back."""

    name: ClassVar[Event] = Event.LOGGED_OUT
    reason: str = UNKNOWN_REASON
    on_connect: bool = False

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; never refuses (the details fall back to their defaults)."""
        return cls(
            _or_default(lambda: _str(data, "reason"), UNKNOWN_REASON),
            _or_default(lambda: _bool(data, "on_connect"), False),
        )

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {"reason": self.reason, "on_connect": self.on_connect}


@dataclass(frozen=True, slots=True)
class Presence:
    """``presence``: one contact's presence (the hot path).

    ``last_seen`` is ``None`` when online, hidden or unknown; ``at`` is when the bridge got it.
    """

    name: ClassVar[Event] = Event.PRESENCE
    jid: str
    lid: str | None
    online: bool
    last_seen: float | None
    at: float

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; raises MalformedPayloadError."""
        jid = _value(data, "jid")
        if not is_user_jid(jid):
            raise MalformedPayloadError("jid must be a phone-number JID")
        assert isinstance(jid, str)
        return cls(
            jid,
            _opt_str(data, "lid", optional=True),
            _bool(data, "online"),
            _opt_timestamp(data, "last_seen", optional=True),
            _timestamp(data, "at"),
        )

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {
            "jid": self.jid,
            "lid": self.lid,
            "online": self.online,
            "last_seen": self.last_seen,
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class TemporaryBan:
    """``temporary_ban``: WhatsApp banned the account for a while (each detail if known)."""

    name: ClassVar[Event] = Event.TEMPORARY_BAN
    code: int | str | None = None
    expires_in: float | None = None
    expires_at: float | None = None

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode; never refuses (the details fall back to unknown)."""
        return cls(
            _or_default(lambda: _ban_code(data, "code", optional=True), None),
            _or_default(lambda: _opt_duration(data, "expires_in"), None),
            _or_default(lambda: _opt_timestamp(data, "expires_at", optional=True), None),
        )

    def to_payload(self) -> dict[str, JSON]:
        """The wire form (what is unknown left out)."""
        return _drop_none(
            {"code": self.code, "expires_in": self.expires_in, "expires_at": self.expires_at},
            "code",
            "expires_in",
            "expires_at",
        )


@dataclass(frozen=True, slots=True)
class StreamReplaced:
    """``stream_replaced``: another connection took the session over."""

    name: ClassVar[Event] = Event.STREAM_REPLACED

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode (nothing to read)."""
        return cls()

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {}


@dataclass(frozen=True, slots=True)
class ClientOutdated:
    """``client_outdated``: WhatsApp refuses this library version."""

    name: ClassVar[Event] = Event.CLIENT_OUTDATED

    @classmethod
    def from_payload(cls, data: Mapping[str, object]) -> Self:
        """Decode (nothing to read)."""
        return cls()

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return {}


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event this side does not know (a newer bridge's), passed on undecoded: an older
    integration keeps working with a newer bridge, and diagnostics still show it."""

    name: str
    data: dict[str, JSON]

    def to_payload(self) -> dict[str, JSON]:
        """The wire form."""
        return dict(self.data)


type BridgeEvent = (
    QrCode
    | Paired
    | PairingFailed
    | Connected
    | Disconnected
    | LoggedOut
    | Presence
    | TemporaryBan
    | StreamReplaced
    | ClientOutdated
    | UnknownEvent
)
"""Every event the protocol defines, decoded, and the ones it does not (yet)."""

_EVENT_DECODERS: Final[dict[str, Callable[[Mapping[str, object]], BridgeEvent]]] = {
    record.name: record.from_payload
    for record in (
        QrCode,
        Paired,
        PairingFailed,
        Connected,
        Disconnected,
        LoggedOut,
        Presence,
        TemporaryBan,
        StreamReplaced,
        ClientOutdated,
    )
}


def decode_event(name: str, data: dict[str, JSON]) -> BridgeEvent:
    """The record of a pushed event (``UnknownEvent`` for one this side does not know).

    Raises MalformedPayloadError for a known event of the wrong shape.
    """
    decoder = _EVENT_DECODERS.get(name)
    return UnknownEvent(name, data) if decoder is None else decoder(data)
