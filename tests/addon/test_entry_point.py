"""The image's entry point, run for real from a copy of the add-on laid out as its Dockerfile does.

``run.sh`` starts the real bridge (simulator, or neonize behind a dead loopback proxy), the fake
Supervisor records what it announces, and the integration's own client connects and pairs with
the announced host, port and token. Only the Supervisor is played (tests/addon/bin/bashio).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
import contextlib
import os
from pathlib import Path
import pwd
import shutil
import signal
import socket
import stat
import sys
import tempfile
from typing import Any

import aiohttp
import pytest

from custom_components.whatsapp_presence.bridge.client import BridgeClient
from custom_components.whatsapp_presence.bridge.protocol import BridgeAuthError
from custom_components.whatsapp_presence.discovery import (
    DISCOVERY_SERVICE,
    DiscoveredBridge,
    bridge_from_discovery,
)
from tests.bridge.common import call

from .runner import SIMULATOR, AddonProcess, image_tree

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
async def addons(tmp_path: Path) -> AsyncIterator[Callable[..., AddonProcess]]:
    """Make add-on processes on one image tree and one /data; none outlives the test."""
    root = image_tree(tmp_path / "image")
    made: list[AddonProcess] = []

    def make(**kwargs: Any) -> AddonProcess:
        kwargs.setdefault("data", tmp_path / "data")
        process = AddonProcess(root, **kwargs)
        made.append(process)
        return process

    yield make
    for process in made:
        await process.kill()


@contextlib.asynccontextmanager
async def connected(bridge: DiscoveredBridge, events: list[tuple[str, dict[str, Any]]]):
    """The integration's client on the announced URL and token, and the hello it got."""
    async with aiohttp.ClientSession() as session:
        client = BridgeClient(
            bridge.url,
            bridge.token,
            session=session,
            on_event=lambda event: events.append((event.name, event.to_payload())),
            heartbeat=None,
        )
        try:
            yield client, await client.connect()
        finally:
            await client.close()


def announced(addon: AddonProcess) -> DiscoveredBridge:
    """The one discovery message the add-on sent, as the integration reads it."""
    messages = addon.discoveries()
    assert len(messages) == 1, messages
    assert messages[0]["service"] == DISCOVERY_SERVICE
    assert set(messages[0]["config"]) == {"host", "port", "token"}
    return bridge_from_discovery(messages[0]["config"])


def mode(path: Path) -> int:
    """Permission bits of a file or folder."""
    return stat.S_IMODE(path.stat().st_mode)


