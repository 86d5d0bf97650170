"""Self-healing in Home Assistant: saved state of any shape, a refused token, repairs' lifetime."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend
from custom_components.whatsapp_presence.const import DOMAIN
from custom_components.whatsapp_presence.manager import STATE_VERSION, ContactState

from .sim import TOKEN, SimBridge, run_until, simulator_config, tick, until

NEW_TOKEN = "a-new-token-0123456789-0123456789"


def saved(entry: MockConfigEntry, data: Any) -> dict[str, Any]:
    """What Home Assistant's Store keeps for an entry."""
    return {"version": 1, "minor_version": 1, "key": f"{DOMAIN}.{entry.entry_id}", "data": data}


@pytest.mark.parametrize(
    "data",
    [
        [],
        "nonsense",
        5,
        {"manager": [], "groups": 5, "presence": []},
        {"manager": {"version": STATE_VERSION, "contacts": 5, "recent_calls": "x"}},
        {"manager": {"version": STATE_VERSION, "contacts": [5, "x", [], {"jid": 3}]}},
        {"groups": {"g@g.us": 5, "h@g.us": [5]}, "presence": {"a": 5, "b": {"last_seen": 5}}},
    ],
    ids=["list", "string", "number", "wrong-sections", "contacts-5", "bad-records", "bad-values"],
)
async def test_saved_state_of_the_wrong_shape_is_skipped(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    data: Any,
) -> None:
    """Valid JSON of the wrong shape: one warning, and the entry sets up with what is valid."""
    entry = mock_config_entry
    hass_storage[f"{DOMAIN}.{entry.entry_id}"] = saved(entry, data)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    coordinator = entry.runtime_data
    await until(hass, lambda: coordinator.connected)
    await run_until(hass, freezer, lambda: coordinator.manager.stats().active == 3)
    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("custom_components.whatsapp_presence")
    ]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


async def test_valid_records_survive_next_to_bad_ones(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    sim_bridge: SimBridge,
    hass_storage: dict[str, Any],
) -> None:
    """A bad record costs only itself: a good last seen and a backoff next to it come back.

    The good last seen lies ahead of the simulator's clock: last seen only moves forward, so a
    presence the simulated network sends meanwhile cannot replace it (it did, now and then).
    """
    entry = mock_config_entry
    first, second, third = (await sim_bridge.contacts())[:3]
    hass_storage[f"{DOMAIN}.{entry.entry_id}"] = saved(
        entry,
        {
            "manager": {
                "version": STATE_VERSION,
                "contacts": [
                    {"jid": second["jid"], "fail_count": 2, "next_retry": 4_000_000_000.0},
                    {"jid": third["jid"], "fail_count": "many"},
                    "garbage",
                ],
            },
            "presence": {
                first["jid"]: {"last_seen": "2100-01-01T10:00:00+00:00", "source": "whatsapp"},
                third["jid"]: {"last_seen": ["not", "a", "time"]},
            },
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    coordinator = entry.runtime_data
    seen = coordinator.presence[first["jid"]].last_seen
    assert seen is not None
    assert seen.isoformat() == "2100-01-01T10:00:00+00:00"
    assert coordinator.presence[third["jid"]].last_seen is None
    backoff = coordinator.manager.contact(second["jid"])
    assert backoff is not None
    assert backoff.state is ContactState.BACKOFF
    assert backoff.fail_count == 2


async def test_refused_token_at_setup_starts_reauth_and_a_new_token_ends_it(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """The bridge refuses the stored token: reauth asks for a new one, which fixes the entry."""
    entry = mock_config_entry
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_TOKEN: "wrong"})
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    flow_id = flows[0]["flow_id"]

    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_TOKEN: "short"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOKEN: "token_too_short"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_TOKEN: "still-the-wrong-token-0123456789-0123"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_TOKEN: TOKEN})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_TOKEN] == TOKEN
    assert entry.state is ConfigEntryState.LOADED  # type: ignore[comparison-overlap]


async def test_refused_token_at_runtime_starts_reauth_once(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The bridge comes back with another token: no endless retries, one reauth, one warning."""
    entry = init_integration
    coordinator = entry.runtime_data
    port = int(sim_bridge.url.rsplit(":", 1)[1].split("/", 1)[0])
    await sim_bridge.server.stop()
    await until(hass, lambda: not coordinator.status.bridge_connected)
    replaced = BridgeServer(
        lambda emit: SimulatorBackend(emit, simulator_config()), NEW_TOKEN, port=port
    )
    await replaced.start()
    try:
        await run_until(
            hass,
            freezer,
            lambda: coordinator.client is not None and coordinator.client.auth_refused,
        )
        await tick(hass, freezer, 600, step=30)  # no more attempts, no more warnings
        flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
        refusals = [r for r in caplog.records if "refused the token" in r.getMessage()]
        assert len(refusals) == 1

        result = await hass.config_entries.flow.async_configure(
            flows[0]["flow_id"], {CONF_TOKEN: NEW_TOKEN}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reauth_successful"
        await hass.async_block_till_done()
        assert entry.data[CONF_TOKEN] == NEW_TOKEN
        await until(hass, lambda: entry.runtime_data.connected)
    finally:
        await hass.config_entries.async_unload(entry.entry_id)
        await replaced.stop()


async def test_client_outdated_is_cleared_when_connected_again(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    issue_registry: ir.IssueRegistry,
) -> None:
    """An outdated client repair lasts only until WhatsApp accepts the connection again."""
    entry = init_integration
    coordinator = entry.runtime_data
    issue_id = f"client_outdated_{entry.entry_id}"
    await sim_bridge.command("sim.client_outdated")
    await until(hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None)
    await sim_bridge.command("sim.connect")
    await until(hass, lambda: coordinator.connected)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_no_repair_survives_its_entry(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Deleting the entry deletes every repair it raised."""
    entry = init_integration
    await sim_bridge.command("sim.stream_replaced")
    await sim_bridge.command("sim.ban", expires_in=600)
    await until(
        hass,
        lambda: (
            len([i for (d, i) in issue_registry.issues if d == DOMAIN and entry.entry_id in i]) == 2
        ),
    )
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert [i for (d, i) in issue_registry.issues if d == DOMAIN] == []


async def test_a_hung_remote_bridge_is_dropped_and_called_unresponsive(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A remote bridge that stops answering pings: link dropped, the account says so."""
    entry = init_integration
    coordinator = entry.runtime_data
    server = sim_bridge.server
    dispatch = server._dispatch
    hung: list[str] = []
    never = asyncio.Event()

    async def deaf(command: str, args: dict[str, Any]) -> Any:
        if command == "ping":  # alive on TCP, silent on the protocol, like a deadlocked bridge
            hung.append(command)
            await never.wait()
        return await dispatch(command, args)

    server._dispatch = deaf  # type: ignore[method-assign]
    elapsed = 0
    while coordinator.connection_state != "bridge_unresponsive":
        # Not run_until: it waits for requests in flight, and these pings are never answered.
        assert elapsed < 300, "still not called unresponsive"
        freezer.tick(timedelta(seconds=1))
        async_fire_time_changed(hass)
        await until(hass, lambda: True)
        elapsed += 1
    assert len(hung) == 3
    assert 90 <= elapsed <= 130  # three pings 30 s apart, each given 10 s
    state = hass.states.get("sensor.sam_demo_connection_state")
    assert state is not None
    assert state.state == "bridge_unresponsive"
    server._dispatch = dispatch  # type: ignore[method-assign]
    never.set()
    await run_until(hass, freezer, lambda: coordinator.connection_state == "connected", limit=120)
