"""The bridge connection the coordinator and the pairing flow share: child, client, restarts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
import signal

from homeassistant.core import HomeAssistant
import pytest

from custom_components.whatsapp_presence.bridge.protocol import BridgeEvent
from custom_components.whatsapp_presence.connection import BridgeConnection

SIMULATOR = [
    "--backend",
    "simulator",
    "--paired",
    "--presence-churn",
    "0",
    "--disconnect-rate",
    "0",
]


@pytest.mark.usefixtures("socket_enabled")
async def test_a_restarted_child_gets_its_client_back(hass: HomeAssistant, tmp_path: Path) -> None:
    """The child dies: the owner hears it restarted, the client is sent to its URL and the
    link comes back; closing stops both and leaves nothing running."""
    restarted: asyncio.Queue[str] = asyncio.Queue()
    links: asyncio.Queue[bool] = asyncio.Queue()
    events: list[BridgeEvent] = []
    bridge = BridgeConnection(
        hass,
        on_event=events.append,
        on_connection_change=links.put_nowait,
        on_restart=restarted.put_nowait,
    )
    url, token = await bridge.async_start_child([*SIMULATOR, "--data-dir", str(tmp_path)])
    hello = await bridge.async_connect(url, token)
    assert hello.status.paired
    process, client = bridge.process, bridge.client
    assert process is not None
    assert client is not None
    first_pid = process.pid
    assert first_pid is not None
    try:
        os.kill(first_pid, signal.SIGKILL)
        # Safety nets for a broken test, not delays: each wait ends on the event itself.
        assert await asyncio.wait_for(links.get(), 10) is False
        new_url = await asyncio.wait_for(restarted.get(), 30)
        assert client.url == new_url
        assert await asyncio.wait_for(links.get(), 30) is True
        assert (await client.status()).paired
    finally:
        await bridge.async_close()
    assert bridge.client is None
    assert bridge.process is None
    assert process.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)


@pytest.mark.usefixtures("socket_enabled")
async def test_starting_again_replaces_the_child_and_the_client(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """A second start stops the first child, a second connect closes the first client:
    neither is left running behind the ones that replace them."""
    links: list[bool] = []
    bridge = BridgeConnection(hass, on_event=lambda event: None, on_connection_change=links.append)
    args = [*SIMULATOR, "--data-dir", str(tmp_path)]
    try:
        url, token = await bridge.async_start_child(args)
        await bridge.async_connect(url, token)
        first_process, first_client = bridge.process, bridge.client
        assert first_process is not None
        assert first_client is not None
        first_pid = first_process.pid
        assert first_pid is not None
        url, token = await bridge.async_start_child(args)
        assert bridge.process is not first_process
        assert first_process.pid is None
        with pytest.raises(ProcessLookupError):
            os.kill(first_pid, 0)
        await bridge.async_connect(url, token)
        assert bridge.client is not first_client
        assert bridge.client is not None
        assert bridge.client.connected
        assert not first_client.connected
        assert (await bridge.client.status()).paired
    finally:
        await bridge.async_close()
