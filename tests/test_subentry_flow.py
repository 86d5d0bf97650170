"""Contacts and groups as subentries, against a loaded entry on the simulator bridge."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.bridge.protocol import (
    BridgeConnectionError,
    BridgeError,
    ErrorCode,
)
from custom_components.whatsapp_presence.bridge.simulator import SimulatorConfig
from custom_components.whatsapp_presence.const import (
    CONF_JID,
    CONF_PHONE,
    CONF_PRIORITY,
    DOMAIN,
    SUBENTRY_CONTACT,
    SUBENTRY_GROUP,
)
from custom_components.whatsapp_presence.subentry_flow import _bridge_abort_reason

from .flows import TRANSLATIONS, assert_translated
from .sim import ACCOUNT_PHONE, SimBridge, simulator_config, until


@pytest.fixture
def sim_config(request: pytest.FixtureRequest) -> SimulatorConfig:
    """The conftest network, with per-test changes (``indirect`` parametrisation)."""
    return simulator_config(**getattr(request, "param", {}))


async def start(hass: HomeAssistant, entry: MockConfigEntry, kind: str) -> Any:
    """Open the add-contact or add-group dialog."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind), context={"source": SOURCE_USER}
    )
    assert_translated(result, TRANSLATIONS["config_subentries"][kind])
    return result


async def submit(hass: HomeAssistant, kind: str, flow_id: str, user_input: Any) -> Any:
    """Submit the dialog."""
    result = await hass.config_entries.subentries.async_configure(flow_id, user_input)
    assert_translated(result, TRANSLATIONS["config_subentries"][kind])
    return result


async def untracked(sim_bridge: SimBridge, entry: MockConfigEntry) -> list[dict[str, Any]]:
    """The simulated address book minus the contacts the entry tracks."""
    tracked = {sub.unique_id for sub in entry.subentries.values()}
    return [c for c in await sim_bridge.contacts() if c["jid"] not in tracked]


