"""Config flow for WhatsApp Presence: where WhatsApp runs, pairing, pacing, contacts.

The flow talks to a bridge of its own (pairing.py): a child bridge on a new session folder in
local and demo modes, the user's bridge add-on or server in remote mode. It pairs through it,
stops it and hands the session to the entry, whose coordinator then runs its own bridge.
"""

from __future__ import annotations

from collections.abc import Mapping
import html
import ipaddress
from typing import Any, Final
import uuid

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    QrCodeSelector,
    QrCodeSelectorConfig,
    QrErrorCorrectionLevel,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
    TimeSelector,
)
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.helpers.translation import async_get_translations
import probatio as vol
from yarl import URL

from .bridge.protocol import (
    MIN_TOKEN_LENGTH,
    WS_PATH,
    BridgeAuthError,
    BridgeConnectionError,
    BridgeError,
    ErrorCode,
    is_user_jid,
    jid_to_phone,
    normalize_phone,
)
from .const import (
    AVAILABILITY_MODES,
    AVAILABILITY_SCHEDULE,
    BATCH_DELAY_RANGE,
    BATCH_SIZE_RANGE,
    CONF_ACCOUNT_JID,
    CONF_ADAPTIVE,
    CONF_ADDON,
    CONF_AVAILABILITY,
    CONF_BATCH_DELAY,
    CONF_BATCH_SIZE,
    CONF_CA_CERT,
    CONF_GRACE_PERIOD,
    CONF_HEALTH_CHECK_INTERVAL,
    CONF_JID,
    CONF_MAX_BACKOFF,
    CONF_MAX_PER_MINUTE,
    CONF_MODE,
    CONF_PHONE,
    CONF_PRESET,
    CONF_PRIORITY,
    CONF_PROMETHEUS,
    CONF_PROMETHEUS_JID,
    CONF_PUSH_NAME,
    CONF_RESUBSCRIBE_AFTER,
    CONF_SAMPLE_EVERY,
    CONF_SAMPLE_SECONDS,
    CONF_SCHEDULE_ENTITY,
    CONF_SESSION_ID,
    CONF_SUBSCRIPTION_DELAY,
    CONF_WINDOW_END,
    CONF_WINDOW_START,
    DEFAULT_ADAPTIVE,
    DEFAULT_AVAILABILITY,
    DEFAULT_GRACE_PERIOD,
    DEFAULT_HEALTH_CHECK_INTERVAL,
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MAX_PER_MINUTE,
    DEFAULT_PROMETHEUS,
    DEFAULT_PROMETHEUS_JID,
    DEFAULT_RESUBSCRIBE_AFTER,
    DEFAULT_SAMPLE_EVERY,
    DEFAULT_SAMPLE_SECONDS,
    DEFAULT_WINDOW_END,
    DEFAULT_WINDOW_START,
    DOMAIN,
    MAX_PER_MINUTE_RANGE,
    MODE_LOCAL,
    MODE_REMOTE,
    MODE_SIMULATOR,
    SAMPLE_EVERY_RANGE,
    SAMPLE_SECONDS_RANGE,
    SUBENTRY_CONTACT,
    SUBENTRY_GROUP,
    SUBSCRIPTION_DELAY_RANGE,
)
from .discovery import DiscoveredBridge, bridge_from_discovery
from .launcher import BridgeStartError
from .manager import CUSTOM_PRESET, DEFAULT_PRESET, PRESETS, BatchConfig, preset_rate
from .options import PRIORITY_NAMES, pacing_error, priority_name, priority_value
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
from .tls import InvalidCACertError, async_client_ssl_context

PAIR_OPTIONS: Final = ["pair_qr", "pair_phone", "pair_qr_static"]
PRESET_OPTIONS: Final = [*PRESETS, CUSTOM_PRESET]
DEFAULT_PRIORITY: Final = "medium"
CONF_CONTACT: Final = "contact"
CONF_GROUP: Final = "group"
SECTION_PACING: Final = "pacing"
SECTION_SCHEDULE: Final = "schedule"
SECTION_AVAILABILITY: Final = "availability"
SECTION_CONNECTION: Final = "connection"
AVAILABILITY_KEYS: Final = (
    CONF_AVAILABILITY,
    CONF_SCHEDULE_ENTITY,
    CONF_WINDOW_START,
    CONF_WINDOW_END,
    CONF_SAMPLE_SECONDS,
    CONF_SAMPLE_EVERY,
)
SECTION_METRICS: Final = "metrics"

