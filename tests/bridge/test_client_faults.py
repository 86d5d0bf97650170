"""The client against a broken or hostile bridge: it drops the link, backs off, never dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import logging
from typing import Any

import aiohttp
from aiohttp import web
import pytest

from custom_components.whatsapp_presence.bridge import protocol
from custom_components.whatsapp_presence.bridge.client import BridgeClient

from .common import TOKEN, ClientFactory, StartBridge

DEEP = "[" * 200_000 + "]" * 200_000
"""Valid JSON nested deeper than any parser's recursion limit."""

HELLO = {
    "type": "hello",
    "protocol": protocol.PROTOCOL_VERSION,
    "backend": "hostile",
    "status": {"paired": True, "connected": True},
}

Hostile = Callable[[Callable[[web.WebSocketResponse, int], Awaitable[None]]], Awaitable[str]]


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    """A tiny WebSocket server on loopback that answers auth, then does what the test says."""
    runners: list[web.AppRunner] = []

    async def start(behave: Callable[[web.WebSocketResponse, int], Awaitable[None]]) -> str:
        connections = 0

        async def handler(request: web.Request) -> web.WebSocketResponse:
            nonlocal connections
            connections += 1
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.receive()  # the auth frame, whatever it says
            await behave(ws, connections)
            return ws

        app = web.Application()
        app.router.add_get("/ws", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"ws://127.0.0.1:{port}/ws"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_deep_json_drops_the_link_and_backs_off(
    hostile: Hostile, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Deep JSON after the hello is a protocol error: link down, reconnects with growing delays."""

    async def behave(ws: web.WebSocketResponse, _n: int) -> None:
        await ws.send_json(HELLO)
        await ws.send_str(DEEP)
        await ws.receive()  # until the client closes

    url = await hostile(behave)
    delays: list[float] = []
    enough = asyncio.Event()
    held = asyncio.Event()

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 4:
            enough.set()
            await held.wait()

    client = make_client(url, sleep=sleep, jitter=lambda d: d, backoff_max=60.0)
    await client.connect()
    async with asyncio.timeout(30):  # a safety net for a broken test, not a delay
        await enough.wait()
    assert delays == [1.0, 2.0, 4.0, 8.0]  # each new link broke at once: the backoff grows
    assert client.changes[0] is False  # type: ignore[attr-defined]
    assert not client.connected
    assert "broke the protocol" in caplog.text
    await client.close()  # never raises
    assert [t for t in asyncio.all_tasks() if t.get_name() == "whatsapp bridge client"] == []


async def test_deep_json_hello_is_a_connection_error(
    hostile: Hostile, make_client: ClientFactory
) -> None:
    """An undecodable hello fails the connect cleanly, as an unreachable bridge would."""

    async def behave(ws: web.WebSocketResponse, _n: int) -> None:
        await ws.send_str(DEEP)
        await ws.receive()

    client = make_client(await hostile(behave))
    with pytest.raises(protocol.BridgeConnectionError, match="unreadable hello"):
        await client.connect()
    await client.close()


async def test_refused_token_on_reconnect_stops_retrying(
    start_bridge: StartBridge, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """The bridge comes back with another token: one warning, a callback, no more attempts."""
    server = await start_bridge()
    port = server.port
    refused: list[None] = []
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    client = BridgeClient(
        server.url,
        TOKEN,
        session=session,
        on_event=lambda _event: None,
        on_auth_failed=lambda: refused.append(None),
        sleep=sleep,
    )
    await client.connect()
    await server.stop()
    await start_bridge(port=port, token="another-token-0123456789")
    task = client._task
    assert task is not None
    async with asyncio.timeout(30):  # a safety net for a broken test, not a delay
        await task  # ends by itself: retrying a refused token cannot help
    assert refused == [None]
    assert client.auth_refused
    assert not client.connected
    refusals = [r for r in caplog.records if "refused the token" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.WARNING
    await client.close()


async def test_three_missed_pings_mean_a_hung_bridge(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    """Pings go unanswered: after the third the client calls it unresponsive and drops it."""
    server = await start_bridge()
    never = asyncio.Event()
    dispatch = server._dispatch
    pings = 0

    async def hung(command: str, args: dict[str, Any]) -> Any:
        nonlocal pings
        if command == "ping":
            pings += 1
            await never.wait()
        return await dispatch(command, args)

    server._dispatch = hung  # type: ignore[method-assign]
    unresponsive: asyncio.Queue[int] = asyncio.Queue()
    changes: asyncio.Queue[bool] = asyncio.Queue()
    gate = asyncio.Event()

    async def held_sleep(delay: float) -> None:
        await gate.wait()

    client = make_client(server.url, heartbeat=0.01, request_timeout=0.05, sleep=held_sleep)
    client._on_unresponsive = lambda: unresponsive.put_nowait(pings)
    client._on_connection_change = changes.put_nowait
    await client.connect()
    assert await asyncio.wait_for(unresponsive.get(), 10) == 3
    assert client.missed_pings == 3
    server._dispatch = dispatch  # type: ignore[method-assign]
    gate.set()
    assert await asyncio.wait_for(changes.get(), 10) is False
    assert await asyncio.wait_for(changes.get(), 10) is True
    assert (await client.status()).connected is True
    never.set()
