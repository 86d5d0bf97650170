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
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import functools
import json
import os
from pathlib import Path
import sys
import threading
from types import MappingProxyType
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.whatsapp_presence import coordinator as coordinator_module
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
from tests.conftest import ACCOUNT_JID, ACCOUNT_PHONE, contact_subentry

RECOVERY_OUT = "WHATSAPP_PRESENCE_RECOVERY_OUT"
"""Where benchmarks/recovery.py wants the recorded figures (a JSON lines file)."""

CHILD_SIMULATOR = (
    "--seed",
    "7",
    "--contacts",
    "12",
    "--groups",
    "2",
    "--paired",
    "--account-phone",
    ACCOUNT_PHONE,
    "--presence-churn",
    "0",
    "--disconnect-rate",
    "0",
    "--connect-delay",
    "0",
    "--presence-latency",
    "0",
    "--hidden-last-seen-fraction",
    "0",
    "--unresponsive-fraction",
    "0",
    "--lid-fraction",
    "0",
    "--sub-ceiling",
    "0",
    "--query-limit",
    "0",
)
"""A scripted network in the child bridge: nothing random happens but the faults."""

TRACKED = 6
POLL = 0.005  # seconds of wall time per poll while another process works
START_POLLS = 6000  # a child bridge gets 30 s of wall time to start
HANDSHAKE_POLLS = 2000  # a handshake gets 10 s
WIRE_POLLS = 40  # a request gets 0.2 s before time moves on (a hung bridge never answers)


def wait_wall(seconds: float) -> None:
    """Block an executor thread while another process does real work (never a timer's stand-in)."""
    threading.Event().wait(seconds)


def busy(coordinator: WhatsAppCoordinator) -> tuple[bool, bool, bool]:
    """(a child bridge is starting or being killed, a link is opening, a request is out)."""
    process, client = coordinator.process, coordinator.client
    starting = process is not None and (process.starting or process.killing)
    opening = client is not None and client.opening
    wire = client is not None and bool(client._pending)
    return starting, opening, wire


