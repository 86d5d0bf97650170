"""The child bridge: started from the integration folder, restarted when it dies, stopped cleanly."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
import signal

import aiohttp
import pytest

from custom_components.whatsapp_presence.bridge.client import BridgeClient
from custom_components.whatsapp_presence.launcher import BridgeProcess, BridgeStartError

SIMULATOR = [
    "--backend",
    "simulator",
    "--paired",
    "--presence-churn",
    "0",
    "--disconnect-rate",
    "0",
]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """No Home Assistant here: the launcher is plain asyncio."""


async def no_wait(_seconds: float) -> None:
    """Restart delays are the launcher's policy, not something to wait for in a test."""


@pytest.mark.usefixtures("socket_enabled")
async def test_restarts_a_dead_bridge_on_the_same_port(tmp_path: Path) -> None:
    """Killing the bridge brings up a new process on the same URL, and the client gets back."""
    restarted: asyncio.Queue[str] = asyncio.Queue()
    process = BridgeProcess(
        [*SIMULATOR, "--data-dir", str(tmp_path)], sleep=no_wait, on_restart=restarted.put_nowait
    )
    url = await process.start()
    first_pid = process.pid
    assert first_pid is not None
    links: asyncio.Queue[bool] = asyncio.Queue()
    async with aiohttp.ClientSession() as session:
        client = BridgeClient(
            url,
            process.token,
            session=session,
            on_event=lambda _name, _data: None,
            on_connection_change=links.put_nowait,
            backoff_initial=0.05,
            backoff_max=0.2,
        )
        hello = await client.connect()
        assert hello["status"]["paired"]
        try:
            os.kill(first_pid, signal.SIGKILL)
            assert await asyncio.wait_for(links.get(), 10) is False
            assert await asyncio.wait_for(restarted.get(), 30) == url
            assert process.pid not in (None, first_pid)
            assert process.restarts == 1
            assert await asyncio.wait_for(links.get(), 30) is True
            assert (await client.status())["paired"]  # the session survived in the data folder
        finally:
            await client.close()
            await process.stop()
    assert process.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)


async def test_a_bridge_that_cannot_start_is_reported(tmp_path: Path) -> None:
    """A bridge that exits before listening fails start() with a clear error, leaving nothing."""
    process = BridgeProcess(["--backend", "simulator", "--contacts", "-5"], sleep=no_wait)
    with pytest.raises(BridgeStartError, match="exited before listening"):
        await process.start()
    assert process.pid is None


async def test_promoted_bridge_errors_carry_no_personal_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An error line is shown as a warning with JIDs and numbers masked; chatter stays at debug."""
    stderr = asyncio.StreamReader()
    stderr.feed_data(
        b"2026-11-29 16:15:18,123 ERROR whatsmeow: failed to subscribe "
        b"447700900123@s.whatsapp.net (lid 98765432101234:7@lid, +447700900124)\n"
        b"2026-11-29 16:15:18,124 INFO bridge: 447700900125@s.whatsapp.net online\n"
    )
    stderr.feed_eof()
    with caplog.at_level(logging.DEBUG, logger="custom_components.whatsapp_presence"):
        await BridgeProcess._pump_stderr(stderr)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    expected = (
        "bridge: 2026-11-29 16:15:18,123 ERROR whatsmeow: failed to subscribe "
        "<jid> (lid <jid>, <number>)"
    )
    assert warnings == [expected]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("447700900125@s.whatsapp.net" in line for line in debug)
