"""The simulator backend on its own: determinism, random processes, clocks, persistence."""

from __future__ import annotations

import asyncio
from dataclasses import replace
import itertools
from pathlib import Path
from typing import Any

import pytest

from custom_components.whatsapp_presence.bridge.clock import LoopClock, ManualClock
from custom_components.whatsapp_presence.bridge.protocol import BridgeError, BridgeEvent, ErrorCode
from custom_components.whatsapp_presence.bridge.simulator import (
    SimulatorBackend,
    SimulatorConfig,
    config_defaults,
    presence_history,
)

from .common import SCRIPTED, START

Recorded = list[tuple[float, str, dict[str, Any]]]


def _backend(config: SimulatorConfig) -> tuple[SimulatorBackend, Recorded]:
    log: Recorded = []
    backend: SimulatorBackend

    def emit(event: BridgeEvent) -> None:
        log.append((backend.clock.now(), str(event.name), dict(event.to_payload())))

    backend = SimulatorBackend(emit, config)
    return backend, log


async def _watch_everyone(backend: SimulatorBackend) -> None:
    await backend.set_available(True)
    for contact in await backend.contacts():
        await backend.subscribe_presence(contact["jid"])


def _clock(backend: SimulatorBackend) -> ManualClock:
    assert isinstance(backend.clock, ManualClock)
    return backend.clock


def _busy(seed: int) -> SimulatorConfig:
    """Defaults (random processes on), scripted clock, ceiling out of the way."""
    return SimulatorConfig(
        seed=seed, manual_clock=True, start_time=START, paired=True, sub_ceiling=0
    )


async def _run(config: SimulatorConfig, seconds: float) -> tuple[SimulatorBackend, Recorded]:
    backend, log = _backend(config)
    await backend.start()
    _clock(backend).advance(config.connect_delay)
    await _watch_everyone(backend)
    clock = _clock(backend)
    # Re-subscribe after each reconnect, like the integration does.
    elapsed = 0.0
    while elapsed < seconds:
        clock.advance(60)
        elapsed += 60
        status = await backend.status()
        if status["connected"] and not status["available"]:
            await _watch_everyone(backend)
    await backend.stop()
    return backend, log


async def test_the_same_seed_gives_the_same_run() -> None:
    _, first = await _run(_busy(3), 6 * 3600)
    _, second = await _run(_busy(3), 6 * 3600)
    _, other = await _run(_busy(4), 6 * 3600)
    assert first == second
    assert first != other
    names = {name for _, name, _ in first}
    assert {"connected", "presence", "disconnected"} <= names
    presence = [data for _, name, data in first if name == "presence"]
    # A last seen is never in the future of the event and never invented for online contacts.
    assert all(p["last_seen"] is None or p["last_seen"] <= p["at"] for p in presence)
    assert all(p["last_seen"] is None for p in presence if p["online"])
    assert any(p["last_seen"] is None and not p["online"] for p in presence)  # hidden
    assert any(p["lid"] for p in presence)


async def test_the_same_seed_gives_the_same_network() -> None:
    one, _ = _backend(_busy(9))
    two, _ = _backend(_busy(9))
    assert await one.contacts() == await two.contacts()
    await one.start()
    await two.start()
    _clock(one).advance(1)
    _clock(two).advance(1)
    assert await one.groups() == await two.groups()
    await one.stop()
    await two.stop()


