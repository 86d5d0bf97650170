"""Prometheus metrics: Home Assistant's real ``prometheus`` integration scraped over HTTP.

The entry talks to the simulator bridge; presence is driven there, and ``/api/prometheus`` is
fetched with the test client, as Prometheus would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import prometheus_client
from prometheus_client.registry import CollectorRegistry
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.bridge.simulator import SimulatorConfig
from custom_components.whatsapp_presence.const import CONF_PROMETHEUS, CONF_PROMETHEUS_JID, DOMAIN
from custom_components.whatsapp_presence.metrics import (
    DATA_METRICS,
    AccountRecord,
    ContactRecord,
    WhatsAppCollector,
    account_label,
    metric_families,
)
from custom_components.whatsapp_presence.presence import ContactPresence

from .common import online_entity, subscribed
from .sim import SimBridge, run_until, simulator_config, tick, until

type ClientFactory = Callable[[], Awaitable[TestClient[Any, Any]]]

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the simulated network's clock at start
ACCOUNT = 'account="Sam Demo"'


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """The scripted network, on a clock that starts at a known instant."""
    return simulator_config(start_time=START)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> CollectorRegistry:
    """A fresh default registry: Home Assistant's prometheus integration fills the global one."""
    fresh = CollectorRegistry(auto_describe=True)
    monkeypatch.setattr(prometheus_client, "REGISTRY", fresh)
    return fresh


@pytest.fixture
async def prometheus(hass: HomeAssistant, registry: CollectorRegistry) -> None:
    """Home Assistant's prometheus integration, as a user configures it (auth required)."""
    assert await async_setup_component(hass, "prometheus", {"prometheus": {}})


@pytest.fixture
async def init_integration(prometheus: None, init_integration: MockConfigEntry) -> MockConfigEntry:
    """The conftest's loaded entry, set up after the prometheus integration (as at start-up)."""
    return init_integration


async def scrape(hass_client: ClientFactory) -> list[str]:
    """Every line of ``/api/prometheus``."""
    client = await hass_client()
    response = await client.get("/api/prometheus")
    assert response.status == 200
    return (await response.text()).splitlines()


def samples(lines: list[str], prefix: str = "whatsapp_") -> list[str]:
    """The sample lines whose metric name starts with ``prefix``, sorted."""
    return sorted(line for line in lines if line.startswith(prefix))


def figures(**values: float) -> list[str]:
    """The account's figure lines: these values, zero for the rest."""
    defaults = {
        "tracked_contacts": 3,
        "active_subscriptions": 3,
        "stale_subscriptions": 0,
        "failed_subscriptions": 0,
        "backoff_subscriptions": 0,
        "queue_length": 0,
        "subscribe_calls_total": 3,
        "subscribe_failures_total": 0,
        "reconnects_total": 0,
        "bridge_connected": 1,
        "whatsapp_connected": 1,
    } | values
    return [f"whatsapp_presence_{name}{{{ACCOUNT}}} {float(v)}" for name, v in defaults.items()]


def contact_lines(
    entity: str,
    name: str,
    *,
    online: bool | None,
    went_online: int = 0,
    went_offline: int = 0,
    last_seen: str | None = None,
    jid: str | None = None,
    online_seconds: float = 0.0,
) -> list[str]:
    """The contact metrics of one contact, as the exposition format writes them."""
    labels = f'{ACCOUNT},entity="{entity}"' + (f',jid="{jid}"' if jid else "") + f',name="{name}"'
    lines = [
        f'whatsapp_contact_status_changes_total{{{labels},status="offline"}} {float(went_offline)}',
        f'whatsapp_contact_status_changes_total{{{labels},status="online"}} {float(went_online)}',
        f"whatsapp_contact_online_seconds_total{{{labels}}} {float(online_seconds)}",
    ]
    if online is not None:
        lines.append(f"whatsapp_contact_online{{{labels}}} {float(online)}")
    if last_seen is not None:
        lines.append(f"whatsapp_contact_last_seen_timestamp_seconds{{{labels}}} {last_seen}")
    return lines