async def test_needs_a_loaded_account(hass: HomeAssistant) -> None:
    """Without a running bridge there is no address book to pick from."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id=ACCOUNT_PHONE)
    entry.add_to_hass(hass)
    for kind in (SUBENTRY_CONTACT, SUBENTRY_GROUP):
        result = await start(hass, entry, kind)
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "entry_not_loaded"


async def test_add_a_contact_from_the_address_book_then_remove_it(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """Pick a contact: tracked at once (no reload); removing it stops tracking."""
    entry = init_integration
    coordinator = entry.runtime_data
    candidates = await untracked(sim_bridge, entry)
    result = await start(hass, entry, SUBENTRY_CONTACT)
    assert result["type"] is FlowResultType.FORM
    offered = result["data_schema"].schema["contact"].config["options"]
    assert {option["value"] for option in offered} == {c["jid"] for c in candidates}
    labels = [option["label"] for option in offered]
    assert labels == sorted(labels, key=str.casefold)
    chosen = candidates[0]
    result = await submit(
        hass, SUBENTRY_CONTACT, result["flow_id"], {"contact": chosen["jid"], "priority": "high"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == chosen["name"]
    assert result["data"] == {
        CONF_JID: chosen["jid"],
        CONF_PHONE: chosen["phone"],
        CONF_PRIORITY: 1,
    }
    subentry = next(s for s in entry.subentries.values() if s.unique_id == chosen["jid"])
    await until(hass, lambda: chosen["jid"] in coordinator.tracked)
    assert coordinator.tracked[chosen["jid"]].priority == 1

    hass.config_entries.async_remove_subentry(entry, subentry.subentry_id)
    await until(hass, lambda: chosen["jid"] not in coordinator.tracked)


async def test_add_a_contact_by_number(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """A number typed in the search field is normalised and checked on WhatsApp."""
    entry = init_integration
    result = await start(hass, entry, SUBENTRY_CONTACT)
    flow_id = result["flow_id"]
    result = await submit(hass, SUBENTRY_CONTACT, flow_id, {"priority": "low"})
    assert result["errors"] == {"base": "no_contact"}
    result = await submit(hass, SUBENTRY_CONTACT, flow_id, {"contact": "555", "priority": "low"})
    assert result["errors"] == {"contact": "invalid_phone"}
    result = await submit(
        hass, SUBENTRY_CONTACT, flow_id, {"contact": "+44 7700 900123", "priority": "low"}
    )
    assert result["errors"] == {"base": "not_on_whatsapp"}
    result = await submit(
        hass, SUBENTRY_CONTACT, flow_id, {"contact": f"+{ACCOUNT_PHONE}", "priority": "low"}
    )
    assert result["errors"] == {"base": "own_account"}
    chosen = (await untracked(sim_bridge, entry))[0]
    spaced = f"+{chosen['phone'][0]} ({chosen['phone'][1:4]}) {chosen['phone'][4:]}"
    result = await submit(
        hass,
        SUBENTRY_CONTACT,
        flow_id,
        {"contact": spaced, "priority": "low"},  # typed rather than picked: same contact
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == chosen["name"]
    assert result["data"][CONF_PRIORITY] == 3

    result = await start(hass, entry, SUBENTRY_CONTACT)
    offered = result["data_schema"].schema["contact"].config["options"]
    assert chosen["jid"] not in {option["value"] for option in offered}
    result = await submit(
        hass,
        SUBENTRY_CONTACT,
        result["flow_id"],
        {"contact": f"00{chosen['phone']}", "priority": "medium"},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_contact_added_meanwhile_in_another_dialog(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """Two dialogs pick the same contact: the second is told it is tracked already."""
    chosen = (await untracked(sim_bridge, init_integration))[0]
    first = await start(hass, init_integration, SUBENTRY_CONTACT)
    second = await start(hass, init_integration, SUBENTRY_CONTACT)
    pick = {"contact": chosen["jid"], "priority": "medium"}
    result = await submit(hass, SUBENTRY_CONTACT, first["flow_id"], pick)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    result = await submit(hass, SUBENTRY_CONTACT, second["flow_id"], pick)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_number_of_a_stranger_is_titled_by_number(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """On WhatsApp but not in the address book (met in a group): titled "+digits"."""
    contacts = {c["jid"] for c in await sim_bridge.contacts()}
    groups = await sim_bridge.backend.groups()
    members = await sim_bridge.backend.group_participants(groups[0]["jid"])
    stranger = next(
        m for m in members if m["jid"] not in contacts and not m["jid"].startswith(ACCOUNT_PHONE)
    )
    result = await start(hass, init_integration, SUBENTRY_CONTACT)
    result = await submit(
        hass,
        SUBENTRY_CONTACT,
        result["flow_id"],
        {"contact": f"+{stranger['phone']}", "priority": "medium"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"+{stranger['phone']}"
    assert result["data"][CONF_PRIORITY] == 2


@pytest.mark.parametrize("sim_config", [{"query_limit": 1}], indirect=True)
async def test_number_lookups_rate_limited(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """WhatsApp's 429 on lookups is named, and the dialog stays open."""
    result = await start(hass, init_integration, SUBENTRY_CONTACT)
    flow_id = result["flow_id"]
    result = await submit(
        hass, SUBENTRY_CONTACT, flow_id, {"contact": "+44 7700 900123", "priority": "low"}
    )
    assert result["errors"] == {"base": "not_on_whatsapp"}
    result = await submit(
        hass, SUBENTRY_CONTACT, flow_id, {"contact": "+44 7700 900124", "priority": "low"}
    )
    assert result["errors"] == {"base": "rate_limited"}


