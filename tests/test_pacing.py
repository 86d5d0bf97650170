"""WhatsApp's limit reached through the real bridge at a time scale, and the reaction to it.

The simulator runs 60 times faster than real time, but its subscription rules count real
seconds, as the integration paces in real seconds: the same pace meets the same limit as it
would in real time. Home Assistant's clock (the freezer) drives both.
"""

from __future__ import annotations

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.bridge.simulator import SimulatorConfig
from custom_components.whatsapp_presence.const import DOMAIN

from .common import state_of
from .sim import run_until, simulator_config, tick


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """60x simulated time on Home Assistant's clock; 5 subscriptions a real minute at most,
    3 ignored ones earn a ban."""
    return simulator_config(
        manual_clock=False, time_scale=60.0, sub_ceiling=5, ban_threshold=3, ban_duration=3600.0
    )


@pytest.fixture
def tracked_count() -> int:
    """Every simulated contact is tracked."""
    return 12


async def test_a_ban_earned_at_a_time_scale_slows_everything_down(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """12 contacts at the default pace (0.2 s apart) pass a 5-a-minute limit within seconds
    of real time (at 60x that is 12 simulated seconds apart, within the limit if it counted
    simulated time): the account is banned, shown rate limited, the preset steps down, the
    pace halves, and a repair says until when."""
    entry = init_integration
    coordinator = entry.runtime_data
    await run_until(hass, freezer, lambda: coordinator.status.banned_until is not None, limit=60)
    await tick(hass, freezer, 1)  # account entities write at most once a second
    assert coordinator.connection_state == "banned"
    assert state_of(hass, "binary_sensor.sam_demo_rate_limited") == STATE_ON
    assert entry.options["preset"] == "large"
    assert coordinator.manager.pace_reason == "ban"
    assert coordinator.manager.stats().slowdown == 2
    issue = issue_registry.async_get_issue(DOMAIN, f"temporary_ban_{entry.entry_id}")
    assert issue is not None
    banned_until = coordinator.status.banned_until
    assert banned_until is not None
    # An hour of real time, not an hour of simulated time (one minute at 60x).
    assert 3500 < (banned_until - dt_util.utcnow()).total_seconds() < 3700