# Safe ranges of the options that const.py gives no range for (units as stored).
RESUBSCRIBE_AFTER_RANGE: Final = (0, 168)  # hours; 0 = only on reconnect (event-only)
HEALTH_CHECK_INTERVAL_RANGE: Final = (5, 1440)  # minutes
MAX_BACKOFF_RANGE: Final = (2, 1440)  # minutes
GRACE_PERIOD_RANGE: Final = (0, 3600)  # seconds


def _number(low: float, high: float, step: float, unit: str | None = None) -> NumberSelector:
    config = NumberSelectorConfig(min=low, max=high, step=step, mode=NumberSelectorMode.BOX)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


PRESET_SELECTOR: Final = SelectSelector(
    SelectSelectorConfig(
        options=PRESET_OPTIONS, translation_key="preset", mode=SelectSelectorMode.LIST
    )
)
PRIORITY_SELECTOR: Final = SelectSelector(
    SelectSelectorConfig(
        options=PRIORITY_NAMES, translation_key="priority", mode=SelectSelectorMode.LIST
    )
)
CUSTOM_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_BATCH_SIZE): _number(*BATCH_SIZE_RANGE, 1),
        vol.Required(CONF_BATCH_DELAY): _number(*BATCH_DELAY_RANGE, 0.5, "s"),
        vol.Required(CONF_SUBSCRIPTION_DELAY): _number(*SUBSCRIPTION_DELAY_RANGE, 0.05, "s"),
    }
)
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


def default_options() -> dict[str, Any]:
    """Options of a new entry: the default preset and every default setting."""
    return {
        CONF_PRESET: DEFAULT_PRESET,
        CONF_MAX_PER_MINUTE: DEFAULT_MAX_PER_MINUTE,
        CONF_ADAPTIVE: DEFAULT_ADAPTIVE,
        CONF_RESUBSCRIBE_AFTER: DEFAULT_RESUBSCRIBE_AFTER,
        CONF_HEALTH_CHECK_INTERVAL: DEFAULT_HEALTH_CHECK_INTERVAL,
        CONF_MAX_BACKOFF: DEFAULT_MAX_BACKOFF,
        CONF_AVAILABILITY: DEFAULT_AVAILABILITY,
        CONF_WINDOW_START: DEFAULT_WINDOW_START,
        CONF_WINDOW_END: DEFAULT_WINDOW_END,
        CONF_SAMPLE_SECONDS: DEFAULT_SAMPLE_SECONDS,
        CONF_SAMPLE_EVERY: DEFAULT_SAMPLE_EVERY,
        CONF_GRACE_PERIOD: DEFAULT_GRACE_PERIOD,
        CONF_PROMETHEUS: DEFAULT_PROMETHEUS,
        CONF_PROMETHEUS_JID: DEFAULT_PROMETHEUS_JID,
    }


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