async def settle(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Let real I/O finish what it started; no time passes.

    A starting child gets up to 30 s of wall time, a handshake 10 s, a request 0.2 s: a hung
    bridge never answers, and then time must move on for the liveness check to see it.
    """
    polls = {"opening": 0, "wire": 0}
    for _ in range(START_POLLS):
        await hass.async_block_till_done()
        if entry.state is not ConfigEntryState.LOADED:
            return
        starting, opening, wire = busy(entry.runtime_data)
        opening = opening and polls["opening"] < HANDSHAKE_POLLS
        wire = wire and polls["wire"] < WIRE_POLLS
        if not (starting or opening or wire):
            return
        polls["opening"] += opening
        polls["wire"] += wire
        await hass.async_add_executor_job(wait_wall, POLL)
    raise AssertionError("the child bridge did not start within 30 s of wall time")


async def advance_until(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    entry: MockConfigEntry,
    condition: Callable[[], bool],
    *,
    step: float = 0.5,
    limit: float = 600.0,
) -> float:
    """Run Home Assistant's time ``step`` by ``step`` until ``condition``; simulated seconds."""
    elapsed = 0.0
    while True:
        await settle(hass, entry)
        if condition():
            return elapsed
        if elapsed >= limit:
            raise AssertionError(
                f"not recovered within {limit} simulated seconds: {describe(entry)}"
            )
        freezer.tick(timedelta(seconds=step))
        async_fire_time_changed(hass)
        elapsed += step


async def advance_for(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    entry: MockConfigEntry,
    seconds: float,
    *,
    step: float = 0.5,
) -> None:
    """Run Home Assistant's time for ``seconds``, ``step`` by ``step``."""
    elapsed = 0.0
    while elapsed < seconds:
        await settle(hass, entry)
        freezer.tick(timedelta(seconds=step))
        async_fire_time_changed(hass)
        elapsed += step
    await settle(hass, entry)


def describe(entry: MockConfigEntry) -> str:
    """Where the entry stands, for a failure message."""
    coordinator: WhatsAppCoordinator = entry.runtime_data
    process, client = coordinator.process, coordinator.client
    states = {
        jid: getattr(coordinator.manager.contact(jid), "state", None) for jid in coordinator.tracked
    }
    return (
        f"state={coordinator.connection_state} status={coordinator.status} "
        f"process=({process and process.pid}, {process and process.url}, "
        f"down_since={process and process.down_since}) "
        f"client=({client and client.url}, connected={client and client.connected}) "
        f"contacts={states} stats={coordinator.manager.stats()}"
    )


def all_subscribed(entry: MockConfigEntry) -> bool:
    """Connected, and every tracked contact subscribed (or waiting out its backoff)."""
    coordinator: WhatsAppCoordinator = entry.runtime_data
    if not coordinator.connected:
        return False
    for jid in coordinator.tracked:
        info = coordinator.manager.contact(jid)
        if info is None or info.state not in (ContactState.SUBSCRIBED, ContactState.BACKOFF):
            return False
    return True


@dataclass
class Snapshot:
    """What must survive a fault: last seen, backoff, subentries."""

    last_seen: dict[str, datetime]
    backoff: dict[str, tuple[int, float | None]]
    subentries: set[str]
    pids: set[int] = field(default_factory=set)

    @classmethod
    def take(cls, entry: MockConfigEntry) -> Snapshot:
        coordinator: WhatsAppCoordinator = entry.runtime_data
        backoff = {}
        for jid in coordinator.tracked:
            info = coordinator.manager.contact(jid)
            if info is not None and info.state is ContactState.BACKOFF:
                backoff[jid] = (info.fail_count, info.next_retry)
        return cls(
            last_seen={
                jid: p.last_seen
                for jid, p in coordinator.presence.items()
                if p.last_seen is not None
            },
            backoff=backoff,
            subentries=set(entry.subentries),
        )

    def check(self, hass: HomeAssistant, entry: MockConfigEntry) -> None:
        """Home Assistant up, the entry loaded, nothing of the saved state lost."""
        assert hass.is_running
        assert entry.state is ConfigEntryState.LOADED
        coordinator: WhatsAppCoordinator = entry.runtime_data
        assert set(entry.subentries) == self.subentries
        for jid, seen in self.last_seen.items():
            now = coordinator.presence[jid].last_seen
            assert now is not None, jid
            assert now >= seen, jid  # last seen only moves forward
        now_ts = coordinator_module.utc_now().timestamp()
        for jid, (fail_count, next_retry) in self.backoff.items():
            info = coordinator.manager.contact(jid)
            assert info is not None
            if next_retry is not None and next_retry > now_ts:  # not due yet: still waiting
                assert info.state is ContactState.BACKOFF, jid
                assert (info.fail_count, info.next_retry) == (fail_count, next_retry), jid
        assert all_subscribed(entry)


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


def pid_alive(pid: int) -> bool:
    """Whether a process of that id still exists (zombies included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
    monkeypatch.setattr(coordinator_module, "SIMULATOR_ARGS", CHILD_SIMULATOR)
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
        coordinator_module, "BridgeProcess", functools.partial(BridgeProcess, python=str(python))
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
        chosen = (await coordinator.client.request("sim.contacts"))[:TRACKED]
        failing, seen = chosen[0]["jid"], chosen[1]["jid"]
        await coordinator.client.request("sim.fail_subscribe", jid=failing, times=1000)
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
        stats = await coordinator.client.request("sim.stats")
        await coordinator.client.request(
            "sim.set_presence", jid=seen, online=False, last_seen=int(stats["time"]) - 60
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


@contextlib.contextmanager
def noted_pid(entry: MockConfigEntry) -> Any:
    """Remember the running bridge's pid, to check at the end that it is gone."""
    process = entry.runtime_data.process
    assert process is not None
    pid = process.pid
    assert pid is not None
    entry.pids.add(pid)
    yield pid
