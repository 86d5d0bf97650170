"""Config flow for WhatsApp Presence: link an account (where WhatsApp runs, pairing, pacing).

The flow talks to a bridge of its own (pairing.py): a child bridge on a new session folder in
local and demo modes, the user's bridge add-on or server in remote mode. It pairs through it,
stops it and hands the session to the entry, whose coordinator then runs its own bridge.

Home Assistant loads this module for the account flow; the flows of a linked account live
apart: its tracked contacts and groups in ``subentry_flow.py``, its options in
``options_flow.py``, and the option forms and checks both flows share in ``options.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
import html
import ipaddress
from typing import Any, Final
import uuid

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
)
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    QrCodeSelector,
    QrCodeSelectorConfig,
    QrErrorCorrectionLevel,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.helpers.translation import async_get_translations
import probatio as vol
from yarl import URL

from .bridge.protocol import (
    MIN_TOKEN_LENGTH,
    WS_PATH,
    Account,
    BridgeAuthError,
    BridgeError,
    ErrorCode,
    Hello,
    is_user_jid,
    jid_to_phone,
    normalize_phone,
)
from .const import (
    CONF_ACCOUNT_JID,
    CONF_ADDON,
    CONF_CA_CERT,
    CONF_MODE,
    CONF_PHONE,
    CONF_PRESET,
    CONF_PUSH_NAME,
    CONF_SESSION_ID,
    DOMAIN,
    MODE_LOCAL,
    MODE_REMOTE,
    MODE_SIMULATOR,
    SUBENTRY_CONTACT,
    SUBENTRY_GROUP,
)
from .discovery import DiscoveredBridge, bridge_from_discovery
from .launcher import BridgeStartError
from .manager import CUSTOM_PRESET, DEFAULT_PRESET
from .options import (
    CUSTOM_SCHEMA,
    PRESET_SELECTOR,
    custom_defaults,
    custom_pacing,
    default_options,
    rate_text,
)
from .options_flow import WhatsAppOptionsFlow
from .pairing import (
    CAUSE_ARCHITECTURE,
    CAUSE_IMPORT,
    CAUSE_INSTALL,
    CAUSE_LIBMAGIC,
    CAUSE_OLD_GLIBC,
    PAIR_FAILURES,
    REASON_TIMEOUT,
    REASON_UNKNOWN,
    FlowBridge,
    NeonizeUnavailableError,
    async_remove_session,
)
from .subentry_flow import ContactSubentryFlow, GroupSubentryFlow
from .tls import InvalidCACertError, async_client_ssl_context

PAIR_OPTIONS: Final = ["pair_qr", "pair_phone", "pair_qr_static"]
REMOTE_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_URL): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
        vol.Required(CONF_TOKEN): TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD)),
        vol.Optional(CONF_CA_CERT): TextSelector(TextSelectorConfig(multiline=True)),
    }
)
LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})
REAUTH_TOKEN_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_TOKEN): TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD)),
    }
)
"""Reauth of a bridge add-on or server: a new token, when the bridge refused the stored one."""
PHONE_SCHEMA: Final = vol.Schema(
    {vol.Required(CONF_PHONE): TextSelector(TextSelectorConfig(type=TextSelectorType.TEL))}
)


def normalize_url(value: str) -> str | None:
    """A bridge WebSocket URL (``ws://host:port/ws``), or None when it is not one.

    ``http(s)`` is accepted as ``ws(s)`` and an empty path means the bridge's ``/ws``.
    """
    try:
        url = URL(value.strip())
    except ValueError:
        return None
    if url.scheme in ("http", "https"):
        url = url.with_scheme("ws" if url.scheme == "http" else "wss")
    if url.scheme not in ("ws", "wss") or not url.host:
        return None
    if url.path in ("", "/"):
        url = url.with_path(WS_PATH)
    return str(url)


def token_error(token: str) -> str | None:
    """Why a token typed by hand is refused, or None (a short one can be guessed)."""
    return "token_too_short" if len(token.strip()) < MIN_TOKEN_LENGTH else None


def is_exposed(url: str) -> bool:
    """True when the token would cross a network in clear: plain ws:// to a non-loopback host."""
    parsed = URL(url)
    if parsed.scheme == "wss":
        return False
    host = (parsed.host or "").strip("[]")
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() not in LOOPBACK_HOSTS


def _without_token(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Suggested values for a bridge form: never the token, which would go to the browser."""
    if values is None:
        return None
    return {k: v for k, v in values.items() if k in (CONF_URL, CONF_CA_CERT) and v}


def account_title(account: Account) -> str:
    """The entry title: the account's push name, else its number."""
    return account.push_name or f"+{jid_to_phone(account.jid)}"


def qr_code_markup(data: str) -> str:
    """The frontend's QR element for a progress text.

    It goes in as a placeholder value: the frontend's message formatter rejects the tag when
    it is written in the translation itself (INVALID_TAG), and draws nothing.
    """
    return (
        f'<ha-qr-code data="{html.escape(data, quote=True)}" '
        'error-correction-level="quartile" scale="5"></ha-qr-code>'
    )


def _neonize_abort_reason(cause: str) -> str:
    """The abort that says why neonize cannot run on this host, and what to do instead."""
    if cause == CAUSE_LIBMAGIC:
        return "neonize_no_libmagic"
    if cause == CAUSE_OLD_GLIBC:
        return "neonize_old_glibc"
    if cause == CAUSE_ARCHITECTURE:
        return "neonize_wrong_architecture"
    if cause == CAUSE_INSTALL:
        return "neonize_install_failed"
    if cause == CAUSE_IMPORT:
        return "neonize_import_failed"
    return "neonize_unavailable"  # musl: Home Assistant OS or Container


class WhatsAppPresenceConfigFlow(ConfigFlow, domain=DOMAIN):
    """Link a WhatsApp account: choose where WhatsApp runs, pair, choose the pacing."""

    VERSION = 1

    def __init__(self) -> None:
        """Flow state; the bridge is created on first use (``hass`` is set after init)."""
        self._flow_bridge: FlowBridge | None = None
        self._mode: str | None = None
        self._addon: str | None = None
        self._ca_cert: str | None = None
        self._url: str | None = None
        self._token: str | None = None
        self._account: Account | None = None
        self._retry_reason = ""
        self._discovered: DiscoveredBridge | None = None

    @property
    def _bridge(self) -> FlowBridge:
        if self._flow_bridge is None:
            self._flow_bridge = FlowBridge(self.hass)
        return self._flow_bridge

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> WhatsAppOptionsFlow:
        """Pacing and behaviour of a linked account."""
        return WhatsAppOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Tracked contacts and groups are subentries of the account."""
        return {SUBENTRY_CONTACT: ContactSubentryFlow, SUBENTRY_GROUP: GroupSubentryFlow}

    @callback
    def async_remove(self) -> None:
        """The dialog closed (or the flow ended): stop this flow's bridge, drop an unused session."""
        if self._flow_bridge is not None and self._flow_bridge.active:
            self.hass.async_create_task(
                self._flow_bridge.async_close(discard=True), "whatsapp_presence flow teardown"
            )

    # ------------------------------------------------------------------ where WhatsApp runs

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask where the WhatsApp session runs."""
        return self.async_show_menu(
            step_id="user", menu_options=[MODE_LOCAL, MODE_REMOTE, MODE_SIMULATOR]
        )

    async def async_step_local(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Install neonize if needed and start a bridge on this host."""
        self._mode = MODE_LOCAL
        return self._async_progress_start("local", "install")

    async def async_step_simulator(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Start a bridge on a simulated WhatsApp network (a demo, no account needed)."""
        self._mode = MODE_SIMULATOR
        return self._async_progress_start("simulator", "start_simulator")

    def _async_progress_start(self, step_id: str, action: str) -> ConfigFlowResult:
        bridge = self._bridge
        if bridge.start_task is None:
            assert self._mode is not None
            bridge.start_child(self._mode, uuid.uuid4().hex, local=self._mode == MODE_LOCAL)
        assert bridge.start_task is not None
        if not bridge.start_task.done():
            return self.async_show_progress(
                step_id=step_id, progress_action=action, progress_task=bridge.start_task
            )
        return self.async_show_progress_done(next_step_id="bridge_started")

    async def async_step_bridge_started(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The child bridge is up (or could not start)."""
        bridge = self._bridge
        task, bridge.start_task = bridge.start_task, None
        assert task is not None
        try:
            hello = task.result()
        except NeonizeUnavailableError as err:
            await bridge.async_close(discard=True)
            return self.async_abort(
                reason=_neonize_abort_reason(err.cause),
                description_placeholders={
                    "error": err.detail,
                    "machine": err.machine,
                    "glibc": err.glibc,
                },
            )
        except (BridgeStartError, BridgeError, OSError) as err:
            await bridge.async_close(discard=True)
            return self.async_abort(
                reason="bridge_failed", description_placeholders={"error": str(err)}
            )
        return await self._async_bridge_ready(hello)

    async def async_step_remote(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Reach a bridge add-on or server by URL and token."""
        errors: dict[str, str] = {}
        if user_input is not None and (
            result := await self._async_address_entered(user_input, errors)
        ):
            return result
        return self._address_form("remote", user_input, errors)

    async def async_step_remote_insecure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Plain ws:// to another machine: say the token crosses the network readable."""
        return await self._async_insecure("remote_insecure", "remote", user_input)

    async def async_step_hassio(self, discovery_info: HassioServiceInfo) -> ConfigFlowResult:
        """The bridge add-on announced itself through the Supervisor."""
        try:
            bridge = bridge_from_discovery(discovery_info.config, discovery_info.name)
        except ValueError:
            return self.async_abort(reason="invalid_discovery_info")
        # One flow per add-on; an ignored discovery stays ignored.
        await self.async_set_unique_id(f"hassio_{discovery_info.slug}")
        self._abort_if_unique_id_configured()
        for entry in self._async_current_entries(include_ignore=False):
            if entry.data.get(CONF_MODE) != MODE_REMOTE or entry.data.get(CONF_URL) != bridge.url:
                continue
            # Only the add-on that created the entry may hand it a new token: any add-on can
            # announce any address, and must not take over a bridge set up by hand.
            own = entry.data.get(CONF_ADDON) == discovery_info.slug
            if own and entry.data.get(CONF_TOKEN) != bridge.token:
                # The add-on made a new token (its data was reset): follow it.
                self.hass.config_entries.async_update_entry(
                    entry, data={**entry.data, CONF_TOKEN: bridge.token}
                )
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
            return self.async_abort(reason="already_configured")
        self._discovered = bridge
        self._addon = discovery_info.slug
        self.context["title_placeholders"] = {"name": bridge.name}
        return await self.async_step_hassio_confirm()

    async def async_step_hassio_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask once; on Submit connect with the announced address and token."""
        bridge = self._discovered
        assert bridge is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            hello, error = await self._async_connect(bridge.url, bridge.token)
            if hello is not None:
                self._mode, self._url, self._token = MODE_REMOTE, bridge.url, bridge.token
                return await self._async_bridge_ready(hello)
            errors["base"] = error
        return self.async_show_form(
            step_id="hassio_confirm",
            errors=errors,
            description_placeholders={"addon": bridge.name},
        )

    async def _async_connect(
        self, url: str, token: str, ca_cert: str | None = None
    ) -> tuple[Hello | None, str]:
        """Connect the flow's client; the hello, or None and an error key."""
        try:
            ssl_context = await async_client_ssl_context(self.hass, ca_cert)
        except InvalidCACertError:
            return None, "invalid_ca_cert"
        try:
            return await self._bridge.async_connect(url, token, ssl_context), ""
        except BridgeAuthError:
            return None, "invalid_auth"
        except BridgeError as err:
            if err.code == ErrorCode.UNSUPPORTED_PROTOCOL:
                return None, "incompatible_bridge"
            return None, "cannot_connect"

    async def _async_address_entered(
        self, user_input: Mapping[str, Any], errors: dict[str, str]
    ) -> ConfigFlowResult | None:
        """Check a typed address and token, then connect (asking first if the token would be
        readable on the network); None with ``errors`` set. Shared by remote and reconfigure."""
        url = normalize_url(user_input[CONF_URL])
        token = user_input[CONF_TOKEN].strip()
        if url is None:
            errors[CONF_URL] = "invalid_url"
            return None
        if error := token_error(token):
            errors[CONF_TOKEN] = error
            return None
        self._url, self._token = url, token
        self._ca_cert = (user_input.get(CONF_CA_CERT) or "").strip() or None
        if is_exposed(url):
            if self.source == SOURCE_RECONFIGURE:
                return await self.async_step_reconfigure_insecure()
            return await self.async_step_remote_insecure()
        return await self._async_address_connect(errors)

    async def _async_insecure(
        self, step_id: str, form_step_id: str, user_input: Mapping[str, Any] | None
    ) -> ConfigFlowResult:
        """Name the host the token would travel to in clear; on Submit connect anyway."""
        url = self._url
        assert url is not None
        if user_input is None:
            return self.async_show_form(
                step_id=step_id, description_placeholders={"host": URL(url).host or ""}
            )
        errors: dict[str, str] = {}
        if result := await self._async_address_connect(errors):
            return result
        return self._address_form(
            form_step_id, {CONF_URL: url, CONF_CA_CERT: self._ca_cert}, errors
        )

    async def _async_address_connect(self, errors: dict[str, str]) -> ConfigFlowResult | None:
        """Connect to the checked address: a new account goes on to pairing, a reconfigured
        entry moves to it; None with ``errors`` set."""
        url, token = self._url, self._token
        assert url is not None
        assert token is not None
        hello, error = await self._async_connect(url, token, self._ca_cert)
        if self.source == SOURCE_RECONFIGURE:
            await self._bridge.async_close(discard=False)  # the hello was all it needed
        if hello is None:
            errors["base"] = error
            return None
        if self.source == SOURCE_RECONFIGURE:
            return await self._async_reconfigure_to(hello, errors)
        self._mode = MODE_REMOTE
        return await self._async_bridge_ready(hello)

    def _address_form(
        self, step_id: str, suggested: Mapping[str, Any] | None, errors: dict[str, str]
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id=step_id,
            # Never the token: the form goes to the browser.
            data_schema=self.add_suggested_values_to_schema(
                REMOTE_SCHEMA, _without_token(suggested)
            ),
            errors=errors,
        )

    async def _async_bridge_ready(self, hello: Hello) -> ConfigFlowResult:
        """A bridge already holding a session skips pairing; otherwise pair."""
        account = hello.status.account
        if hello.status.paired and account is not None and is_user_jid(account.jid):
            return await self._async_account_ready(account)
        return await self.async_step_pair()

    # ------------------------------------------------------------------ pairing

    async def async_step_pair(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose how to link: QR code or phone-number code."""
        return self.async_show_menu(step_id="pair", menu_options=PAIR_OPTIONS)

    async def _async_pair_retry(self, reason: str) -> ConfigFlowResult:
        kind = reason if reason in PAIR_FAILURES else REASON_UNKNOWN
        # A placeholder is shown as it is: the reason's words come from the translations.
        translations = await async_get_translations(
            self.hass, self.hass.config.language, "selector", {DOMAIN}
        )
        self._retry_reason = translations.get(
            f"component.{DOMAIN}.selector.pair_failure.options.{kind}", kind
        )
        return await self.async_step_pair_retry()

    async def async_step_pair_retry(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pairing failed or timed out: offer the methods again, saying why."""
        return self.async_show_menu(
            step_id="pair_retry",
            menu_options=PAIR_OPTIONS,
            description_placeholders={"reason": self._retry_reason},
        )

    async def async_step_pair_qr(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show WhatsApp's QR code; re-rendered each time WhatsApp rotates it."""
        bridge = self._bridge
        if bridge.pairing != "qr":
            try:
                await bridge.async_pair_qr()
            except BridgeError as err:
                return await self._async_pair_retry(str(err.code))
        if bridge.outcome is not None:
            return self.async_show_progress_done(next_step_id="pair_finish")
        # neonize may take a moment to fetch the first code: "wait_qr" until it is there.
        return self.async_show_progress(
            step_id="pair_qr",
            progress_action="scan_qr" if bridge.qr else "wait_qr",
            progress_task=bridge.wait_change(),
            description_placeholders={
                "qr": bridge.qr or "",
                "qr_code": qr_code_markup(bridge.qr or ""),
            },
        )

    async def async_step_pair_qr_static(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The QR code in a plain form: scan it, then submit (when the live one won't show)."""
        bridge = self._bridge
        errors: dict[str, str] = {}
        if bridge.pairing != "qr":
            try:
                await bridge.async_pair_qr()
            except BridgeError as err:
                return await self._async_pair_retry(str(err.code))
        elif bridge.outcome is not None:
            return await self.async_step_pair_finish()
        elif user_input is not None:
            errors["base"] = "not_paired_yet"
        fields: dict[Any, Any] = {}
        if bridge.qr is not None:
            fields[vol.Optional("qr")] = QrCodeSelector(
                QrCodeSelectorConfig(
                    data=bridge.qr,
                    scale=5,
                    error_correction_level=QrErrorCorrectionLevel.QUARTILE,
                )
            )
        return self.async_show_form(
            step_id="pair_qr_static", data_schema=vol.Schema(fields), errors=errors
        )

    async def async_step_pair_phone(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the account's phone number; WhatsApp then shows a code to type on it."""
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        if user_input is not None:
            try:
                phone = normalize_phone(user_input[CONF_PHONE])
            except BridgeError:
                errors[CONF_PHONE] = "invalid_phone"
            else:
                try:
                    await self._bridge.async_pair_phone(phone)
                except BridgeError as err:
                    errors["base"] = "pairing_failed"
                    placeholders["error"] = err.message
                else:
                    return await self.async_step_pair_code()
        return self.async_show_form(
            step_id="pair_phone",
            data_schema=self.add_suggested_values_to_schema(PHONE_SCHEMA, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_pair_code(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the code to type on the phone until WhatsApp links the device."""
        bridge = self._bridge
        if bridge.outcome is not None:
            return self.async_show_progress_done(next_step_id="pair_finish")
        return self.async_show_progress(
            step_id="pair_code",
            progress_action="enter_code",
            progress_task=bridge.wait_change(),
            description_placeholders={"code": bridge.code or ""},
        )

    async def async_step_pair_finish(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pairing ended: go on with the account, or offer a retry."""
        bridge = self._bridge
        outcome = bridge.take_outcome()
        if outcome.account is None:
            reason = outcome.reason or REASON_UNKNOWN
            if reason == REASON_TIMEOUT:
                await bridge.async_cancel_pairing()
            return await self._async_pair_retry(reason)
        return await self._async_account_ready(outcome.account)

    async def _async_account_ready(self, account: Account) -> ConfigFlowResult:
        """The bridge holds a session of ``account``: one entry per account, same one on reauth."""
        jid = account.jid  # checked by the caller (hello) or by FlowBridge (event)
        await self.async_set_unique_id(jid_to_phone(jid), raise_on_progress=False)
        if self.source == SOURCE_REAUTH:
            if self._get_reauth_entry().unique_id != self.unique_id:
                await self._bridge.async_close(discard=True)
                self._abort_if_unique_id_mismatch(reason="wrong_account")
            return await self._async_finish_reauth(account)
        await self._async_abort_if_configured()
        self._account = account
        return await self.async_step_preset()

    async def _async_abort_if_configured(self) -> None:
        assert self.unique_id is not None
        if self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, self.unique_id):
            await self._bridge.async_close(discard=True)
            self._abort_if_unique_id_configured()

    # ------------------------------------------------------------------ pacing and entry

    async def async_step_preset(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose how fast contacts are subscribed."""
        if user_input is not None:
            if user_input[CONF_PRESET] == CUSTOM_PRESET:
                return await self.async_step_custom()
            return await self._async_create({CONF_PRESET: user_input[CONF_PRESET]})
        assert self._account is not None
        return self.async_show_form(
            step_id="preset",
            data_schema=vol.Schema(
                {vol.Required(CONF_PRESET, default=DEFAULT_PRESET): PRESET_SELECTOR}
            ),
            description_placeholders={"account": account_title(self._account)},
        )

    async def async_step_custom(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Custom batch values, within safe ranges."""
        errors: dict[str, str] = {}
        if user_input is not None:
            values, errors = custom_pacing(user_input)
            if not errors:
                return await self._async_create({CONF_PRESET: CUSTOM_PRESET, **values})
        return self.async_show_form(
            step_id="custom",
            data_schema=self.add_suggested_values_to_schema(
                CUSTOM_SCHEMA, user_input or custom_defaults({})
            ),
            errors=errors,
            description_placeholders={"rate": rate_text(user_input)},
        )

    async def _async_create(self, options: dict[str, Any]) -> ConfigFlowResult:
        """Hand the session to a new entry (the flow's own bridge stops first)."""
        account = self._account
        assert account is not None
        await self._async_abort_if_configured()
        data: dict[str, Any] = {
            CONF_MODE: self._mode,
            CONF_ACCOUNT_JID: account.jid,
            CONF_PUSH_NAME: account.push_name,
        }
        if self._mode == MODE_REMOTE:
            data[CONF_URL], data[CONF_TOKEN] = self._url, self._token
            if self._addon is not None:
                data[CONF_ADDON] = self._addon
            if self._ca_cert is not None:
                data[CONF_CA_CERT] = self._ca_cert
        else:
            data[CONF_SESSION_ID] = self._bridge.session_id
        self._bridge.session_id = None  # the entry owns the folder now
        await self._bridge.async_close(discard=False)
        return self.async_create_entry(
            title=account_title(account), data=data, options={**default_options(), **options}
        )

    # ------------------------------------------------------------------ reauth, reconfigure

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """WhatsApp logged the linked device out, or the bridge refused the token."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Explain, then start pairing through the entry's kind of bridge."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            mode = entry.data[CONF_MODE]
            if mode == MODE_LOCAL:
                return await self.async_step_local()
            if mode == MODE_SIMULATOR:
                return await self.async_step_simulator()
            new_token = (user_input.get(CONF_TOKEN) or "").strip()
            if new_token and (problem := token_error(new_token)):
                errors[CONF_TOKEN] = problem
            else:
                token = new_token or entry.data[CONF_TOKEN]
                hello, error = await self._async_connect(
                    entry.data[CONF_URL], token, entry.data.get(CONF_CA_CERT)
                )
                if hello is not None:
                    self._mode, self._url, self._token = MODE_REMOTE, entry.data[CONF_URL], token
                    self._ca_cert = entry.data.get(CONF_CA_CERT)
                    return await self._async_bridge_ready(hello)
                errors["base"] = error
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=REAUTH_TOKEN_SCHEMA if entry.data[CONF_MODE] == MODE_REMOTE else None,
            description_placeholders={"title": entry.title},
            errors=errors,
        )

    async def _async_finish_reauth(self, account: Account) -> ConfigFlowResult:
        """Same account again: point the entry at the new session and reload it."""
        entry = self._get_reauth_entry()
        updates: dict[str, Any] = {
            CONF_ACCOUNT_JID: account.jid,
            CONF_PUSH_NAME: account.push_name,
        }
        old_session: str | None = None
        if self._mode != MODE_REMOTE:
            updates[CONF_SESSION_ID] = self._bridge.session_id
            old_session = entry.data.get(CONF_SESSION_ID)
            self._bridge.session_id = None  # the entry owns the folder now
        elif self._token is not None:
            updates[CONF_TOKEN] = self._token  # a new token ends a reauth for a refused one
        await self._bridge.async_close(discard=False)
        self.hass.config_entries.async_update_entry(entry, data={**entry.data, **updates})
        # The update listener does not reload (it applies options live); a new session needs it.
        await self.hass.config_entries.async_reload(entry.entry_id)
        if old_session is not None and old_session != updates[CONF_SESSION_ID]:
            await async_remove_session(self.hass, old_session)
        return self.async_abort(reason="reauth_successful")

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the address or token of a bridge add-on or server (same account)."""
        entry = self._get_reconfigure_entry()
        if entry.data[CONF_MODE] != MODE_REMOTE:
            return self.async_abort(reason="reconfigure_not_supported")
        errors: dict[str, str] = {}
        if user_input is not None and (
            result := await self._async_address_entered(user_input, errors)
        ):
            return result
        return self._address_form("reconfigure", user_input or entry.data, errors)

    async def async_step_reconfigure_insecure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The new address is plain ws:// to another machine: say so before connecting."""
        return await self._async_insecure("reconfigure_insecure", "reconfigure", user_input)

    async def _async_reconfigure_to(
        self, hello: Hello, errors: dict[str, str]
    ) -> ConfigFlowResult | None:
        """Point the entry at a bridge holding the same account; None with ``errors`` set.

        Updated and reloaded here, not with ``async_update_reload_and_abort``: for an entry with
        an update listener (this one applies options and subentries live) Home Assistant logs
        that helper as a misuse that stops working in 2026.12.
        """
        account = hello.status.account
        if not hello.status.paired or account is None:
            errors["base"] = "bridge_not_paired"
            return None
        await self.async_set_unique_id(jid_to_phone(account.jid))
        self._abort_if_unique_id_mismatch(reason="wrong_account")
        entry = self._get_reconfigure_entry()
        data = {**entry.data, CONF_URL: self._url, CONF_TOKEN: self._token}
        data.pop(CONF_CA_CERT, None)
        if self._ca_cert is not None:
            data[CONF_CA_CERT] = self._ca_cert
        self.hass.config_entries.async_update_entry(entry, data=data)
        await self.hass.config_entries.async_reload(entry.entry_id)
        return self.async_abort(reason="reconfigure_successful")
