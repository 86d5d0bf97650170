"""Hostile clients on loopback: every limit on unauthenticated connections holds.

Each test floods a real server with a bounded number of real connections or frames. Where a
delay matters (the failed-auth throttle) the server runs on an injected clock.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from custom_components.whatsapp_presence.bridge import protocol, server as server_module
from custom_components.whatsapp_presence.bridge.protocol import Hello

from .common import TOKEN, ClientFactory, StartBridge, call


class FakeClock:
    """Monotonic time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _auth(session: aiohttp.ClientSession, url: str, token: str) -> dict[str, object]:
    """One connection, one auth frame; the server's first answer."""
    async with session.ws_connect(url) as ws:
        await ws.send_str(json.dumps({"type": "auth", "token": token}))
        answer: dict[str, object] = await ws.receive_json()
        return answer


async def test_pending_handshakes_are_capped(
    start_bridge: StartBridge, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Sixteen silent sockets fill the handshake slots; the next gets 503 until one leaves."""
    server = await start_bridge(server_options={"max_pending": 16, "auth_timeout": 60})
    silent = [await session.ws_connect(server.url) for _ in range(16)]
    assert server.pending_count == 16
    for _ in range(5):
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(server.url)
        assert err.value.status == 503
    assert server.pending_count == 16
    assert caplog.text.count("Refused 127.0.0.1: 16 connections are already authenticating") == 5
    await silent.pop().close()
    hello = await _auth(session, server.url, TOKEN)
    assert hello["type"] == "hello"
    for ws in silent:
        await ws.close()


async def test_frames_before_auth_are_limited_to_a_few_kib(
    start_bridge: StartBridge, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """A 1 MiB frame before auth closes the socket (1009); after auth, big frames are answered."""
    server = await start_bridge()
    for _ in range(20):
        async with session.ws_connect(server.url) as ws:
            await ws.send_str(json.dumps({"type": "auth", "token": "x" * (1024 * 1024)}))
            assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
            assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert caplog.text.count("Refused 127.0.0.1: oversized frame before authenticating") == 20
    async with session.ws_connect(server.url) as ws:
        await ws.send_str(json.dumps({"type": "auth", "token": TOKEN, "pad": "x" * 4096}))
        assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
    async with session.ws_connect(server.url) as ws:
        await ws.send_str(json.dumps({"type": "auth", "token": TOKEN}))
        assert (await ws.receive_json())["type"] == "hello"
        # After auth the usual limit applies: 200 KiB is refused politely, the link stays up.
        await ws.send_str(json.dumps({"type": "request", "id": 1, "pad": "x" * 200_000}))
        answer = await ws.receive_json()
        assert answer["code"] == "message_too_large"
        await ws.send_str(json.dumps({"type": "request", "id": 2, "command": "ping"}))
        assert (await ws.receive_json()) == {"type": "result", "id": 2, "result": {}}
    assert server.pending_count == 0


async def test_failed_auths_are_throttled_per_peer(
    start_bridge: StartBridge, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Three free tries, then a wait that doubles; while waiting no token is even checked."""
    clock = FakeClock()
    server = await start_bridge(server_options={"clock": clock, "auth_backoff": (1.0, 60.0)})
    answers = [await _auth(session, server.url, f"guess-{n}") for n in range(50)]
    checked = [a for a in answers if a["message"] == "wrong token"]
    assert len(checked) == 4  # three free, the fourth starts a 1 s wait
    assert all(str(a["message"]).startswith("too many wrong tokens") for a in answers[4:]), answers[
        4:
    ]
    assert all(a["code"] == "busy" for a in answers[4:])  # a wait, not a verdict on the token
    # Even the right token waits its turn.
    assert (await _auth(session, server.url, TOKEN))["code"] == "busy"
    assert caplog.text.count("Refused 127.0.0.1: wrong token") == 4
    assert caplog.text.count("Refused 127.0.0.1: too many wrong tokens") == 47

    # Each further wrong token doubles the wait: 2 s, then 4 s.
    clock.now += 1.0
    assert (await _auth(session, server.url, "guess"))["message"] == "wrong token"
    clock.now += 1.5
    assert str((await _auth(session, server.url, TOKEN))["message"]).startswith("too many")
    clock.now += 0.5
    assert (await _auth(session, server.url, "guess"))["message"] == "wrong token"
    clock.now += 3.9
    assert str((await _auth(session, server.url, TOKEN))["message"]).startswith("too many")
    clock.now += 0.1
    assert (await _auth(session, server.url, TOKEN))["type"] == "hello"
    # Success forgets the failures: three free tries again.
    for _ in range(3):
        assert (await _auth(session, server.url, "guess"))["message"] == "wrong token"
    assert (await _auth(session, server.url, TOKEN))["type"] == "hello"


async def test_idle_sockets_are_closed(start_bridge: StartBridge) -> None:
    """A TCP connection that never sends a request, or never upgrades, does not stay open."""
    server = await start_bridge(server_options={"auth_timeout": 0.2})
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    async with asyncio.timeout(5):  # a safety net; the server closes after 0.2 s
        assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("version", [True, 1.0, "1", None, 2])
async def test_protocol_version_must_be_the_integer(
    start_bridge: StartBridge, session: aiohttp.ClientSession, version: object
) -> None:
    """True == 1 and 1.0 == 1 in Python; neither is protocol 1."""
    server = await start_bridge()
    async with session.ws_connect(server.url) as ws:
        await ws.send_str(json.dumps({"type": "auth", "token": TOKEN, "protocol": version}))
        answer = await ws.receive_json()
        assert answer["code"] == "unsupported_protocol"
        assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == protocol.CLOSE_PROTOCOL_VERSION


async def test_an_unserialisable_event_skips_no_client(
    start_bridge: StartBridge, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Every client is told about the bad event being dropped, and gets the next one."""
    server = await start_bridge()
    clients = [make_client(server.url) for _ in range(3)]
    for client in clients:
        await client.connect()
    with caplog.at_level(logging.ERROR):
        server.emit("disconnected", {"reason": object()})
    assert caplog.text.count("Backend emitted a non-JSON disconnected event") == 3
    server.emit("disconnected", {"reason": "network"})
    for client in clients:
        await call(client, "ping")
        assert client.events.named("disconnected") == [{"reason": "network"}]  # type: ignore[attr-defined]


async def test_without_a_way_to_raise_the_limit_clients_keep_the_small_one(
    start_bridge: StartBridge,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An aiohttp whose internals moved: clients still work, within 4 KiB frames, and it says so."""
    monkeypatch.setattr(server_module, "_set_frame_limit", lambda *_args: False)
    server = await start_bridge()
    async with session.ws_connect(server.url) as ws:
        await ws.send_str(json.dumps({"type": "auth", "token": TOKEN}))
        assert (await ws.receive_json())["type"] == "hello"
        await ws.send_str(json.dumps({"type": "request", "id": 1, "command": "ping"}))
        assert (await ws.receive_json()) == {"type": "result", "id": 1, "result": {}}
        await ws.send_str(json.dumps({"type": "request", "id": 2, "pad": "x" * 8000}))
        assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert "cannot raise the frame limit" in caplog.text


async def test_a_throttled_address_does_not_refuse_the_right_token_for_good(
    start_bridge: StartBridge, session: aiohttp.ClientSession, make_client: ClientFactory
) -> None:
    """A guesser at the client's address (a NAT, a proxy, a local process) earns a wait for it.

    The client must read that wait as a passing error, never as its token refused: that would
    end its reconnects and ask the user for a new token that is not needed.
    """
    clock = FakeClock()
    server = await start_bridge(server_options={"clock": clock, "auth_backoff": (1.0, 60.0)})
    for n in range(4):
        assert (await _auth(session, server.url, f"guess-{n}"))["message"] == "wrong token"
    client = make_client(server.url)
    with pytest.raises(protocol.BridgeError) as err:
        await client.connect()
    assert not isinstance(err.value, protocol.BridgeAuthError)
    assert err.value.code == "busy"
    clock.now += 1.0  # the wait is over
    hello = await client.connect()
    assert isinstance(hello, Hello)
    await client.close()
