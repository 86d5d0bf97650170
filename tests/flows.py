"""Helpers for the config, options and subentry flow tests (their fixtures are in conftest.py).

The flows run against real bridges: the child bridge the flow starts itself (``python -m
bridge``, simulator backend on a manual clock, so pairing only completes when a test says so),
or the in-process bridge server of ``tests/sim.py``. Nothing of the protocol is mocked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
import contextlib
import json
import os
from pathlib import Path
import ssl
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend
from custom_components.whatsapp_presence.config_flow import WhatsAppPresenceConfigFlow

from .bridge.common import call
from .sim import TOKEN, SimBridge, simulator_config

TRANSLATIONS = json.loads(
    (
        Path(__file__).parent.parent
        / "custom_components"
        / "whatsapp_presence"
        / "translations"
        / "en.json"
    ).read_text(encoding="utf-8")
)

FAST_SIMULATOR = [
    "--manual-clock",
    "--pairing-delay",
    "0",
    "--connect-delay",
    "0",
    "--disconnect-rate",
    "0",
    "--presence-churn",
    "0",
]
"""Added to the child simulator's options: pairing completes only by sim.complete_pairing, time
by sim.advance (argparse: the last of a repeated option wins)."""

SIM_ACCOUNT = "12025550100"  # the simulator's default account number
SIM_PUSH_NAME = "Sam Demo"


@contextlib.asynccontextmanager
async def sim_server(
    ssl_context: ssl.SSLContext | None = None, **overrides: Any
) -> AsyncIterator[SimBridge]:
    """Another in-process bridge server (the conftest one is ``sim_bridge``)."""
    config = simulator_config(**overrides)
    server = BridgeServer(
        lambda emit: SimulatorBackend(emit, config),
        TOKEN,
        heartbeat=None,
        ssl_context=ssl_context,
    )
    url = await server.start()
    try:
        yield SimBridge(server, url)
    finally:
        await server.stop()


def flow_handler(hass: HomeAssistant, flow_id: str) -> WhatsAppPresenceConfigFlow:
    """The running config flow object (to reach its bridge, as a user's phone would)."""
    handler = hass.config_entries.flow._progress[flow_id]
    assert isinstance(handler, WhatsAppPresenceConfigFlow)
    return handler


async def sim_command(hass: HomeAssistant, flow_id: str, command: str, **args: Any) -> Any:
    """Send a ``sim.*`` command to the flow's own child bridge (what the phone would do)."""
    client = flow_handler(hass, flow_id)._bridge.client
    assert client is not None
    return await call(client, command, **args)


def child_bridge(hass: HomeAssistant, flow_id: str) -> tuple[int, str]:
    """The flow's child bridge: its process id and session id."""
    bridge = flow_handler(hass, flow_id)._bridge
    assert bridge.process is not None
    assert bridge.process.pid is not None
    assert bridge.session_id is not None
    return bridge.process.pid, bridge.session_id


async def round_trip(hass: HomeAssistant, flow_id: str) -> None:
    """A ping through the flow's client: every event the bridge sent before it has arrived."""
    await sim_command(hass, flow_id, "ping")
    await hass.async_block_till_done()


def current_step(hass: HomeAssistant, flow_id: str) -> dict[str, Any]:
    """The flow's current step result (progress steps change without a call from the test)."""
    step = flow_handler(hass, flow_id).cur_step
    assert step is not None
    return dict(step)


def process_alive(pid: int) -> bool:
    """True while a child process exists (and is not a reaped zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_translated(
    result: Mapping[str, Any], section: str | Mapping[str, Any] = "config"
) -> None:
    """Every step, progress text, error and abort a flow shows has English text."""
    strings = TRANSLATIONS[section] if isinstance(section, str) else section
    kind = result["type"]
    if kind in (FlowResultType.FORM, FlowResultType.MENU):
        step = strings["step"][result["step_id"]]
        assert "title" in step
        for error in (result.get("errors") or {}).values():
            assert error in strings["error"], error
        if kind is FlowResultType.MENU:
            for option in result["menu_options"]:
                assert option in step["menu_options"], option
        schema = result.get("data_schema")
        if kind is FlowResultType.FORM and schema is not None:
            for key in schema.schema:
                name = str(key)
                in_sections = any(
                    name in sec.get("data", {}) for sec in step.get("sections", {}).values()
                )
                assert (
                    name in step.get("data", {})
                    or name in step.get("sections", {})
                    or (in_sections)
                ), name
                if name in step.get("data", {}):
                    assert name in step["data_description"], name
    elif kind is FlowResultType.SHOW_PROGRESS:
        assert result["progress_action"] in strings["progress"]
    elif kind is FlowResultType.ABORT and result.get("translation_domain") in (
        None,
        "whatsapp_presence",
    ):
        assert result["reason"] in strings["abort"], result["reason"]
