"""Shared fixtures.

pytest-homeassistant-custom-component ships its own ``custom_components``
package and puts its test config folder first on ``sys.path``; importing this
repository's package here, before any test runs, binds ours first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import time

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.whatsapp_presence  # noqa: F401  (binds our package first)
from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend, SimulatorConfig
from custom_components.whatsapp_presence.const import (
    CONF_ACCOUNT_JID,
    CONF_JID,
    CONF_MODE,
    CONF_PHONE,
    CONF_PRIORITY,
    CONF_PUSH_NAME,
    DOMAIN,
    MODE_REMOTE,
    SUBENTRY_CONTACT,
    SUBENTRY_GROUP,
)

from .ci import pytest_runtest_makereport  # noqa: F401  (a hook: CI fails on skipped e2e tests)
from .sim import TOKEN, SimBridge, until

ACCOUNT_PHONE = "12025550100"
ACCOUNT_JID = f"{ACCOUNT_PHONE}@s.whatsapp.net"


@pytest.fixture(scope="session")
def neonize_loaded() -> None:
    """Import neonize once per session, before any test's cleanup check starts.

    Importing neonize loads its Go library and starts a daemon log-worker
    thread that lives as long as the process. Home Assistant's test plugin
    fails a test that leaves a new thread behind, so the import happens in
    this session-scoped fixture, whose thread then predates every test.
    """
    import neonize.aioze.client  # noqa: F401


@pytest.fixture
def quiet_failed_handshakes() -> Iterator[None]:
    """A refused TLS handshake is reported to the loop only in debug mode (tests run in it).

    The bridge runs without debug, where asyncio drops it silently; so do these tests.
    """
    loop = asyncio.get_event_loop()
    debug = loop.get_debug()
    loop.set_debug(False)
    yield
    loop.set_debug(debug)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom integrations in every test."""


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


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Override in a test module to change the simulated network."""
    return simulator_config()


@pytest.fixture
async def sim_bridge(sim_config: SimulatorConfig, socket_enabled: None) -> AsyncIterator[SimBridge]:
    """The real bridge server with the simulator backend, on loopback (sockets allowed)."""
    server = BridgeServer(lambda emit: SimulatorBackend(emit, sim_config), TOKEN, heartbeat=None)
    url = await server.start()
    yield SimBridge(server, url)
    await server.stop()


def contact_subentry(jid: str, title: str, priority: int = 2) -> ConfigSubentryData:
    """A tracked contact as the subentry flow stores it."""
    return ConfigSubentryData(
        data={CONF_JID: jid, CONF_PHONE: jid.split("@", maxsplit=1)[0], CONF_PRIORITY: priority},
        subentry_type=SUBENTRY_CONTACT,
        title=title,
        unique_id=jid,
    )


def group_subentry(jid: str, title: str, priority: int = 3) -> ConfigSubentryData:
    """A tracked group as the subentry flow stores it."""
    return ConfigSubentryData(
        data={CONF_JID: jid, "name": title, CONF_PRIORITY: priority},
        subentry_type=SUBENTRY_GROUP,
        title=title,
        unique_id=jid,
    )


@pytest.fixture
def tracked_count() -> int:
    """How many of the simulated contacts the entry tracks."""
    return 3


@pytest.fixture
async def mock_config_entry(sim_bridge: SimBridge, tracked_count: int) -> MockConfigEntry:
    """An entry linked to the simulated account through a remote bridge, tracking contacts."""
    contacts = (await sim_bridge.contacts())[:tracked_count]
    return MockConfigEntry(
        domain=DOMAIN,
        title="Sam Demo",
        unique_id=ACCOUNT_PHONE,
        data={
            CONF_MODE: MODE_REMOTE,
            CONF_URL: sim_bridge.url,
            CONF_TOKEN: TOKEN,
            CONF_ACCOUNT_JID: ACCOUNT_JID,
            CONF_PUSH_NAME: "Sam Demo",
        },
        options={},
        subentries_data=[contact_subentry(c["jid"], c["name"]) for c in contacts],
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> MockConfigEntry:
    """The entry set up against the simulator, connected.

    Time is frozen before set-up: freezing it later makes the loop's clock jump, which fires
    every pending timer at once (a request in flight would time out).
    """
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await until(hass, lambda: mock_config_entry.runtime_data.connected)
    return mock_config_entry