async def test_scrape_shows_presence_changes_and_figures(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    hass_client: ClientFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Presence driven in the simulator shows up, line for line, next to Home Assistant's own."""
    coordinator = init_integration.runtime_data
    alice, bob, carol = (await sim_bridge.contacts())[:3]
    ids = [online_entity(entity_registry, c["jid"]) for c in (alice, bob, carol)]
    # Carol comes online before her subscription: her first report says online (not a change).
    assert coordinator.presence[carol["jid"]].online is None
    await sim_bridge.command("sim.set_presence", jid=carol["jid"], online=True)
    await subscribed(hass, freezer, coordinator.entry, 3)
    await until(hass, lambda: all(p.online is not None for p in coordinator.presence.values()))

    # Alice: offline (first report, not a change) -> online -> offline 5 min later -> online.
    await sim_bridge.command("sim.set_presence", jid=alice["jid"], online=True)
    await until(hass, lambda: coordinator.presence[alice["jid"]].online is True)
    sim_bridge.advance(300)
    await sim_bridge.command("sim.set_presence", jid=alice["jid"], online=False)
    await until(hass, lambda: coordinator.presence[alice["jid"]].online is False)
    sim_bridge.advance(60)
    await sim_bridge.command("sim.set_presence", jid=alice["jid"], online=True)
    await until(hass, lambda: coordinator.presence[alice["jid"]].online is True)
    # Bob: offline again, with an older last seen: a report, not a status change.
    await sim_bridge.command(
        "sim.set_presence", jid=bob["jid"], online=False, last_seen=START - 7200
    )
    await until(hass, lambda: _seen(coordinator.presence[bob["jid"]]) == START - 7200)

    lines = await scrape(hass_client)
    # Carol has been online since her subscription's answer: the same figure as her online
    # time (the simulator's clock moved, Home Assistant's did not).
    carol_online = coordinator.activity.snapshot(carol["jid"])
    assert carol_online is not None

    assert samples(lines) == sorted(
        [
            *contact_lines(
                ids[0],
                alice["name"],
                online=True,
                went_online=2,
                went_offline=1,
                last_seen="1.76722596e+09",  # START + 360: observed coming online
            ),
            *contact_lines(ids[1], bob["name"], online=False, last_seen="1.7672184e+09"),
            # Carol: online since her first report, observed at the start.
            *contact_lines(
                ids[2],
                carol["name"],
                online=True,
                last_seen="1.7672256e+09",
                online_seconds=carol_online.total,
            ),
            *figures(),
        ]
    )
    assert samples(lines, "homeassistant_binary_sensor_state") == sorted(
        f'homeassistant_binary_sensor_state{{domain="binary_sensor",entity="{entity}",'
        f'friendly_name="{name}"}} {value}'
        for entity, name, value in (
            ("binary_sensor.sam_demo_whatsapp_connection", "Sam Demo WhatsApp connection", 1.0),
            ("binary_sensor.sam_demo_rate_limited", "Sam Demo Rate limited", 0.0),
            (ids[0], f"{alice['name']} Online", 1.0),
            (ids[1], f"{bob['name']} Online", 0.0),
            (ids[2], f"{carol['name']} Online", 1.0),
        )
    )
    for name, kind in (
        ("whatsapp_contact_online", "gauge"),
        ("whatsapp_contact_status_changes_total", "counter"),
        ("whatsapp_contact_last_seen_timestamp_seconds", "gauge"),
        ("whatsapp_contact_online_seconds_total", "counter"),
        ("whatsapp_presence_subscribe_calls_total", "counter"),
        ("whatsapp_presence_bridge_connected", "gauge"),
    ):
        assert lines.count(f"# TYPE {name} {kind}") == 1


async def test_online_seconds_match_online_today(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    hass_client: ClientFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The counter grows while the contact is online, and agrees with *Online today*."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    alice = (await sim_bridge.contacts())[0]
    await sim_bridge.command("sim.set_presence", jid=alice["jid"], online=True)
    await until(hass, lambda: coordinator.presence[alice["jid"]].online is True)
    await tick(hass, freezer, 300, step=60)
    running = [
        line
        for line in await scrape(hass_client)
        if line.startswith("whatsapp_contact_online_seconds") and alice["name"] in line
    ]
    assert [float(line.rsplit(" ", 1)[1]) for line in running] == [300.0]
    await tick(hass, freezer, 120, step=60)
    await sim_bridge.command("sim.set_presence", jid=alice["jid"], online=False)
    await until(hass, lambda: coordinator.presence[alice["jid"]].online is False)
    await tick(hass, freezer, 600, step=60)  # offline time adds nothing
    ended = [
        line
        for line in await scrape(hass_client)
        if line.startswith("whatsapp_contact_online_seconds") and alice["name"] in line
    ]
    today = entity_registry.async_get_entity_id(
        "sensor", DOMAIN, f"12025550100_{alice['jid'].split('@')[0]}_online_today"
    )
    assert today is not None
    state = hass.states.get(today)
    assert state is not None
    assert [float(line.rsplit(" ", 1)[1]) for line in ended] == [float(state.state) * 60] == [420.0]


def _seen(presence: ContactPresence) -> float | None:
    return presence.last_seen.timestamp() if presence.last_seen else None


@pytest.mark.parametrize(
    "sim_config", [simulator_config(start_time=START, unresponsive_fraction=1.0)]
)
async def test_unknown_presence_is_absent_not_zero(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    hass_client: ClientFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Subscribed but WhatsApp says nothing: no online sample and no invented last seen."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)

    lines = samples(await scrape(hass_client))

    assert not [line for line in lines if line.startswith("whatsapp_contact_online{")]
    assert not [line for line in lines if line.startswith("whatsapp_contact_last_seen")]
    assert len([line for line in lines if line.startswith("whatsapp_contact_status")]) == 6
    online_time = [line for line in lines if line.startswith("whatsapp_contact_online_seconds")]
    assert len(online_time) == 3
    assert all(line.endswith(" 0.0") for line in online_time)
    assert all(line.endswith(" 0.0") for line in lines if "status_changes" in line)
    assert set(figures()) <= set(lines)


async def test_outage_figures(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    hass_client: ClientFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Reconnects, failures and backoff are counted; presence is hidden once unavailable."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    alice = (await sim_bridge.contacts())[0]

    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not coordinator.connected)
    await run_until(hass, freezer, lambda: not coordinator.available, limit=120)
    lines = samples(await scrape(hass_client))
    assert "whatsapp_presence_whatsapp_connected{" + ACCOUNT + "} 0.0" in lines
    assert "whatsapp_presence_bridge_connected{" + ACCOUNT + "} 1.0" in lines
    assert not [line for line in lines if line.startswith("whatsapp_contact_online{")]

    await sim_bridge.command("sim.fail_subscribe", jid=alice["jid"], times=1)
    await sim_bridge.command("sim.connect")
    await until(hass, lambda: coordinator.connected)
    await run_until(hass, freezer, lambda: coordinator.manager.stats().in_backoff == 1)
    await subscribed(hass, freezer, coordinator.entry, 2)
    lines = samples(await scrape(hass_client))
    assert set(
        figures(
            active_subscriptions=2,
            failed_subscriptions=1,
            backoff_subscriptions=1,
            subscribe_calls_total=6,
            subscribe_failures_total=1,
            reconnects_total=1,
        )
    ) <= set(lines)
    assert len([line for line in lines if line.startswith("whatsapp_contact_online{")]) == 3


async def test_renames_leave_no_stale_series(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    hass_client: ClientFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A new entity id or a new contact name replaces the series; the counts carry over."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    alice = (await sim_bridge.contacts())[0]
    old_id = online_entity(entity_registry, alice["jid"])
    await sim_bridge.command("sim.set_presence", jid=alice["jid"], online=True)
    await until(hass, lambda: coordinator.presence[alice["jid"]].online is True)

    entity_registry.async_update_entity(old_id, new_entity_id="binary_sensor.best_friend_online")
    await hass.async_block_till_done()
    subentry = next(s for s in entry.subentries.values() if s.data["jid"] == alice["jid"])
    hass.config_entries.async_update_subentry(entry, subentry, title="Best Friend")
    await hass.async_block_till_done()

    lines = await scrape(hass_client)
    ours = samples(lines)
    assert not [line for line in ours if old_id in line or alice["name"] in line]
    assert (
        'whatsapp_contact_online{account="Sam Demo",entity="binary_sensor.best_friend_online",'
        'name="Best Friend"} 1.0'
    ) in ours
    assert (
        'whatsapp_contact_status_changes_total{account="Sam Demo",'
        'entity="binary_sensor.best_friend_online",name="Best Friend",status="online"} 1.0'
    ) in ours


async def test_untracked_contact_leaves_the_scrape(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    hass_client: ClientFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Removing a contact's subentry removes every series of that contact."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    alice = (await sim_bridge.contacts())[0]
    entity = online_entity(entity_registry, alice["jid"])
    assert [line for line in samples(await scrape(hass_client)) if entity in line]

    subentry = next(s for s in entry.subentries.values() if s.data["jid"] == alice["jid"])
    assert hass.config_entries.async_remove_subentry(entry, subentry.subentry_id)
    await hass.async_block_till_done()

    lines = samples(await scrape(hass_client))
    assert not [line for line in lines if entity in line or alice["name"] in line]
    assert f"whatsapp_presence_tracked_contacts{{{ACCOUNT}}} 2.0" in lines
    assert len(samples(lines, "whatsapp_contact_status_changes_total")) == 4


async def test_a_snapshot_is_never_changed_afterwards(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """What a scrape thread holds stays as it was while the loop records new presence."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    alice = (await sim_bridge.contacts())[0]
    await until(hass, lambda: coordinator.presence[alice["jid"]].online is False)
    source = hass.data[DATA_METRICS].sources[entry.entry_id]
    account, before = source.snapshot()

    await sim_bridge.command("sim.set_presence", jid=alice["jid"], online=True)
    await until(hass, lambda: coordinator.presence[alice["jid"]].online is True)
    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not coordinator.connected)

    held = next(r for r in before if r.jid == alice["jid"])
    assert (held.online, held.went_online) == (False, 0)
    assert account.whatsapp_connected
    account_now, after = source.snapshot()
    now = next(r for r in after if r.jid == alice["jid"])
    assert (now.online, now.went_online) == (True, 1)
    assert not account_now.whatsapp_connected


def test_account_label_never_shows_the_number() -> None:
    """A title holding the account's number is replaced by a stable hash."""
    jid = "12025550100@s.whatsapp.net"
    named = MockConfigEntry(domain=DOMAIN, title="Sam Demo")
    numbered = MockConfigEntry(domain=DOMAIN, title="+1 202-555-0100")
    assert account_label(named, jid) == "Sam Demo"
    label = account_label(numbered, jid)
    assert label.startswith("account-")
    assert len(label) == len("account-") + 8  # 8 hex digits of the entry id's hash
    assert label == account_label(numbered, jid)


async def test_options_switch_the_jid_label_and_the_export_live(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    entity_registry: er.EntityRegistry,
    registry: CollectorRegistry,
    hass_client: ClientFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The JID label is opt-in; turning metrics off unregisters them, without a reload."""
    entry = init_integration
    coordinator = entry.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    alice = (await sim_bridge.contacts())[0]
    entity = online_entity(entity_registry, alice["jid"])
    assert not [line for line in samples(await scrape(hass_client)) if "jid=" in line]

    hass.config_entries.async_update_entry(entry, options={CONF_PROMETHEUS_JID: True})
    await hass.async_block_till_done()
    assert (
        f'whatsapp_contact_online{{{ACCOUNT},entity="{entity}",jid="{alice["jid"]}",'
        f'name="{alice["name"]}"}} 0.0'
    ) in samples(await scrape(hass_client))

    hass.config_entries.async_update_entry(entry, options={CONF_PROMETHEUS: False})
    await hass.async_block_till_done()
    assert samples(await scrape(hass_client)) == []
    assert not _our_collectors(registry)
    assert entry.state is ConfigEntryState.LOADED

    hass.config_entries.async_update_entry(entry, options={CONF_PROMETHEUS: True})
    await hass.async_block_till_done()
    assert len(_our_collectors(registry)) == 1
    assert len(samples(await scrape(hass_client), "whatsapp_contact_online{")) == 3


async def test_reloads_and_unload_leave_the_registry_clean(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    registry: CollectorRegistry,
    hass_client: ClientFactory,
) -> None:
    """Two reloads never raise 'Duplicated timeseries'; unloading removes every series."""
    entry = init_integration
    for _ in range(2):
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        assert len(_our_collectors(registry)) == 1
        lines = await scrape(hass_client)
        assert lines.count("# TYPE whatsapp_contact_online gauge") == 1
        assert f"whatsapp_presence_tracked_contacts{{{ACCOUNT}}} 3.0" in lines

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    assert not _our_collectors(registry)
    assert not [name for name in _registered_names(registry) if name.startswith("whatsapp_")]
    assert DATA_METRICS not in hass.data
    assert samples(await scrape(hass_client)) == []


async def test_nothing_is_registered_without_the_prometheus_integration(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    registry: CollectorRegistry,
) -> None:
    """Without ``prometheus:`` there is no /api/prometheus, so no collector either."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()

    assert DATA_METRICS not in hass.data
    assert not _our_collectors(registry)
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)


def test_two_accounts_share_each_metric_family() -> None:
    """Two linked accounts: one HELP/TYPE per family (Prometheus rejects repeats)."""
    first = AccountRecord(account="Home", with_jid=True, available=True, tracked=1)
    second = AccountRecord(account="Work", with_jid=False, available=True, tracked=1)
    contact = ContactRecord(
        jid="12025550101@s.whatsapp.net",
        name="Ann",
        entity_id="binary_sensor.ann_online",
        online=True,
        last_seen=None,
    )
    fresh = CollectorRegistry()

    class Source:
        def collect(self) -> Any:
            return metric_families([(first, [contact]), (second, [contact])])

    fresh.register(Source())  # type: ignore[arg-type]
    text = prometheus_client.generate_latest(fresh).decode().splitlines()

    assert text.count("# TYPE whatsapp_contact_online gauge") == 1
    assert text.count("# TYPE whatsapp_presence_tracked_contacts gauge") == 1
    labels = 'entity="binary_sensor.ann_online",jid="{}",name="Ann"'
    assert samples(text, "whatsapp_contact_online{") == [
        'whatsapp_contact_online{account="Home",'
        + labels.format("12025550101@s.whatsapp.net")
        + "} 1.0",
        'whatsapp_contact_online{account="Work",' + labels.format("") + "} 1.0",
    ]


def _our_collectors(registry: CollectorRegistry) -> list[object]:
    return [c for c in registry._collector_to_names if isinstance(c, WhatsAppCollector)]


def _registered_names(registry: CollectorRegistry) -> list[str]:
    return list(registry._names_to_collectors)


async def test_online_gauges_disappear_while_the_switch_is_off(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientFactory,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Switched off, presence is unknown: the gauges go (not 0) and no change is counted."""
    coordinator = init_integration.runtime_data
    await subscribed(hass, freezer, coordinator.entry, 3)
    before = samples(await scrape(hass_client))
    online = [line for line in before if line.startswith("whatsapp_contact_online{")]
    assert len(online) == 3
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": "switch.sam_demo_online_for_presence"}, blocking=True
    )
    off = samples(await scrape(hass_client))
    assert not [line for line in off if line.startswith("whatsapp_contact_online{")]
    changes = [line for line in off if "status_changes" in line]
    assert changes == [line for line in before if "status_changes" in line]
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": "switch.sam_demo_online_for_presence"}, blocking=True
    )
    await run_until(
        hass,
        freezer,
        lambda: all(p.online is not None for p in coordinator.presence.values()),
    )
    back = samples(await scrape(hass_client))
    assert [line for line in back if line.startswith("whatsapp_contact_online{")] == online
    assert [line for line in back if "status_changes" in line] == changes
