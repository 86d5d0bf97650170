"""The hub of one linked WhatsApp account: bridge link, subscription manager, presence.

Presence is pushed, so this is not a polling ``DataUpdateCoordinator``: with thousands of
contacts, waking every entity on every presence event would cost O(contacts) per event. Each
entity listens to its own contact instead (``async_add_contact_listener``), and account-level
entities listen to ``async_add_listener``.

The coordinator wires the parts and turns bridge events into their changes: the bridge
connection (``connection.py``), the subscription manager (``manager/``), the presence model
(``presence.py``), online times (``activity.py``) and their midnights (``days.py``), the
connection figures (``status.py``), the listeners (``listeners.py``), the saved state
(``store.py``), the repair issues (``issues.py``) and the availability mode
(``availability.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_TOKEN, CONF_URL, EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .activity import ActivityTracker
from .availability import AvailabilityMode, mode_settings
from .bridge.client import BridgeClient
from .bridge.protocol import (
    BridgeAuthError,
    BridgeError,
    BridgeEvent,
    ClientOutdated,
    Connected,
    Contact,
    Disconnected,
    ErrorCode,
    Hello,
    LoggedOut,
    Presence,
    StreamReplaced,
    TemporaryBan,
    jid_to_phone,
)
from .connection import BridgeConnection
from .const import (
    ACCOUNT_ENTITY_RESERVE,
    CONF_ACCOUNT_JID,
    CONF_CA_CERT,
    CONF_GRACE_PERIOD,
    CONF_JID,
    CONF_MARK_ONLINE,
    CONF_MODE,
    CONF_PRESET,
    CONF_SESSION_ID,
    DEFAULT_GRACE_PERIOD,
    DEFAULT_MARK_ONLINE,
    DOMAIN,
    INSIGHT_ENTITIES_PER_CONTACT,
    LOGGER,
    MAX_ENABLED_ENTITIES,
    MAX_TRACKED_CONTACTS,
    MODE_REMOTE,
    SILENCE_REPAIR_AFTER,
    SUBENTRY_GROUP,
)
from .days import DayTimers
from .issues import AccountIssues
from .launcher import BridgeProcess, BridgeStartError, bridge_args, session_dir
from .listeners import Listeners
from .manager import DEFAULT_PRESET, SLOWER_PRESET, SubscriptionManager, SubscriptionPaused
from .options import manager_config_from_options
from .presence import ContactPresence, PresenceModel, TrackedContact, ranked_first, wanted_contacts
from .status import AccountStatus
from .store import AccountStore
from .tls import async_client_ssl_context

type WhatsAppConfigEntry = ConfigEntry[WhatsAppCoordinator]

ACCOUNT_BLOCKED = ("account_locked", "account_banned")
"""``logged_out`` reasons that need the user to act on the phone before linking again."""
TRUST_CHECK_AFTER = timedelta(milliseconds=10)
"""The trust timer fires this long after the trust gap ends (the gap itself is still trusted)."""
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)
"""How far in the future a contact's last seen may be: the phone's, WhatsApp's and this
host's clocks differ a little. Later than that it is a wrong figure, ignored: last seen only
moves forward, so one far-future figure would stay (and be saved) for good."""


class WhatsAppCoordinator:
    """Owns the bridge (and its child process), the subscription manager and the presence."""

    def __init__(self, hass: HomeAssistant, entry: WhatsAppConfigEntry) -> None:
        """Prepare; nothing runs until ``async_setup``."""
        self.hass = hass
        self.entry = entry
        self.account_jid: str = entry.data[CONF_ACCOUNT_JID]
        self.bridge = BridgeConnection(
            hass,
            on_event=self._on_event,
            on_connection_change=self._on_link_change,
            on_unresponsive=self._on_bridge_unresponsive,
            on_auth_failed=self._on_token_refused,
            on_restart=self._on_bridge_restart,
            on_down=self._on_bridge_down,
        )
        self.manager = SubscriptionManager(
            self._async_subscribe,
            config=manager_config_from_options(entry.options),
            clock=lambda: dt_util.utcnow().timestamp(),
        )
        self.status = AccountStatus()
        self.model = PresenceModel(self.manager.trusted)
        self.group_members: dict[str, list[Contact]] = {}
        self.insights_by_default: set[str] = set()
        self.activity = ActivityTracker(
            clock=lambda: dt_util.utcnow().timestamp(), time_zone=dt_util.get_default_time_zone
        )
        self.store = AccountStore(
            hass,
            entry.entry_id,
            manager=self.manager,
            model=self.model,
            activity=self.activity,
            group_members=self.group_members,
            presence_enabled=lambda: self.presence_enabled,
        )
        self.listeners = Listeners()
        self.issues = AccountIssues(hass, entry)
        self.days = DayTimers(hass, self.activity, self.listeners, self.store.schedule_save)
        self._unsubs: list[CALLBACK_TYPE] = []
        self._stop_unsub: CALLBACK_TYPE | None = None
        self._grace_timer: CALLBACK_TYPE | None = None
        self._trust_timer: CALLBACK_TYPE | None = None
        self._trust_timer_at: float | None = None
        self._unavailable_logged = False
        self._disconnects = 0
        """WhatsApp disconnects so far: a change across an await means one came meanwhile."""
        self.presence_enabled = bool(entry.options.get(CONF_MARK_ONLINE, DEFAULT_MARK_ONLINE))
        """The switch: the linked device is marked online (presence flows, notifications stop)."""
        self.mode = AvailabilityMode(hass, entry.options, self._mode_changed)
        self._mode_settings = mode_settings(entry.options)
        self._applied_options = dict(entry.options)
        self._applied_subentries = _subentries(entry)

    # ----------------------------------------------------------------- lifecycle

    async def async_setup(self) -> None:
        """Connect to the bridge, restore state and start subscribing.

        Raises the ConfigEntry* exceptions Home Assistant expects: not ready when the bridge
        cannot be reached, auth failed when WhatsApp no longer knows this device.
        """
        if (enabled := await self.store.async_restore()) is not None:
            self.presence_enabled = enabled
        self._sync_tracked()
        if (wanted := self.mode.start()) is not None:
            self.presence_enabled = wanted
        if not self.presence_enabled:
            self.manager.pause()
        try:
            hello = await self._async_connect_bridge()
        except BridgeAuthError as err:
            await self.async_shutdown()
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_token"
            ) from err
        except (BridgeError, BridgeStartError, OSError) as err:
            await self.async_shutdown()
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="bridge_unreachable",
                translation_placeholders={"error": str(err)},
            ) from err
        status = hello.status
        if not status.paired:
            await self.async_shutdown()
            raise ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="not_paired")
        self.status.bridge_connected = True
        self.manager.start()
        if status.connected:
            await self._async_on_connected()
        self._unsubs.append(self.issues.watch_silence(self._silent))
        self._stop_unsub = self.hass.bus.async_listen_once(
            EVENT_HOMEASSISTANT_STOP, self._async_on_hass_stop
        )
        self._unsubs.append(self.manager.add_listener(self._on_manager_change))
        self.days.start()

    async def _async_connect_bridge(self) -> Hello:
        """Start the child bridge if this mode has one, then connect the client."""
        data = self.entry.data
        ssl_context = None
        if data[CONF_MODE] == MODE_REMOTE:
            url, token = data[CONF_URL], data[CONF_TOKEN]
            ssl_context = await async_client_ssl_context(self.hass, data.get(CONF_CA_CERT))
        else:
            directory = session_dir(self.hass, data[CONF_SESSION_ID])
            url, token = await self.bridge.async_start_child(
                bridge_args(data[CONF_MODE], directory),
                clock=self.hass.loop.time,  # the clock its restart delays run on
            )
        return await self.bridge.async_connect(url, token, ssl_context)

    @property
    def client(self) -> BridgeClient | None:
        """The bridge client while connected (None before setup and after shutdown)."""
        return self.bridge.client

    @property
    def process(self) -> BridgeProcess | None:
        """The child bridge, in the modes that have one."""
        return self.bridge.process

    async def async_shutdown(self) -> None:
        """Stop everything this coordinator started; idempotent, leaves no task behind."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        if self._stop_unsub is not None:
            self._stop_unsub()
            self._stop_unsub = None
        self._cancel_grace_timer()
        self._cancel_trust_timer()
        self.mode.stop()
        self.days.stop()
        self.issues.cancel_bridge_down()
        await self.manager.stop()
        await self.bridge.async_close()
        self.activity.forget_all()  # what happens while we are stopped is unknown
        await self.store.async_save()

    async def _async_on_hass_stop(self, event: Event) -> None:
        """Home Assistant does not unload entries when it stops: stop the bridge ourselves."""
        self._stop_unsub = None  # fired listen_once listeners are gone already
        await self.async_shutdown()

    # ----------------------------------------------------------------- entry updates

    async def async_entry_updated(self) -> None:
        """Apply what changed in the entry, and only that (the update listener's one job).

        Options written by the integration itself (a ban's step-down, ``set_batch_config``) or
        by the options flow change the pace and the mode; contacts are read again only when a
        subentry changed, and groups fetched again only when a group subentry did.
        """
        if self.entry.options != self._applied_options:
            self._applied_options = dict(self.entry.options)
            await self.async_options_updated()
        subentries = _subentries(self.entry)
        if subentries == self._applied_subentries:
            return
        groups_changed = _groups(subentries) != _groups(self._applied_subentries)
        self._applied_subentries = subentries
        self.async_sync_contacts()
        if groups_changed:
            await self.async_refresh_groups()

    async def async_options_updated(self) -> None:
        """Apply changed options without reconnecting (a reconnect costs a full re-subscribe)."""
        self.manager.update_config(manager_config_from_options(self.entry.options))
        settings = mode_settings(self.entry.options)
        if settings != self._mode_settings:
            self._mode_settings = settings
            self.mode.stop()
            self.mode = AvailabilityMode(self.hass, self.entry.options, self._mode_changed)
            wanted = self.mode.start()
            await self.async_set_presence_enabled(True if wanted is None else wanted)
            self.listeners.everything()  # the contacts' "sampled" attribute follows the mode

    # ----------------------------------------------------------------- availability switch

    @callback
    def _mode_changed(self, on: bool) -> None:
        """The mode's schedule or sampling timer turns the linked device on or off."""
        self.entry.async_create_task(
            self.hass, self.async_set_presence_enabled(on), "whatsapp_presence availability"
        )

    async def async_set_presence_enabled(self, enabled: bool) -> None:
        """Mark the linked device online (presence flows) or not (the phone notifies again).

        Off: every contact's online state becomes unknown (nothing is seen, so nothing is
        claimed, and no offline period is invented) and the manager spends no subscriptions.
        On: the device is marked online first, then subscriptions are renewed, paced.
        """
        if enabled == self.presence_enabled:
            return
        self.presence_enabled = enabled
        if not enabled:
            with self.listeners.once():
                self.manager.pause()
                self.model.forget_online()
                self.activity.forget_all()  # unseen time is neither online nor offline
                self.listeners.everything()
        await self._async_send_available()
        if enabled and self.presence_enabled:  # not switched off again meanwhile
            self.manager.resume()
        self.listeners.account()
        self.store.schedule_save()

    async def _async_send_available(self, *, connecting: bool = False) -> None:
        """Tell WhatsApp what the switch says (again after every reconnect: it forgets).

        ``connecting``: WhatsApp just connected and the coordinator does not show it yet (it
        is told first, so the device is available before any subscription), so only the
        link to the bridge is checked.
        """
        linked = self.status.bridge_connected if connecting else self.connected
        if self.client is None or not linked:
            return  # applied on the next connect
        try:
            await self.client.set_available(self.presence_enabled)
        except BridgeError as err:
            LOGGER.warning("Could not change the linked device's availability: %s", err.message)

    # ----------------------------------------------------------------- contacts

    @callback
    def async_sync_contacts(self) -> None:
        """Follow the entry's subentries (added or removed without a reload)."""
        self._sync_tracked()
        self.store.schedule_save()
        self.listeners.contacts_changed()

    def _sync_tracked(self) -> None:
        wanted, over_limit = wanted_contacts(
            self.entry.subentries.values(),
            self.group_members,
            self.account_jid,
            MAX_TRACKED_CONTACTS,
        )
        if over_limit:
            self.issues.create("too_many_contacts", limit=str(MAX_TRACKED_CONTACTS))
        else:
            self.issues.delete("too_many_contacts")
        dropped, queued = self.model.track(wanted)
        for jid in dropped:
            self.manager.remove(jid)
            self.activity.untrack(jid)
        for contact in queued:
            self.manager.queue(contact.jid, contact.priority)
        for jid in wanted:
            self.activity.track(jid)
        for jid in self.activity.contacts.keys() - wanted.keys():
            self.activity.untrack(jid)  # saved figures of contacts no longer tracked
        # Every contact's presence entities must fit Home Assistant's entity limit first;
        # the room left enables insights for contacts in priority order (the rest can be
        # enabled by hand).
        room = MAX_ENABLED_ENTITIES - ACCOUNT_ENTITY_RESERVE - 2 * len(wanted)
        self.insights_by_default = ranked_first(
            wanted.values(), room // INSIGHT_ENTITIES_PER_CONTACT
        )

    async def async_refresh_groups(self) -> None:
        """Fetch the members of every tracked group (on connect; cached for restarts)."""
        if self.client is None:
            return
        changed = False
        for subentry in list(self.entry.subentries.values()):
            if subentry.subentry_type != SUBENTRY_GROUP:
                continue
            group_jid = subentry.data[CONF_JID]
            try:
                members = await self.client.group_participants(group_jid)
            except BridgeError as err:
                LOGGER.warning("Could not read the members of a tracked group: %s", err.code)
                continue
            if members != self.group_members.get(group_jid):
                self.group_members[group_jid] = members
                changed = True
        if changed:
            self.async_sync_contacts()

    # ----------------------------------------------------------------- bridge events

    async def _async_subscribe(self, jid: str) -> None:
        """The manager's subscribe call. A link that is down pauses; it is not a failure."""
        if self.client is None or not self.status.whatsapp_connected:
            raise SubscriptionPaused
        try:
            await self.client.subscribe_presence(jid)
        except BridgeError as err:
            if err.code in (ErrorCode.NOT_CONNECTED, ErrorCode.NOT_LOGGED_IN):
                raise SubscriptionPaused from err
            if err.code == ErrorCode.RATE_LIMITED:
                self.note_rate_limited()
            raise

    @callback
    def _on_event(self, event: BridgeEvent) -> None:
        """Everything the bridge pushes arrives here, on the event loop, decoded and valid
        (the client dropped what was malformed)."""
        if isinstance(event, Presence):
            self._on_presence(event)
            return
        self.status.remember(event)
        match event:
            case Connected():
                self.entry.async_create_task(
                    self.hass, self._async_on_connected(), "whatsapp_presence connected"
                )
            case Disconnected():
                self._set_whatsapp_connected(False)
            case LoggedOut(reason=reason):
                self.status.logged_out = True
                self._set_whatsapp_connected(False)
                if reason in ACCOUNT_BLOCKED:
                    # Locked or banned: linking again only works once that is resolved.
                    self.issues.create(reason, ir.IssueSeverity.ERROR)
                self.entry.async_start_reauth(self.hass)
            case TemporaryBan():
                self._on_temporary_ban(event)
            # Cleared on the next connection: a newer bridge (or another client gone) fixed it.
            case StreamReplaced():
                self._set_whatsapp_connected(False)
                self.issues.create("stream_replaced", ir.IssueSeverity.ERROR)
            case ClientOutdated():
                self._set_whatsapp_connected(False)
                self.issues.create("client_outdated", ir.IssueSeverity.ERROR)

    async def _async_on_connected(self) -> None:
        """WhatsApp is (again) connected: it forgot every subscription, so renew them all."""
        self.status.logged_out = False
        if self.status.banned_until is not None:
            self.status.banned_until = None
            self.issues.delete("temporary_ban")
        self.issues.delete("stream_replaced")
        for kind in ACCOUNT_BLOCKED:
            self.issues.delete(kind)
        self.issues.delete("client_outdated")
        # Available before subscribing: WhatsApp only sends presence to a device that is.
        # Told before the hold below, which must not span an await: a bridge round trip
        # would hold every other notification of the account (a grace end, a disconnect).
        disconnects = self._disconnects
        await self._async_send_available(connecting=True)
        if disconnects != self._disconnects or self.client is None:
            return  # disconnected (or shut down) meanwhile: the next connect renews everything
        # The connection and the manager's renewal reach each entity as one change.
        with self.listeners.once():
            self._set_whatsapp_connected(True)
            self.manager.on_connected()
        await self.async_refresh_groups()

    def _on_temporary_ban(self, event: TemporaryBan) -> None:
        """WhatsApp banned the account for a while: stop, slow down, and tell the user.

        Resuming at the same pace after a ban brings the next one within minutes (see
        docs/benchmarks.md), so the pace steps down one preset; the user can undo it.
        """
        expires_at = event.expires_at
        self.status.banned_until = dt_util.utc_from_timestamp(expires_at) if expires_at else None
        self._set_whatsapp_connected(False)
        self.manager.on_banned()
        preset = self.entry.options.get(CONF_PRESET, DEFAULT_PRESET)
        slower = SLOWER_PRESET.get(preset)
        if slower is not None:
            self.hass.config_entries.async_update_entry(
                self.entry, options={**self.entry.options, CONF_PRESET: slower}
            )
        self.issues.create(
            "temporary_ban",
            ir.IssueSeverity.ERROR,
            translation_key="temporary_ban" if slower else "temporary_ban_slowest",
            until=self.status.banned_until.isoformat() if self.status.banned_until else "?",
            pace=(slower or preset).replace("_", " ").capitalize(),
        )

    def _on_presence(self, event: Presence) -> None:
        """The hot path: one contact's presence changed."""
        jid = event.jid
        if jid not in self.tracked or not self.presence_enabled:
            return  # switched off: the device is not looking, whatever is still in flight
        now = dt_util.utcnow()
        # A bridge's clock ahead of ours must not date presence in the future: the contact
        # would never look stale to the manager.
        at = min(dt_util.utc_from_timestamp(event.at), now)
        self.status.last_presence = at
        presence = self.presence[jid]
        online = event.online
        self.manager.on_presence(jid, at.timestamp(), online)
        last_seen = event.last_seen
        seen: tuple[datetime, str] | None = None
        if (
            last_seen
            and (whatsapp_seen := dt_util.utc_from_timestamp(last_seen))
            <= now + CLOCK_SKEW_ALLOWANCE
        ):
            seen = whatsapp_seen, "whatsapp"
        elif online or presence.online:
            # Seen online now, or seen going offline now: an observation, not a guess.
            seen = at, "sampled" if self.mode.sampling else "observed"
        # Last seen only moves forward: an older figure (a subscription's answer after a
        # restart, say) never replaces a newer one.
        if seen is not None and (presence.last_seen is None or seen[0] >= presence.last_seen):
            presence.last_seen, presence.last_seen_source = seen
        presence.online = online
        shown = self._shown[jid] = self.shown_online(jid)
        # What is not shown is not counted either: untrusted time is unknown time.
        online_changed = (
            self.activity.forget(jid) if shown is None else self.activity.observe(jid, online)
        )
        self.store.schedule_save()
        self.listeners.contact_now(jid)
        if online_changed:
            self.listeners.online_now()

    @callback
    def _on_link_change(self, connected: bool) -> None:
        """The WebSocket to the bridge went down or came back."""
        self.status.bridge_connected = connected
        if connected:
            self.status.bridge_unresponsive = False
        if not connected:
            self._set_whatsapp_connected(False)
        elif self.client is not None:
            self.listeners.account()  # bridge reachable again, whatever WhatsApp's state turns out to be
            self.entry.async_create_task(
                self.hass, self._async_resync(), "whatsapp_presence resync"
            )

    async def _async_resync(self) -> None:
        """After the link to the bridge came back, ask where WhatsApp stands."""
        assert self.client is not None
        try:
            status = await self.client.status()
        except BridgeError:
            return
        if status.connected:
            await self._async_on_connected()
        elif not status.paired and not self.status.logged_out:
            self.status.logged_out = True
            self.entry.async_start_reauth(self.hass)

    @callback
    def _on_bridge_restart(self, url: str) -> None:
        """The child bridge was restarted (maybe on another port; the client is sent there)."""
        self.issues.bridge_restarted()

    @callback
    def _on_bridge_down(self, reason: str) -> None:
        """The child bridge died (restarts are under way): a repair if it stays down."""
        self.issues.bridge_down(
            lambda: self.process is not None and self.process.down_since is not None
        )

    @callback
    def _on_bridge_unresponsive(self) -> None:
        """Three pings unanswered: the bridge hangs. A child bridge is killed (and restarted)."""
        self.status.bridge_unresponsive = True
        if self.process is not None:
            self.process.kill("it stopped answering")
        self.listeners.account()

    @callback
    def _on_token_refused(self) -> None:
        """The bridge refused the token on a reconnect: only a new token helps (reauth)."""
        self.entry.async_start_reauth(self.hass)

    def device_identifier(self, jid: str | None) -> tuple[str, str]:
        """Device registry identifier of a contact, or of the account itself for ``None``.

        The account is part of every contact's identifier: two linked accounts tracking the
        same person get two devices.
        """
        account = jid_to_phone(self.account_jid)
        return (DOMAIN, account if jid is None else f"{account}_{jid_to_phone(jid)}")

    @property
    def rate_limited(self) -> bool:
        """WhatsApp banned us for a while, or refused a request as over its rate limit."""
        return self.status.rate_limited

    @callback
    def note_rate_limited(self) -> None:
        """A request came back ``rate_limited`` (WhatsApp's 429)."""
        self.status.rate_limited_at = dt_util.utcnow()
        self.listeners.account()

    # ----------------------------------------------------------------- availability

    @property
    def connected(self) -> bool:
        """Bridge reachable and WhatsApp connected."""
        return self.status.connected

    @property
    def connection_state(self) -> str:
        """One word for the account's connection (an enum sensor's state)."""
        return self.status.connection_state

    @property
    def available(self) -> bool:
        """Entities stay available through short outages (the grace period)."""
        return self.connected or self._grace_timer is not None

    def _set_whatsapp_connected(self, connected: bool) -> None:
        """Record the connection and tell the entities, grace period first.

        The grace timer starts before anything is notified: a listener reading ``available``
        during the notification must already see the outage as within its grace period.
        """
        with self.listeners.once():
            self._apply_whatsapp_connected(connected)

    def _apply_whatsapp_connected(self, connected: bool) -> None:
        was = self.status.whatsapp_connected
        self.status.whatsapp_connected = connected
        if not connected:
            self._disconnects += 1  # even when already down: a connect under way is void
        if connected == was:
            self.listeners.account()
            return
        if connected:
            self.status.connected_since = dt_util.utcnow()
            self._cancel_grace_timer()
            if self._unavailable_logged:
                LOGGER.info("WhatsApp account %s is connected again", self.entry.entry_id)
                self._unavailable_logged = False
        else:
            grace = float(self.entry.options.get(CONF_GRACE_PERIOD, DEFAULT_GRACE_PERIOD))
            self._cancel_grace_timer()
            self._grace_timer = async_call_later(self.hass, grace, self._grace_expired)
            self.manager.on_disconnected()
            # Presence is unknown until each contact answers its new subscription.
            if self.activity.forget_all():
                self.store.schedule_save()
        self.listeners.everything()

    @callback
    def _grace_expired(self, _now: datetime) -> None:
        self._grace_timer = None
        if not self._unavailable_logged:
            LOGGER.info("WhatsApp account %s is disconnected", self.entry.entry_id)
            self._unavailable_logged = True
        self.listeners.everything()

    def _cancel_grace_timer(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer()
            self._grace_timer = None

    # ----------------------------------------------------------------- trust

    @property
    def tracked(self) -> dict[str, TrackedContact]:
        """The contacts followed, by JID (the presence model's)."""
        return self.model.tracked

    @property
    def presence(self) -> dict[str, ContactPresence]:
        """What is known of each tracked contact's presence (the presence model's)."""
        return self.model.presence

    @property
    def _shown(self) -> dict[str, bool | None]:
        return self.model.shown

    def shown_online(self, jid: str) -> bool | None:
        """The online state to show (see ``PresenceModel.shown_online``)."""
        return self.model.shown_online(jid)

    def _refresh_shown(self, jids: Iterable[str]) -> None:
        """Tell the entities of contacts whose shown state changed with their trust."""
        online_changed = False
        for jid, shown in self.model.changed_shown(jids):
            if shown is None:
                online_changed |= self.activity.forget(jid)
            else:  # trusted again: presence came during its renewal
                online_changed |= self.activity.observe(jid, shown)
            self.listeners.contact(jid)
        if online_changed:
            self.store.schedule_save()
            self.listeners.online()

    def _schedule_trust_timer(self) -> None:
        """One timer for the end of the trust gap: then every state not renewed is unknown."""
        expiry = self.manager.trust_expiry()
        if expiry == self._trust_timer_at:
            return
        self._cancel_trust_timer()
        if expiry is not None:
            self._trust_timer_at = expiry
            self._trust_timer = async_track_point_in_utc_time(
                self.hass,
                self._trust_expired,
                dt_util.utc_from_timestamp(expiry) + TRUST_CHECK_AFTER,
            )

    @callback
    def _trust_expired(self, _now: datetime) -> None:
        self._trust_timer = self._trust_timer_at = None
        self._refresh_shown(list(self.tracked))
        self._schedule_trust_timer()

    def _cancel_trust_timer(self) -> None:
        if self._trust_timer is not None:
            self._trust_timer()
        self._trust_timer = self._trust_timer_at = None

    # ----------------------------------------------------------------- silence

    def _silent(self) -> bool:
        """Subscribed, connected, and not one presence event for hours (a repair issue)."""
        stats = self.manager.stats()
        # Silence counts from the last presence event, or from the connection when none came.
        since = max(
            (t for t in (self.status.last_presence, self.status.connected_since) if t), default=None
        )
        return (
            self.connected
            and self.presence_enabled  # switched off, silence is what was asked for
            and stats.active > 0
            and since is not None
            and dt_util.utcnow() - since >= SILENCE_REPAIR_AFTER
        )

    # ----------------------------------------------------------------- listeners

    @callback
    def _on_manager_change(self, jid: str | None) -> None:
        """A contact's subscription state changed (``None``: possibly every contact's).

        Only the subscription entities follow it: a reconnect flips every contact through
        queued, subscribing and subscribed, which shows nowhere else. A contact's other
        entities hear of it only when its shown online state changes with its trust.
        """
        with self.listeners.once():
            self.listeners.subscription(jid)
            if jid is None:
                self.issues.pace_changed(self.manager)
                self._refresh_shown(list(self.tracked))
                self._schedule_trust_timer()
            elif jid in self.tracked:
                self._refresh_shown((jid,))
            self.listeners.account()
        self.store.schedule_save()

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Account-level changes (see ``Listeners``)."""
        return self.listeners.async_add_listener(listener)

    @callback
    def async_add_contact_listener(self, jid: str, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Changes of one contact (see ``Listeners``)."""
        return self.listeners.async_add_contact_listener(jid, listener)

    @callback
    def async_add_online_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Who is online changed (see ``Listeners``)."""
        return self.listeners.async_add_online_listener(listener)

    @callback
    def async_add_subscription_listener(self, jid: str, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Changes of one contact's subscription state (see ``Listeners``)."""
        return self.listeners.async_add_subscription_listener(jid, listener)

    @callback
    def async_add_contacts_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """The set of tracked contacts changed (see ``Listeners``)."""
        return self.listeners.async_add_contacts_listener(listener)


type _Subentries = dict[str, tuple[str, str, dict[str, Any]]]


def _subentries(entry: WhatsAppConfigEntry) -> _Subentries:
    """What the coordinator reads of the entry's subentries: kind, title and data of each."""
    return {
        subentry_id: (subentry.subentry_type, subentry.title, dict(subentry.data))
        for subentry_id, subentry in entry.subentries.items()
    }


def _groups(subentries: _Subentries) -> _Subentries:
    return {key: value for key, value in subentries.items() if value[0] == SUBENTRY_GROUP}
