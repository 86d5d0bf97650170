"""Examples for the protocol helpers (the fuzz tests cover the random cases)."""

from __future__ import annotations

import pytest

from custom_components.whatsapp_presence.bridge import protocol
from custom_components.whatsapp_presence.bridge.protocol import BridgeError, ErrorCode


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("+1 (202) 555-0142", "12025550142"),
        ("0049 151 23456789", "4915123456789"),
        ("4915123456789", "4915123456789"),
        ("+44 7700.900123", "447700900123"),
    ],
)
def test_normalize_phone(raw: str, digits: str) -> None:
    assert protocol.normalize_phone(raw) == digits


@pytest.mark.parametrize(
    "raw", ["", "0151 2345678", "+1 555", "12345678901234567", "abc", "+١٢٣٤٥٦٧٨"]
)
def test_normalize_phone_rejects(raw: str) -> None:
    with pytest.raises(BridgeError) as err:
        protocol.normalize_phone(raw)
    assert err.value.code == ErrorCode.INVALID_ARGUMENT


def test_jids() -> None:
    assert protocol.is_user_jid("12025550142@s.whatsapp.net")
    assert not protocol.is_user_jid("12025550142:3@s.whatsapp.net")
    assert not protocol.is_user_jid("123456789012345@lid")
    assert protocol.is_group_jid("120363012345678901@g.us")
    assert protocol.is_group_jid("4915123456789-1600000000@g.us")
    assert protocol.jid_to_phone("4915123456789:12@s.whatsapp.net") == "4915123456789"


def test_bridge_error_keeps_unknown_codes() -> None:
    assert BridgeError("rate_limited", "x").code is ErrorCode.RATE_LIMITED
    newer = BridgeError("some_future_code", "x")
    assert newer.code == "some_future_code"
    assert newer.message == "x"
    assert protocol.BridgeConnectionError().code is ErrorCode.NOT_CONNECTED
    assert protocol.BridgeAuthError().code is ErrorCode.UNAUTHORIZED


def test_frames_are_ascii_json() -> None:
    frame = protocol.encode(protocol.error_frame("\udc80", ErrorCode.INTERNAL, "Zoë"))
    assert frame.isascii()
    frame.encode("utf-8")
    with pytest.raises(ValueError):
        protocol.encode({"x": float("nan")})
    with pytest.raises(BridgeError) as err:
        protocol.decode('{"x": NaN}', 100)
    assert err.value.code == ErrorCode.INVALID_MESSAGE
    with pytest.raises(BridgeError) as err:
        protocol.decode("[" * 100_000 + "]" * 100_000, 10**6)
    assert err.value.code == ErrorCode.INVALID_MESSAGE
