"""Discovery: the add-on's payload, and the config flow's one-click ``hassio`` step.

The payload parser lives in ``discovery.py``; the ``hassio`` and ``hassio_confirm`` steps are
the config flow's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_IGNORE
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from yarl import URL

from custom_components.whatsapp_presence.const import (
    CONF_ACCOUNT_JID,
    CONF_ADDON,
    CONF_MODE,
    CONF_PRESET,
    DOMAIN,
    MODE_REMOTE,
)
from custom_components.whatsapp_presence.discovery import DiscoveredBridge, bridge_from_discovery
from tests.flows import SIM_ACCOUNT, TRANSLATIONS, round_trip, sim_command, sim_server
from tests.sim import TOKEN, SimBridge, simulator_config

from .runner import SIMULATOR, AddonProcess, image_tree

ADDON_NAME = "WhatsApp Presence Bridge"
SLUG = "a0d7b954_whatsapp_presence_bridge"

# ---------------------------------------------------------------------- the payload


@pytest.mark.parametrize(
    ("config", "url"),
    [
        (
            {"host": "a0d7b954-whatsapp-presence-bridge", "port": 8765, "token": "t"},
            "ws://a0d7b954-whatsapp-presence-bridge:8765/ws",
        ),
        ({"host": "172.30.33.4", "port": "8765", "token": " t "}, "ws://172.30.33.4:8765/ws"),
        ({"host": "fd00::4", "port": 1, "token": "t"}, "ws://[fd00::4]:1/ws"),
        ({"host": "[fd00::4]", "port": 65535, "token": "t"}, "ws://[fd00::4]:65535/ws"),
    ],
)
def test_payload_to_url(config: dict[str, Any], url: str) -> None:
    """Hostname, IPv4, IPv6 (bracketed in the URL), a port given as text."""
    bridge = bridge_from_discovery(config)
    assert bridge.url == url
    assert bridge.token == "t"
    assert URL(bridge.url).port == bridge.port


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"port": 8765, "token": "k3y-Xq9"},
        {"host": "", "port": 8765, "token": "k3y-Xq9"},
        {"host": "bad host", "port": 8765, "token": "k3y-Xq9"},
        {"host": "http://x", "port": 8765, "token": "k3y-Xq9"},
        {"host": "x/ws", "port": 8765, "token": "k3y-Xq9"},
        {"host": "user@x", "port": 8765, "token": "k3y-Xq9"},
        {"host": "-x", "port": 8765, "token": "k3y-Xq9"},
        {"host": "x", "token": "k3y-Xq9"},
        {"host": "x", "port": 0, "token": "k3y-Xq9"},
        {"host": "x", "port": 65536, "token": "k3y-Xq9"},
        {"host": "x", "port": True, "token": "k3y-Xq9"},
        {"host": "x", "port": "80a", "token": "k3y-Xq9"},
        {"host": "x", "port": 8765.5, "token": "k3y-Xq9"},
        {"host": "x", "port": 8765},
        {"host": "x", "port": 8765, "token": "  "},
        {"host": "x", "port": 8765, "token": "a\nb"},
        {"host": "x", "port": 8765, "token": "k3y-Xq9" * 513},
        {"host": "x", "port": 8765, "token": 12345},
    ],
)
def test_unusable_payloads(config: dict[str, Any]) -> None:
    """Each is refused with a reason that never repeats the token."""
    with pytest.raises(ValueError) as err:
        bridge_from_discovery(config)
    token = config.get("token")
    if isinstance(token, str) and token.strip():
        assert token.strip() not in str(err.value)


def test_payload_must_be_an_object() -> None:
    """A list is not a payload."""
    with pytest.raises(ValueError):
        bridge_from_discovery([("host", "x")])  # type: ignore[arg-type]


def test_add_on_name_comes_from_the_supervisor() -> None:
    """Home Assistant adds the add-on's name to the payload as ``addon``."""
    config = {"host": "x", "port": 1, "token": "t", "addon": "My bridge"}
    assert bridge_from_discovery(config, "fallback").name == "My bridge"
    assert bridge_from_discovery({"host": "x", "port": 1, "token": "t"}, "fb").name == "fb"


# ---------------------------------------------------------------------- the flow


@pytest.fixture
def sim_config() -> Any:
    """The add-on's bridge holds no session yet: the flow pairs it."""
    return simulator_config(paired=False, pairing_delay=0.0)


def service_info(url: str, token: str = TOKEN, slug: str = SLUG, **extra: Any) -> HassioServiceInfo:
    """What Home Assistant's hassio integration hands the flow for a discovery message."""
    parsed = URL(url)
    config = {"host": parsed.host, "port": parsed.port, "token": token, "addon": ADDON_NAME}
    config.update(extra)
    return HassioServiceInfo(config=config, name=ADDON_NAME, slug=slug, uuid="0" * 32)


