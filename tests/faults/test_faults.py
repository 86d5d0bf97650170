"""Faults a bridge really meets, injected into the real launcher, bridge and integration.

For each: Home Assistant stays up, the bridge is back within a stated bound (simulated
seconds), every tracked contact is subscribed again, no last seen, backoff or subentry is
lost, and no task, thread or process is left behind (the test plugin checks tasks and
threads after each test; the fixtures check the processes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import logging
import os
from pathlib import Path
import signal
import socket

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.const import DOMAIN
from custom_components.whatsapp_presence.coordinator import WhatsAppCoordinator
from custom_components.whatsapp_presence.launcher import RESTART_DELAY_INITIAL, RESTART_DELAY_MAX
from tests.bridge.common import call

from .harness import Snapshot, advance_for, advance_until, all_subscribed, noted_pid, settle

RECONNECT_BOUND = 15.0
"""After the restart delay: the client's reconnect, WhatsApp's, and a paced re-subscribe."""
KILL_BOUND = RECONNECT_BOUND + 3.0
"""A first death: 1 s restart delay, 2 s more when the old port is taken."""


def restart_delay(round_: int) -> float:
    """The launcher's restart delay for the ``round_``-th death in a row (0-based).

    Deaths in a row (each within a minute of the restart) double the delay: a bridge that
    keeps crashing is not restarted in a tight loop. The first round takes two attempts.
    """
    if round_ == 0:
        return RESTART_DELAY_INITIAL + 2 * RESTART_DELAY_INITIAL
    return float(min(RESTART_DELAY_MAX, RESTART_DELAY_INITIAL * 2 ** (round_ + 1)))


HANG_BOUND = 180.0
"""Up to 120 s for three pings 30 s apart, each given 10 s; 10 s for closing the dead link;
then a restart like a crash (2 s steps of the clock, so a few steps of slack)."""


def port_of(url: str) -> int:
    """The port of a ws:// URL."""
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


