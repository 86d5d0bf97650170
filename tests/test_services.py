"""Actions, through Home Assistant's service layer, against the simulated network."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.auth.models import User
from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.whatsapp_presence.const import (
    CONF_BATCH_DELAY,
    CONF_BATCH_SIZE,
    CONF_PRESET,
    CONF_SUBSCRIPTION_DELAY,
    DOMAIN,
    SUBENTRY_CONTACT,
)
from custom_components.whatsapp_presence.manager import Priority
from custom_components.whatsapp_presence.options import (
    PRIORITY_NAMES,
    priority_name,
    priority_value,
)

from .common import subscribed
from .sim import SimBridge, run_until


def contact_subentries(entry: MockConfigEntry) -> dict[str, str]:
    """jid -> title of the entry's contact subentries."""
    return {
        s.data["jid"]: s.title
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_CONTACT
    }


async def test_add_contacts_checks_every_number_first(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """One malformed number: a translated error, and nothing is added."""
    entry = init_integration
    people = await sim_bridge.contacts()
    before = contact_subentries(entry)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "add_contacts",
            {ATTR_CONFIG_ENTRY_ID: entry.entry_id, "numbers": [f"+{people[4]['phone']}", "12ab"]},
            blocking=True,
        )
    assert err.value.translation_key == "invalid_phones"
    assert err.value.translation_placeholders == {"numbers": "12ab"}
    assert contact_subentries(entry) == before


async def test_add_contacts_resolves_and_reports(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """Numbers on WhatsApp become contacts named from the address book; others are reported."""
    entry = init_integration
    people = await sim_bridge.contacts()
    new = people[6]
    response = await hass.services.async_call(
        DOMAIN,
        "add_contacts",
        {
            ATTR_CONFIG_ENTRY_ID: entry.entry_id,
            "numbers": [f"+{new['phone']}", f"+{people[0]['phone']}", "+1 202 555 0199"],
            "priority": "high",
        },
        blocking=True,
        return_response=True,
    )
    assert response == {
        "added": [f"+{new['phone']}"],
        "already_tracked": [f"+{people[0]['phone']}"],
        "not_on_whatsapp": ["+1 202 555 0199"],
    }
    assert contact_subentries(entry)[new["jid"]] == new["name"]
    await hass.async_block_till_done()
    assert entry.runtime_data.tracked[new["jid"]].priority == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"query": "+1 202 555 0177", "on_whatsapp": True, "jid": "12025550177@s.whatsapp.net"},
        {"query": None, "on_whatsapp": True, "jid": "123456789@lid"},
        {"query": None, "on_whatsapp": True, "jid": None},
    ],
    ids=["unasked_number", "not_a_contact_jid", "no_jid"],
)
async def test_add_contacts_refuses_a_bad_answer_of_the_bridge(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    answer: dict[str, Any],
) -> None:
    """A bridge (of another version, or broken) answering a number it was not asked, or
    with a JID no contact has: a translated error that names no number, nothing added."""
    entry = init_integration
    new = (await sim_bridge.contacts())[6]

    async def resolve(queries: list[str]) -> list[dict[str, Any]]:
        return [{**answer, "query": answer["query"] or query} for query in queries]

    monkeypatch.setattr(sim_bridge.server, "_resolve", resolve)
    before = contact_subentries(entry)
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            "add_contacts",
            {ATTR_CONFIG_ENTRY_ID: entry.entry_id, "numbers": [f"+{new['phone']}"]},
            blocking=True,
        )
    assert err.value.translation_key == "invalid_resolution"
    assert new["phone"] not in str(err.value)
    assert contact_subentries(entry) == before
    assert new["phone"] not in caplog.text
    assert "5550177" not in caplog.text