async def discover(hass: HomeAssistant, info: HassioServiceInfo) -> Any:
    """Home Assistant starts the flow for a discovery message."""
    return await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=info
    )


async def pair_and_create(hass: HomeAssistant, flow_id: str) -> Any:
    """From the pairing menu: plain QR, the phone links, medium preset, entry."""
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"next_step_id": "pair_qr_static"}
    )
    assert result["type"] is FlowResultType.FORM
    await sim_command(hass, flow_id, "sim.complete_pairing")
    await round_trip(hass, flow_id)
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["step_id"] == "preset"
    return await hass.config_entries.flow.async_configure(flow_id, {CONF_PRESET: "medium"})


@pytest.mark.usefixtures("mock_setup_entry", "config_dir")
async def test_discovered_add_on_pairs_with_one_click(
    hass: HomeAssistant, sim_bridge: SimBridge
) -> None:
    """Confirm, pair, entry: the address and token are the announced ones."""
    result = await discover(hass, service_info(sim_bridge.url))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"
    assert result["description_placeholders"] == {"addon": ADDON_NAME}
    (progress,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert progress["context"]["title_placeholders"] == {"name": ADDON_NAME}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "pair"
    result = await pair_and_create(hass, result["flow_id"])
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_MODE] == MODE_REMOTE
    assert result["data"][CONF_URL] == sim_bridge.url
    assert result["data"][CONF_TOKEN] == TOKEN
    assert result["data"][CONF_ACCOUNT_JID] == f"{SIM_ACCOUNT}@s.whatsapp.net"
    assert result["data"][CONF_ADDON] == SLUG  # only this add-on may change the token later
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    assert entry.source == SOURCE_HASSIO
    assert entry.unique_id == SIM_ACCOUNT


@pytest.mark.usefixtures("mock_setup_entry", "config_dir", "socket_enabled")
async def test_already_paired_add_on_skips_pairing(hass: HomeAssistant) -> None:
    """An add-on that already holds a session goes straight to the pace."""
    async with sim_server(paired=True) as bridge:
        result = await discover(hass, service_info(bridge.url))
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        assert result["step_id"] == "preset"
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_PRESET: "small"}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert (await bridge.backend.status())["paired"]


async def test_rediscovery_of_a_configured_add_on_takes_its_new_token(
    hass: HomeAssistant,
) -> None:
    """Same address: no new flow; a changed token goes into the entry, which reloads."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=SIM_ACCOUNT,
        data={
            CONF_MODE: MODE_REMOTE,
            CONF_URL: "ws://127.0.0.1:8765/ws",
            CONF_TOKEN: "old",
            CONF_ADDON: SLUG,
        },
    )
    entry.add_to_hass(hass)
    with patch.object(hass.config_entries, "async_schedule_reload") as reload:
        result = await discover(hass, service_info("ws://127.0.0.1:8765/ws", token="old"))
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "already_configured"
        reload.assert_not_called()
        result = await discover(hass, service_info("ws://127.0.0.1:8765/ws", token="new"))
        assert result["reason"] == "already_configured"
    assert entry.data[CONF_TOKEN] == "new"
    reload.assert_called_once_with(entry.entry_id)


async def test_another_add_on_cannot_change_an_entry(hass: HomeAssistant) -> None:
    """A discovery naming an entry's address changes nothing unless that add-on made the entry."""
    by_hand = MockConfigEntry(
        domain=DOMAIN,
        unique_id=SIM_ACCOUNT,
        data={CONF_MODE: MODE_REMOTE, CONF_URL: "ws://127.0.0.1:8765/ws", CONF_TOKEN: "mine"},
    )
    by_hand.add_to_hass(hass)
    other_addon = MockConfigEntry(
        domain=DOMAIN,
        unique_id="12025550142",
        data={
            CONF_MODE: MODE_REMOTE,
            CONF_URL: "ws://10.0.0.7:8765/ws",
            CONF_TOKEN: "theirs",
            CONF_ADDON: "another_addon",
        },
    )
    other_addon.add_to_hass(hass)
    with patch.object(hass.config_entries, "async_schedule_reload") as reload:
        for url in ("ws://127.0.0.1:8765/ws", "ws://10.0.0.7:8765/ws"):
            result = await discover(hass, service_info(url, token="attacker"))
            assert result["reason"] == "already_configured"
        reload.assert_not_called()
    assert by_hand.data[CONF_TOKEN] == "mine"
    assert other_addon.data[CONF_TOKEN] == "theirs"


