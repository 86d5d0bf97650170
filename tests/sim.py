"""A real bridge server with the simulator backend, in-process on loopback, for integration tests.

The simulator runs on a manual clock so a test decides when simulated things happen; Home
Assistant's own time is driven with the freezer. Nothing here is a mock: the integration talks
to the real server through the real client over a real WebSocket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.whatsapp_presence.bridge.clock import ManualClock
from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend, SimulatorConfig
from custom_components.whatsapp_presence.const import DOMAIN

TOKEN = "integration-test-token-0123456789abcdef"
START = 1_767_225_600.0
"""2026-01-01T00:00:00Z: where snapshot tests start both clocks, so their figures repeat."""
START_TEXT = "2026-01-01T00:00:00+00:00"
ACCOUNT_PHONE = "12025550100"
ACCOUNT_JID = f"{ACCOUNT_PHONE}@s.whatsapp.net"


def simulator_config(**overrides: object) -> SimulatorConfig:
    """A scripted network: paired, no random churn or faults, a manual clock."""
    settings: dict[str, object] = {
        "seed": 7,
        "contacts": 12,
        "groups": 2,
        "paired": True,
        "manual_clock": True,
        "start_time": time.time(),
        "presence_churn": 0.0,
        "disconnect_rate": 0.0,
        "connect_delay": 0.0,
        "presence_latency": 0.0,
        "hidden_last_seen_fraction": 0.0,
        "unresponsive_fraction": 0.0,
        "lid_fraction": 0.0,
        "sub_ceiling": 0,
        "query_limit": 0,
        "account_phone": ACCOUNT_PHONE,
    }
    settings.update(overrides)
    return SimulatorConfig(**settings)  # type: ignore[arg-type]


@dataclass
class SimBridge:
    """The server, its simulator backend and its URL."""

    server: BridgeServer
    url: str

    @property
    def backend(self) -> SimulatorBackend:
        """The simulator behind the server."""
        backend = self.server.backend
        assert isinstance(backend, SimulatorBackend)
        return backend

    async def command(self, name: str, **args: Any) -> Any:
        """Run a ``sim.*`` control command directly on the backend."""
        return await self.backend.command(name, args)

    async def contacts(self) -> list[dict[str, Any]]:
        """The simulator's own view of its contacts (jid, name, behaviour), in order."""
        contacts: list[dict[str, Any]] = await self.command("sim.contacts")
        return contacts

    def advance(self, seconds: float) -> None:
        """Move the simulated network's manual clock (its timers run)."""
        clock = self.backend.clock
        assert isinstance(clock, ManualClock)
        clock.advance(seconds)


async def until(hass: HomeAssistant, condition: Callable[[], bool], *, rounds: int = 2000) -> None:
    """Wait for real I/O (WebSocket frames on loopback) to have its effect.

    Only yields to the loop, a bounded number of times: no time passes (the freezer may have
    stopped the loop's clock), so this waits for I/O and callbacks, never for timers.
    """
    for _ in range(rounds):
        await hass.async_block_till_done()
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def requests_answered(hass: HomeAssistant, *, rounds: int = 20000) -> None:
    """Let every request the integration has in flight to the bridge get its answer.

    Time must not jump while a request is on the wire: a loaded machine answering slower than
    usual would otherwise see the client's request time-out fire, which no real clock would do.
    """
    for _ in range(rounds):
        clients = [
            entry.runtime_data.client
            for entry in hass.config_entries.async_loaded_entries(DOMAIN)
            if entry.runtime_data.client is not None
        ]
        if not any(client._pending for client in clients):
            return
        await asyncio.sleep(0)
    raise AssertionError("a request to the bridge got no answer")


async def run_until(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    condition: Callable[[], bool],
    *,
    step: float = 0.2,
    limit: float = 600.0,
) -> float:
    """Let Home Assistant's time run, ``step`` by ``step``, until ``condition`` holds.

    Between steps the loop gets a few turns so WebSocket round trips complete. Returns the
    simulated seconds it took; fails once ``limit`` simulated seconds have passed.
    """
    elapsed = 0.0
    while True:
        for _ in range(50):
            await hass.async_block_till_done()
            if condition():
                return elapsed
            await asyncio.sleep(0)
        await requests_answered(hass)
        if condition():
            return elapsed
        if elapsed >= limit:
            raise AssertionError(f"condition not reached within {limit} s")
        freezer.tick(timedelta(seconds=step))
        async_fire_time_changed(hass)
        elapsed += step


async def tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float, *, step: float = 1.0
) -> None:
    """Move Home Assistant's time forward, firing every timer on the way.

    After each step the loop gets a few turns, so WebSocket traffic the timers caused (the
    client's keep-alive pings, say) is answered before the next step fires their time-outs.
    """
    remaining = seconds
    while remaining > 0:
        delta = min(step, remaining)
        freezer.tick(timedelta(seconds=delta))
        async_fire_time_changed(hass)
        for _ in range(20):
            await hass.async_block_till_done()
            await asyncio.sleep(0)
        await requests_answered(hass)
        remaining -= delta
