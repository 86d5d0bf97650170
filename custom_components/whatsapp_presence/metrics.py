"""Prometheus metrics in Home Assistant's own scrape (``/api/prometheus``).

Home Assistant's ``prometheus`` integration serves ``prometheus_client``'s default registry,
so a collector registered there appears in the same scrape. One collector serves every linked
account: two collectors would each emit a ``# TYPE whatsapp_contact_online`` block, and
Prometheus rejects a scrape that repeats a metric family. Each loaded entry adds an
:class:`EntryMetrics` source to it; the last one to unload unregisters it.

Threading: scrapes run ``collect()`` in an executor thread while the coordinator changes
presence on the event loop. Each source keeps immutable records (one per contact, one for
the account) that only the loop writes. A presence event replaces one contact's record
(O(1)); ``collect()`` copies the dict of records under a lock (O(contacts), about as costly
as formatting the scrape itself) and never touches ``hass`` or the coordinator. A snapshot
rebuilt per event would cost O(contacts) per event; copy-on-write of the whole dict likewise.

``prometheus_client`` is imported only once metrics are enabled, which requires Home
Assistant's ``prometheus`` integration to be loaded (it installs and imports the library).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
import hashlib
import threading
import time
from typing import TYPE_CHECKING, Final, cast

from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.util.hass_dict import HassKey

from .activity import Known
from .bridge.protocol import jid_to_phone
from .const import (
    CONF_PROMETHEUS,
    CONF_PROMETHEUS_JID,
    DEFAULT_PROMETHEUS,
    DEFAULT_PROMETHEUS_JID,
    DOMAIN,
    LOGGER,
)
from .coordinator import WhatsAppConfigEntry, WhatsAppCoordinator
from .entity import contact_unique_id
from .presence import TrackedContact

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector, CollectorRegistry

PROMETHEUS_DOMAIN: Final = "prometheus"

ONLINE: Final = "whatsapp_contact_online"
STATUS_CHANGES: Final = "whatsapp_contact_status_changes_total"
LAST_SEEN: Final = "whatsapp_contact_last_seen_timestamp_seconds"
ONLINE_SECONDS: Final = "whatsapp_contact_online_seconds_total"


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One contact as the next scrape sees it. Replaced, never changed."""

    jid: str
    name: str
    entity_id: str | None
    online: bool | None  # as shown: None while unknown or no longer trusted
    last_seen: float | None
    reported: bool | None = None  # as last reported: real changes count across unknown time
    went_online: int = 0
    went_offline: int = 0
    online_seconds: float = 0.0  # counted online time, up to ``online_since``
    online_since: float | None = None  # Unix time the running online piece began


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """The account's figures as the next scrape sees them. Replaced, never changed."""

    account: str
    with_jid: bool
    available: bool
    tracked: int = 0
    active: int = 0
    stale: int = 0
    failed: int = 0
    in_backoff: int = 0
    queue_length: int = 0
    subscribe_calls_total: int = 0
    subscribe_failures_total: int = 0
    reconnects_total: int = 0
    bridge_connected: bool = False
    whatsapp_connected: bool = False


@dataclass(frozen=True, slots=True)
class _Figure:
    name: str
    kind: str  # "gauge" or "counter"
    documentation: str
    value: Callable[[AccountRecord], float]


ACCOUNT_FIGURES: Final = (
    _Figure("whatsapp_presence_tracked_contacts", "gauge", "Contacts tracked", lambda a: a.tracked),
    _Figure(
        "whatsapp_presence_active_subscriptions",
        "gauge",
        "Contacts with a live presence subscription",
        lambda a: a.active,
    ),
    _Figure(
        "whatsapp_presence_stale_subscriptions",
        "gauge",
        "Contacts queued again because no presence arrived for too long",
        lambda a: a.stale,
    ),
    _Figure(
        "whatsapp_presence_failed_subscriptions",
        "gauge",
        "Contacts whose last subscription attempt failed",
        lambda a: a.failed,
    ),
    _Figure(
        "whatsapp_presence_backoff_subscriptions",
        "gauge",
        "Contacts waiting out a backoff before the next attempt",
        lambda a: a.in_backoff,
    ),
    _Figure(
        "whatsapp_presence_queue_length",
        "gauge",
        "Contacts waiting to be subscribed",
        lambda a: a.queue_length,
    ),
    _Figure(
        "whatsapp_presence_subscribe_calls_total",
        "counter",
        "Presence subscription requests sent to WhatsApp",
        lambda a: a.subscribe_calls_total,
    ),
    _Figure(
        "whatsapp_presence_subscribe_failures_total",
        "counter",
        "Presence subscription requests that failed",
        lambda a: a.subscribe_failures_total,
    ),
    _Figure(
        "whatsapp_presence_reconnects_total",
        "counter",
        "Reconnections to WhatsApp after the first connection",
        lambda a: a.reconnects_total,
    ),
    _Figure(
        "whatsapp_presence_bridge_connected",
        "gauge",
        "1 while the bridge is reachable",
        lambda a: float(a.bridge_connected),
    ),
    _Figure(
        "whatsapp_presence_whatsapp_connected",
        "gauge",
        "1 while the bridge is connected to WhatsApp",
        lambda a: float(a.whatsapp_connected),
    ),
)


