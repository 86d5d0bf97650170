"""A seeded, simulated WhatsApp network behind the Backend interface.

It imitates what matters for presence tracking (docs/bridge-protocol.md, docs/rate-limiting.md):

- an address book of contacts with human-ish names and fictional numbers (+1 NPA 555-01xx),
  groups with contacts and strangers as members;
- per-contact presence as alternating online/offline periods (a few chatty contacts, most
  quiet); some hide their last seen, some never answer a subscription, some arrive as LIDs;
- presence reaches the account only while it is connected, marked available and subscribed to
  that contact since the last (re)connect; a subscription is answered with the current state;
- QR pairing rotating codes like WhatsApp (60 s, then 20 s each, six codes) and completing
  after a set delay; pairing by phone number with an 8-character code;
- a hidden ceiling on subscriptions per rolling window: beyond it subscriptions are silently
  ignored; enough ignored ones within the ban window give ``temporary_ban`` and a disconnect;
  queries (groups, lookups) answer ``rate_limited`` beyond their own ceiling;
- random disconnects (subscriptions and availability are lost, like whatsmeow reconnects).

All durations are simulated seconds (see clock.py), except those of WhatsApp's subscription
rules (ceiling window, ban window and ban length): those are real seconds, as the integration
paces in real seconds, so a run at any time scale meets the same limits as one in real time.
Every random process can be switched off
(rate or fraction 0), and ``sim.*`` commands script the network for tests and demos.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
import json
import logging
import math
from pathlib import Path
import random
import time
from typing import Any, Final

from .backend import Backend, EventSink
from .clock import Handle, LoopClock, ManualClock, SimClock
from .protocol import (
    BridgeError,
    ClientOutdated,
    Connected,
    Disconnected,
    ErrorCode,
    LoggedOut,
    Paired,
    PairingFailed,
    Presence,
    QrCode,
    StreamReplaced,
    TemporaryBan,
    arg_bool,
    arg_number,
    arg_user_jid,
    normalize_phone,
    phone_to_jid,
)

_LOGGER = logging.getLogger(__name__)

STATE_FILE: Final = "simulator.json"
TEMP_BAN_REASON: Final = 101  # WhatsApp's TempBanReason "sent to too many people"
AVAILABILITY_MODELS: Final = ("resend", "changes")
"""What WhatsApp may send when the device becomes available again (not known: both modelled)."""


def _opt(default: Any, help_text: str, **extra: Any) -> Any:
    """A config field carrying its command-line help (``__main__`` builds options from it)."""
    return field(default=default, metadata={"help": help_text, **extra})


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Every knob of the simulated network. Durations are simulated seconds."""

    seed: int = _opt(1, "random seed; the same seed gives the same network and run")
    contacts: int = _opt(30, "number of contacts in the address book")
    groups: int = _opt(4, "number of groups the account is in")
    time_scale: float = _opt(1.0, "simulated seconds per real second (10 = a busy demo)")
    manual_clock: bool = _opt(
        False, "simulated time moves only through the sim.advance command (scripted tests)"
    )
    start_time: float | None = _opt(
        None, "manual clock start, unix seconds (default: now)", type=float
    )
    paired: bool = _opt(False, "start with a paired session (skip pairing)")
    account_phone: str = _opt("12025550100", "the simulated account's number (digits)")
    push_name: str = _opt("Sam Demo", "the simulated account's push name")
    chatty_fraction: float = _opt(0.2, "share of contacts that come online often")
    chatty_online_mean: float = _opt(240.0, "mean online period of a chatty contact")
    chatty_offline_mean: float = _opt(900.0, "mean offline period of a chatty contact")
    quiet_online_mean: float = _opt(120.0, "mean online period of a quiet contact")
    quiet_offline_mean: float = _opt(14400.0, "mean offline period of a quiet contact")
    presence_churn: float = _opt(
        1.0, "multiplier on presence change rates; 0 = presence changes only by sim.set_presence"
    )
    hidden_last_seen_fraction: float = _opt(0.2, "share of contacts hiding their last seen")
    unresponsive_fraction: float = _opt(0.1, "share of contacts that never send presence")
    lid_fraction: float = _opt(0.3, "share of contacts whose presence arrives as a LID")
    presence_latency: float = _opt(0.3, "delay before a subscription is answered")
    on_available: str = _opt(
        "changes",
        "what WhatsApp sends when the device becomes available again: 'resend' (the current "
        "presence of every subscribed contact) or 'changes' (only later changes)",
    )
    pairing_delay: float = _opt(
        5.0, "pairing completes this long after it starts; 0 = only by sim.complete_pairing"
    )
    qr_first_ttl: float = _opt(60.0, "lifetime of the first QR code")
    qr_next_ttl: float = _opt(20.0, "lifetime of each following QR code")
    qr_codes: int = _opt(6, "QR codes per pairing attempt before it times out")
    connect_delay: float = _opt(1.0, "delay from start or pairing to connected")
    reconnect_delay: float = _opt(2.0, "delay from a random disconnect to the reconnect")
    disconnect_rate: float = _opt(0.5, "random disconnects per simulated hour; 0 = none")
    sub_ceiling: int = _opt(
        50, "hidden ceiling: subscriptions per window beyond which they are ignored; 0 = none"
    )
    sub_window: float = _opt(60.0, "rolling window of the subscription ceiling (real seconds)")
    ban_threshold: int = _opt(
        100, "ignored subscriptions within the ban window that give a temporary ban; 0 = never"
    )
    ban_window: float = _opt(
        600.0, "rolling window for counting ignored subscriptions (real seconds)"
    )
    ban_duration: float = _opt(3600.0, "length of a temporary ban (real seconds)")
    query_limit: int = _opt(30, "queries (groups, participants, lookups) per window; 0 = none")
    query_window: float = _opt(60.0, "rolling window of the query limit")
    state_dir: Path | None = field(
        default=None,
        metadata={"help": "directory keeping the paired session across restarts", "cli": False},
    )

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | float) and (not math.isfinite(value) or value < 0):
                raise ValueError(f"{item.name} must be a finite non-negative number")
        for name in (
            "chatty_fraction",
            "hidden_last_seen_fraction",
            "unresponsive_fraction",
            "lid_fraction",
        ):
            if getattr(self, name) > 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if self.on_available not in AVAILABILITY_MODELS:
            raise ValueError(f"on_available must be one of {', '.join(AVAILABILITY_MODELS)}")
        if self.contacts > 20000 or self.groups > 500:
            raise ValueError("at most 20000 contacts and 500 groups")
        if self.qr_codes < 1:
            raise ValueError("qr_codes must be at least 1")
        normalize_phone(self.account_phone)


