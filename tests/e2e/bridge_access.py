"""Reach the simulator bridge that a real hass runs as its child, to script the network.

The bridge's token lives only in hass's memory and the child's environment, and its port is
chosen by the OS; a test running as the same user reads both from /proc (Linux only).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp

from custom_components.whatsapp_presence.bridge.client import BridgeClient
from custom_components.whatsapp_presence.bridge.protocol import TOKEN_ENV, WS_PATH


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = fd.readlink().as_posix()
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def bridge_link(pid: int) -> tuple[str, str]:
    """The WebSocket URL and token of the bridge process ``pid``."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    token = next(
        item.split(b"=", 1)[1].decode()
        for item in environ
        if item.startswith(f"{TOKEN_ENV}=".encode())
    )
    inodes = _socket_inodes(pid)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and inode in inodes:  # LISTEN
            port = int(local.split(":")[1], 16)
            return f"ws://127.0.0.1:{port}{WS_PATH}", token
    raise AssertionError(f"bridge {pid} listens on no TCP port")


async def _command(url: str, token: str, name: str, args: dict[str, Any]) -> Any:
    async with aiohttp.ClientSession() as session:
        client = BridgeClient(
            url, token, session=session, on_event=lambda _event: None, heartbeat=None
        )
        await client.connect()
        try:
            return await client.request(name, **args)
        finally:
            await client.close()


def sim_command(pid: int, name: str, **args: Any) -> Any:
    """Send one ``sim.*`` (or any) command to the bridge ``pid`` and return its answer."""
    url, token = bridge_link(pid)
    # A loop of its own, never installed as the thread's: pytest's loop stays as it was.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_command(url, token, name, args))
    finally:
        loop.close()
