"""Subentry flows: the contacts and groups an account tracks.

Each tracked contact or group is a subentry of the account (as core's ``xbox`` makes each
friend one), so adding or removing one never reloads the entry: the update listener hands the
change to the running coordinator. The flows read the address book and the groups through the
running entry's own bridge client; they need the account loaded and do not start a bridge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigEntryState, ConfigSubentryFlow, SubentryFlowResult
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
import probatio as vol

from .bridge.client import BridgeClient
from .bridge.protocol import (
    BridgeConnectionError,
    BridgeError,
    ErrorCode,
    is_user_jid,
    jid_to_phone,
    normalize_phone,
)
from .const import CONF_ACCOUNT_JID, CONF_JID, CONF_PHONE, CONF_PRIORITY
from .options import PRIORITY_NAMES, priority_name, priority_value

if TYPE_CHECKING:
    # Only the type: a flow module must not import the runtime module.
    from .coordinator import WhatsAppConfigEntry

DEFAULT_PRIORITY: Final = "medium"
CONF_CONTACT: Final = "contact"
CONF_GROUP: Final = "group"

PRIORITY_SELECTOR: Final = SelectSelector(
    SelectSelectorConfig(
        options=PRIORITY_NAMES, translation_key="priority", mode=SelectSelectorMode.LIST
    )
)


def _bridge_abort_reason(err: BridgeError) -> str:
    """Why a subentry flow cannot list contacts or groups, in the user's terms."""
    if err.code == ErrorCode.RATE_LIMITED:
        return "rate_limited"
    if isinstance(err, BridgeConnectionError):
        return "cannot_connect"  # the bridge itself is out of reach
    if err.code in (ErrorCode.NOT_CONNECTED, ErrorCode.NOT_LOGGED_IN):
        return "not_connected"  # the bridge is there, WhatsApp is still connecting
    return "cannot_connect"


