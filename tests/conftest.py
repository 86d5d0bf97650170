"""Shared fixtures.

pytest-homeassistant-custom-component ships its own ``custom_components``
package and puts its test config folder first on ``sys.path``; importing this
repository's package here, before any test runs, binds ours first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from unittest.mock import AsyncMock, PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

import custom_components.whatsapp_presence  # noqa: F401  (binds our package first)
from custom_components.whatsapp_presence import launcher as launcher_module
from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend, SimulatorConfig
from custom_components.whatsapp_presence.const import (
    CONF_ACCOUNT_JID,
    CONF_MODE,
    CONF_PUSH_NAME,
    DOMAIN,
    MODE_REMOTE,
)

from .ci import pytest_runtest_makereport  # noqa: F401  (a hook: CI fails on skipped e2e tests)
from .common import contact_subentry, setup_integration
from .flows import FAST_SIMULATOR
from .sim import ACCOUNT_JID, ACCOUNT_PHONE, TOKEN, SimBridge, simulator_config


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


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots in Home Assistant's format, under ``tests/snapshots/`` (the plugin's own
    fixture of this name loses to syrupy's, so it is restated here)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Entities disabled by default are enabled, so snapshots show their state too."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


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
    await setup_integration(hass, mock_config_entry)
    return mock_config_entry


@pytest.fixture
def mock_setup_entry() -> Iterator[AsyncMock]:
    """Entries created by the flows are not set up for real here (the coordinator has its tests)."""
    with (
        patch("custom_components.whatsapp_presence.async_setup_entry", return_value=True) as setup,
        patch("custom_components.whatsapp_presence.async_unload_entry", return_value=True),
    ):
        yield setup


@pytest.fixture
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Session folders go to a temporary config folder, not the test package's."""
    hass.config.config_dir = str(tmp_path)
    return tmp_path


@pytest.fixture
def fast_simulator(config_dir: Path, socket_enabled: None) -> Iterator[None]:
    """The flow's child simulator bridge runs on a manual clock (and may use loopback)."""
    with patch.object(
        launcher_module, "SIMULATOR_ARGS", (*launcher_module.SIMULATOR_ARGS, *FAST_SIMULATOR)
    ):
        yield
