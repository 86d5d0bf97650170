"""Fixtures: a real bridge server on loopback with a scripted simulator, and real clients.

The simulator runs on a manual clock with every random process off, so a test moves time with
``sim.advance`` (or ``backend.clock.advance``) and awaits the messages it expects; nothing
sleeps on the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from custom_components.whatsapp_presence.bridge.client import BridgeClient
from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend, SimulatorConfig

TOKEN = "test-token-0123456789abcdef0123456789"
START = 1_800_000_000.0

SCRIPTED = SimulatorConfig(
    seed=7,
    contacts=12,
    groups=3,
    manual_clock=True,
    start_time=START,
    presence_churn=0.0,
    disconnect_rate=0.0,
    presence_latency=0.0,
    connect_delay=0.0,
    pairing_delay=0.0,
    paired=True,
    query_limit=0,
)


class EventLog:
    """Collects events from a client; ``wait`` resolves on a matching event (no polling)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self._waiters: list[tuple[str, Callable[[dict[str, Any]], bool], asyncio.Future[Any]]] = []

    def __call__(self, name: str, data: dict[str, Any]) -> None:
        self.items.append((name, data))
        for waiter in list(self._waiters):
            wanted, predicate, future = waiter
            if wanted == name and not future.done() and predicate(data):
                future.set_result(data)
                self._waiters.remove(waiter)

    def mark(self) -> int:
        return len(self.items)

    def named(self, name: str, after: int = 0) -> list[dict[str, Any]]:
        return [data for item, data in self.items[after:] if item == name]

    async def wait(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda _: True,
        *,
        after: int = 0,
        limit: float = 5.0,
    ) -> dict[str, Any]:
        for item, data in self.items[after:]:
            if item == name and predicate(data):
                return data
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append((name, predicate, future))
        async with asyncio.timeout(limit):  # a safety net for a broken test, not a delay
            result: dict[str, Any] = await future
            return result


StartBridge = Callable[..., Awaitable[BridgeServer]]


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """Home Assistant's test plugin blocks socket creation; these tests use loopback only."""


@pytest.fixture
async def start_bridge() -> AsyncIterator[StartBridge]:
    """Factory: ``await start_bridge(port=0, token=TOKEN, server_options={}, **config)``."""
    servers: list[BridgeServer] = []

    async def start(
        *,
        port: int = 0,
        token: str = TOKEN,
        server_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> BridgeServer:
        config = replace(SCRIPTED, **overrides)
        server = BridgeServer(
            lambda emit: SimulatorBackend(emit, config),
            token,
            "127.0.0.1",
            port,
            **(server_options or {}),
        )
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


class ClientFactory:
    """Builds clients with an EventLog and records connection changes."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.clients: list[BridgeClient] = []

    def __call__(self, url: str, token: str = TOKEN, **options: Any) -> BridgeClient:
        events = EventLog()
        changes: list[bool] = []
        client = BridgeClient(
            url,
            token,
            session=self.session,
            on_event=events,
            on_connection_change=changes.append,
            **options,
        )
        client.events = events  # type: ignore[attr-defined]
        client.changes = changes  # type: ignore[attr-defined]
        self.clients.append(client)
        return client


@pytest.fixture
async def make_client(session: aiohttp.ClientSession) -> AsyncIterator[ClientFactory]:
    factory = ClientFactory(session)
    yield factory
    for client in factory.clients:
        await client.close()