class _TrackSubentryFlow(ConfigSubentryFlow):
    """Shared checks: the account must be loaded and its bridge reachable."""

    def _client(self) -> BridgeClient | None:
        """The running coordinator's bridge client, or None when the account is not loaded."""
        entry: WhatsAppConfigEntry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return None
        return entry.runtime_data.client

    def _tracked(self, jid: str) -> bool:
        return any(sub.unique_id == jid for sub in self._get_entry().subentries.values())

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change the priority of a tracked contact or group (applied without a reload)."""
        subentry = self._get_reconfigure_subentry()
        if user_input is not None:
            return self.async_update_and_abort(
                self._get_entry(),
                subentry,
                data_updates={CONF_PRIORITY: priority_value(user_input[CONF_PRIORITY])},
            )
        current = priority_name(subentry.data.get(CONF_PRIORITY)) or DEFAULT_PRIORITY
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=vol.Schema(
                {vol.Required(CONF_PRIORITY, default=current): PRIORITY_SELECTOR}
            ),
            description_placeholders={"title": subentry.title},
        )


class ContactSubentryFlow(_TrackSubentryFlow):
    """Track one contact: from the address book, or by number (checked on WhatsApp)."""

    def __init__(self) -> None:
        """The address book is read once, when the form is first shown."""
        self._names: dict[str, str | None] | None = None

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Pick a contact or type a number, and a priority."""
        client = self._client()
        if client is None:
            return self.async_abort(reason="entry_not_loaded")
        if self._names is None:
            try:
                contacts = await client.contacts()
            except BridgeError as err:
                return self.async_abort(reason=_bridge_abort_reason(err))
            self._names = {c.jid: c.name for c in contacts if is_user_jid(c.jid)}
        names = self._names
        errors: dict[str, str] = {}
        if user_input is not None:
            jid, error = await self._async_jid(client, user_input)
            if error:
                errors["base" if error != "invalid_phone" else CONF_CONTACT] = error
            else:
                assert jid is not None
                if self._tracked(jid):
                    return self.async_abort(reason="already_configured")
                phone = jid_to_phone(jid)
                return self.async_create_entry(
                    title=names.get(jid) or f"+{phone}",
                    data={
                        CONF_JID: jid,
                        CONF_PHONE: phone,
                        CONF_PRIORITY: priority_value(user_input[CONF_PRIORITY]),
                    },
                    unique_id=jid,
                )
        options = sorted(
            (
                SelectOptionDict(
                    value=jid,
                    label=f"{name} (+{jid_to_phone(jid)})" if name else f"+{jid_to_phone(jid)}",
                )
                for jid, name in names.items()
                if not self._tracked(jid)
            ),
            key=lambda option: option["label"].casefold(),
        )
        schema = vol.Schema(
            {
                # custom_value: the frontend then shows a searchable picker that also
                # takes a typed number (a plain dropdown has no search).
                vol.Optional(CONF_CONTACT): SelectSelector(
                    SelectSelectorConfig(
                        options=options, mode=SelectSelectorMode.DROPDOWN, custom_value=True
                    )
                ),
                vol.Required(CONF_PRIORITY, default=DEFAULT_PRIORITY): PRIORITY_SELECTOR,
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def _async_jid(
        self, client: BridgeClient, user_input: Mapping[str, Any]
    ) -> tuple[str | None, str]:
        """The picked contact's JID, or a typed number checked on WhatsApp; else an error key."""
        assert self._names is not None
        value = str(user_input.get(CONF_CONTACT) or "").strip()
        if not value:
            return None, "no_contact"
        if value in self._names:  # picked from the address book
            return value, ""
        try:
            phone = normalize_phone(value.removesuffix("@s.whatsapp.net"))
        except BridgeError:
            return None, "invalid_phone"
        try:
            results = await client.resolve([phone])
        except BridgeError as err:
            return None, "rate_limited" if err.code == ErrorCode.RATE_LIMITED else "cannot_connect"
        jid = next((r.jid for r in results if r.on_whatsapp and is_user_jid(r.jid)), None)
        if jid is None:
            return None, "not_on_whatsapp"
        own = jid == self._get_entry().data.get(CONF_ACCOUNT_JID)
        return (None, "own_account") if own else (jid, "")


class GroupSubentryFlow(_TrackSubentryFlow):
    """Track every participant of a group."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Pick a group and a priority."""
        client = self._client()
        if client is None:
            return self.async_abort(reason="entry_not_loaded")
        try:
            groups = await client.groups()
        except BridgeError as err:
            return self.async_abort(reason=_bridge_abort_reason(err))
        names = {g.jid: g.name or g.jid for g in groups}
        if user_input is not None:
            jid = user_input[CONF_GROUP]
            if self._tracked(jid):
                return self.async_abort(reason="already_configured")
            name = names.get(jid, jid)
            return self.async_create_entry(
                title=name,
                data={
                    CONF_JID: jid,
                    "name": name,
                    CONF_PRIORITY: priority_value(user_input[CONF_PRIORITY]),
                },
                unique_id=jid,
            )
        counts = {g.jid: g.participants for g in groups}
        options = sorted(
            (
                SelectOptionDict(
                    value=jid,
                    label=f"{name} ({counts[jid]})" if counts.get(jid) else name,
                )
                for jid, name in names.items()
                if not self._tracked(jid)
            ),
            key=lambda option: option["label"].casefold(),
        )
        if not options:
            return self.async_abort(reason="no_groups")
        schema = vol.Schema(
            {
                vol.Required(CONF_GROUP): SelectSelector(
                    SelectSelectorConfig(options=options, mode=SelectSelectorMode.DROPDOWN)
                ),
                vol.Required(CONF_PRIORITY, default=DEFAULT_PRIORITY): PRIORITY_SELECTOR,
            }
        )
        return self.async_show_form(step_id="user", data_schema=schema)