async def test_bridge_gone(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """The bridge goes away: an open dialog says so; a new one is refused."""
    result = await start(hass, init_integration, SUBENTRY_CONTACT)
    await sim_bridge.server.stop()
    await until(hass, lambda: not init_integration.runtime_data.status.bridge_connected)
    result = await submit(
        hass, SUBENTRY_CONTACT, result["flow_id"], {"contact": "+44 7700 900123", "priority": "low"}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    for kind in (SUBENTRY_CONTACT, SUBENTRY_GROUP):
        result = await start(hass, init_integration, kind)
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "cannot_connect"


async def test_whatsapp_still_connecting(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """The bridge answers but WhatsApp is not connected (yet): say so, not 'cannot connect'.

    The address book is local, so the contact picker still opens; groups need WhatsApp.
    """
    await sim_bridge.command("sim.disconnect", reconnect_after=None)
    await until(hass, lambda: not init_integration.runtime_data.connected)
    result = await start(hass, init_integration, SUBENTRY_CONTACT)
    assert result["type"] is FlowResultType.FORM
    result = await start(hass, init_integration, SUBENTRY_GROUP)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_connected"


async def test_add_a_group(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """Pick a group: its members are tracked; the same group cannot be added twice."""
    entry = init_integration
    coordinator = entry.runtime_data
    groups = await sim_bridge.backend.groups()
    result = await start(hass, entry, SUBENTRY_GROUP)
    second = await start(hass, entry, SUBENTRY_GROUP)  # another dialog, open meanwhile
    assert result["type"] is FlowResultType.FORM
    offered = result["data_schema"].schema["group"].config["options"]
    assert {o["value"] for o in offered} == {g["jid"] for g in groups}
    group = groups[0]
    assert f"{group['name']} ({group['participants']})" in {o["label"] for o in offered}
    result = await submit(
        hass, SUBENTRY_GROUP, result["flow_id"], {"group": group["jid"], "priority": "medium"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == group["name"]
    assert result["data"] == {CONF_JID: group["jid"], "name": group["name"], CONF_PRIORITY: 2}
    await until(hass, lambda: group["jid"] in coordinator.group_members)

    result = await start(hass, entry, SUBENTRY_GROUP)
    offered = result["data_schema"].schema["group"].config["options"]
    assert group["jid"] not in {o["value"] for o in offered}
    result = await submit(
        hass, SUBENTRY_GROUP, second["flow_id"], {"group": group["jid"], "priority": "low"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize("sim_config", [{"groups": 0}], indirect=True)
async def test_no_group_to_add(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """An account in no group gets a plain answer, not an empty list."""
    result = await start(hass, init_integration, SUBENTRY_GROUP)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_groups"


@pytest.mark.parametrize("sim_config", [{"query_limit": 1}], indirect=True)
async def test_group_list_rate_limited(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """WhatsApp's 429 on the group list is named."""
    result = await start(hass, init_integration, SUBENTRY_GROUP)
    assert result["type"] is FlowResultType.FORM
    hass.config_entries.subentries.async_abort(result["flow_id"])
    result = await start(hass, init_integration, SUBENTRY_GROUP)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "rate_limited"


async def test_change_a_contacts_priority(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Reconfiguring a tracked contact changes its priority, live (no reload)."""
    entry = init_integration
    coordinator = entry.runtime_data
    subentry = next(s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_CONTACT)
    jid = subentry.data[CONF_JID]
    assert coordinator.tracked[jid].priority == 2
    result = await entry.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["description_placeholders"] == {"title": subentry.title}
    assert_translated(result, TRANSLATIONS["config_subentries"][SUBENTRY_CONTACT])
    result = await submit(hass, SUBENTRY_CONTACT, result["flow_id"], {"priority": "high"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[subentry.subentry_id].data[CONF_PRIORITY] == 1
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is coordinator  # not reloaded
    await until(hass, lambda: coordinator.tracked[jid].priority == 1)


async def test_change_a_groups_priority(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """Groups have the same priority dialog."""
    entry = init_integration
    group = (await sim_bridge.backend.groups())[0]
    result = await start(hass, entry, SUBENTRY_GROUP)
    await submit(
        hass, SUBENTRY_GROUP, result["flow_id"], {"group": group["jid"], "priority": "low"}
    )
    subentry = next(s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_GROUP)
    result = await entry.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    assert_translated(result, TRANSLATIONS["config_subentries"][SUBENTRY_GROUP])
    result = await submit(hass, SUBENTRY_GROUP, result["flow_id"], {"priority": "medium"})
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[subentry.subentry_id].data[CONF_PRIORITY] == 2


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (BridgeError(ErrorCode.RATE_LIMITED, "429"), "rate_limited"),
        (BridgeConnectionError("gone"), "cannot_connect"),
        (BridgeError(ErrorCode.NOT_CONNECTED, "connecting"), "not_connected"),
        (BridgeError(ErrorCode.NOT_LOGGED_IN, "logged out"), "not_connected"),
        (BridgeError(ErrorCode.INTERNAL, "broken"), "cannot_connect"),
    ],
)
def test_bridge_errors_become_the_users_reasons(error: BridgeError, reason: str) -> None:
    """Each bridge error a listing can meet is named in the user's terms (translated)."""
    assert _bridge_abort_reason(error) == reason
    assert reason in TRANSLATIONS["config_subentries"]["contact"]["abort"]
