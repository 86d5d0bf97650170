"""Faults of a remote bridge, in process: a hostile bridge, and WhatsApp dropping all the time.

The real bridge server and simulator run in this process on loopback (tests/sim.py) with a
manual clock, so a simulated hour of disconnects takes seconds; between it and the integration
there is real WebSocket traffic, and for the hostile case a small proxy that injects a frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aiohttp
from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_URL, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.whatsapp_presence.const import DOMAIN
from custom_components.whatsapp_presence.coordinator import WhatsAppCoordinator
from tests.common import online_entity
from tests.sim import SimBridge, requests_answered, run_until, until

from .harness import Snapshot, all_subscribed

DEEP = "[" * 200_000 + "]" * 200_000
"""Valid JSON nested deeper than any parser's recursion limit."""
HOSTILE_BOUND = 10.0
"""The client's first reconnect (1 s, jittered) and a paced re-subscribe."""
STORM_BOUND = 30.0
"""After the last of the disconnects: WhatsApp's reconnect (2 s) and a paced re-subscribe."""


class InjectingProxy:
    """Forwards WebSocket frames to the real bridge; the first link gets deep JSON after hello."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.links = 0
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        self.session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_get("/ws", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"ws://127.0.0.1:{self.runner.addresses[0][1]}/ws"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        self.links += 1
        inject = self.links == 1
        downstream = web.WebSocketResponse()
        await downstream.prepare(request)
        assert self.session is not None
        async with self.session.ws_connect(self.upstream) as upstream:

            async def down() -> None:
                nonlocal inject
                async for msg in upstream:
                    if msg.type != aiohttp.WSMsgType.TEXT or downstream.closed:
                        break
                    await downstream.send_str(msg.data)
                    if inject and '"hello"' in msg.data:
                        inject = False
                        await downstream.send_str(DEEP)
                await downstream.close()

            forward = asyncio.create_task(down())
            async for msg in downstream:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                await upstream.send_str(msg.data)
            await upstream.close()
            await forward
        return downstream


@pytest.fixture
async def proxy(sim_bridge: SimBridge) -> AsyncIterator[InjectingProxy]:
    """The injecting proxy in front of the in-process bridge."""
    injecting = InjectingProxy(sim_bridge.url)
    yield injecting
    await injecting.stop()


async def test_deep_json_from_a_hostile_bridge(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    proxy: InjectingProxy,
    freezer: FrozenDateTimeFactory,
    record_recovery: Callable[..., None],
) -> None:
    """Deep JSON right after the hello: link dropped, reconnected, everyone subscribed again."""
    entry = mock_config_entry
    url = await proxy.start()
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_URL: url})
    assert await hass.config_entries.async_setup(entry.entry_id)
    coordinator: WhatsAppCoordinator = entry.runtime_data
    client = coordinator.client
    assert client is not None
    await until(hass, lambda: not client.connected or proxy.links > 1)
    subentries = set(entry.subentries)
    elapsed = await run_until(
        hass, freezer, lambda: proxy.links == 2 and all_subscribed(entry), limit=HOSTILE_BOUND
    )
    assert entry.state is ConfigEntryState.LOADED
    assert set(entry.subentries) == subentries
    assert coordinator.client is client
    assert proxy.links == 2  # one reconnect
    record_recovery("Deep JSON from a hostile bridge", [elapsed], HOSTILE_BOUND)
    assert await hass.config_entries.async_unload(entry.entry_id)  # close() never raises


async def test_whatsapp_drops_every_few_seconds_for_an_hour(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
    record_recovery: Callable[..., None],
) -> None:
    """A disconnect every 10 s for a simulated hour: entities stay available, nothing is lost."""
    entry = init_integration
    coordinator: WhatsAppCoordinator = entry.runtime_data
    await run_until(hass, freezer, lambda: all_subscribed(entry))
    first = (await sim_bridge.contacts())[0]
    last_seen = int((await sim_bridge.command("sim.stats"))["time"]) - 30
    await sim_bridge.command(
        "sim.set_presence", jid=first["jid"], online=False, last_seen=last_seen
    )
    await until(hass, lambda: coordinator.presence[first["jid"]].last_seen is not None)
    before = Snapshot.take(entry)
    reconnects = coordinator.manager.stats().reconnects_total
    entity_id = online_entity(entity_registry, first["jid"])
    unavailable = 0
    recovered_after: float | None = None  # seconds from the last disconnect
    for second in range(3600):
        if second % 10 == 0:
            await sim_bridge.command("sim.disconnect", reconnect_after=2)
        sim_bridge.advance(1)
        freezer.tick(timedelta(seconds=1))
        async_fire_time_changed(hass)
        for _ in range(5):
            await hass.async_block_till_done()
            await asyncio.sleep(0)
        await requests_answered(hass)
        unavailable += hass.states.get(entity_id).state == STATE_UNAVAILABLE  # type: ignore[union-attr]
        if second >= 3590 and recovered_after is None and all_subscribed(entry):
            recovered_after = second + 1 - 3590.0
    elapsed = await run_until(hass, freezer, lambda: all_subscribed(entry), limit=STORM_BOUND)
    if recovered_after is None:
        recovered_after = 10 + elapsed
    assert coordinator.manager.stats().reconnects_total - reconnects == 360
    assert unavailable == 0  # within the grace period all along
    before.check(hass, entry)
    assert coordinator.presence[first["jid"]].last_seen is not None
    assert DOMAIN
    record_recovery(
        "WhatsApp disconnects every 10 s for an hour (from the last one)",
        [recovered_after],
        STORM_BOUND,
        "WhatsApp's own reconnect takes 2 s of it",
    )
