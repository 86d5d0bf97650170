"""The fault-injection suite: the real launcher, bridge (simulator backend) and integration.

A local-mode entry here runs the bridge as a real child process (``python -m bridge``, the
simulator backend with every random process off), started and watched by the real launcher;
faults are real signals, real sockets and real frames. Home Assistant's time is frozen and
driven by the test (``advance_until``): restart delays, reconnect backoff and the liveness
pings run on it, so a two-minute hang takes no two minutes. Only while the child process or
the WebSocket is busy with real I/O (a process starting, a request on the wire) does the
driver wait, in short bounded polls, for that other process; time never jumps meanwhile.

Every test records its time to recover (simulated seconds from the fault to every tracked
contact subscribed again); ``benchmarks/recovery.py`` runs this suite and prints them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
import functools
import json
import os
from pathlib import Path
import sys
from types import MappingProxyType

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence import (
    connection as connection_module,
    coordinator as coordinator_module,
    launcher as launcher_module,
)
from custom_components.whatsapp_presence.const import (
    CONF_ACCOUNT_JID,
    CONF_MODE,
    CONF_PUSH_NAME,
    CONF_SESSION_ID,
    DOMAIN,
    MODE_SIMULATOR,
)
from custom_components.whatsapp_presence.coordinator import WhatsAppCoordinator
from custom_components.whatsapp_presence.launcher import BridgeProcess
from custom_components.whatsapp_presence.manager import ContactState
from tests.bridge.common import call
from tests.common import contact_subentry
from tests.sim import ACCOUNT_JID, ACCOUNT_PHONE

from .harness import (
    CHILD_SIMULATOR,
    RECOVERY_OUT,
    TRACKED,
    advance_until,
    all_subscribed,
    pid_alive,
)


@pytest.fixture
def record_recovery(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record a time to recover for the docs (benchmarks/recovery.py collects them)."""

    def record(fault: str, seconds: list[float], bound: float, note: str = "") -> None:
        assert seconds
        assert max(seconds) <= bound, f"{fault}: {max(seconds)} s > {bound} s"
        out = os.environ.get(RECOVERY_OUT)
        if not out:
            return
        line = {
            "fault": fault,
            "runs": len(seconds),
            "median": sorted(seconds)[len(seconds) // 2],
            "worst": max(seconds),
            "bound": bound,
            "note": note,
            "test": request.node.name,
        }
        with Path(out).open("a", encoding="utf-8") as file:
            file.write(json.dumps(line) + "\n")

    return record


@pytest.fixture
async def local_entry(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    socket_enabled: None,
) -> AsyncIterator[MockConfigEntry]:
    """A local-mode entry whose bridge is a real child process, tracking six contacts.

    One contact's subscriptions fail (it waits out a backoff) and one has a last seen from
    WhatsApp, so the tests can check neither is lost. At the end the entry is unloaded and
    every bridge process it ever ran must be gone.
    """
    monkeypatch.setattr(launcher_module, "SIMULATOR_ARGS", CHILD_SIMULATOR)
    # The child's python: the real one, unless ``tmp_path/broken`` exists (then it fails at
    # once, as a broken install or a full disk would make every restart fail).
    python = tmp_path / "python"
    python.write_text(
        f"#!/bin/sh\n"
        f'if [ -e "{tmp_path / "broken"}" ]; then echo "broken install" >&2; exit 3; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    python.chmod(0o755)
    monkeypatch.setattr(
        connection_module, "BridgeProcess", functools.partial(BridgeProcess, python=str(python))
    )
    monkeypatch.setattr(coordinator_module, "session_dir", lambda _hass, sid: tmp_path / sid)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Sam Demo",
        unique_id=ACCOUNT_PHONE,
        data={
            CONF_MODE: MODE_SIMULATOR,
            CONF_SESSION_ID: "faults",
            CONF_ACCOUNT_JID: ACCOUNT_JID,
            CONF_PUSH_NAME: "Sam Demo",
        },
        options={},
    )
    entry.add_to_hass(hass)
    pids: set[int] = set()
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        coordinator: WhatsAppCoordinator = entry.runtime_data
        assert coordinator.process is not None
        assert coordinator.client is not None
        chosen = (await call(coordinator.client, "sim.contacts"))[:TRACKED]
        failing, seen = chosen[0]["jid"], chosen[1]["jid"]
        await call(coordinator.client, "sim.fail_subscribe", jid=failing, times=1000)
        for contact in chosen:
            data = contact_subentry(contact["jid"], contact["name"])
            hass.config_entries.async_add_subentry(
                entry,
                ConfigSubentry(
                    data=MappingProxyType(dict(data["data"])),
                    subentry_type=data["subentry_type"],
                    title=data["title"],
                    unique_id=data["unique_id"],
                ),
            )
        await advance_until(hass, freezer, entry, lambda: all_subscribed(entry))
        stats = await call(coordinator.client, "sim.stats")
        await call(
            coordinator.client,
            "sim.set_presence",
            jid=seen,
            online=False,
            last_seen=int(stats["time"]) - 60,
        )
        await advance_until(
            hass, freezer, entry, lambda: coordinator.presence[seen].last_seen is not None
        )
        info = coordinator.manager.contact(failing)
        assert info is not None
        assert info.state is ContactState.BACKOFF
        entry.pids = pids
        yield entry
    finally:
        if entry.state is ConfigEntryState.LOADED:
            process = entry.runtime_data.process
            if process is not None and process.pid is not None:
                pids.add(process.pid)
            assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    left = [pid for pid in pids if pid_alive(pid)]
    assert left == [], f"bridge processes left behind: {left}"