def port_closed(port: int) -> bool:
    """Nothing listens on the loopback port any more."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def test_add_on_announces_itself_and_the_integration_pairs(
    addons: Callable[..., AddonProcess], tmp_path: Path
) -> None:
    """First start: token made and kept private, discovery sent, pairing through the client."""
    addon = addons(options={"log_level": "debug", "device_name": "Home Assistant"})
    await addon.start(*SIMULATOR)

    bridge = announced(addon)
    assert (bridge.host, bridge.port) == ("127.0.0.1", addon.port)
    token_file = tmp_path / "data" / "token"
    assert token_file.read_text(encoding="utf-8").strip() == bridge.token
    assert len(bridge.token) >= 40
    assert mode(token_file) == 0o600
    assert mode(tmp_path / "data" / "session") == 0o700
    assert " DEBUG " in addon.text()  # the log level option reaches the bridge
    # ... but not bashio, which logs the Supervisor traffic (the token) at debug.
    assert bashio_log_level(addon) == "info"

    events: list[tuple[str, dict[str, Any]]] = []
    async with connected(bridge, events) as (client, hello):
        assert hello.backend == "simulator"
        assert not hello.status.paired
        await client.pair_qr()
        assert [name for name, _ in events] == ["qr"]
        account = await call(client, "sim.complete_pairing")
        paired = [data for name, data in events if name == "paired"]
        assert [data["jid"] for data in paired] == [account["jid"]]
        status = await client.status()
        assert status.paired
        assert status.account is not None
        assert status.account.jid == account["jid"]

    assert await addon.stop() == 0
    assert port_closed(addon.port)
    assert bridge.token not in addon.text()

    # Restart: same token, and the session in /data survived.
    again = addons()
    await again.start(*SIMULATOR)
    bridge_again = announced(again)
    assert bridge_again.token == bridge.token
    assert bridge_again.port == again.port
    async with connected(bridge_again, []) as (_client, hello):
        assert hello.status.paired
        assert hello.status.account is not None
        assert hello.status.account.jid == account["jid"]
    assert await again.stop() == 0


async def test_configured_token_is_the_one_announced(
    addons: Callable[..., AddonProcess], tmp_path: Path
) -> None:
    """A token set in the options replaces the generated one; others are refused."""
    first = addons()
    await first.start(*SIMULATOR)
    generated = announced(first).token
    assert await first.stop() == 0

    addon = addons(
        options={
            "log_level": "info",
            "device_name": "HA",
            "token": "chosen-token-0123456789abcdefghijkl",
        }
    )
    await addon.start(*SIMULATOR)
    bridge = announced(addon)
    assert bridge.token == "chosen-token-0123456789abcdefghijkl" != generated
    token_file = tmp_path / "data" / "token"
    assert token_file.read_text(encoding="utf-8").strip() == "chosen-token-0123456789abcdefghijkl"
    assert mode(token_file) == 0o600
    async with connected(bridge, []) as (client, _hello):
        assert client.connected
    wrong = DiscoveredBridge(bridge.host, bridge.port, generated, bridge.name)
    with pytest.raises(BridgeAuthError):
        async with connected(wrong, []):
            pass
    assert "chosen-token-0123456789abcdefghijkl" not in addon.text()
    assert await addon.stop() == 0


async def test_plain_container_without_supervisor(
    addons: Callable[..., AddonProcess], tmp_path: Path
) -> None:
    """Home Assistant Container: the token from the environment, no discovery, same bridge."""
    addon = addons(
        supervisor=False, env={"WHATSAPP_BRIDGE_TOKEN": "compose-token-0123456789abcdefghijkl"}
    )
    await addon.start(*SIMULATOR)
    assert addon.discoveries() == []
    assert "Listening on port" in addon.text()
    assert (tmp_path / "data" / "token").read_text(
        encoding="utf-8"
    ).strip() == "compose-token-0123456789abcdefghijkl"
    bridge = DiscoveredBridge(
        "127.0.0.1", addon.port, "compose-token-0123456789abcdefghijkl", "container"
    )
    async with connected(bridge, []) as (_client, hello):
        assert hello.protocol == 1
    assert "compose-token-0123456789abcdefghijkl" not in addon.text()
    assert await addon.stop() == 0


async def test_a_bridge_that_cannot_start_fails_the_add_on(
    addons: Callable[..., AddonProcess], tmp_path: Path
) -> None:
    """No bridge package: run.sh says so and exits non-zero; nothing is announced."""
    shutil.rmtree(tmp_path / "image" / "opt" / "app" / "bridge")
    addon = addons()
    with pytest.raises(AssertionError, match="ended before announcing"):
        await addon.start(*SIMULATOR)
    assert addon.process is not None
    assert addon.process.returncode not in (None, 0)
    assert "The bridge did not start" in addon.text()
    assert addon.discoveries() == []


RESTARTING_PYTHON = """\
import os, pathlib, signal, subprocess, sys