async def test_other_address_or_mode_is_a_new_bridge(hass: HomeAssistant) -> None:
    """A demo entry, or a bridge at another address, does not hide a discovered add-on."""
    MockConfigEntry(domain=DOMAIN, unique_id="1", data={CONF_MODE: "simulator"}).add_to_hass(hass)
    MockConfigEntry(
        domain=DOMAIN,
        unique_id="2",
        data={CONF_MODE: MODE_REMOTE, CONF_URL: "ws://other:8765/ws", CONF_TOKEN: TOKEN},
    ).add_to_hass(hass)
    result = await discover(hass, service_info("ws://127.0.0.1:8765/ws"))
    assert result["step_id"] == "hassio_confirm"


async def test_ignored_add_on_stays_ignored(hass: HomeAssistant) -> None:
    """Ignoring the discovered card stores the add-on's id; later announcements stay silent."""
    MockConfigEntry(domain=DOMAIN, source=SOURCE_IGNORE, unique_id=f"hassio_{SLUG}").add_to_hass(
        hass
    )
    result = await discover(hass, service_info("ws://127.0.0.1:8765/ws"))
    assert result["reason"] == "already_configured"


async def test_one_flow_per_add_on(hass: HomeAssistant) -> None:
    """A second announcement while the first card is open does not open another."""
    first = await discover(hass, service_info("ws://127.0.0.1:8765/ws"))
    assert first["type"] is FlowResultType.FORM
    second = await discover(hass, service_info("ws://127.0.0.1:8765/ws"))
    assert second["reason"] == "already_in_progress"


async def test_unusable_announcement_is_refused(hass: HomeAssistant) -> None:
    """A payload without a token (or with a bad host) ends the flow at once."""
    result = await discover(hass, service_info("ws://127.0.0.1:8765/ws", token=""))
    assert result["reason"] == "invalid_discovery_info"
    result = await discover(hass, service_info("ws://127.0.0.1:8765/ws", host="a b"))
    assert result["reason"] == "invalid_discovery_info"


async def test_confirm_reports_connection_errors(
    hass: HomeAssistant, sim_bridge: SimBridge
) -> None:
    """Stopped add-on, or a token the bridge no longer accepts: the card says why."""
    result = await discover(hass, service_info("ws://127.0.0.1:1/ws", slug="a"))
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["step_id"] == "hassio_confirm"
    assert result["errors"] == {"base": "cannot_connect"}
    result = await discover(hass, service_info(sim_bridge.url, token="stale", slug="b"))
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["errors"] == {"base": "invalid_auth"}


@pytest.mark.usefixtures("mock_setup_entry", "config_dir", "socket_enabled")
async def test_add_on_entry_point_to_entry(hass: HomeAssistant, tmp_path: Path) -> None:
    """The whole path: run.sh announces, Home Assistant's flow takes the payload and pairs."""
    addon = AddonProcess(image_tree(tmp_path / "image"), tmp_path / "data")
    try:
        await addon.start(*SIMULATOR)
        (message,) = addon.discoveries()
        info = HassioServiceInfo(
            config={**message["config"], "addon": ADDON_NAME},
            name=ADDON_NAME,
            slug=SLUG,
            uuid=message["uuid"],
        )
        result = await discover(hass, info)
        assert result["step_id"] == "hassio_confirm"
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        assert result["step_id"] == "pair"
        result = await pair_and_create(hass, result["flow_id"])
        assert result["type"] is FlowResultType.CREATE_ENTRY
        expected = bridge_from_discovery(message["config"])
        assert result["data"][CONF_URL] == expected.url == f"ws://127.0.0.1:{addon.port}/ws"
        assert result["data"][CONF_TOKEN] == expected.token
        assert await addon.stop() == 0
    finally:
        await addon.kill()


def test_flow_texts_for_discovery() -> None:
    """Once wired: the confirm card, the discovered title and the abort reason have text."""
    strings = TRANSLATIONS["config"]
    if "hassio_confirm" not in strings["step"]:
        pytest.skip("translations/en.json has no hassio_confirm step yet (wiring pending)")
    step = strings["step"]["hassio_confirm"]
    assert step["title"]
    assert "{addon}" in step["description"]
    assert "{name}" in strings["flow_title"]
    assert strings["abort"]["invalid_discovery_info"]
    assert strings["abort"]["already_in_progress"]


def test_discovered_bridge_is_immutable() -> None:
    """The flow keeps the parsed payload; nothing may change it between steps."""
    bridge = DiscoveredBridge("x", 1, "t", "n")
    with pytest.raises(AttributeError):
        bridge.token = "other"  # type: ignore[misc]