def custom_pacing(user_input: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Custom batch values from a form, and errors: WhatsApp's limit is 200-300 a minute."""
    values: dict[str, Any] = {
        CONF_BATCH_SIZE: int(user_input[CONF_BATCH_SIZE]),
        CONF_BATCH_DELAY: float(user_input[CONF_BATCH_DELAY]),
        CONF_SUBSCRIPTION_DELAY: float(user_input[CONF_SUBSCRIPTION_DELAY]),
    }
    error = pacing_error(
        BatchConfig(
            batch_size=values[CONF_BATCH_SIZE],
            batch_delay=values[CONF_BATCH_DELAY],
            subscription_delay=values[CONF_SUBSCRIPTION_DELAY],
        )
    )
    return values, {"base": error} if error else {}


def custom_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """Current custom values, or the default preset's as a starting point."""
    preset = PRESETS[DEFAULT_PRESET]
    return {
        CONF_BATCH_SIZE: options.get(CONF_BATCH_SIZE, preset.batch_size),
        CONF_BATCH_DELAY: options.get(CONF_BATCH_DELAY, preset.batch_delay),
        CONF_SUBSCRIPTION_DELAY: options.get(CONF_SUBSCRIPTION_DELAY, preset.subscription_delay),
    }


def _rate_text(user_input: Mapping[str, Any] | None) -> str:
    """Contacts a minute of a (possibly rejected) custom form, for its description."""
    if user_input is None:
        return "-"
    values, _ = custom_pacing(user_input)
    rate = preset_rate(
        BatchConfig(
            values[CONF_BATCH_SIZE], values[CONF_BATCH_DELAY], values[CONF_SUBSCRIPTION_DELAY]
        )
    )
    return f"{rate:.0f}"


def account_title(account: Mapping[str, Any]) -> str:
    """The entry title: the account's push name, else its number."""
    name = account.get("push_name")
    return str(name) if name else f"+{jid_to_phone(str(account['jid']))}"


def qr_code_markup(data: str) -> str:
    """The frontend's QR element for a progress text.

    It goes in as a placeholder value: the frontend's message formatter rejects the tag when
    it is written in the translation itself (INVALID_TAG), and draws nothing.
    """
    return (
        f'<ha-qr-code data="{html.escape(data, quote=True)}" '
        'error-correction-level="quartile" scale="5"></ha-qr-code>'
    )


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
        self._account: dict[str, Any] | None = None
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
        if user_input is not None:
            url = normalize_url(user_input[CONF_URL])
            token = user_input[CONF_TOKEN].strip()
            self._ca_cert = (user_input.get(CONF_CA_CERT) or "").strip() or None
            if url is None:
                errors[CONF_URL] = "invalid_url"
            elif error := token_error(token):
                errors[CONF_TOKEN] = error
            elif is_exposed(url):
                self._url, self._token = url, token
                return await self.async_step_remote_insecure()
            else:
                return await self._async_remote_connect(url, token, errors)
        return self._remote_form(user_input, errors)

    def _remote_form(
        self, suggested: Mapping[str, Any] | None, errors: dict[str, str]
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id="remote",
            # Never the token: the form goes to the browser.
            data_schema=self.add_suggested_values_to_schema(
                REMOTE_SCHEMA, _without_token(suggested)
            ),
            errors=errors,
        )

    async def async_step_remote_insecure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Plain ws:// to another machine: say the token crosses the network readable."""
        url, token = self._url, self._token
        assert url is not None
        assert token is not None
        if user_input is not None:
            return await self._async_remote_connect(url, token, {})
        return self.async_show_form(
            step_id="remote_insecure", description_placeholders={"host": URL(url).host or ""}
        )

    async def _async_remote_connect(
        self, url: str, token: str, errors: dict[str, str]
    ) -> ConfigFlowResult:
        """Connect; on failure back to the address form with the error."""
        hello, error = await self._async_connect(url, token, self._ca_cert)
        if hello is not None:
            self._mode, self._url, self._token = MODE_REMOTE, url, token
            return await self._async_bridge_ready(hello)
        errors["base"] = error
        return self._remote_form({CONF_URL: url, CONF_CA_CERT: self._ca_cert}, errors)

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
    ) -> tuple[dict[str, Any] | None, str]:
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

    async def _async_bridge_ready(self, hello: Mapping[str, Any]) -> ConfigFlowResult:
        """A bridge already holding a session skips pairing; otherwise pair."""
        status = hello.get("status") or {}
        account = status.get("account")
        if status.get("paired") and isinstance(account, dict) and is_user_jid(account.get("jid")):
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

    async def _async_account_ready(self, account: Mapping[str, Any]) -> ConfigFlowResult:
        """The bridge holds a session of ``account``: one entry per account, same one on reauth."""
        jid = str(account["jid"])  # checked by the caller (hello) or by FlowBridge (event)
        await self.async_set_unique_id(jid_to_phone(jid), raise_on_progress=False)
        if self.source == SOURCE_REAUTH:
            if self._get_reauth_entry().unique_id != self.unique_id:
                await self._bridge.async_close(discard=True)
                self._abort_if_unique_id_mismatch(reason="wrong_account")
            return await self._async_finish_reauth(account)
        await self._async_abort_if_configured()
        self._account = dict(account)
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
            description_placeholders={"rate": _rate_text(user_input)},
        )

    async def _async_create(self, options: dict[str, Any]) -> ConfigFlowResult:
        """Hand the session to a new entry (the flow's own bridge stops first)."""
        account = self._account
        assert account is not None
        await self._async_abort_if_configured()
        data: dict[str, Any] = {
            CONF_MODE: self._mode,
            CONF_ACCOUNT_JID: account["jid"],
            CONF_PUSH_NAME: account.get("push_name"),
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

    async def _async_finish_reauth(self, account: Mapping[str, Any]) -> ConfigFlowResult:
        """Same account again: point the entry at the new session and reload it."""
        entry = self._get_reauth_entry()
        updates: dict[str, Any] = {
            CONF_ACCOUNT_JID: account["jid"],
            CONF_PUSH_NAME: account.get("push_name"),
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
        if user_input is not None:
            url = normalize_url(user_input[CONF_URL])
            token = user_input[CONF_TOKEN].strip()
            ca_cert = (user_input.get(CONF_CA_CERT) or "").strip() or None
            if url is None:
                errors[CONF_URL] = "invalid_url"
            elif error := token_error(token):
                errors[CONF_TOKEN] = error
            elif is_exposed(url):
                self._url, self._token, self._ca_cert = url, token, ca_cert
                return await self.async_step_reconfigure_insecure()
            elif result := await self._async_reconfigure_to(url, token, ca_cert, errors):
                return result
        return self._reconfigure_form(_without_token(user_input or entry.data), errors)

    async def async_step_reconfigure_insecure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The new address is plain ws:// to another machine: say so before connecting."""
        url, token = self._url, self._token
        assert url is not None
        assert token is not None
        if user_input is None:
            return self.async_show_form(
                step_id="reconfigure_insecure",
                description_placeholders={"host": URL(url).host or ""},
            )
        errors: dict[str, str] = {}
        if result := await self._async_reconfigure_to(url, token, self._ca_cert, errors):
            return result
        return self._reconfigure_form({CONF_URL: url, CONF_CA_CERT: self._ca_cert}, errors)

    def _reconfigure_form(
        self, suggested: Mapping[str, Any] | None, errors: dict[str, str]
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id="reconfigure",
            # Never the token: the form goes to the browser.
            data_schema=self.add_suggested_values_to_schema(
                REMOTE_SCHEMA, _without_token(suggested)
            ),
            errors=errors,
        )

    async def _async_reconfigure_to(
        self, url: str, token: str, ca_cert: str | None, errors: dict[str, str]
    ) -> ConfigFlowResult | None:
        """Point the entry at a bridge holding the same account; None with ``errors`` set."""
        entry = self._get_reconfigure_entry()
        hello, error = await self._async_connect(url, token, ca_cert)
        await self._bridge.async_close(discard=False)
        status = (hello or {}).get("status") or {}
        account = status.get("account")
        if hello is None:
            errors["base"] = error
            return None
        if not status.get("paired") or not isinstance(account, dict):
            errors["base"] = "bridge_not_paired"
            return None
        await self.async_set_unique_id(jid_to_phone(str(account.get("jid"))))
        self._abort_if_unique_id_mismatch(reason="wrong_account")
        data = {**entry.data, CONF_URL: url, CONF_TOKEN: token}
        data.pop(CONF_CA_CERT, None)
        if ca_cert is not None:
            data[CONF_CA_CERT] = ca_cert
        self.hass.config_entries.async_update_entry(entry, data=data)
        await self.hass.config_entries.async_reload(entry.entry_id)
        return self.async_abort(reason="reconfigure_successful")


class WhatsAppOptionsFlow(OptionsFlow):
    """Pacing, schedule, connection behaviour and metrics of a linked account."""

    def __init__(self) -> None:
        """Options chosen on the first page, kept while the custom page is shown."""
        self._options: dict[str, Any] = {}

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Everything but the custom batch values (shown next when the preset is custom)."""
        current = {**default_options(), **self.config_entry.options}
        errors: dict[str, str] = {}
        flat: dict[str, Any] = {}
        if user_input is not None:
            for value in user_input.values():
                flat.update(value)
            for key in (
                CONF_MAX_PER_MINUTE,
                CONF_RESUBSCRIBE_AFTER,
                CONF_HEALTH_CHECK_INTERVAL,
                CONF_MAX_BACKOFF,
                CONF_GRACE_PERIOD,
                CONF_SAMPLE_SECONDS,
                CONF_SAMPLE_EVERY,
            ):
                flat[key] = int(flat[key])
            current.pop(CONF_SCHEDULE_ENTITY, None)  # an emptied field is absent: clear it
            errors = availability_errors(flat)
            if not errors:
                self._options = {**current, **flat}
                if flat[CONF_PRESET] == CUSTOM_PRESET:
                    return await self.async_step_custom()
                return self.async_create_entry(data=self._options)
        current.update(flat)  # a refused page comes back as it was entered
        suggested = {
            SECTION_PACING: {
                k: current[k] for k in (CONF_PRESET, CONF_MAX_PER_MINUTE, CONF_ADAPTIVE)
            },
            SECTION_SCHEDULE: {
                k: current[k]
                for k in (CONF_RESUBSCRIBE_AFTER, CONF_HEALTH_CHECK_INTERVAL, CONF_MAX_BACKOFF)
            },
            SECTION_AVAILABILITY: {k: current[k] for k in AVAILABILITY_KEYS if k in current},
            SECTION_CONNECTION: {k: current[k] for k in (CONF_GRACE_PERIOD,)},
            SECTION_METRICS: {k: current[k] for k in (CONF_PROMETHEUS, CONF_PROMETHEUS_JID)},
        }
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(OPTIONS_SCHEMA, suggested),
            errors=errors,
        )

    async def async_step_custom(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Custom batch values, within safe ranges."""
        errors: dict[str, str] = {}
        if user_input is not None:
            values, errors = custom_pacing(user_input)
            if not errors:
                return self.async_create_entry(data={**self._options, **values})
        return self.async_show_form(
            step_id="custom",
            data_schema=self.add_suggested_values_to_schema(
                CUSTOM_SCHEMA, user_input or custom_defaults(self._options)
            ),
            errors=errors,
            description_placeholders={"rate": _rate_text(user_input)},
        )


def availability_errors(options: Mapping[str, Any]) -> dict[str, str]:
    """A sample must end before the next one starts; a time window must not be empty."""
    if options[CONF_SAMPLE_SECONDS] >= 60 * options[CONF_SAMPLE_EVERY]:
        return {"base": "sample_too_long"}
    if (
        options[CONF_AVAILABILITY] == AVAILABILITY_SCHEDULE
        and not options.get(CONF_SCHEDULE_ENTITY)
        and options[CONF_WINDOW_START] == options[CONF_WINDOW_END]
    ):
        return {"base": "empty_window"}
    return {}


OPTIONS_SCHEMA: Final = vol.Schema(
    {
        vol.Required(SECTION_PACING): section(
            vol.Schema(
                {
                    vol.Required(CONF_PRESET): PRESET_SELECTOR,
                    vol.Required(CONF_MAX_PER_MINUTE): _number(*MAX_PER_MINUTE_RANGE, 1),
                    vol.Required(CONF_ADAPTIVE): BooleanSelector(),
                }
            )
        ),
        vol.Required(SECTION_SCHEDULE): section(
            vol.Schema(
                {
                    vol.Required(CONF_RESUBSCRIBE_AFTER): _number(*RESUBSCRIBE_AFTER_RANGE, 1, "h"),
                    vol.Required(CONF_HEALTH_CHECK_INTERVAL): _number(
                        *HEALTH_CHECK_INTERVAL_RANGE, 1, "min"
                    ),
                    vol.Required(CONF_MAX_BACKOFF): _number(*MAX_BACKOFF_RANGE, 1, "min"),
                }
            ),
            {"collapsed": True},
        ),
        vol.Required(SECTION_AVAILABILITY): section(
            vol.Schema(
                {
                    vol.Required(CONF_AVAILABILITY): SelectSelector(
                        SelectSelectorConfig(
                            options=list(AVAILABILITY_MODES),
                            translation_key="availability",
                            mode=SelectSelectorMode.LIST,
                        )
                    ),
                    vol.Optional(CONF_SCHEDULE_ENTITY): EntitySelector(
                        EntitySelectorConfig(domain="schedule")
                    ),
                    vol.Required(CONF_WINDOW_START): TimeSelector(),
                    vol.Required(CONF_WINDOW_END): TimeSelector(),
                    vol.Required(CONF_SAMPLE_SECONDS): _number(*SAMPLE_SECONDS_RANGE, 1, "s"),
                    vol.Required(CONF_SAMPLE_EVERY): _number(*SAMPLE_EVERY_RANGE, 1, "min"),
                }
            )
        ),
        vol.Required(SECTION_CONNECTION): section(
            vol.Schema(
                {
                    vol.Required(CONF_GRACE_PERIOD): _number(*GRACE_PERIOD_RANGE, 1, "s"),
                }
            )
        ),
        vol.Required(SECTION_METRICS): section(
            vol.Schema(
                {
                    vol.Required(CONF_PROMETHEUS): BooleanSelector(),
                    vol.Required(CONF_PROMETHEUS_JID): BooleanSelector(),
                }
            ),
            {"collapsed": True},
        ),
    }
)


# ---------------------------------------------------------------------- subentries


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

    def _client(self) -> Any:
        """The running coordinator's bridge client, or None when the account is not loaded."""
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return None
        return getattr(entry.runtime_data, "client", None)

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
            self._names = {c["jid"]: c.get("name") for c in contacts if is_user_jid(c.get("jid"))}
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
        self, client: Any, user_input: Mapping[str, Any]
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
        found = next(
            (r for r in results if r.get("on_whatsapp") and is_user_jid(r.get("jid"))), None
        )
        if found is None:
            return None, "not_on_whatsapp"
        jid = str(found["jid"])
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
        names = {g["jid"]: str(g.get("name") or g["jid"]) for g in groups if "jid" in g}
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
        counts = {g["jid"]: g.get("participants") for g in groups if "jid" in g}
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