# Stands in for the neonize backend's "restart me" (exit 75), which needs WhatsApp's servers:
# the real bridge (only the first one, and only the bridge) runs as a child; SIGUSR1 makes this process end it and exit 75. With
# FAKE_RESTART_ALWAYS set, every run exits 75 as soon as the bridge listens.
marker = pathlib.Path(os.environ["FAKE_RESTART_MARKER"])
always = bool(os.environ.get("FAKE_RESTART_ALWAYS"))
if sys.argv[1:3] != ["-m", "bridge"] or (marker.exists() and not always):
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
child = subprocess.Popen([sys.executable, *sys.argv[1:]], stdout=subprocess.PIPE)
signals = {signal.SIGUSR1, signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # after the child: it must not inherit it
sys.stdout.write(child.stdout.readline().decode())
sys.stdout.flush()
marker.write_text(str(os.getpid()))
received = signal.SIGUSR1 if always else signal.sigwait(signals)
child.terminate()
child.wait()
sys.exit(75 if received == signal.SIGUSR1 else 0)
"""


def restarting_python(tmp_path: Path, *, always: bool = False) -> dict[str, str]:
    """Environment that runs the bridge through ``RESTARTING_PYTHON``."""
    script = tmp_path / "restarting-python"
    script.write_text(f"#!{sys.executable}\n{RESTARTING_PYTHON}", encoding="utf-8")
    script.chmod(0o755)
    env = {"BRIDGE_PYTHON": str(script), "FAKE_RESTART_MARKER": str(tmp_path / "first-pid")}
    if always:
        env["FAKE_RESTART_ALWAYS"] = "1"
    return env


async def test_a_bridge_asking_for_a_fresh_process_gets_one(
    addons: Callable[..., AddonProcess], tmp_path: Path
) -> None:
    """Exit 75 restarts the bridge inside the add-on, on the same port, token and session."""
    addon = addons(env=restarting_python(tmp_path))
    await addon.start(*SIMULATOR)
    bridge = announced(addon)
    async with connected(bridge, []) as (client, hello):
        assert not hello.status.paired
        await client.pair_qr()
        account = await call(client, "sim.complete_pairing")

    first = int((tmp_path / "first-pid").read_text(encoding="utf-8"))
    os.kill(first, signal.SIGUSR1)
    await addon.wait_for_log("The bridge is listening again")
    assert addon.process is not None
    assert addon.process.returncode is None
    assert "asked for a fresh process; starting it again" in addon.text()

    async with connected(bridge, []) as (_client, hello):
        assert hello.status.paired
        assert hello.status.account is not None
        assert hello.status.account.jid == account["jid"]
    assert len(addon.discoveries()) == 1  # same address and token: nothing new to announce
    assert await addon.stop() == 0
    assert port_closed(addon.port)


async def test_a_quick_series_of_restarts_ends_the_add_on(
    addons: Callable[..., AddonProcess], tmp_path: Path
) -> None:
    """A bridge that keeps asking for a fresh process is not restarted for ever."""
    addon = addons(env=restarting_python(tmp_path, always=True))
    await addon.start(*SIMULATOR)
    assert await addon.wait() == 75
    assert addon.text().count("starting it again") == 5
    assert "times in 600 s; stopping" in addon.text()


async def test_neonize_backend_command_line(
    addons: Callable[..., AddonProcess], tmp_path: Path
) -> None:
    """The add-on's default backend: real neonize, kept offline by a dead loopback proxy."""
    addon = addons(backend="neonize")
    await addon.start("--proxy", "socks5://127.0.0.1:9")
    bridge = announced(addon)
    async with connected(bridge, []) as (_client, hello):
        assert hello.backend == "neonize"
        assert not hello.status.paired
    session = tmp_path / "data" / "session"
    assert mode(session) == 0o700
    assert [mode(path) for path in session.iterdir()] == [0o600]
    assert await addon.stop() == 0
    assert port_closed(addon.port)


async def test_hostname_falls_back_to_the_containers(
    addons: Callable[..., AddonProcess],
) -> None:
    """If the Supervisor cannot say the add-on's hostname, the container's (the same) is sent."""
    addon = addons(env={"FAKE_ADDON_HOSTNAME": "null"})
    await addon.start(*SIMULATOR)
    assert announced(addon).host == socket.gethostname()
    assert await addon.stop() == 0


async def test_a_short_configured_token_is_refused(
    addons: Callable[..., AddonProcess],
) -> None:
    """A hand-chosen token under 32 characters: a clear message, no bridge, nothing announced."""
    addon = addons(options={"log_level": "info", "device_name": "HA", "token": "short-token"})
    with pytest.raises(AssertionError, match="ended before announcing"):
        await addon.start(*SIMULATOR)
    assert addon.process is not None
    assert addon.process.returncode not in (None, 0)
    assert "The configured token has 11 characters; use at least 32" in addon.text()
    assert addon.discoveries() == []


def bashio_log_level(addon: AddonProcess) -> str:
    """The level run.sh gave bashio (the stand-in records it next to the discoveries)."""
    return Path(f"{addon.discovery_file}.log_level").read_text(encoding="utf-8").strip()


def _traversable_folder(folder: str) -> Path:
    root = Path(folder)
    root.chmod(0o755)  # the unprivileged bridge must reach its code in the tree
    return root


def _uid_of_children(pid: int) -> set[int]:
    """Real user ids of the processes whose parent is ``pid``."""
    uids: set[int] = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text(encoding="utf-8").splitlines()
            )
        except OSError, ValueError:
            continue
        if int(fields["PPid"]) == pid:
            uids.add(int(fields["Uid"].split()[0]))
    return uids


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
async def test_the_bridge_runs_as_an_unprivileged_user() -> None:
    """As in the image: run.sh starts as root, hands /data's session and token to the bridge's
    user, and the bridge runs as that user (here ``nobody``, the image's is ``bridge``)."""
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        root = _traversable_folder(folder)
        addon = AddonProcess(
            image_tree(root / "image"), data=root / "data", env={"BRIDGE_USER": "nobody"}
        )
        try:
            await addon.start(*SIMULATOR)
            nobody = pwd.getpwnam("nobody").pw_uid
            assert addon.process is not None
            assert _uid_of_children(addon.process.pid) == {nobody}
            assert (root / "data" / "token").stat().st_uid == nobody
            assert (root / "data" / "session").stat().st_uid == nobody
            assert mode(root / "data" / "token") == 0o600
            async with connected(announced(addon), []) as (client, _hello):
                assert client.connected
            assert await addon.stop() == 0
        finally:
            await addon.kill()