def config_defaults() -> dict[str, Any]:
    """Field name -> default, for tests and documentation."""
    return {
        item.name: item.default for item in fields(SimulatorConfig) if item.default is not MISSING
    }


_FIRST_NAMES: Final = (
    "Ada", "Alan", "Amara", "Anna", "Arjun", "Ben", "Carla", "Chen", "Chloe", "Dario", "Diego",
    "Elena", "Emil", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jonas", "Julia",
    "Kai", "Kenji", "Lara", "Leo", "Lina", "Luca", "Maya", "Mei", "Milan", "Nadia", "Nina",
    "Noah", "Olga", "Omar", "Paula", "Priya", "Rafael", "Rosa", "Sami", "Sara", "Sofia", "Tariq",
    "Theo", "Uma", "Vera", "Wen", "Yara", "Yusuf", "Zoe", "Marta", "Pavel", "Aiko", "Bruno",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Abara", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Quinn", "Rossi",
    "Sato", "Tanaka", "Usman", "Varga", "Weber", "Xu", "Yilmaz", "Zeller", "Almeida", "Brennan",
    "Castillo", "Demir", "Esposito", "Fontaine", "Horvat", "Kim", "Laine", "Mendes", "Nakamura",
)  # fmt: skip
_GROUP_NAMES: Final = (
    "Family", "Book club", "Climbing Fridays", "Neighbours", "Work lunch", "Football 5-a-side",
    "Parents of class 3B", "Holiday 2026", "Choir", "Flat share", "Board games", "Running club",
)  # fmt: skip
_PAIR_CODE_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
_B64: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# Commands offered through Backend.command (simulator only).
SIM_COMMANDS: Final = (
    "sim.advance",
    "sim.ban",
    "sim.client_outdated",
    "sim.complete_pairing",
    "sim.connect",
    "sim.contacts",
    "sim.disconnect",
    "sim.fail_pairing",
    "sim.fail_subscribe",
    "sim.log",
    "sim.logout",
    "sim.set_presence",
    "sim.stats",
    "sim.stream_replaced",
    "sim.unban",
)


def _fictional_phone(index: int) -> str:
    """+1 NPA 555-01xx: NANP numbers reserved for fiction; index < 80000."""
    return f"1{200 + index // 100}55501{index % 100:02d}"


@dataclass(slots=True)
class _Account:
    """Someone on the simulated WhatsApp."""

    index: int
    phone: str
    name: str | None  # address-book name; None for strangers
    is_contact: bool
    chatty: bool = False
    hides_last_seen: bool = False
    unresponsive: bool = True
    lid: str | None = None
    online: bool = False
    last_seen: float | None = None  # real unix seconds (as reported)
    rng: random.Random = field(default_factory=random.Random)
    timer: Handle | None = None

    @property
    def jid(self) -> str:
        return phone_to_jid(self.phone)


@dataclass(slots=True)
class _Group:
    jid: str
    name: str
    members: list[_Account]