async def test_defaults_give_a_demo_sized_network() -> None:
    backend, _ = _backend(_busy(1))
    contacts = await backend.contacts()
    assert len(contacts) == 30
    names = [c["name"] for c in contacts]
    assert len(set(names)) == 30
    assert all(len(name.split()) == 2 for name in names)
    assert len({c["phone"] for c in contacts}) == 30
    assert all(c["phone"].startswith("1") and c["phone"][4:9] == "55501" for c in contacts)
    described = await backend.command("sim.contacts", {})
    assert 1 <= sum(c["chatty"] for c in described) <= 12
    defaults = config_defaults()
    assert defaults["groups"] in (3, 4)
    assert defaults["pairing_delay"] == 5.0


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_presence_churn_shows_within_a_minute_at_time_scale_ten(seed: int) -> None:
    """600 simulated seconds are one real minute at --time-scale 10."""
    config = replace(_busy(seed), presence_latency=0, disconnect_rate=0)
    backend, log = _backend(config)
    await backend.start()
    _clock(backend).advance(config.connect_delay)
    await _watch_everyone(backend)
    mark = len(log)
    _clock(backend).advance(600)
    changes = [data for _, name, data in log[mark:] if name == "presence"]
    assert changes, "no presence change in a simulated 10 minutes"
    await backend.stop()


async def test_chatty_contacts_change_more_often_than_quiet_ones() -> None:
    config = replace(_busy(11), contacts=60, unresponsive_fraction=0, disconnect_rate=0)
    backend, log = _backend(config)
    await backend.start()
    _clock(backend).advance(1)
    await _watch_everyone(backend)
    _clock(backend).advance(24 * 3600)
    described = {c["jid"]: c for c in await backend.command("sim.contacts", {})}
    counts: dict[bool, list[int]] = {True: [], False: []}
    per_jid: dict[str, int] = {}
    for _, name, data in log:
        if name == "presence":
            per_jid[data["jid"]] = per_jid.get(data["jid"], 0) + 1
    for jid, contact in described.items():
        counts[contact["chatty"]].append(per_jid.get(jid, 0))
    chatty = sum(counts[True]) / len(counts[True])
    quiet = sum(counts[False]) / len(counts[False])
    assert chatty > 5 * quiet
    await backend.stop()


async def test_random_disconnects_follow_the_rate_and_reconnect() -> None:
    config = replace(
        SCRIPTED, disconnect_rate=30.0, reconnect_delay=2.0, presence_churn=0, contacts=3
    )
    backend, log = _backend(config)
    await backend.start()
    _clock(backend).advance(10 * 3600)
    lifecycle = [name for _, name, _ in log if name in ("connected", "disconnected")]
    disconnects = lifecycle.count("disconnected")
    assert 200 <= disconnects <= 400  # Poisson, mean 300
    assert lifecycle[0] == "connected"
    assert all(a != b for a, b in itertools.pairwise(lifecycle))
    times = [t for t, name, _ in log if name in ("connected", "disconnected")]
    gaps = [
        b - a
        for (a, b, kind) in zip(times, times[1:], lifecycle[1:], strict=False)
        if kind == "connected"
    ]
    assert all(gap == pytest.approx(2.0) for gap in gaps)
    assert (await backend.command("sim.stats", {}))["disconnects"] == disconnects
    await backend.stop()


async def test_rate_zero_switches_every_random_process_off() -> None:
    config = replace(SCRIPTED, contacts=20)
    backend, log = _backend(config)
    await backend.start()
    await _watch_everyone(backend)
    mark = len(log)
    _clock(backend).advance(30 * 86400)
    assert log[mark:] == []
    assert _clock(backend).pending == 0
    await backend.stop()


async def test_loop_clock_scales_time_and_maps_timestamps_back() -> None:
    now = [1000.0]
    clock = LoopClock(10.0, time_func=lambda: now[0])
    assert clock.now() == 1000.0
    now[0] = 1006.0
    assert clock.now() == 1060.0
    assert clock.to_real(1060.0) == 1006.0
    assert clock.real_duration(60) == 6.0
    loop = asyncio.get_running_loop()
    fired: list[bool] = []
    handle = clock.call_later(50, lambda: fired.append(True))
    assert isinstance(handle, asyncio.TimerHandle)
    assert handle.when() - loop.time() == pytest.approx(5.0, abs=0.5)
    handle.cancel()
    assert fired == []


