"""``python -m bridge``: options, the listening line, signals, local-mode behaviour."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
import contextlib
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from custom_components.whatsapp_presence.bridge import __main__ as cli
from custom_components.whatsapp_presence.bridge.client import BridgeClient
from custom_components.whatsapp_presence.bridge.protocol import Hello
from tests.tls_certs import make_self_signed

from .common import TOKEN, EventLog, call

PACKAGE_DIR = Path(cli.__file__).resolve().parents[1]  # custom_components/whatsapp_presence


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "WHATSAPP_BRIDGE_TOKEN"}
    env.update(extra)
    return env


def test_help_documents_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "--help"],
        cwd=PACKAGE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    text = " ".join(result.stdout.split())
    parser = cli.build_parser()
    flags = [
        action.option_strings[-1]
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction)
    ]
    assert len(flags) > 40
    for action in parser._actions:
        if action.option_strings:
            assert action.help, action.option_strings
    for flag in flags:
        assert flag in text, flag
    assert "WHATSAPP_BRIDGE_TOKEN" in text
    assert "--time-scale" in text
    assert "--sub-ceiling" in text


class Bridge:
    """A bridge subprocess and the line it printed."""

    def __init__(self, process: asyncio.subprocess.Process, line: dict[str, Any]) -> None:
        self.process = process
        self.line = line


@contextlib.asynccontextmanager
async def _bridge(
    *args: str, env: dict[str, str] | None = None, stdin: int | None = None
) -> AsyncIterator[Bridge]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "--backend",
        "simulator",
        "--port",
        "0",
        *args,
        cwd=PACKAGE_DIR,
        env=env if env is not None else _env(WHATSAPP_BRIDGE_TOKEN=TOKEN),
        stdin=stdin if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):  # safety net for a hung child, not a delay
            raw = await process.stdout.readline()
        yield Bridge(process, json.loads(raw))
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()


async def _stop(bridge: Bridge) -> tuple[int, bytes, bytes]:
    bridge.process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        out, err = await bridge.process.communicate()
    assert bridge.process.returncode is not None
    return bridge.process.returncode, out, err


SCRIPTED = ("--manual-clock", "--presence-churn", "0", "--disconnect-rate", "0")


async def test_listening_line_then_serves_then_exits_cleanly_on_sigterm(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with _bridge(
        *SCRIPTED, "--paired", "--connect-delay", "0", "--data-dir", str(tmp_path)
    ) as bridge:
        line = bridge.line
        assert line["event"] == "listening"
        assert line["url"] == f"ws://127.0.0.1:{line['port']}/ws"
        assert line["port"] > 0
        assert line["pid"] == bridge.process.pid
        assert (line["backend"], line["protocol"]) == ("simulator", 1)
        events = EventLog()
        client = BridgeClient(line["url"], TOKEN, session=session, on_event=events)
        hello = await client.connect()
        assert hello.status.connected is True
        assert len(await client.contacts()) == 30
        await call(client, "sim.disconnect")
        await call(client, "sim.advance", seconds=2)
        assert [name for name, _ in events.items] == ["disconnected", "connected"]
        await client.close()
        code, out, err = await _stop(bridge)
    assert code == 0
    assert out == b""  # the listening line was the only stdout output
    assert b"Stopping" in err
    assert TOKEN.encode() not in err


async def test_token_from_file_and_the_session_survives_a_restart(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token-0123456789abcdefghijklmn\n")
    args = (*SCRIPTED, "--token-file", str(token_file), "--data-dir", str(tmp_path / "data"))
    async with _bridge(*args, env=_env()) as bridge:
        client = BridgeClient(
            bridge.line["url"],
            "file-token-0123456789abcdefghijklmn",
            session=session,
            on_event=EventLog(),
        )
        assert (await client.connect()).status.paired is False
        code = await client.pair_phone("+44 7700 900123")
        assert len(code) == 9
        await call(client, "sim.complete_pairing")
        await client.close()
        assert (await _stop(bridge))[0] == 0
    async with _bridge(*args, env=_env()) as bridge:
        client = BridgeClient(
            bridge.line["url"],
            "file-token-0123456789abcdefghijklmn",
            session=session,
            on_event=EventLog(),
        )
        status = (await client.connect()).status
        assert status.paired is True
        assert status.account is not None
        assert status.account.phone == "447700900123"
        await client.close()
        assert (await _stop(bridge))[0] == 0


async def test_exit_on_stdin_eof() -> None:
    async with _bridge(*SCRIPTED, "--exit-on-stdin-eof", stdin=asyncio.subprocess.PIPE) as bridge:
        assert bridge.process.stdin is not None
        bridge.process.stdin.close()
        async with asyncio.timeout(60):
            await bridge.process.wait()
        assert bridge.process.returncode == 0


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "no token"),
        ((), {"WHATSAPP_BRIDGE_TOKEN": "t" * 31}, "the token has 31 characters; use at least 32"),
        (("--token-file", "/nonexistent/token"), {}, "cannot read the token file"),
        (("--contacts", "-1"), {"WHATSAPP_BRIDGE_TOKEN": TOKEN}, "contacts"),
        (("--port", "70000"), {"WHATSAPP_BRIDGE_TOKEN": TOKEN}, "--port"),
        (("--backend", "neonize"), {"WHATSAPP_BRIDGE_TOKEN": TOKEN}, "--data-dir is required"),
        (("--tls-cert", "/x.pem"), {"WHATSAPP_BRIDGE_TOKEN": TOKEN}, "go together"),
        (
            ("--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"),
            {"WHATSAPP_BRIDGE_TOKEN": TOKEN},
            "cannot read the TLS certificate or key",
        ),
    ],
)
def test_bad_invocations_exit_with_usage_errors(
    args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "--backend", "simulator", *args],
        cwd=PACKAGE_DIR,
        env=_env(**env),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr


async def test_serves_wss_given_a_certificate_and_key(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """--tls-cert and --tls-key: the listening line says wss://, a verifying client connects."""
    cert = make_self_signed(tmp_path)
    async with _bridge(
        *SCRIPTED, "--tls-cert", str(cert.cert_file), "--tls-key", str(cert.key_file)
    ) as bridge:
        assert bridge.line["url"] == f"wss://127.0.0.1:{bridge.line['port']}/ws"
        client = BridgeClient(
            bridge.line["url"],
            TOKEN,
            session=session,
            on_event=EventLog(),
            ssl_context=cert.client_context(),
        )
        assert isinstance(await client.connect(), Hello)
        await client.close()
        code, _, _ = await _stop(bridge)
    assert code == 0
