"""The child bridge: started from the integration folder, restarted when it dies, stopped cleanly."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
import signal
import socket
import sys

import aiohttp
import pytest

from custom_components.whatsapp_presence.bridge.client import BridgeClient
from custom_components.whatsapp_presence.launcher import BridgeProcess, BridgeStartError, LineReader

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
            on_event=lambda _event: None,
            on_connection_change=links.put_nowait,
            backoff_initial=0.05,
            backoff_max=0.2,
        )
        hello = await client.connect()
        assert hello.status.paired
        try:
            os.kill(first_pid, signal.SIGKILL)
            assert await asyncio.wait_for(links.get(), 10) is False
            assert await asyncio.wait_for(restarted.get(), 30) == url
            assert process.pid not in (None, first_pid)
            assert process.restarts == 1
            assert await asyncio.wait_for(links.get(), 30) is True
            assert (await client.status()).paired  # the session survived in the data folder
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
        await BridgeProcess._pump_stderr(LineReader(stderr))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    expected = (
        "bridge: 2026-11-29 16:15:18,123 ERROR whatsmeow: failed to subscribe "
        "<jid> (lid <jid>, <number>)"
    )
    assert warnings == [expected]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("447700900125@s.whatsapp.net" in line for line in debug)


def wrapper(tmp_path: Path, *, before: str = "") -> Path:
    """A python that runs ``before`` (shell) first, and fails while ``tmp_path/broken`` exists.

    Stands for what makes a real restart fail: a transient import error, a full disk.
    """
    script = tmp_path / "python"
    script.write_text(
        f"#!/bin/sh\n{before}\n"
        f'if [ -e "{tmp_path / "broken"}" ]; then echo "broken install" >&2; exit 3; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    script.chmod(0o755)
    return script


@pytest.mark.usefixtures("socket_enabled")
async def test_restarts_go_on_forever_with_doubling_delays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Failed restarts never end self-healing: 1 s doubling to 5 min, one warning per outage."""
    delays: list[float] = []
    broken = tmp_path / "broken"
    restarted: asyncio.Queue[str] = asyncio.Queue()
    downs: list[str] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 12:
            broken.unlink()  # repaired after a dozen failed attempts

    process = BridgeProcess(
        [*SIMULATOR, "--data-dir", str(tmp_path / "data")],
        python=str(wrapper(tmp_path)),
        sleep=sleep,
        on_restart=restarted.put_nowait,
        on_down=downs.append,
    )
    await process.start()
    first_pid = process.pid
    assert first_pid is not None
    broken.touch()
    caplog.clear()
    os.kill(first_pid, signal.SIGKILL)
    await asyncio.wait_for(restarted.get(), 60)
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert process.pid not in (None, first_pid)
    assert process.restarts == 1
    assert process.down_since is None
    assert downs == ["it exited with code -9"]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "The WhatsApp bridge is down (it exited with code -9); restarting it"
    ]
    await process.stop()
    assert process.pid is None


@pytest.mark.usefixtures("socket_enabled")
async def test_a_taken_port_gets_a_fresh_one(tmp_path: Path) -> None:
    """The old port taken when the bridge restarts: the next attempt lets the OS choose."""
    restarted: asyncio.Queue[str] = asyncio.Queue()
    taken: list[socket.socket] = []
    process: BridgeProcess

    async def sleep(_seconds: float) -> None:
        if not taken:  # first retry: someone else took the port meanwhile
            assert process.url is not None
            port = int(process.url.rsplit(":", 1)[1].split("/", 1)[0])
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()
            taken.append(sock)

    process = BridgeProcess(
        [*SIMULATOR, "--data-dir", str(tmp_path)], sleep=sleep, on_restart=restarted.put_nowait
    )
    old_url = await process.start()
    try:
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        new_url = await asyncio.wait_for(restarted.get(), 60)
        assert new_url != old_url
        assert process.restarts == 1
    finally:
        await process.stop()
        for sock in taken:
            sock.close()


async def test_stop_never_raises_while_restarts_fail(tmp_path: Path) -> None:
    """Stopping during an outage (restarts failing) ends the watcher without an error."""
    (tmp_path / "broken").touch()
    attempts: asyncio.Queue[float] = asyncio.Queue()

    async def sleep(seconds: float) -> None:
        attempts.put_nowait(seconds)

    process = BridgeProcess(
        ["--backend", "simulator", "--data-dir", str(tmp_path)],
        python=str(wrapper(tmp_path)),
        sleep=sleep,
    )
    with pytest.raises(BridgeStartError):
        await process.start()
    # A watcher over a bridge that never came up: started by hand, as after a first death.
    process._watcher = asyncio.get_running_loop().create_task(process._watch())
    await asyncio.wait_for(attempts.get(), 30)
    await asyncio.wait_for(attempts.get(), 30)
    await process.stop()
    assert process.pid is None


async def test_log_lines_of_any_length_are_cut_not_fatal() -> None:
    """A 1 MB line does not end the pump: it is cut, and the next lines still come."""
    stream = asyncio.StreamReader(limit=64 * 1024)
    stream.feed_data(b"short\n" + b"x" * 1_000_000 + b"\nafter\n" + b"y" * 10 + b"\nend")
    stream.feed_eof()
    reader = LineReader(stream, limit=4096)
    lines = []
    while (line := await reader.readline()) is not None:
        lines.append(line)
    assert lines == [b"short", b"x" * 4096 + b" [cut]", b"after", b"y" * 10, b"end"]


@pytest.mark.parametrize(
    ("extra", "contacts", "time_scale"),
    [("", 30, 10.0), ("--contacts 300 --time-scale 60", 300, 60.0)],
)
def test_simulator_args_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: str, contacts: int, time_scale: float
) -> None:
    """``WHATSAPP_PRESENCE_SIMULATOR_ARGS`` sizes and speeds the demo's network (the bridge parses it)."""
    from custom_components.whatsapp_presence.bridge.__main__ import build_parser, simulator_config
    from custom_components.whatsapp_presence.launcher import SIMULATOR_ARGS_ENV, bridge_args

    monkeypatch.setenv(SIMULATOR_ARGS_ENV, extra)
    config = simulator_config(build_parser().parse_args(bridge_args("simulator", tmp_path)))
    assert config.contacts == contacts
    assert config.time_scale == time_scale