async def test_time_scale_divides_reported_durations() -> None:
    config = replace(SCRIPTED, paired=False, time_scale=10.0)
    backend, log = _backend(config)
    await backend.start()
    await backend.pair_qr()
    assert log[-1][1] == "qr"
    assert log[-1][2]["expires_in"] == 6.0
    _clock(backend).advance(60)
    assert log[-1][2]["expires_in"] == 2.0
    await backend.stop()


async def test_stop_cancels_everything_on_the_loop_clock() -> None:
    config = SimulatorConfig(
        seed=5, paired=True, time_scale=1000.0, connect_delay=0.0, disconnect_rate=100.0
    )
    backend, _ = _backend(config)
    await backend.start()
    assert backend._timers
    await backend.stop()
    assert backend._timers == {}
    # (Home Assistant's test plugin also fails this test on any lingering timer.)


async def test_the_paired_session_survives_a_restart(tmp_path: Path) -> None:
    config = replace(SCRIPTED, paired=False, connect_delay=1.0, state_dir=tmp_path)
    backend, _ = _backend(config)
    await backend.start()
    await backend.pair_phone("4915550100777")
    await backend.command("sim.complete_pairing", {})
    await backend.stop()
    assert (tmp_path / "simulator.json").exists()
    again, log = _backend(config)
    await again.start()
    status = await again.status()
    assert status["paired"] is True
    assert status["account"]["phone"] == "4915550100777"
    assert status["connected"] is False
    _clock(again).advance(1.0)
    assert [name for _, name, _ in log] == ["connected"]
    await again.logout()
    await again.stop()
    third, _ = _backend(config)
    await third.start()
    assert (await third.status())["paired"] is False
    await third.stop()


async def test_sim_advance_needs_the_manual_clock() -> None:
    backend, _ = _backend(replace(SCRIPTED, manual_clock=False))
    with pytest.raises(BridgeError) as err:
        await backend.command("sim.advance", {"seconds": 1})
    assert err.value.code == ErrorCode.UNSUPPORTED
    with pytest.raises(BridgeError) as err:
        await backend.command("sim.nope", {})
    assert err.value.code == ErrorCode.UNKNOWN_COMMAND


@pytest.mark.parametrize(
    "overrides",
    [
        {"contacts": -1},
        {"chatty_fraction": 1.5},
        {"time_scale": 0.0},
        {"sub_window": float("nan")},
        {"qr_codes": 0},
        {"account_phone": "0123"},
    ],
)
def test_config_rejects_nonsense(overrides: dict[str, Any]) -> None:
    with pytest.raises((ValueError, BridgeError)):
        replace(SCRIPTED, **overrides)


async def test_loop_clock_follows_frozen_time(freezer: Any) -> None:
    """Home Assistant tests freeze and tick time.time; the loop clock must follow."""
    clock = LoopClock(10.0)
    start = clock.now()
    freezer.tick(3)
    assert clock.now() == pytest.approx(start + 30)
    assert clock.to_real(clock.now()) == pytest.approx(start + 3)


@pytest.mark.parametrize(("model", "resent"), [("resend", True), ("changes", False)])
async def test_becoming_available_again_follows_the_chosen_model(model: str, resent: bool) -> None:
    """Unavailable: nothing is delivered; available again: everyone at once, or only changes."""
    config = replace(SCRIPTED, on_available=model, presence_latency=0.0)
    backend, log = _backend(config)
    await backend.start()
    _clock(backend).advance(config.connect_delay)
    await _watch_everyone(backend)
    contacts = await backend.command("sim.contacts", {})
    answering = [c for c in contacts if not c["unresponsive"]]
    first, second = answering[0]["jid"], answering[1]["jid"]
    await backend.set_available(False)
    log.clear()
    assert (await backend.command("sim.set_presence", {"jid": first, "online": True})) == {
        "delivered": False
    }
    _clock(backend).advance(100)
    await backend.set_available(True)
    delivered = {data["jid"] for _, name, data in log if name == "presence"}
    assert delivered == ({c["jid"] for c in answering} if resent else set())
    log.clear()
    await backend.command("sim.set_presence", {"jid": second, "online": True})
    assert [data["jid"] for _, name, data in log if name == "presence"] == [second]
    stats = backend.stats()
    assert stats["on_available"] == model
    assert stats["available_seconds"] == pytest.approx(0.0)  # nothing ran since it came back
    await backend.stop()