async def test_remove_contact(
    hass: HomeAssistant, init_integration: MockConfigEntry, sim_bridge: SimBridge
) -> None:
    """Removing by number drops the subentry; an unknown number is a clear error."""
    entry = init_integration
    first = (await sim_bridge.contacts())[0]
    await hass.services.async_call(
        DOMAIN,
        "remove_contact",
        {ATTR_CONFIG_ENTRY_ID: entry.entry_id, "contact": f"+{first['phone']}"},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert first["jid"] not in contact_subentries(entry)
    assert first["jid"] not in entry.runtime_data.tracked
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "remove_contact",
            {ATTR_CONFIG_ENTRY_ID: entry.entry_id, "contact": f"+{first['phone']}"},
            blocking=True,
        )
    assert err.value.translation_key == "contact_not_tracked"


async def test_resubscribe_and_stats(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Re-subscribe now sends one more paced call per contact; stats use the documented names."""
    entry = init_integration
    coordinator = entry.runtime_data
    manager = coordinator.manager
    await subscribed(hass, freezer, entry, 3)
    before = (await sim_bridge.command("sim.stats"))["subscriptions"]
    total = manager.stats().subscribe_calls_total
    await hass.services.async_call(
        DOMAIN, "resubscribe", {ATTR_CONFIG_ENTRY_ID: entry.entry_id}, blocking=True
    )
    await run_until(
        hass,
        freezer,
        lambda: manager.stats().subscribe_calls_total == total + 3 and manager.stats().active == 3,
    )
    after = (await sim_bridge.command("sim.stats"))["subscriptions"]
    assert {jid: after[jid] - before.get(jid, 0) for jid in after} == dict.fromkeys(
        coordinator.tracked, 1
    )

    stats = await hass.services.async_call(
        DOMAIN,
        "get_stats",
        {ATTR_CONFIG_ENTRY_ID: entry.entry_id},
        blocking=True,
        return_response=True,
    )
    assert stats is not None
    assert list(stats)[:5] == ["total_subscriptions", "active", "stale", "failed", "queue_length"]
    assert stats["total_subscriptions"] == 3
    assert stats["active"] == 3
    assert stats["connection"] == "connected"


async def test_set_batch_config_is_kept_in_options(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Set batch config: a preset's values select the preset, others are custom."""
    entry = init_integration
    manager = entry.runtime_data.manager
    await hass.services.async_call(
        DOMAIN,
        "set_batch_config",
        {ATTR_CONFIG_ENTRY_ID: entry.entry_id, CONF_BATCH_SIZE: 10, CONF_BATCH_DELAY: 10},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert entry.options[CONF_PRESET] == "mission_critical"
    assert manager.stats().preset == "mission_critical"

    await hass.services.async_call(
        DOMAIN,
        "set_batch_config",
        {ATTR_CONFIG_ENTRY_ID: entry.entry_id, CONF_BATCH_SIZE: 12, CONF_BATCH_DELAY: 7},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert entry.options[CONF_PRESET] == "custom"
    assert manager.config.batch.batch_size == 12
    assert manager.config.batch.batch_delay == 7


async def test_actions_refuse_unknown_entries(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A wrong entry id is a translated validation error."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "get_stats", {ATTR_CONFIG_ENTRY_ID: "nope"}, blocking=True, return_response=True
        )
    assert (err.value.translation_domain, err.value.translation_key) == (
        "homeassistant",
        "service_config_entry_not_found",
    )


async def test_actions_refuse_an_unloaded_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """An entry that is not loaded: Home Assistant's translated validation error, naming it."""
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "get_stats",
            {ATTR_CONFIG_ENTRY_ID: init_integration.entry_id},
            blocking=True,
            return_response=True,
        )
    assert (err.value.translation_domain, err.value.translation_key) == (
        "homeassistant",
        "service_config_entry_not_loaded",
    )
    assert err.value.translation_placeholders == {"domain": DOMAIN, "entry_title": "Sam Demo"}


async def test_add_contacts_refuses_past_the_limit(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sim_bridge: SimBridge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More contacts than one entry can hold: a clear error, and nothing is added."""
    entry = init_integration
    monkeypatch.setattr("custom_components.whatsapp_presence.services.MAX_TRACKED_CONTACTS", 4)
    people = await sim_bridge.contacts()
    before = contact_subentries(entry)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "add_contacts",
            {
                ATTR_CONFIG_ENTRY_ID: entry.entry_id,
                "numbers": [f"+{p['phone']}" for p in people[3:5]],
            },
            blocking=True,
        )
    assert err.value.translation_key == "too_many_contacts"
    assert contact_subentries(entry) == before


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("add_contacts", {"numbers": ["+1 202 555 0199"]}),
        ("remove_contact", {"contact": "+1 202 555 0199"}),
        ("resubscribe", {}),
        ("set_batch_config", {CONF_BATCH_SIZE: 10, CONF_BATCH_DELAY: 10}),
    ],
)
async def test_mutating_actions_are_for_admins(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_read_only_user: User,
    action: str,
    data: dict[str, object],
) -> None:
    """A non-admin user can neither change the tracking nor send subscriptions."""
    entry = init_integration
    options = dict(entry.options)
    subentries = contact_subentries(entry)
    calls = entry.runtime_data.manager.stats().subscribe_calls_total
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            action,
            {ATTR_CONFIG_ENTRY_ID: entry.entry_id, **data},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    await hass.async_block_till_done()
    assert dict(entry.options) == options
    assert contact_subentries(entry) == subentries
    assert entry.runtime_data.manager.stats().subscribe_calls_total == calls


async def test_statistics_stay_readable_by_everyone(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_read_only_user: User
) -> None:
    """Reading the figures changes nothing, so any user may."""
    stats = await hass.services.async_call(
        DOMAIN,
        "get_stats",
        {ATTR_CONFIG_ENTRY_ID: init_integration.entry_id},
        blocking=True,
        return_response=True,
        context=Context(user_id=hass_read_only_user.id),
    )
    assert stats is not None
    assert stats["connection"] == "connected"


@pytest.mark.parametrize(
    ("batch_size", "batch_delay", "subscription_delay", "rate"),
    [(50, 1, 0.05, "857"), (50, 5, 0.05, "400"), (30, 1, 0.2, "257")],
)
async def test_set_batch_config_refuses_what_the_options_flow_refuses(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    batch_size: int,
    batch_delay: float,
    subscription_delay: float,
    rate: str,
) -> None:
    """Values each within range but together too fast: the options flow's own verdict."""
    from custom_components.whatsapp_presence.options import custom_pacing

    values = {
        CONF_BATCH_SIZE: batch_size,
        CONF_BATCH_DELAY: batch_delay,
        CONF_SUBSCRIPTION_DELAY: subscription_delay,
    }
    _, flow_errors = custom_pacing(values)
    entry = init_integration
    options = dict(entry.options)
    if flow_errors:
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN,
                "set_batch_config",
                {ATTR_CONFIG_ENTRY_ID: entry.entry_id, **values},
                blocking=True,
            )
        assert err.value.translation_key == flow_errors["base"] == "rate_too_high"
        assert err.value.translation_placeholders == {"rate": rate}
        assert dict(entry.options) == options
    else:
        await hass.services.async_call(
            DOMAIN,
            "set_batch_config",
            {ATTR_CONFIG_ENTRY_ID: entry.entry_id, **values},
            blocking=True,
        )
        assert entry.options[CONF_BATCH_SIZE] == batch_size


def test_priority_names_are_the_managers() -> None:
    """The names the user picks are the manager's priorities, in order, and convert both ways."""
    assert [priority.name.lower() for priority in Priority] == PRIORITY_NAMES
    assert [priority_name(priority_value(name)) for name in PRIORITY_NAMES] == PRIORITY_NAMES
    assert priority_name(7) is None