async def test_sigkill_ten_times_with_the_port_taken_on_the_first_retry(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    local_entry: MockConfigEntry,
    record_recovery: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGKILL ten times in a row; the first time, another program takes the port meanwhile."""
    entry = local_entry
    coordinator: WhatsAppCoordinator = entry.runtime_data
    process = coordinator.process
    assert process is not None
    before = Snapshot.take(entry)
    times: list[float] = []
    squatter: socket.socket | None = None
    caplog.clear()
    try:
        for round_ in range(10):
            old_url = process.url
            assert old_url is not None
            with noted_pid(entry) as pid:
                os.kill(pid, signal.SIGKILL)
            await settle(hass, entry)
            # The watcher saw the death (a real child exit); the port is free again.
            await advance_until(hass, freezer, entry, lambda: process.down_since is not None)
            if round_ == 0:
                squatter = socket.socket()
                squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                squatter.bind(("127.0.0.1", port_of(old_url)))
                squatter.listen()
            times.append(
                await advance_until(
                    hass,
                    freezer,
                    entry,
                    lambda: (
                        process.down_since is None
                        and process.pid != pid
                        and coordinator.client is not None
                        and coordinator.client.url == process.url
                        and all_subscribed(entry)
                    ),
                    limit=restart_delay(round_) + RECONNECT_BOUND,
                )
            )
            if round_ == 0:
                assert process.url != old_url  # a fresh port
            before.check(hass, entry)
    finally:
        if squatter is not None:
            squatter.close()
    assert process.restarts == 10
    outages = [r for r in caplog.records if "The WhatsApp bridge is down" in r.getMessage()]
    assert len(outages) == 10  # one warning per outage, with its reason
    assert all(r.levelno == logging.WARNING and "-9" in r.getMessage() for r in outages)
    record_recovery("SIGKILL, first death (port taken on the first retry)", times[:1], KILL_BOUND)
    record_recovery(
        "SIGKILL, tenth death in a row (restart delay 5 min)",
        times[-1:],
        restart_delay(9) + RECONNECT_BOUND,
    )


async def test_sigstop_for_two_minutes_is_recovered_by_the_liveness_check(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    local_entry: MockConfigEntry,
    record_recovery: Callable[..., None],
) -> None:
    """A hung bridge (SIGSTOP) keeps its process alive; three missed pings kill and restart it."""
    entry = local_entry
    coordinator: WhatsAppCoordinator = entry.runtime_data
    process = coordinator.process
    assert process is not None
    before = Snapshot.take(entry)
    states: set[str] = set()

    def recovered() -> bool:
        states.add(coordinator.connection_state)
        return process.pid != pid and process.down_since is None and all_subscribed(entry)

    with noted_pid(entry) as pid:
        os.kill(pid, signal.SIGSTOP)
        try:
            elapsed = await advance_until(
                hass, freezer, entry, recovered, step=2.0, limit=HANG_BOUND
            )
            # Two minutes after the SIGSTOP, SIGCONT (as an operator would): the hung process
            # was killed by then, and a late SIGCONT changes nothing.
            if elapsed < 120:
                await advance_for(hass, freezer, entry, 120 - elapsed, step=2.0)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert "bridge_unresponsive" in states or "bridge_unreachable" in states
    before.check(hass, entry)
    record_recovery("SIGSTOP (a hung bridge), found by the liveness check", [elapsed], HANG_BOUND)


async def test_a_one_megabyte_stderr_line(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    local_entry: MockConfigEntry,
    record_recovery: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two 1 MB log lines: the pumps cut them and go on, so the pipe never blocks the bridge."""
    caplog.set_level(logging.DEBUG, logger="custom_components.whatsapp_presence.launcher")
    entry = local_entry
    coordinator: WhatsAppCoordinator = entry.runtime_data
    client, process = coordinator.client, coordinator.process
    assert client is not None
    assert process is not None
    pid = process.pid
    before = Snapshot.take(entry)
    for _ in range(2):
        # Each answer comes after the line is written: a blocked pipe would block the bridge.
        request = asyncio.ensure_future(call(client, "sim.log", size=1_000_000))
        await settle(hass, entry)
        for _ in range(2000):
            if request.done():
                break
            await settle(hass, entry)
        assert request.done(), "the bridge blocked writing its log"
        assert request.result() is None
    ping = asyncio.ensure_future(call(client, "ping"))
    await settle(hass, entry)
    assert ping.done()
    cut = [r for r in caplog.records if r.getMessage().endswith("[cut]")]
    assert len(cut) == 2
    assert all(len(r.getMessage()) < 5000 for r in cut)
    assert process.pid == pid  # nothing had to be restarted
    elapsed = await advance_until(hass, freezer, entry, lambda: all_subscribed(entry))
    before.check(hass, entry)
    record_recovery("A 1 MB line on the bridge's stderr", [elapsed], 0.0, "nothing to recover")


async def test_wrong_shape_storage_with_a_child_bridge(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    local_entry: MockConfigEntry,
    record_recovery: Callable[..., None],
    hass_storage: dict[str, object],
) -> None:
    """Saved state turned into the wrong shape: a reload sets up with what is valid."""
    entry = local_entry
    before = Snapshot.take(entry)
    coordinator: WhatsAppCoordinator = entry.runtime_data
    assert coordinator.process is not None
    entry.pids.add(coordinator.process.pid)
    assert await hass.config_entries.async_unload(entry.entry_id)
    key = f"{entry.domain}.{entry.entry_id}"
    stored = hass_storage[key]
    assert isinstance(stored, dict)
    data = stored["data"]
    data["groups"] = 5
    data["manager"]["recent_calls"] = "soon"
    data["manager"]["contacts"].append(["not", "a", "record"])
    data["presence"]["nobody@s.whatsapp.net"] = {"last_seen": 12}
    assert await hass.config_entries.async_setup(entry.entry_id)
    elapsed = await advance_until(hass, freezer, entry, lambda: all_subscribed(entry))
    before.check(hass, entry)
    record_recovery("Saved state of the wrong shape (then a reload)", [elapsed], KILL_BOUND)


async def test_restarts_failing_for_ten_minutes_raise_a_repair_until_back(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    local_entry: MockConfigEntry,
    record_recovery: Callable[..., None],
    issue_registry: ir.IssueRegistry,
    tmp_path: Path,
) -> None:
    """Every restart fails for a while: attempts go on (up to one per 5 min), a repair after
    10 minutes, gone when the bridge is back; then everything is as before."""
    entry = local_entry
    coordinator: WhatsAppCoordinator = entry.runtime_data
    process = coordinator.process
    assert process is not None
    before = Snapshot.take(entry)
    issue_id = f"bridge_down_{entry.entry_id}"
    (tmp_path / "broken").touch()
    with noted_pid(entry) as pid:
        os.kill(pid, signal.SIGKILL)
    await advance_until(hass, freezer, entry, lambda: process.down_since is not None)
    await advance_for(hass, freezer, entry, 590, step=5.0)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    await advance_for(hass, freezer, entry, 15, step=5.0)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    await advance_for(hass, freezer, entry, 900, step=5.0)  # attempts go on, 5 min apart
    assert process.down_since is not None
    (tmp_path / "broken").unlink()  # repaired (disk freed, package reinstalled...)
    elapsed = await advance_until(
        hass,
        freezer,
        entry,
        lambda: process.down_since is None and all_subscribed(entry),
        step=2.0,
        limit=RESTART_DELAY_MAX + RECONNECT_BOUND,
    )
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    before.check(hass, entry)
    record_recovery(
        "Restarts failing (broken install), once repaired",
        [elapsed],
        RESTART_DELAY_MAX + RECONNECT_BOUND,
        "the next attempt, at most 5 min later",
    )