async def test_the_availability_model_and_online_time_are_controllable() -> None:
    """``sim.on_available`` switches the model; the time the account looked online is counted."""
    backend, _ = _backend(SCRIPTED)
    await backend.start()
    _clock(backend).advance(SCRIPTED.connect_delay)
    await backend.set_available(True)
    _clock(backend).advance(30)
    await backend.set_available(False)
    _clock(backend).advance(270)
    await backend.set_available(True)
    _clock(backend).advance(30)
    assert backend.stats()["available_seconds"] == pytest.approx(60.0)
    await backend.command("sim.on_available", {"model": "resend"})
    assert backend.stats()["on_available"] == "resend"
    with pytest.raises(BridgeError) as err:
        await backend.command("sim.on_available", {"model": "sometimes"})
    assert err.value.code == ErrorCode.INVALID_ARGUMENT
    with pytest.raises(ValueError, match="on_available"):
        SimulatorConfig(on_available="sometimes")


@pytest.mark.parametrize("time_scale", [1.0, 60.0])
async def test_subscription_rules_run_on_real_time_at_any_scale(time_scale: float) -> None:
    """The integration paces in real seconds, so the ceiling, the ban window and the ban
    length count real seconds too: at 60x the same calls meet the same limit as at 1x."""
    real = [START]
    config = replace(
        SCRIPTED, time_scale=time_scale, sub_ceiling=6, ban_threshold=2, ban_duration=600.0
    )
    events: list[tuple[str, dict[str, Any]]] = []
    backend = SimulatorBackend(
        lambda event: events.append((str(event.name), dict(event.to_payload()))),
        config,
        clock=LoopClock(time_scale, time_func=lambda: real[0]),
    )
    await backend.start()
    await asyncio.sleep(0)  # the connect timer (no delay)
    contacts = await backend.contacts()
    for contact in contacts[:8]:  # 8 calls 0.2 real seconds apart: 8 in one real minute
        await backend.subscribe_presence(contact["jid"])
        real[0] += 0.2
    stats = backend.stats()
    assert stats["ceiling_hits"] == 2
    assert stats["bans"] == 1
    [ban] = [data for name, data in events if name == "temporary_ban"]
    assert ban["expires_in"] == pytest.approx(600.0)  # real seconds, whatever the scale
    await backend.stop()


async def test_presence_history_is_the_run_a_live_network_shows() -> None:
    """The history a demo imports as its past days is the very run the live network plays."""
    config = replace(_busy(5), presence_latency=0, disconnect_rate=0, time_scale=10)
    backend, log = _backend(config)
    await backend.start()
    _clock(backend).advance(config.connect_delay)
    await _watch_everyone(backend)
    mark = len(log)
    _clock(backend).advance(6 * 3600)  # six simulated hours: 36 real minutes
    answering = {
        c["jid"] for c in await backend.command("sim.contacts", {}) if not c["unresponsive"]
    }
    await backend.stop()
    live = [
        (round(data["at"], 6), data["jid"], data["online"])
        for _, name, data in log[mark:]
        if name == "presence"
    ]
    end = START + 6 * 3600 / config.time_scale
    played = presence_history(replace(config, manual_clock=False), START, end)
    assert {jid for at, jid, _ in played if at == START} == answering  # everyone's start
    subscribed_at = START + config.connect_delay / config.time_scale
    changes = [(round(at, 6), jid, online) for at, jid, online in played if at > subscribed_at]
    assert len(live) > 50
    assert changes == live
