"""What the fault-injection tests share (their fixtures are in conftest.py): driving frozen time
while a real child bridge works, and checking that nothing was lost.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import os
import threading
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.whatsapp_presence.coordinator import WhatsAppCoordinator
from custom_components.whatsapp_presence.manager import ContactState
from tests.sim import ACCOUNT_PHONE

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
        now_ts = dt_util.utcnow().timestamp()
        for jid, (fail_count, next_retry) in self.backoff.items():
            info = coordinator.manager.contact(jid)
            assert info is not None
            if next_retry is not None and next_retry > now_ts:  # not due yet: still waiting
                assert info.state is ContactState.BACKOFF, jid
                assert (info.fail_count, info.next_retry) == (fail_count, next_retry), jid
        assert all_subscribed(entry)


def pid_alive(pid: int) -> bool:
    """Whether a process of that id still exists (zombies included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def noted_pid(entry: MockConfigEntry) -> Any:
    """Remember the running bridge's pid, to check at the end that it is gone."""
    process = entry.runtime_data.process
    assert process is not None
    pid = process.pid
    assert pid is not None
    entry.pids.add(pid)
    yield pid