class SubscriptionLimit:
    """WhatsApp's hidden subscription rules, as the simulator models them.

    At most ``ceiling`` subscriptions are accepted in any rolling ``window``; the others are
    silently ignored, and ``ban_threshold`` ignored ones within ``ban_window`` earn a temporary
    ban (0 switches either off). The backend passes real time (see the module docstring);
    benchmarks pass their own clock. Apart from the backend so that
    benchmarks drive the very same rules over populations the backend does not hold.
    """

    def __init__(self, ceiling: int, window: float, ban_threshold: int, ban_window: float) -> None:
        self.ceiling, self.window = ceiling, window
        self.ban_threshold, self.ban_window = ban_threshold, ban_window
        self.accepted: deque[float] = deque()
        self.ignored: deque[float] = deque()

    def admit(self, now: float) -> bool | None:
        """True: accepted; False: silently ignored; None: ignored, and it earns a ban."""
        _prune(self.accepted, now, self.window)
        if not self.ceiling or len(self.accepted) < self.ceiling:
            self.accepted.append(now)
            return True
        _prune(self.ignored, now, self.ban_window)
        self.ignored.append(now)
        if self.ban_threshold and len(self.ignored) >= self.ban_threshold:
            return None
        return False

    def clear(self) -> None:
        """Forget the windows (a ban ended)."""
        self.accepted.clear()
        self.ignored.clear()

    def counts(self, now: float) -> tuple[int, int]:
        """Accepted subscriptions in the window, ignored ones in the ban window."""
        _prune(self.accepted, now, self.window)
        _prune(self.ignored, now, self.ban_window)
        return len(self.accepted), len(self.ignored)


def _prune(times: deque[float], now: float, window: float) -> None:
    while times and times[0] <= now - window:
        times.popleft()


