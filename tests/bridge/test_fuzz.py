"""Fuzzing: random bytes and random JSON never take the server down.

A hypothesis property covers the validation layer; a seeded, bounded wire fuzz throws random
frames at a live server and then checks it still answers every well-formed request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import json
import random
from typing import Any

import aiohttp
from hypothesis import given, settings, strategies as st
import pytest

from custom_components.whatsapp_presence.bridge import protocol
from custom_components.whatsapp_presence.bridge.protocol import BridgeError, Command, ErrorCode
from custom_components.whatsapp_presence.bridge.simulator import SIM_COMMANDS

from .common import TOKEN, ClientFactory, StartBridge, call

MAX_BYTES = 2048
KNOWN_CODES = {str(code) for code in ErrorCode}
COMMANDS = [str(command) for command in Command] + list(SIM_COMMANDS)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
request_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["request", "auth", "event", "result"]) | st.text(max_size=8),
        "id": json_values,
        "command": st.sampled_from(COMMANDS) | json_values,
        "args": json_values,
    },
)


def _attempt(call: Callable[[], Any]) -> tuple[Any, BridgeError | None]:
    """(result, None) or (None, the BridgeError); any other exception fails the test."""
    try:
        return call(), None
    except BridgeError as err:
        return None, err


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300) | st.text(max_size=300))
def test_decode_only_raises_bridge_errors(raw: bytes | str) -> None:
    message, err = _attempt(lambda: protocol.decode(raw, 256))
    if err is not None:
        assert err.code in (ErrorCode.INVALID_MESSAGE, ErrorCode.MESSAGE_TOO_LARGE)
    else:
        assert isinstance(message, dict)


@settings(max_examples=300, deadline=None)
@given(message=request_like | st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_parse_request_only_raises_bridge_errors(message: dict[str, Any]) -> None:
    request, err = _attempt(lambda: protocol.parse_request(message))
    if err is not None:
        assert err.code in (ErrorCode.INVALID_MESSAGE, ErrorCode.INVALID_ARGUMENT)
        echoed = protocol.echo_id(message)
        assert echoed is None or protocol.valid_id(echoed)
        protocol.encode(protocol.error_frame(echoed, err.code, err.message)).encode("utf-8")
    else:
        assert protocol.valid_id(request.id)
        assert isinstance(request.args, dict)


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=25))
def test_normalize_phone_gives_digits_or_invalid_argument(value: str) -> None:
    digits, err = _attempt(lambda: protocol.normalize_phone(value))
    if err is not None:
        assert err.code == ErrorCode.INVALID_ARGUMENT
    else:
        assert digits.isascii()
        assert digits.isdigit()
        assert 7 <= len(digits) <= 15
        assert protocol.is_user_jid(protocol.phone_to_jid(digits))


# --- over the wire ---------------------------------------------------------------------------


def _random_text(rng: random.Random, size: int, *, surrogates: bool = False) -> str:
    """Random characters; lone surrogates only inside JSON (a text frame cannot carry them)."""
    alphabet = '{}[]":,0123456789abc \\\n\t\u00e9\u4e2d\U0001f600\u0000'
    if surrogates:
        alphabet += "\udc80\ud800"
    return "".join(rng.choice(alphabet) for _ in range(size))


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 4 else 6)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.choice([0, -1, 1, 2**53, 2**64, rng.randrange(-(10**6), 10**6)])
    if pick == 3:
        return rng.choice([0.5, -1e308, 1e-300, rng.uniform(-1e6, 1e6)])
    if pick in (4, 5):
        return _random_text(rng, rng.randrange(12), surrogates=True)
    if pick == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["type", "id", "command", "args", "jid", "phone", "phones", "online", "seconds"]
    return {
        rng.choice(keys) if rng.random() < 0.7 else _random_text(rng, 5): _random_json(
            rng, depth + 1
        )
        for _ in range(rng.randrange(5))
    }


def _plausible_args(rng: random.Random, contacts: list[str]) -> dict[str, Any]:
    """Arguments that are sometimes right, to reach deeper than validation."""
    args: dict[str, Any] = {}
    if rng.random() < 0.5:
        args["jid"] = rng.choice([*contacts, "1@g.us", "x", "120363111111111111@g.us"])
    if rng.random() < 0.3:
        args["phone"] = rng.choice(["+12025550177", "0", "4915550100123", 5])
    if rng.random() < 0.3:
        args["phones"] = rng.choice([["+12025550177"], [], ["1"] * 60, [contacts[0][:11]]])
    if rng.random() < 0.3:
        args["online"] = rng.random() < 0.5
    if rng.random() < 0.3:
        args["seconds"] = rng.choice([0, 1, 59.5, 3600, -1, "x"])
    if rng.random() < 0.2:
        args["available"] = rng.choice([True, False, 1])
    if rng.random() < 0.1:
        args["reconnect_after"] = rng.choice([None, 0, 2])
    return args


def _frame(rng: random.Random, next_id: int, contacts: list[str]) -> tuple[str | bytes, bool]:
    """A random frame and whether it is a request the server must answer by id."""
    kind = rng.randrange(7)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64))), False
    if kind == 1:
        return _random_text(rng, rng.randrange(200)), False
    if kind == 2:
        return json.dumps(_random_json(rng)), False
    if kind == 3:
        return "x" * rng.randrange(MAX_BYTES + 1, MAX_BYTES * 4), False
    message = {
        "type": "request",
        "id": next_id,
        "command": rng.choice(COMMANDS) if kind < 6 else _random_text(rng, 6, surrogates=True),
        "args": _plausible_args(rng, contacts) if kind < 6 else _random_json(rng),
    }
    if not isinstance(message["args"], dict) or rng.random() < 0.1:
        message["args"] = _random_json(rng)
    return json.dumps(message), True


async def _answer(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """Next non-event frame."""
    while True:
        message = await ws.receive_json()
        assert isinstance(message, dict)
        if message.get("type") != "event":
            return message


async def test_wire_fuzz_then_every_well_formed_request_is_answered(
    start_bridge: StartBridge, make_client: ClientFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_bridge(server_options={"max_message_bytes": MAX_BYTES})
    rng = random.Random(20261129)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20  # bounded: whichever comes first, frames or time
    ws = await session.ws_connect(server.url)
    await ws.send_str(json.dumps({"type": "auth", "token": TOKEN}))
    assert (await ws.receive_json())["type"] == "hello"
    await ws.send_str(json.dumps({"type": "request", "id": 0, "command": "sim.contacts"}))
    contacts = [c["jid"] for c in (await _answer(ws))["result"]]
    sent = answered = results = 0
    for next_id in range(1, 600):
        if loop.time() > deadline:
            break
        frame, is_request = _frame(rng, next_id, contacts)
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)
        sent += 1
        answer = await _answer(ws)
        answered += 1
        assert answer["type"] in ("result", "error"), frame
        results += answer["type"] == "result"
        if answer["type"] == "error":
            assert answer["code"] in KNOWN_CODES, answer
            assert answer["code"] != "internal", (frame, answer)
            assert isinstance(answer["message"], str)
        if is_request:
            assert answer["id"] == next_id
    assert sent == answered
    assert sent >= 100
    assert results >= 10  # the fuzz reached the backend, not only the validation
    await ws.close()

    # Afterwards: the server is up and answers every well-formed request (result or typed error).
    client = make_client(server.url)
    await client.connect()
    for command in COMMANDS:
        if command in ("sim.advance",):
            args: dict[str, Any] = {"seconds": 1}
        elif command in ("subscribe_presence", "sim.set_presence"):
            args = {"jid": contacts[0], "online": True}
        elif command == "group_participants":
            args = {"jid": "120363111111111111@g.us"}
        elif command == "resolve":
            args = {"phones": ["+12025550177"]}
        elif command == "pair_phone":
            args = {"phone": "+12025550177"}
        elif command == "set_available":
            args = {"available": True}
        else:
            args = {}
        code: str | None = None
        try:
            await call(client, command, **args)
        except BridgeError as err:
            code = str(err.code)
        assert code is None or code in KNOWN_CODES - {"internal", "timeout"}
        assert client.connected
    assert (await client.status()).paired in (True, False)


async def test_invalid_utf8_text_frame_closes_only_that_link(
    start_bridge: StartBridge, make_client: ClientFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_bridge()
    ws = await session.ws_connect(server.url)
    await ws.send_str(json.dumps({"type": "auth", "token": TOKEN}))
    assert (await ws.receive_json())["type"] == "hello"
    await ws.send_frame(b"\xff\xfe{", aiohttp.WSMsgType.TEXT)
    msg = await ws.receive()
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    client = make_client(server.url)
    await client.connect()
    assert (await client.status()).connected is True


@pytest.mark.parametrize(
    "first", ["", "{", "[]", '{"type": "auth"}', '{"type": "auth", "token": 5}']
)
async def test_garbage_before_auth_is_refused(
    start_bridge: StartBridge, session: aiohttp.ClientSession, first: str
) -> None:
    server = await start_bridge()
    async with session.ws_connect(server.url) as ws:
        await ws.send_str(first)
        answer = await ws.receive_json()
        assert answer["code"] == "unauthorized"
        assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
    assert server.client_count == 0
