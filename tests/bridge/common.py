"""What the bridge tests share: a scripted simulated network, an event log, a client factory.

Their fixtures are in conftest.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from custom_components.whatsapp_presence.bridge.client import BridgeClient
from custom_components.whatsapp_presence.bridge.protocol import BridgeEvent
from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorConfig

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

    def __call__(self, event: BridgeEvent) -> None:
        # Kept in the wire form, so tests read what the bridge sent, as it documents it.
        name, data = str(event.name), dict(event.to_payload())
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


async def call(client: BridgeClient, command: str, /, **args: Any) -> Any:
    """A raw request (the simulator's ``sim.*`` controls), its JSON answer as the test reads it."""
    return await client.request(command, **args)


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