class SimulatorBackend(Backend):
    """The simulated network; see the module docstring."""

    name = "simulator"

    def __init__(
        self,
        emit: EventSink,
        config: SimulatorConfig | None = None,
        *,
        clock: SimClock | None = None,
    ) -> None:
        super().__init__(emit)
        self.config = config = config or SimulatorConfig()
        if clock is None:
            clock = (
                ManualClock(start=config.start_time or _wall_now(), time_scale=config.time_scale)
                if config.manual_clock
                else LoopClock(config.time_scale)
            )
        self.clock = clock
        self._timers: dict[int, Handle] = {}
        self._running = False
        self._accounts: dict[str, _Account] = {}
        self._contacts: list[_Account] = []
        self._groups: dict[str, _Group] = {}
        self._build_network()
        # Session state.
        self._account: dict[str, Any] | None = None
        self._connected = False
        self._available = False
        self._on_available = config.on_available
        self._available_since: float | None = None
        self._available_total = 0.0
        self._subscribed: set[str] = set()
        self._pairing: str | None = None
        self._pairing_timers: list[Handle] = []
        self._pair_code: str | None = None
        self._pair_phone: str | None = None
        self._reconnect_timer: Handle | None = None
        self._disconnect_timer: Handle | None = None
        self._ban_until: float | None = None
        self._ban_timer: Handle | None = None
        self._pair_rng = random.Random(f"{config.seed}/pairing")
        self._fault_rng = random.Random(f"{config.seed}/faults")
        # Ceiling and statistics.
        self._limit = SubscriptionLimit(
            config.sub_ceiling, config.sub_window, config.ban_threshold, config.ban_window
        )
        self._query_times: deque[float] = deque()
        self._sub_calls: Counter[str] = Counter()
        self._sub_failures: Counter[str] = Counter()
        self._ignored: Counter[str] = Counter()
        self._stats: Counter[str] = Counter()
        self._history: list[tuple[float, str, bool]] | None = None  # see presence_history()
        if config.paired:
            self._account = self._make_account(config.account_phone, config.push_name)

    # --- network -------------------------------------------------------------------------

    def _build_network(self) -> None:
        config = self.config
        rng = random.Random(f"{config.seed}/network")
        own = config.account_phone
        strangers_wanted = config.groups * 3
        pool = rng.sample(range(80000), config.contacts + strangers_wanted + 1)
        phones = [p for p in (_fictional_phone(i) for i in pool) if p != own]
        names = [f"{first} {last}" for first in _FIRST_NAMES for last in _LAST_NAMES]
        rng.shuffle(names)
        for index in range(config.contacts):
            name = names[index % len(names)]
            if index >= len(names):
                name = f"{name} {index // len(names) + 1}"
            account = _Account(index, phones[index], name, is_contact=True)
            self._setup_contact(account, rng)
            self._contacts.append(account)
            self._accounts[account.jid] = account
        strangers = [
            _Account(-1 - i, phone, None, is_contact=False)
            for i, phone in enumerate(phones[config.contacts : config.contacts + strangers_wanted])
        ]
        for stranger in strangers:
            self._accounts[stranger.jid] = stranger
        group_names = list(_GROUP_NAMES)
        rng.shuffle(group_names)
        for g in range(config.groups):
            name = group_names[g % len(group_names)]
            if g >= len(group_names):
                name = f"{name} {g // len(group_names) + 1}"
            jid = f"120363{rng.randrange(10**11, 10**12)}@g.us"
            size = min(len(self._contacts), rng.randint(4, 12))
            members = rng.sample(self._contacts, size) if size else []
            members += strangers[g * 3 : g * 3 + rng.randint(1, 3)]
            self._groups[jid] = _Group(jid, name, members)

    def _setup_contact(self, account: _Account, rng: random.Random) -> None:
        config = self.config
        account.chatty = rng.random() < config.chatty_fraction
        account.hides_last_seen = rng.random() < config.hidden_last_seen_fraction
        account.unresponsive = rng.random() < config.unresponsive_fraction
        if rng.random() < config.lid_fraction:
            account.lid = f"{rng.randrange(10**14, 10**15)}@lid"
        account.rng = random.Random(f"{config.seed}/presence/{account.index}")

    def _means(self, account: _Account) -> tuple[float, float]:
        config = self.config
        if account.chatty:
            return config.chatty_online_mean, config.chatty_offline_mean
        return config.quiet_online_mean, config.quiet_offline_mean

    def _init_presence(self) -> None:
        now = self.clock.now()
        for account in self._contacts:
            on_mean, off_mean = self._means(account)
            total = on_mean + off_mean
            account.online = total > 0 and account.rng.random() < on_mean / total
            gone = account.rng.expovariate(1 / off_mean) if off_mean > 0 else 0.0
            account.last_seen = (
                None if account.online else math.floor(self.clock.to_real(now - gone))
            )
            self._schedule_churn(account)

    def _schedule_churn(self, account: _Account) -> None:
        if account.timer is not None:
            account.timer.cancel()
            account.timer = None
        churn = self.config.presence_churn
        on_mean, off_mean = self._means(account)
        mean = on_mean if account.online else off_mean
        if churn <= 0 or mean <= 0 or not self._running:
            return
        delay = account.rng.expovariate(churn / mean)
        account.timer = self._later(delay, lambda: self._churn(account))

    def _churn(self, account: _Account) -> None:
        account.timer = None
        self._set_presence(account, not account.online, None)
        self._schedule_churn(account)

    def _set_presence(self, account: _Account, online: bool, last_seen: float | None) -> bool:
        """Change a contact's state; deliver it to the account when the rules allow."""
        if self._history is not None and online != account.online:
            self._history.append((self.clock.to_real(self.clock.now()), account.jid, online))
        if not online and account.online:
            account.last_seen = (
                last_seen
                if last_seen is not None
                else math.floor(self.clock.to_real(self.clock.now()))
            )
        elif not online and last_seen is not None:
            account.last_seen = last_seen
        account.online = online
        return self._deliver(account)

    def _deliver(self, account: _Account) -> bool:
        if not (
            self._running
            and self._connected
            and self._available
            and account.jid in self._subscribed
            and not account.unresponsive
        ):
            return False
        last_seen = None
        if not account.online and not account.hides_last_seen and account.last_seen is not None:
            last_seen = int(account.last_seen)
        self._stats["presence_events"] += 1
        self._emit(
            Presence(
                jid=account.jid,
                lid=account.lid,
                online=account.online,
                last_seen=last_seen,
                at=self.clock.to_real(self.clock.now()),
            )
        )
        return True

    def play_presence(self, real_seconds: float) -> list[tuple[float, str, bool]]:
        """Run only the presence model for ``real_seconds`` on a manual clock; its changes.

        For ``presence_history``: no session, nothing emitted.
        """
        if not isinstance(self.clock, ManualClock) or self._running:
            raise RuntimeError("presence is played on the manual clock of a stopped network")
        start = self.clock.now()
        seen = [account for account in self._contacts if not account.unresponsive]
        self._running, self._history = True, []
        try:
            self._init_presence()
            history = [(self.clock.to_real(start), account.jid, account.online) for account in seen]
            self.clock.advance(real_seconds * self.clock.time_scale)
            end = self.clock.to_real(self.clock.now())
            jids = {account.jid for account in seen}
            history += [c for c in self._history if c[1] in jids and c[0] < end]
        finally:
            self._running, self._history = False, None
            for account in self._contacts:
                self._cancel(account.timer)
                account.timer = None
        return history

    # --- timers ----------------------------------------------------------------------------

    def _later(self, delay: float, callback: Any) -> Handle:
        """Schedule on the clock, tracked so stop() leaves nothing behind."""
        key: list[int] = []

        def run() -> None:
            self._timers.pop(key[0], None)
            if self._running:
                callback()

        handle = self.clock.call_later(delay, run)
        key.append(id(handle))
        self._timers[id(handle)] = handle
        return handle

    def _cancel(self, handle: Handle | None) -> None:
        if handle is not None:
            handle.cancel()
            self._timers.pop(id(handle), None)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._load_state()
        self._init_presence()
        if self._account is not None:
            self._schedule_connect(self.config.connect_delay)

    async def stop(self) -> None:
        self._running = False
        for handle in list(self._timers.values()):
            handle.cancel()
        self._timers.clear()
        for account in self._contacts:
            account.timer = None
        self._pairing_timers.clear()
        self._reconnect_timer = self._disconnect_timer = self._ban_timer = None
        self._pairing = None
        self._connected = False
        self._set_available(False)
        self._subscribed.clear()

    def _schedule_connect(self, delay: float) -> None:
        self._cancel(self._reconnect_timer)
        self._reconnect_timer = None
        if delay <= 0:
            self._connect()
        else:
            self._reconnect_timer = self._later(delay, self._connect)

    def _connect(self) -> None:
        self._reconnect_timer = None
        if self._account is None or self._connected or self._ban_until is not None:
            return
        self._connected = True
        self._set_available(False)
        self._subscribed.clear()
        self._stats["connects"] += 1
        self._emit(Connected(self._account["jid"], self._account["phone"]))
        self._schedule_fault()

    def _schedule_fault(self) -> None:
        self._cancel(self._disconnect_timer)
        self._disconnect_timer = None
        rate = self.config.disconnect_rate
        if rate > 0 and self._connected:
            delay = self._fault_rng.expovariate(rate / 3600)
            self._disconnect_timer = self._later(delay, self._random_disconnect)

    def _random_disconnect(self) -> None:
        self._disconnect_timer = None
        self._disconnect("network", self.config.reconnect_delay)

    def _disconnect(self, reason: str, reconnect_after: float | None) -> None:
        """Drop the link: subscriptions and availability are lost, as in whatsmeow."""
        self._cancel(self._disconnect_timer)
        self._disconnect_timer = None
        self._cancel(self._reconnect_timer)
        self._reconnect_timer = None
        was_connected = self._connected
        self._connected = False
        self._set_available(False)
        self._subscribed.clear()
        if was_connected:
            self._stats["disconnects"] += 1
            self._emit(Disconnected(reason))
        if reconnect_after is not None:
            self._schedule_connect(max(reconnect_after, 1e-6))

    # --- persistence -----------------------------------------------------------------------

    def _state_file(self) -> Path | None:
        state_dir = self.config.state_dir
        return None if state_dir is None else Path(state_dir) / STATE_FILE

    def _load_state(self) -> None:
        path = self._state_file()
        if path is None or not path.exists():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            account = data.get("account")
            if isinstance(account, dict) and isinstance(account.get("phone"), str):
                self._account = self._make_account(
                    normalize_phone(account["phone"]), account.get("push_name")
                )
            else:
                self._account = None
        except OSError, ValueError, AttributeError, BridgeError:
            _LOGGER.warning("Ignoring an unreadable simulator state file")

    def _save_state(self) -> None:
        path = self._state_file()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"account": self._account}), encoding="utf-8")
            tmp.replace(path)
        except OSError:
            _LOGGER.exception("Could not save the simulator state")

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _make_account(phone: str, push_name: str | None) -> dict[str, Any]:
        return {"jid": phone_to_jid(phone), "phone": phone, "push_name": push_name}

    def _require_session(self) -> None:
        if self._account is None:
            raise BridgeError(ErrorCode.NOT_LOGGED_IN, "no WhatsApp session; pair first")

    def _require_connected(self) -> None:
        self._require_session()
        if self._ban_until is not None:
            raise BridgeError(ErrorCode.TEMPORARILY_BANNED, "the account is temporarily banned")
        if not self._connected:
            raise BridgeError(ErrorCode.NOT_CONNECTED, "not connected to WhatsApp")

    def _query(self) -> None:
        """Count a server query; WhatsApp answers 429 beyond its ceiling."""
        self._require_connected()
        config = self.config
        now = self.clock.now()
        _prune(self._query_times, now, config.query_window)
        if config.query_limit and len(self._query_times) >= config.query_limit:
            self._stats["rate_limited"] += 1
            raise BridgeError(ErrorCode.RATE_LIMITED, "rate-overlimit (429)")
        self._query_times.append(now)
        self._stats["queries"] += 1

    @staticmethod
    def _person(account: _Account) -> dict[str, Any]:
        return {"jid": account.jid, "phone": account.phone, "name": account.name}

    # --- Backend interface -----------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        ban = None
        if self._ban_until is not None:
            now = self.clock.now()
            ban = {
                "expires_at": self.clock.to_real(self._ban_until),
                "expires_in": self.clock.real_duration(max(0.0, self._ban_until - now)),
            }
        return {
            "paired": self._account is not None,
            "connected": self._connected,
            "pairing": self._pairing,
            "account": dict(self._account) if self._account else None,
            "available": self._available,
            "ban": ban,
        }

    async def pair_qr(self) -> None:
        self._check_can_pair()
        if self._pairing is not None:
            raise BridgeError(ErrorCode.BUSY, f"a {self._pairing} pairing is already running")
        self._pairing = "qr"
        self._pair_phone = None
        self._stats["pairings"] += 1
        self._emit_qr(0)
        self._schedule_completion()

    def _check_can_pair(self) -> None:
        if self._account is not None:
            raise BridgeError(ErrorCode.ALREADY_LOGGED_IN, "already paired; log out first")
        if not self._running:
            raise BridgeError(ErrorCode.NOT_CONNECTED, "backend not started")

    def _emit_qr(self, index: int) -> None:
        config = self.config
        ttl = config.qr_first_ttl if index == 0 else config.qr_next_ttl
        rng = self._pair_rng
        parts = ["".join(rng.choice(_B64) for _ in range(n)) for n in (88, 44, 44, 24)]
        code = "2@" + ",".join(parts)
        self._emit(QrCode(code, self.clock.real_duration(ttl)))
        if index + 1 < config.qr_codes:
            self._pairing_timers.append(self._later(ttl, lambda: self._emit_qr(index + 1)))
        else:
            self._pairing_timers.append(self._later(ttl, lambda: self._fail_pairing("timeout")))

    def _schedule_completion(self) -> None:
        if self.config.pairing_delay > 0:
            self._pairing_timers.append(
                self._later(self.config.pairing_delay, self._complete_pairing)
            )

    def _clear_pairing(self) -> None:
        for handle in self._pairing_timers:
            self._cancel(handle)
        self._pairing_timers.clear()
        self._pairing = None
        self._pair_code = None

    def _fail_pairing(self, reason: str) -> None:
        if self._pairing is None:
            return
        self._clear_pairing()
        self._emit(PairingFailed(reason))

    def _complete_pairing(self, phone: str | None = None, push_name: str | None = None) -> None:
        if self._pairing is None:
            return
        phone = phone or self._pair_phone or self.config.account_phone
        self._clear_pairing()
        self._account = self._make_account(phone, push_name or self.config.push_name)
        self._save_state()
        account = self._account
        self._emit(Paired(account["jid"], account["phone"], account["push_name"]))
        self._schedule_connect(self.config.connect_delay)

    async def pair_phone(self, phone: str) -> str:
        self._check_can_pair()
        if self._pairing == "phone":
            raise BridgeError(ErrorCode.BUSY, "a phone pairing is already running")
        phone = normalize_phone(phone)
        if self._pairing == "qr":
            # whatsmeow pairs by phone inside the QR session: the QR stream stops.
            self._clear_pairing()
        config = self.config
        self._pairing = "phone"
        self._pair_phone = phone
        self._stats["pairings"] += 1
        code = "".join(self._pair_rng.choice(_PAIR_CODE_ALPHABET) for _ in range(8))
        self._pair_code = f"{code[:4]}-{code[4:]}"
        lifetime = config.qr_first_ttl + (config.qr_codes - 1) * config.qr_next_ttl
        self._pairing_timers.append(self._later(lifetime, lambda: self._fail_pairing("timeout")))
        self._schedule_completion()
        return self._pair_code

    async def cancel_pairing(self) -> None:
        self._fail_pairing("cancelled")

    async def logout(self) -> None:
        self._require_session()
        self._end_session("logout", on_connect=False)

    def _end_session(self, reason: str, *, on_connect: bool) -> None:
        self._disconnect_quietly()
        self._account = None
        self._save_state()
        self._emit(LoggedOut(reason, on_connect))

    def _disconnect_quietly(self) -> None:
        for handle in (self._disconnect_timer, self._reconnect_timer):
            self._cancel(handle)
        self._disconnect_timer = self._reconnect_timer = None
        self._connected = False
        self._set_available(False)
        self._subscribed.clear()

    async def set_available(self, available: bool) -> None:
        self._require_connected()
        was = self._available
        self._set_available(available)
        if available and not was and self._on_available == "resend":
            # One hypothesis of WhatsApp's behaviour: everyone's current presence, at once.
            for account in self._contacts:
                self._deliver(account)

    def _set_available(self, available: bool) -> None:
        """Change availability, keeping the simulated time the account looked online."""
        now = self.clock.now()
        if self._available_since is not None:
            self._available_total += now - self._available_since
        self._available_since = now if available else None
        self._available = available

    def _available_seconds(self) -> float:
        since = self._available_since
        return self._available_total + (0.0 if since is None else self.clock.now() - since)

    async def subscribe_presence(self, jid: str) -> None:
        self._require_connected()
        config = self.config
        now = self.clock.now()
        self._sub_calls[jid] += 1
        self._stats["subscribe_calls"] += 1
        if self._sub_failures[jid] > 0:
            # As neonize's SubscribePresenceError (e.g. no privacy token): the call itself fails.
            self._sub_failures[jid] -= 1
            raise BridgeError(ErrorCode.INTERNAL, "subscribe failed (simulated)")
        admitted = self._limit.admit(self.clock.to_real(now))
        if not admitted:
            # Silently ignored, like WhatsApp; sustained excess ends in a ban.
            self._ignored[jid] += 1
            self._stats["ceiling_hits"] += 1
            if admitted is None:
                self._ban(config.ban_duration, TEMP_BAN_REASON)
            return
        self._subscribed.add(jid)
        account = self._accounts.get(jid)
        if account is not None and account.is_contact and not account.unresponsive:
            # WhatsApp answers a subscription with the contact's current state.
            if config.presence_latency > 0:
                self._later(config.presence_latency, lambda: self._deliver(account))
            else:
                self._deliver(account)

    def _ban(self, duration: float, code: int) -> None:
        """Ban for ``duration`` real seconds (``time_scale`` times as many simulated ones)."""
        now = self.clock.now()
        duration *= self.clock.time_scale
        self._ban_until = now + duration
        self._stats["bans"] += 1
        self._emit(
            TemporaryBan(
                code,
                self.clock.real_duration(duration),
                self.clock.to_real(self._ban_until),
            )
        )
        self._disconnect("temporary_ban", None)
        self._cancel(self._ban_timer)
        self._ban_timer = self._later(duration, self._end_ban)

    def _end_ban(self) -> None:
        self._cancel(self._ban_timer)
        self._ban_timer = None
        self._ban_until = None
        self._limit.clear()
        self._schedule_connect(self.config.reconnect_delay)

    async def contacts(self) -> list[dict[str, Any]]:
        self._require_session()
        return [self._person(account) for account in self._contacts]

    async def groups(self) -> list[dict[str, Any]]:
        self._query()
        return [
            {"jid": group.jid, "name": group.name, "participants": len(group.members) + 1}
            for group in self._groups.values()
        ]

    async def group_participants(self, jid: str) -> list[dict[str, Any]]:
        self._query()
        group = self._groups.get(jid)
        if group is None:
            raise BridgeError(ErrorCode.INVALID_ARGUMENT, "not a member of that group")
        assert self._account is not None
        me = {
            "jid": self._account["jid"],
            "phone": self._account["phone"],
            "name": self._account["push_name"],
        }
        return [me, *(self._person(account) for account in group.members)]

    async def resolve(self, phones: list[str]) -> list[dict[str, Any]]:
        self._query()
        assert self._account is not None
        results = []
        for phone in phones:
            jid = phone_to_jid(phone)
            known = jid in self._accounts or jid == self._account["jid"]
            results.append({"query": phone, "on_whatsapp": known, "jid": jid if known else None})
        return results

    # --- simulator control -------------------------------------------------------------------

    async def command(self, name: str, args: dict[str, Any]) -> Any:
        """The ``sim.*`` control commands (docs/bridge-protocol.md, "Simulator control")."""
        match name:
            case "sim.stats":
                return self.stats()
            case "sim.contacts":
                return [self._describe(account) for account in self._contacts]
            case "sim.set_presence":
                return self._cmd_set_presence(args)
            case "sim.advance":
                return self._cmd_advance(args)
            case "sim.disconnect":
                self._require_session()
                after = arg_number(
                    args,
                    "reconnect_after",
                    self.config.reconnect_delay,
                    minimum=0,
                    allow_null=True,
                )
                reason = args.get("reason", "network")
                if not isinstance(reason, str) or not reason:
                    raise BridgeError(ErrorCode.INVALID_ARGUMENT, "reason must be a string")
                self._disconnect(reason, after)
                return None
            case "sim.connect":
                self._require_session()
                if self._ban_until is not None:
                    raise BridgeError(ErrorCode.TEMPORARILY_BANNED, "banned; use sim.unban")
                self._schedule_connect(0)
                return None
            case "sim.log":
                # A library dumping one huge line on stderr (whatsmeow's protobuf dumps do).
                size = arg_number(args, "size", 1000, minimum=1, maximum=2_000_000)
                _LOGGER.warning("%s", "x" * int(size or 1))
                return None
            case "sim.logout":
                self._require_session()
                reason = args.get("reason", "unlinked")
                if not isinstance(reason, str) or not reason:
                    raise BridgeError(ErrorCode.INVALID_ARGUMENT, "reason must be a string")
                self._end_session(reason, on_connect=arg_bool(args, "on_connect", False))
                return None
            case "sim.ban":
                self._require_session()
                duration = arg_number(args, "expires_in", self.config.ban_duration, minimum=1)
                code = args.get("code", TEMP_BAN_REASON)
                if isinstance(code, bool) or not isinstance(code, int):
                    raise BridgeError(ErrorCode.INVALID_ARGUMENT, "code must be an integer")
                assert duration is not None
                self._ban(duration, code)
                return None
            case "sim.on_available":
                model = args.get("model")
                if model not in AVAILABILITY_MODELS:
                    raise BridgeError(
                        ErrorCode.INVALID_ARGUMENT,
                        f"model must be one of {', '.join(AVAILABILITY_MODELS)}",
                    )
                self._on_available = model
                return None
            case "sim.fail_subscribe":
                jid = args.get("jid")
                if not isinstance(jid, str) or jid not in self._accounts:
                    raise BridgeError(ErrorCode.INVALID_ARGUMENT, "jid must be a simulated account")
                times = arg_number(args, "times", 1, minimum=0)
                assert times is not None
                self._sub_failures[jid] = int(times)
                return None
            case "sim.unban":
                if self._ban_until is not None:
                    self._end_ban()
                return None
            case "sim.stream_replaced" | "sim.client_outdated":
                self._require_session()
                event = StreamReplaced() if name == "sim.stream_replaced" else ClientOutdated()
                self._emit(event)
                self._disconnect(str(event.name), None)
                return None
            case "sim.complete_pairing":
                if self._pairing is None:
                    raise BridgeError(ErrorCode.INVALID_ARGUMENT, "no pairing is running")
                phone = args.get("phone")
                push_name = args.get("push_name")
                if push_name is not None and not isinstance(push_name, str):
                    raise BridgeError(ErrorCode.INVALID_ARGUMENT, "push_name must be a string")
                self._complete_pairing(
                    normalize_phone(phone) if phone is not None else None, push_name
                )
                return dict(self._account) if self._account else None
            case "sim.fail_pairing":
                if self._pairing is None:
                    raise BridgeError(ErrorCode.INVALID_ARGUMENT, "no pairing is running")
                reason = args.get("reason", "timeout")
                if not isinstance(reason, str) or not reason:
                    raise BridgeError(ErrorCode.INVALID_ARGUMENT, "reason must be a string")
                self._fail_pairing(reason)
                return None
            case _:
                return await super().command(name, args)

    def _cmd_set_presence(self, args: dict[str, Any]) -> dict[str, Any]:
        jid = arg_user_jid(args)
        account = self._accounts.get(jid)
        if account is None or not account.is_contact:
            raise BridgeError(ErrorCode.INVALID_ARGUMENT, "not a simulated contact")
        online = arg_bool(args, "online")
        last_seen = arg_number(args, "last_seen", None, minimum=0, allow_null=True)
        delivered = self._set_presence(account, online, last_seen)
        self._schedule_churn(account)
        return {"delivered": delivered}

    def _cmd_advance(self, args: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(self.clock, ManualClock):
            raise BridgeError(ErrorCode.UNSUPPORTED, "sim.advance needs --manual-clock")
        seconds = arg_number(args, "seconds", minimum=0, maximum=10 * 365 * 86400)
        assert seconds is not None
        ran = self.clock.advance(seconds)
        return {"time": self.clock.to_real(self.clock.now()), "ran": ran}

    def _describe(self, account: _Account) -> dict[str, Any]:
        return {
            **self._person(account),
            "chatty": account.chatty,
            "hides_last_seen": account.hides_last_seen,
            "unresponsive": account.unresponsive,
            "lid": account.lid,
            "online": account.online,
            "last_seen": account.last_seen,
            "subscribed": account.jid in self._subscribed,
        }

    def stats(self) -> dict[str, Any]:
        """Counters for tests and benchmarks (``sim.stats``)."""
        now = self.clock.now()
        config = self.config
        window_count, ignored_count = self._limit.counts(self.clock.to_real(now))
        return {
            "time": self.clock.to_real(now),
            "sim_time": now,
            "connected": self._connected,
            "available": self._available,
            "available_seconds": self._available_seconds(),
            "on_available": self._on_available,
            "banned": self._ban_until is not None,
            "subscribed": sorted(self._subscribed),
            "subscriptions": dict(self._sub_calls),
            "ignored": dict(self._ignored),
            "window_count": window_count,
            "ignored_in_ban_window": ignored_count,
            "subscribe_calls": self._stats["subscribe_calls"],
            "ceiling_hits": self._stats["ceiling_hits"],
            "bans": self._stats["bans"],
            "connects": self._stats["connects"],
            "disconnects": self._stats["disconnects"],
            "presence_events": self._stats["presence_events"],
            "queries": self._stats["queries"],
            "rate_limited": self._stats["rate_limited"],
            "pairings": self._stats["pairings"],
            "config": {key: value for key, value in asdict(config).items() if key != "state_dir"},
        }


def presence_history(
    config: SimulatorConfig, start: float, end: float
) -> list[tuple[float, str, bool]]:
    """What this network's contacts did between two real times: (real time, jid, online).

    The same per-contact model and seeds as a live run, at ``config.time_scale``, played on a
    manual clock in a moment (a demo shows days of it at once). Everyone's state at ``start``
    comes first, then each change in time order. Contacts that never answer a subscription
    are left out: nobody would have seen them. Only presence is played: the history is that
    of an account connected and subscribed throughout.
    """
    backend = SimulatorBackend(
        lambda *_: None,
        replace(config, manual_clock=True, start_time=start, paired=False, state_dir=None),
    )
    return backend.play_presence(end - start)


def _wall_now() -> float:
    return time.time()
