"""Actions: bulk-add and remove contacts, re-subscribe, change pacing, read the figures."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_get_config_entry, async_register_admin_service
import probatio as vol

from .bridge.protocol import (
    MAX_RESOLVE_PHONES,
    BridgeError,
    ErrorCode,
    Resolution,
    is_user_jid,
    jid_to_phone,
    normalize_phone,
    phone_to_jid,
)
from .const import (
    BATCH_DELAY_RANGE,
    BATCH_SIZE_RANGE,
    CONF_BATCH_DELAY,
    CONF_BATCH_SIZE,
    CONF_JID,
    CONF_PHONE,
    CONF_PRESET,
    CONF_PRIORITY,
    CONF_SUBSCRIPTION_DELAY,
    DOMAIN,
    MAX_TRACKED_CONTACTS,
    SUBENTRY_CONTACT,
    SUBSCRIPTION_DELAY_RANGE,
)
from .coordinator import WhatsAppConfigEntry, WhatsAppCoordinator
from .manager import CUSTOM_PRESET, BatchConfig, preset_name, preset_rate
from .options import PRIORITY_NAMES, pacing_error, priority_value

ATTR_NUMBERS = "numbers"
ATTR_CONTACT = "contact"
ATTR_PRIORITY = "priority"

SERVICE_ADD_CONTACTS = "add_contacts"
SERVICE_REMOVE_CONTACT = "remove_contact"
SERVICE_RESUBSCRIBE = "resubscribe"
SERVICE_SET_BATCH_CONFIG = "set_batch_config"
SERVICE_GET_STATS = "get_stats"

_ENTRY: dict[Any, Any] = {vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string}
ADD_CONTACTS_SCHEMA = vol.Schema(
    {
        **_ENTRY,
        vol.Required(ATTR_NUMBERS): vol.All(
            cv.ensure_list, [cv.string], vol.Length(min=1, max=500)
        ),
        vol.Optional(ATTR_PRIORITY, default="medium"): vol.In(PRIORITY_NAMES),
    }
)
REMOVE_CONTACT_SCHEMA = vol.Schema({**_ENTRY, vol.Required(ATTR_CONTACT): cv.string})
RESUBSCRIBE_SCHEMA = vol.Schema({**_ENTRY, vol.Optional(ATTR_CONTACT): cv.string})
SET_BATCH_CONFIG_SCHEMA = vol.Schema(
    {
        **_ENTRY,
        vol.Required(CONF_BATCH_SIZE): vol.All(vol.Coerce(int), vol.Range(*BATCH_SIZE_RANGE)),
        vol.Required(CONF_BATCH_DELAY): vol.All(vol.Coerce(float), vol.Range(*BATCH_DELAY_RANGE)),
        vol.Optional(CONF_SUBSCRIPTION_DELAY): vol.All(
            vol.Coerce(float), vol.Range(*SUBSCRIPTION_DELAY_RANGE)
        ),
    }
)
GET_STATS_SCHEMA = vol.Schema(_ENTRY)


def _coordinator(call: ServiceCall) -> WhatsAppCoordinator:
    """The loaded entry the call names (Home Assistant's translated errors otherwise)."""
    entry: WhatsAppConfigEntry = async_get_config_entry(
        call.hass, DOMAIN, call.data[ATTR_CONFIG_ENTRY_ID]
    )
    return entry.runtime_data


def _contact_jid(value: str) -> str:
    """A phone number or a JID given by the user, as a phone-number JID."""
    try:
        return phone_to_jid(normalize_phone(jid_to_phone(value) if "@" in value else value))
    except BridgeError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_phone",
            translation_placeholders={"number": value},
        ) from err


async def _async_add_contacts(call: ServiceCall) -> ServiceResponse:
    """Track many numbers at once: validate them all first, so a typo adds nothing."""
    coordinator = _coordinator(call)
    hass = call.hass
    phones: dict[str, str] = {}
    invalid: list[str] = []
    for number in call.data[ATTR_NUMBERS]:
        try:
            phones.setdefault(normalize_phone(number), number)
        except BridgeError:
            invalid.append(number)
    if invalid:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_phones",
            translation_placeholders={"numbers": ", ".join(invalid)},
        )
    client = coordinator.client
    if client is None or not coordinator.connected:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="not_connected")
    digits = list(phones)
    found: dict[str, str] = {}
    try:
        for start in range(0, len(digits), MAX_RESOLVE_PHONES):
            for answer in await client.resolve(digits[start : start + MAX_RESOLVE_PHONES]):
                if answer.on_whatsapp:
                    phone, jid = _resolved(answer, phones)
                    found[phone] = jid
    except BridgeError as err:
        if err.code == ErrorCode.RATE_LIMITED:
            coordinator.note_rate_limited()
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="bridge_error",
            translation_placeholders={"error": err.message},
        ) from err
    entry = coordinator.entry
    room = MAX_TRACKED_CONTACTS - len(coordinator.tracked)
    if len(found.keys() - {jid_to_phone(jid) for jid in coordinator.tracked}) > room:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="too_many_contacts",
            translation_placeholders={"limit": str(MAX_TRACKED_CONTACTS)},
        )
    tracked = {s.unique_id for s in entry.subentries.values()}
    names = await _address_book_names(coordinator)
    priority = priority_value(call.data[ATTR_PRIORITY])
    added: list[str] = []
    already: list[str] = []
    for phone, jid in found.items():
        if jid in tracked:
            already.append(phones[phone])
            continue
        tracked.add(jid)
        hass.config_entries.async_add_subentry(
            entry,
            ConfigSubentry(
                data=MappingProxyType({CONF_JID: jid, CONF_PHONE: phone, CONF_PRIORITY: priority}),
                subentry_type=SUBENTRY_CONTACT,
                title=names.get(jid) or f"+{phone}",
                unique_id=jid,
            ),
        )
        added.append(phones[phone])
    response: dict[str, Any] = {
        "added": added,
        "already_tracked": already,
        "not_on_whatsapp": [phones[p] for p in digits if p not in found],
    }
    return response