def account_label(entry: WhatsAppConfigEntry, account_jid: str) -> str:
    """The entry's title, unless the title gives the account's number away (then a hash)."""
    digits = "".join(c for c in entry.title if c.isdigit())
    if entry.title and jid_to_phone(account_jid) not in digits:
        return entry.title
    return "account-" + hashlib.sha256(entry.entry_id.encode()).hexdigest()[:8]


class EntryMetrics:
    """One linked account's metrics: records kept current on the loop, read from any thread."""

    def __init__(self, hass: HomeAssistant, entry: WhatsAppConfigEntry) -> None:
        """Nothing is followed until ``async_start``."""
        self.hass = hass
        self.entry = entry
        self.coordinator: WhatsAppCoordinator = entry.runtime_data
        self._lock = threading.Lock()
        self._records: dict[str, ContactRecord] = {}
        self._account = AccountRecord(account="", with_jid=False, available=False)
        self._contact_unsubs: dict[str, CALLBACK_TYPE] = {}
        self._unsubs: list[CALLBACK_TYPE] = []
        self._by_unique_id: dict[str, str] = {}

    # ------------------------------------------------------------------ any thread

    def snapshot(self) -> tuple[AccountRecord, list[ContactRecord]]:
        """The account record and the contact records, consistent with each other."""
        with self._lock:
            return self._account, list(self._records.values())

    # ------------------------------------------------------------------ event loop

    @callback
    def async_start(self) -> None:
        """Follow the coordinator (presence, figures, contacts) and the entity registry."""
        coordinator = self.coordinator
        self._unsubs.append(coordinator.async_add_listener(self._async_account_changed))
        self._unsubs.append(coordinator.async_add_contacts_listener(self._async_contacts_changed))
        self._unsubs.append(
            self.hass.bus.async_listen(
                er.EVENT_ENTITY_REGISTRY_UPDATED, self._async_entity_registry_updated
            )
        )
        self._async_contacts_changed()

    @callback
    def async_stop(self) -> None:
        """Stop following; the records are dropped."""
        for unsub in (*self._unsubs, *self._contact_unsubs.values()):
            unsub()
        self._unsubs.clear()
        self._contact_unsubs.clear()
        with self._lock:
            self._records = {}

    @callback
    def async_options_changed(self) -> None:
        """The JID label option or the entry's title may have changed."""
        self._async_account_changed()

    @callback
    def _async_account_changed(self) -> None:
        """Connection or subscription figures changed: O(1), the manager's stats are O(1)."""
        coordinator = self.coordinator
        stats = coordinator.manager.stats()
        account = AccountRecord(
            account=account_label(self.entry, coordinator.account_jid),
            with_jid=bool(self.entry.options.get(CONF_PROMETHEUS_JID, DEFAULT_PROMETHEUS_JID)),
            available=coordinator.available,
            tracked=stats.tracked,
            active=stats.active,
            stale=stats.stale,
            failed=stats.failed,
            in_backoff=stats.in_backoff,
            queue_length=stats.queue_length,
            subscribe_calls_total=stats.subscribe_calls_total,
            subscribe_failures_total=stats.subscribe_failures_total,
            reconnects_total=stats.reconnects_total,
            bridge_connected=coordinator.status.bridge_connected,
            whatsapp_connected=coordinator.status.whatsapp_connected,
        )
        if account != self._account:
            self._account = account  # one reference swap: readers see the old or the new

    @callback
    def _async_contacts_changed(self) -> None:
        """Tracked contacts (or their names) changed: O(contacts), only on such changes."""
        coordinator = self.coordinator
        registry = er.async_get(self.hass)
        records = dict(self._records)
        for jid in records.keys() - coordinator.tracked.keys():
            del records[jid]
            self._contact_unsubs.pop(jid)()
        self._by_unique_id = {}
        for jid, contact in coordinator.tracked.items():
            unique_id = contact_unique_id(coordinator, jid, "online")
            self._by_unique_id[unique_id] = jid
            old = records.get(jid)
            if old is None:
                entity_id = registry.async_get_entity_id(Platform.BINARY_SENSOR, DOMAIN, unique_id)
                records[jid] = self._initial_record(contact, entity_id)
                self._contact_unsubs[jid] = coordinator.async_add_contact_listener(
                    jid, self._contact_listener(jid)
                )
            elif old.name != (contact.name or ""):
                records[jid] = replace(old, name=contact.name or "")
        with self._lock:
            self._records = records
        self._async_account_changed()

    def _initial_record(self, contact: TrackedContact, entity_id: str | None) -> ContactRecord:
        """What is known now is the baseline: a first report is not a change."""
        presence = self.coordinator.presence.get(contact.jid)
        online_seconds, online_since = self._online_time(contact.jid)
        return ContactRecord(
            jid=contact.jid,
            name=contact.name or "",
            entity_id=entity_id,
            online=self.coordinator.shown_online(contact.jid),
            reported=presence.online if presence else None,
            last_seen=presence.last_seen.timestamp() if presence and presence.last_seen else None,
            online_seconds=online_seconds,
            online_since=online_since,
        )

    def _online_time(self, jid: str) -> tuple[float, float | None]:
        """Counted online time (as *online today* counts it) and the running piece's start."""
        figures = self.coordinator.activity.contacts.get(jid)
        if figures is None:
            return 0.0, None
        return figures.total, figures.since if figures.known is Known.ONLINE else None

    def _contact_listener(self, jid: str) -> CALLBACK_TYPE:
        @callback
        def changed() -> None:
            self._async_contact_changed(jid)

        return changed

    @callback
    def _async_contact_changed(self, jid: str) -> None:
        """The hot path, on every presence event: O(1), one record replaced."""
        old = self._records.get(jid)
        presence = self.coordinator.presence.get(jid)
        if old is None or presence is None:
            return
        online = self.coordinator.shown_online(jid)
        reported = presence.online
        last_seen = presence.last_seen.timestamp() if presence.last_seen else None
        online_seconds, online_since = self._online_time(jid)
        if (
            online is old.online
            and reported is old.reported
            and last_seen == old.last_seen
            and online_seconds == old.online_seconds
            and online_since == old.online_since
        ):
            return  # availability only: nothing to export
        record = replace(
            old,
            online=online,
            reported=reported,
            last_seen=last_seen,
            online_seconds=online_seconds,
            online_since=online_since,
            went_online=old.went_online + (old.reported is False and reported is True),
            went_offline=old.went_offline + (old.reported is True and reported is False),
        )
        with self._lock:
            self._records[jid] = record

    @callback
    def _async_entity_registry_updated(
        self, event: Event[er.EventEntityRegistryUpdatedData]
    ) -> None:
        """A contact's online sensor was created, renamed or removed: relabel that contact."""
        data = event.data
        if not data["entity_id"].startswith(f"{Platform.BINARY_SENSOR}."):
            return
        if data["action"] == "remove":
            with self._lock:
                for contact_jid, record in self._records.items():
                    if record.entity_id == data["entity_id"]:
                        self._records[contact_jid] = replace(record, entity_id=None)
            return
        if data["action"] == "update" and "old_entity_id" not in data:
            return
        entity = er.async_get(self.hass).async_get(data["entity_id"])
        if (
            entity is None
            or entity.config_entry_id != self.entry.entry_id
            or entity.domain != Platform.BINARY_SENSOR
            or (jid := self._by_unique_id.get(entity.unique_id)) is None
            or (old := self._records.get(jid)) is None
        ):
            return
        with self._lock:
            self._records[jid] = replace(old, entity_id=entity.entity_id)


