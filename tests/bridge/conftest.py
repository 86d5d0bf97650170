"""Fixtures: a real bridge server on loopback with a scripted simulator, and real clients.

The simulator runs on a manual clock with every random process off, so a test moves time with
``sim.advance`` (or ``backend.clock.advance``) and awaits the messages it expects; nothing
sleeps on the wall clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend

from .common import SCRIPTED, TOKEN, ClientFactory, StartBridge


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


@pytest.fixture
async def make_client(session: aiohttp.ClientSession) -> AsyncIterator[ClientFactory]:
    factory = ClientFactory(session)
    yield factory
    for client in factory.clients:
        await client.close()