def _resolved(answer: Resolution, asked: dict[str, str]) -> tuple[str, str]:
    """The number asked and the contact JID of a positive answer.

    A bridge answering a number it was not asked, or with a JID that is not a contact's, is
    broken: the action fails with a translated error (naming no number) and adds nothing.
    """
    try:
        phone = normalize_phone(answer.query)
    except BridgeError:
        phone = None
    if phone is None or asked.get(phone) is None or not is_user_jid(answer.jid):
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="invalid_resolution")
    assert answer.jid is not None
    return phone, answer.jid


async def _address_book_names(coordinator: WhatsAppCoordinator) -> dict[str, str]:
    """Names from the account's address book, best effort (titles fall back to numbers)."""
    if coordinator.client is None:
        return {}
    try:
        contacts = await coordinator.client.contacts()
    except BridgeError:
        return {}
    return {c.jid: c.name for c in contacts if c.name}


async def _async_remove_contact(call: ServiceCall) -> None:
    """Stop tracking a contact that was added on its own (group members go with the group)."""
    coordinator = _coordinator(call)
    hass = call.hass
    jid = _contact_jid(call.data[ATTR_CONTACT])
    entry = coordinator.entry
    for subentry in entry.subentries.values():
        if subentry.subentry_type == SUBENTRY_CONTACT and subentry.data.get(CONF_JID) == jid:
            hass.config_entries.async_remove_subentry(entry, subentry.subentry_id)
            return
    key = "contact_in_group" if jid in coordinator.tracked else "contact_not_tracked"
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"contact": call.data[ATTR_CONTACT]},
    )


async def _async_resubscribe(call: ServiceCall) -> None:
    """Queue one contact, or everyone, for a subscription now (still paced by the manager)."""
    coordinator = _coordinator(call)
    if ATTR_CONTACT not in call.data:
        coordinator.manager.resubscribe()
        return
    jid = _contact_jid(call.data[ATTR_CONTACT])
    if jid not in coordinator.tracked:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="contact_not_tracked",
            translation_placeholders={"contact": call.data[ATTR_CONTACT]},
        )
    coordinator.manager.resubscribe(jid)


async def _async_set_batch_config(call: ServiceCall) -> None:
    """Custom batch pacing (docs/rate-limiting.md), kept in the options across restarts."""
    coordinator = _coordinator(call)
    hass = call.hass
    entry = coordinator.entry
    current = coordinator.manager.config.batch
    batch = BatchConfig(
        batch_size=call.data[CONF_BATCH_SIZE],
        batch_delay=call.data[CONF_BATCH_DELAY],
        subscription_delay=call.data.get(CONF_SUBSCRIPTION_DELAY, current.subscription_delay),
    )
    if error := pacing_error(batch):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=error,
            translation_placeholders={"rate": f"{preset_rate(batch):.0f}"},
        )
    options = {
        **entry.options,
        CONF_PRESET: preset_name(batch),
        CONF_BATCH_SIZE: batch.batch_size,
        CONF_BATCH_DELAY: batch.batch_delay,
        CONF_SUBSCRIPTION_DELAY: batch.subscription_delay,
    }
    if options[CONF_PRESET] != CUSTOM_PRESET:
        for key in (CONF_BATCH_SIZE, CONF_BATCH_DELAY, CONF_SUBSCRIPTION_DELAY):
            options.pop(key)
    hass.config_entries.async_update_entry(entry, options=options)


async def _async_get_stats(call: ServiceCall) -> ServiceResponse:
    """The subscription figures of docs/rate-limiting.md, plus the operator figures."""
    coordinator = _coordinator(call)
    stats: dict[str, Any] = coordinator.manager.stats().as_dict()
    stats["connection"] = coordinator.connection_state
    return stats


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions (once, in async_setup).

    Every action that changes what is tracked, how fast, or that sends subscriptions is for
    administrators only: a user could otherwise probe numbers or get the account banned.
    """
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_ADD_CONTACTS,
        _async_add_contacts,
        schema=ADD_CONTACTS_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    async_register_admin_service(
        hass, DOMAIN, SERVICE_REMOVE_CONTACT, _async_remove_contact, schema=REMOVE_CONTACT_SCHEMA
    )
    async_register_admin_service(
        hass, DOMAIN, SERVICE_RESUBSCRIBE, _async_resubscribe, schema=RESUBSCRIBE_SCHEMA
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_SET_BATCH_CONFIG,
        _async_set_batch_config,
        schema=SET_BATCH_CONFIG_SCHEMA,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_STATS,
        _async_get_stats,
        schema=GET_STATS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