class WhatsAppCollector:
    """The one collector in the registry; emits every enabled account's metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        """Not registered until ``register``."""
        self.registry = registry
        self.sources: dict[str, EntryMetrics] = {}

    def register(self) -> None:
        """Add to the registry (raises ValueError if these metric names are taken)."""
        self.registry.register(cast("Collector", self))

    def unregister(self) -> None:
        """Remove from the registry it was added to."""
        self.registry.unregister(cast("Collector", self))

    def add(self, source: EntryMetrics) -> None:
        """Copy-on-write: a scrape in progress keeps iterating the old dict."""
        self.sources = {**self.sources, source.entry.entry_id: source}

    def remove(self, entry_id: str) -> EntryMetrics | None:
        """Copy-on-write, like ``add``."""
        sources = dict(self.sources)
        source = sources.pop(entry_id, None)
        self.sources = sources
        return source

    def describe(self) -> Iterable[Metric]:
        """The metric names, so the registry can refuse a clash."""
        return metric_families([])

    def collect(self) -> Iterable[Metric]:
        """Runs in an executor thread: reads the sources' snapshots only."""
        return metric_families([source.snapshot() for source in tuple(self.sources.values())])


def metric_families(snapshots: list[tuple[AccountRecord, list[ContactRecord]]]) -> Iterator[Metric]:
    """Fresh metric families from snapshots: series of renamed or removed contacts vanish."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    with_jid = any(account.with_jid for account, _ in snapshots)
    labels = ["account", "entity", "name", *(["jid"] if with_jid else [])]
    online = GaugeMetricFamily(
        ONLINE, "1 while WhatsApp reports the contact online; absent while unknown", labels=labels
    )
    changes = CounterMetricFamily(
        STATUS_CHANGES,
        "Changes of the contact's status between online and offline (first reports excluded)",
        labels=[*labels, "status"],
    )
    last_seen = GaugeMetricFamily(
        LAST_SEEN,
        "When the contact was last seen online, as WhatsApp reported or as observed",
        labels=labels,
    )
    online_seconds = CounterMetricFamily(
        ONLINE_SECONDS,
        "Seconds the contact was observed online (unknown time excluded, short gaps merged)",
        labels=labels,
    )
    now = time.time()
    for account, contacts in snapshots:
        for contact in contacts:
            if contact.entity_id is None:
                continue
            values = [account.account, contact.entity_id, contact.name]
            if with_jid:
                values.append(contact.jid if account.with_jid else "")
            if contact.online is not None and account.available:
                online.add_metric(values, float(contact.online))
            changes.add_metric([*values, "online"], contact.went_online)
            changes.add_metric([*values, "offline"], contact.went_offline)
            if contact.last_seen is not None:
                last_seen.add_metric(values, contact.last_seen)
            running = 0.0 if contact.online_since is None else max(0.0, now - contact.online_since)
            online_seconds.add_metric(values, contact.online_seconds + running)
    yield online
    yield changes
    yield last_seen
    yield online_seconds
    for figure in ACCOUNT_FIGURES:
        family: GaugeMetricFamily | CounterMetricFamily
        if figure.kind == "gauge":
            family = GaugeMetricFamily(figure.name, figure.documentation, labels=["account"])
        else:
            family = CounterMetricFamily(figure.name, figure.documentation, labels=["account"])
        for account, _ in snapshots:
            family.add_metric([account.account], figure.value(account))
        yield family


# ---------------------------------------------------------------------- set-up

DATA_METRICS: HassKey[WhatsAppCollector] = HassKey(f"{DOMAIN}_metrics")


def metrics_wanted(hass: HomeAssistant, entry: WhatsAppConfigEntry) -> bool:
    """The option is on and Home Assistant serves ``/api/prometheus``."""
    return bool(
        entry.options.get(CONF_PROMETHEUS, DEFAULT_PROMETHEUS)
        and PROMETHEUS_DOMAIN in hass.config.components
    )


@callback
def async_setup_metrics(hass: HomeAssistant, entry: WhatsAppConfigEntry) -> None:
    """Export this entry's metrics while wanted; follows option changes; stops on unload.

    Call once ``entry.runtime_data`` is set. Options change without a reload, so an update
    listener switches the export on and off.
    """

    async def _async_updated(hass: HomeAssistant, updated: WhatsAppConfigEntry) -> None:
        _async_apply(hass, updated)

    _async_apply(hass, entry)
    entry.async_on_unload(entry.add_update_listener(_async_updated))
    entry.async_on_unload(lambda: _async_disable(hass, entry.entry_id))


@callback
def _async_apply(hass: HomeAssistant, entry: WhatsAppConfigEntry) -> None:
    collector = hass.data.get(DATA_METRICS)
    source = collector.sources.get(entry.entry_id) if collector else None
    if not metrics_wanted(hass, entry):
        _async_disable(hass, entry.entry_id)
    elif source is not None:
        source.async_options_changed()
    else:
        _async_enable(hass, entry)


@callback
def _async_enable(hass: HomeAssistant, entry: WhatsAppConfigEntry) -> None:
    collector = hass.data.get(DATA_METRICS)
    if collector is None:
        import prometheus_client  # loaded already by the prometheus integration

        collector = WhatsAppCollector(prometheus_client.REGISTRY)
        try:
            collector.register()
        except ValueError as err:
            LOGGER.warning("Prometheus metrics are not exported: %s", err)
            return
        hass.data[DATA_METRICS] = collector
    source = EntryMetrics(hass, entry)
    source.async_start()
    collector.add(source)


@callback
def _async_disable(hass: HomeAssistant, entry_id: str) -> None:
    collector = hass.data.get(DATA_METRICS)
    if collector is None or (source := collector.remove(entry_id)) is None:
        return
    source.async_stop()
    if not collector.sources:
        collector.unregister()
        del hass.data[DATA_METRICS]
