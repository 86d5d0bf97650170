"""The real-WhatsApp backend: one neonize 0.5.2 (whatsmeow) session per bridge process.

neonize is a ctypes wrapper around Go (whatsmeow); its traps shape this file:

- Several FFI calls abort the whole process (Go nil-pointer panic) unless the client is logged
  in: ``GetMe``, the contact store, ``GetPNFromLID``/``GetLIDFromPN``, chat settings. Login state
  is tracked here from events (the Device code-0 event, ``PairStatus``, ``Connected``,
  ``LoggedOut``), never through neonize's ``is_logged_in``/``is_connected`` properties (they
  return coroutines, so they are always truthy). ``get_me`` is never called at all.
- Go's global maps have no lock: every FFI call goes through one asyncio lock, checked against
  the session state *inside* the lock, and ``Stop`` takes the same lock. A session is only
  stopped once Go has registered it (first QR, Device event or the connect call's end).
- Event handler exceptions are swallowed by neonize: every handler is wrapped and logs.
- Presence needs ``available``, which fails until the push name is synced: retried after
  ``OfflineSyncCompleted`` and with a backoff; re-sent after every ``Connected``.
- ``@lid`` senders are mapped back to phone numbers; a last seen of Go's zero time
  (-62135596800) or anything <= 0 is unknown (``null``).
- A stop during QR pairing cannot finish (the Go thread stays blocked on the QR channel): the
  connect thread would keep the interpreter from exiting, so ``stop()`` ends the process then.
  Go's own ``Stop`` can also hang (its Disconnect waits for a lock a dial holds): it is bounded,
  and past the bound the process ends too.
- Go leaks per session what Python cannot free: a blocked thread per abandoned QR pairing, an
  SQLite connection pool per ``Neonize()`` call. The process restarts itself (exit 75, the
  supervisor starts a fresh one) at a moment that loses nothing; see ``_restart_if_leaking``.
- whatsmeow fails silently where a live link needs an answer: a keepalive timeout keeps the
  status "connected" for minutes, and a post-pairing reconnect that fails is only logged.
  Keepalive events count as link state, and a watchdog restarts a session that does not
  connect in time.
- Events with an enum value neonize's Go encoder does not know cannot be serialised (the
  field is required): Go ends the session with "required field … not set" instead. That is
  read as the lost event and answered with the longest backoff, never with a fast retry.
- neonize is imported lazily, in a thread, inside ``start()``. Every wait (backoffs,
  retries, the watchdog) goes through the injected ``sleep``, so tests drive time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import importlib
import logging
import os
from pathlib import Path
import re
import sqlite3
import sys
import time
from types import ModuleType
from typing import Any, ClassVar, Final, Literal, NoReturn

from .backend import Backend, EventSink
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
    is_group_jid,
    is_user_jid,
    jid_to_phone,
    normalize_phone,
    phone_to_jid,
)

_LOGGER = logging.getLogger(__name__)

SESSION_FILENAME: Final = "whatsapp-session.db"
"""The whatsmeow SQLite store inside ``data_dir`` (mode 0600, the folder 0700)."""

USER_SERVER: Final = "s.whatsapp.net"
LID_SERVER: Final = "lid"
GROUP_SERVER: Final = "g.us"

FIRST_QR_TTL: Final = 60
NEXT_QR_TTL: Final = 20
"""whatsmeow's QR codes: the first lives 60 s, up to five more 20 s each."""

STOP_EXIT_CODE: Final = 0
"""Exit code when ``stop()`` must end the process (a stop was asked for; it is not a crash)."""

RESTART_EXIT_CODE: Final = 75
"""Exit code (EX_TEMPFAIL) when the process must be replaced by a fresh one: restart me."""

UNKNOWN_BAN_SECONDS: Final = 24 * 3600
"""Assumed length of a ban whose expiry is unknown (``Expire`` 0, or an event Go could not
encode): a temporary ban lasts up to a day, and reconnecting during one prolongs it."""

ACCOUNT_BLOCKED_REASONS: Final = {
    "main_device_gone": "account_locked",
    "unknown_logout": "account_banned",
}
"""LoggedOut reasons that are not a plain unlink: WhatsApp's codes 403 (the account is locked)
and 406 (banned), which neonize still names by whatsmeow's older names."""

_LOST_EVENT_RE: Final = re.compile(r"required field (?:neonize\.)?(\w+)\.(\w+) not set")

CRASH_PRONE_FFI: Final = frozenset(
    {
        "GetMe",
        "GetAllContacts",
        "GetContact",
        "GetChatSettings",
        "GetLIDFromPN",
        "GetPNFromLID",
    }
)
"""Go functions that abort the process when the client is not logged in (documentation and
tests; this backend only reaches them through ``_call(..., need="login")``)."""

_PUSH_NAME_ERROR: Final = "pushname"
_REDACT_RE: Final = re.compile(r"\d{5,}")

Mode = Literal["connect", "qr", "phone"]


def _text(err: BaseException) -> str:
    """neonize's message: the raw Go error string, bytes for ``SendPresenceError``."""
    raw: Any = err.args[0] if err.args else str(err)
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("utf-8", "replace")
    return str(raw)


def redact(text: str) -> str:
    """Drop phone numbers and other long digit runs from text meant for logs or clients."""
    return _REDACT_RE.sub("…", text)


def map_error(operation: str, err: BaseException) -> BridgeError:
    """Turn a neonize exception (raw Go error text, no codes) into a protocol error."""
    text = _text(err)
    low = text.lower()
    if "rate-overlimit" in low or "429" in low:
        code = ErrorCode.RATE_LIMITED
    elif "websocket not connected" in low or "client is nil" in low or "not connected" in low:
        code = ErrorCode.NOT_CONNECTED
    elif "device jid" in low or "not logged in" in low:
        code = ErrorCode.NOT_LOGGED_IN
    elif (
        "invalid" in low
        or "bad-request" in low
        or "bad request" in low
        or "status 400" in low
        or "item-not-found" in low
        or "status 404" in low
    ):
        code = ErrorCode.INVALID_ARGUMENT
    elif "timed out" in low or "deadline exceeded" in low or "timeout" in low:
        code = ErrorCode.TIMEOUT
    else:
        code = ErrorCode.INTERNAL
    return BridgeError(code, f"{operation} failed: {redact(text)}")


def _flush_logs() -> None:
    """Flush every logging handler and the standard streams before ``os._exit``."""
    for handler in list(logging.getLogger().handlers):
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def redirect_native_stdout() -> None:
    """Send file descriptor 1 to stderr while Python's ``sys.stdout`` keeps the real stdout.

    Go's ``fmt.Println`` ("Login event: success", "Pair Code: …") writes straight to fd 1; a
    parent process that reads a machine-readable line from the bridge's stdout would see them.
    Call once, before ``start()``, if stdout carries such a protocol.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = open(  # noqa: SIM115 - replaces the process-wide stream for good
        saved, "w", encoding="utf-8", buffering=1, closefd=True
    )


def _load_neonize() -> ModuleType:
    """Import the neonize glue (heavy; side effects): keep the root logger as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return importlib.import_module(".neonize_client", __package__)
    finally:
        # neonize calls logging.basicConfig(level=INFO) at import: not its decision to make.
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def _prepare_files(data_dir: Path, db_path: Path) -> None:
    """Data folder 0700 and session file 0600, created before Go opens (and creates) it."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)
    fd = os.open(db_path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    db_path.chmod(0o600)


class StoreUnreadableError(Exception):
    """The session store exists but cannot be read now (locked, busy, damaged)."""


def read_stored_account(db_path: Path, busy_timeout: float = 2.0) -> dict[str, Any] | None:
    """The paired account in the whatsmeow store, read with sqlite3 (no Go, no network).

    Connecting with an unpaired store would silently start a QR session, so this decides
    whether ``start()`` connects. ``ClientFactory.get_all_devices_from_db`` is not used: it
    splits on commas and breaks on push names that contain one.

    Only a missing file, a missing table or an empty one mean "never paired". Any other
    error (a database Go holds locked, a hot journal a read-only reader cannot roll back)
    raises ``StoreUnreadableError``: reading it as unpaired would forget the account.
    """
    if not db_path.exists() or db_path.stat().st_size == 0:
        return None
    try:
        with contextlib.closing(
            sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True, timeout=busy_timeout)
        ) as db:
            try:
                row = db.execute("SELECT jid, push_name FROM whatsmeow_device LIMIT 1").fetchone()
            except sqlite3.OperationalError as err:
                if "no such column" not in str(err):
                    raise
                row = db.execute("SELECT jid, NULL FROM whatsmeow_device LIMIT 1").fetchone()
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return None  # Go has not created its schema: never paired
        raise StoreUnreadableError(str(err)) from err
    except sqlite3.Error as err:
        raise StoreUnreadableError(str(err)) from err
    if not row or not row[0]:
        return None
    phone = jid_to_phone(str(row[0]))
    return {"jid": phone_to_jid(phone), "phone": phone, "push_name": row[1] or None}


@dataclass(eq=False)
class _Session:
    """One ``NewAClient`` and its Go ``Neonize()`` call; never reused after it ends."""

    uuid: str
    mode: Mode
    client: Any = None
    task: asyncio.Task[Any] | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    first_qr: asyncio.Future[None] | None = None
    qr_count: int = 0
    logged_in: bool = False
    connected: bool = False
    retired: bool = False
    stop_sent: bool = False
    retiring: bool = False
    retire_expired: bool = False
    available_sent: bool = False
    link_stalled: bool = False
    presence_retry: asyncio.Task[None] | None = None
    watchdog: asyncio.Task[None] | None = None


class NeonizeBackend(Backend):
    """Real WhatsApp through neonize 0.5.2; see the module docstring for the traps handled."""

    name: ClassVar[str] = "neonize"

    reconnect_delays: tuple[float, ...] = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0)
    """Pause before reconnecting after a failed connect or ``ConnectFailure``; the last repeats.
    (whatsmeow retries dropped connections by itself, but never a failed first connect.)"""

    presence_retry_delays: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0, 60.0, 120.0)
    """Retries of ``available`` while WhatsApp refuses it (push name not synced yet)."""

    first_qr_timeout: float = 30.0
    """How long ``pair_phone`` waits for whatsmeow's QR flow to start before asking a code."""

    connect_watchdog: float = 60.0
    """A session that is not connected this long after start or pairing is restarted
    (whatsmeow tries its post-pairing reconnect once and only logs a failure)."""

    store_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    """Retries of reading a session store that is locked or busy before giving up."""

    store_busy_timeout: float = 2.0
    """How long one read of the session store waits for a lock Go holds."""

    max_go_sessions: int = 24
    """Each ``Neonize()`` call opens an SQLite pool Go never closes, and each client's
    callbacks are kept for the process's life; past this many sessions a reconnect restarts
    the process instead (one a day even when WhatsApp is unreachable for good)."""

    def __init__(
        self,
        emit: EventSink,
        *,
        data_dir: Path,
        device_name: str = "Home Assistant",
        proxy: str | None = None,
        stop_timeout: float = 10.0,
        exit_process: Callable[[int], NoReturn] = os._exit,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(emit)
        self._sleep = sleep
        self._data_dir = Path(data_dir)
        self._db_path = self._data_dir / SESSION_FILENAME
        self._device_name = device_name
        self._proxy = proxy
        self._stop_timeout = stop_timeout
        self._exit_process: Callable[[int], Any] = exit_process
        self._nz: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ffi_lock = asyncio.Lock()
        self._presence_lock = asyncio.Lock()
        self._session: _Session | None = None
        self._sessions: list[_Session] = []
        self._stopping: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._reconnect: asyncio.Task[None] | None = None
        self._reconnect_attempt = 0
        self._seq = 0
        self._paired = False
        self._account: dict[str, Any] | None = None
        self._pairing: Literal["qr", "phone"] | None = None
        self._want_available: bool | None = None
        self._ban: dict[str, Any] | None = None
        self._lid_to_pn: dict[str, str] = {}
        self._pn_to_lid: dict[str, str] = {}
        self._started = False
        self._stopped = False

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        """The session file (whatsmeow's SQLite store)."""
        return self._db_path

    async def start(self) -> None:
        """Create the session files, load neonize, connect only when a session is stored."""
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(_prepare_files, self._data_dir, self._db_path)
        try:
            self._nz = await asyncio.to_thread(_load_neonize)
        except Exception as err:  # whatever the import raises means "not here"
            # ImportError/OSError: no wheel (musl, armv7), glibc < 2.34, libmagic, protobuf;
            # RuntimeError and neonize's UnsupportedPlatform: its loader found no library.
            raise BridgeError(
                ErrorCode.UNSUPPORTED, f"neonize cannot be loaded here: {err}"
            ) from err
        self._nz.prepare(self._loop, debug=_LOGGER.isEnabledFor(logging.DEBUG))
        account = await self._read_account()
        if account is not None:
            self._paired = True
            self._account = account
            await self._open_session("connect")
        _LOGGER.info("neonize backend started (%s)", "paired" if account else "not paired")

    async def _read_account(self) -> dict[str, Any] | None:
        """``read_stored_account`` retried while the store is busy; raises if it stays so."""
        for delay in (*self.store_retry_delays, None):
            try:
                return await asyncio.to_thread(
                    read_stored_account, self._db_path, self.store_busy_timeout
                )
            except StoreUnreadableError as err:
                if delay is None:
                    raise BridgeError(
                        ErrorCode.INTERNAL, f"the WhatsApp session store cannot be read: {err}"
                    ) from err
                _LOGGER.warning("The WhatsApp session store is busy (%s); retrying", err)
                await self._sleep(delay)
        raise AssertionError("unreachable")

    async def stop(self) -> None:
        """Stop the Go session; exit the process if its thread cannot finish (see module doc)."""
        if self._stopped:
            return
        self._stopped = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stop_timeout
        if self._reconnect is not None:
            self._reconnect.cancel()
            await asyncio.wait([self._reconnect])
        background = list(self._background)
        for task in background:
            task.cancel()  # Stop calls run in self._stopping, shielded from this
        if background:
            await asyncio.wait(background)
        for session in self._sessions:
            self._detach(session)
            if not session.stop_sent and session.task is not None:
                await self._send_stop_when_settled(session, deadline)
        if self._stopping:
            await asyncio.wait(list(self._stopping), timeout=max(0.0, deadline - loop.time()))
        running = [s.task for s in self._sessions if s.task is not None and not s.task.done()]
        if running:
            await asyncio.wait(running, timeout=max(0.0, deadline - loop.time()))
        stuck = [task for task in running if not task.done()]
        if stuck:
            self._end_process(
                STOP_EXIT_CODE,
                f"{len(stuck)} WhatsApp connect thread(s) cannot finish (abandoned QR pairing); "
                "ending the process so it does not hang",
            )
            return
        _LOGGER.info("neonize backend stopped")

    def _end_process(self, code: int, why: str) -> None:
        """Log why, flush, and end the process (``exit_process`` only returns in tests)."""
        _LOGGER.warning("%s", why)
        _flush_logs()
        self._exit_process(code)

    async def status(self) -> dict[str, Any]:
        """Paired/connected/pairing/account, plus ``available`` and ``ban``."""
        session = self._session
        return {
            "paired": self._paired,
            "connected": bool(session and session.connected),
            "pairing": self._pairing,
            "account": dict(self._account) if self._paired and self._account else None,
            "available": bool(self._want_available),
            "ban": dict(self._ban) if self._ban is not None and self._active_ban() else None,
        }

    # --- pairing ----------------------------------------------------------------------

    async def pair_qr(self) -> None:
        """Start whatsmeow's QR flow; codes come as ``qr`` events from the QR callback."""
        self._check_can_pair()
        self._pairing = "qr"
        try:
            await self._open_session("qr")
        except BaseException:
            self._pairing = None
            raise

    async def pair_phone(self, phone: str) -> str:
        """Pair by phone number; returns the code as 8 characters without the dash.

        whatsmeow's ``PairPhone`` only works once its QR flow runs (neonize issue #192), so this
        starts the QR flow (without emitting ``qr`` events) or reuses a running one, waits for
        its first code, then asks for the pairing code. whatsmeow formats it ``XXXX-XXXX``; the
        dash is dropped so the protocol carries exactly 8 characters (display adds it back).
        """
        digits = normalize_phone(phone)
        session = self._session
        if self._pairing == "qr" and session is not None and not session.retired:
            session.mode = "phone"
            self._pairing = "phone"
        else:
            self._check_can_pair()
            self._pairing = "phone"
            try:
                session = await self._open_session("phone")
            except BaseException:
                self._pairing = None
                raise
        assert session.first_qr is not None
        try:
            async with asyncio.timeout(self.first_qr_timeout):
                await asyncio.shield(session.first_qr)
        except TimeoutError:
            self._end_pairing(session)
            raise BridgeError(
                ErrorCode.TIMEOUT, "WhatsApp did not start the pairing in time"
            ) from None
        except BridgeError:
            self._end_pairing(session)
            raise
        nz = self._nz
        try:
            raw = await self._call(
                session,
                "pair_phone",
                session.client.PairPhone,
                digits,
                True,
                nz.ClientName.LINUX,
                nz.ClientType.CHROME,
                need="registered",
            )
        except BridgeError:
            self._end_pairing(session)  # a new attempt must not find a stale pairing
            raise
        code = str(raw).replace("-", "").strip()
        if len(code) != 8:
            _LOGGER.warning("WhatsApp returned a pairing code of %d characters", len(code))
        return code

    async def cancel_pairing(self) -> None:
        """End a running pairing; its Go thread usually stays blocked (see ``stop``)."""
        session = self._session
        if self._pairing is None:
            return
        self._pairing = None
        if session is not None and session.mode != "connect":
            self._end_pairing(session)

    async def logout(self) -> None:
        """Unlink the device on WhatsApp (whatsmeow also deletes the local store)."""
        session = self._require(connected=True)
        await self._call(session, "logout", session.client.logout, need="connected")
        self._forget_account()
        self._retire_soon(session)
        self._emit(LoggedOut("logout", on_connect=False))

    # --- presence ---------------------------------------------------------------------

    async def set_available(self, available: bool) -> None:
        """Remember the wish and apply it now if connected; it is re-applied on every connect."""
        if not self._paired:
            raise BridgeError(ErrorCode.NOT_LOGGED_IN, "no paired WhatsApp session")
        self._want_available = available
        session = self._session
        if session is None or not (session.connected and session.logged_in):
            return  # applied by the next Connected event
        session.available_sent = False
        await self._send_presence(session, raise_errors=True)

    async def subscribe_presence(self, jid: str) -> None:
        """Fire-and-forget subscription; learns the contact's LID first so events map back."""
        if not is_user_jid(jid):
            raise BridgeError(ErrorCode.INVALID_ARGUMENT, "jid must be <digits>@s.whatsapp.net")
        session = self._require(connected=True)
        nz = self._nz
        user = jid.split("@", 1)[0]
        if jid not in self._pn_to_lid:
            with contextlib.suppress(BridgeError):
                lid = await self._call(
                    session,
                    "lid lookup",
                    session.client.get_lid_from_pn,
                    nz.jid(user, USER_SERVER),
                    need="login",
                )
                lid_str = nz.jid_str(lid)
                if lid_str and lid_str.endswith("@" + LID_SERVER):
                    self._remember_lid(lid_str, jid)
        await self._call(
            session,
            "subscribe_presence",
            session.client.subscribe_presence,
            nz.jid(user, USER_SERVER),
            need="connected",
        )

    # --- address book -----------------------------------------------------------------

    async def contacts(self) -> list[dict[str, Any]]:
        """The local contact store (synced from the phone); LIDs mapped, others skipped."""
        session = self._require(connected=False)
        items = await self._call(
            session, "contacts", session.client.contact.get_all_contacts, need="login"
        )
        result: dict[str, dict[str, Any]] = {}
        for item in items:
            jid = await self._phone_jid(session, item.JID)
            if jid is None or jid in result:
                continue
            info = item.Info
            name = info.FullName or info.FirstName or info.PushName or info.BusinessName or None
            result[jid] = {"jid": jid, "phone": jid_to_phone(jid), "name": name}
        return list(result.values())

    async def groups(self) -> list[dict[str, Any]]:
        """Joined groups (a WhatsApp query: may be rate limited)."""
        session = self._require(connected=True)
        items = await self._call(
            session, "groups", session.client.get_joined_groups, need="connected"
        )
        nz = self._nz
        result = []
        for group in items:
            jid = nz.jid_str(group.JID)
            if jid is None:
                continue
            result.append(
                {"jid": jid, "name": group.GroupName.Name, "participants": len(group.Participants)}
            )
        return result

    async def group_participants(self, jid: str) -> list[dict[str, Any]]:
        """Members of a group as phone JIDs (``PhoneNumber`` first, LIDs mapped)."""
        if not is_group_jid(jid):
            raise BridgeError(ErrorCode.INVALID_ARGUMENT, "jid must be a group JID (…@g.us)")
        session = self._require(connected=True)
        nz = self._nz
        info = await self._call(
            session,
            "group_participants",
            session.client.get_group_info,
            nz.jid(jid.split("@", 1)[0], GROUP_SERVER),
            need="connected",
        )
        result: dict[str, dict[str, Any]] = {}
        for member in info.Participants:
            pn = None
            for candidate in (member.PhoneNumber, member.JID, member.LID):
                pn = await self._phone_jid(session, candidate)
                if pn is not None:
                    break
            if pn is None or pn in result:
                continue
            result[pn] = {"jid": pn, "phone": jid_to_phone(pn), "name": member.DisplayName or None}
        return list(result.values())

    async def resolve(self, phones: list[str]) -> list[dict[str, Any]]:
        """Which numbers use WhatsApp (a usync query: may be rate limited)."""
        digits = [normalize_phone(phone) for phone in phones]
        session = self._require(connected=True)
        try:
            answers = await self._call(
                session,
                "resolve",
                session.client.is_on_whatsapp,
                *[f"+{d}" for d in dict.fromkeys(digits)],
                need="connected",
            )
        except BridgeError as err:
            if "returned nothing" not in err.message:
                raise
            answers = []
        by_number: dict[str, Any] = {}
        for answer in answers:
            number = str(answer.Query).lstrip("+")
            by_number[number] = answer
        result = []
        for query, number in zip(phones, digits, strict=True):
            answer = by_number.get(number)
            on_whatsapp = bool(answer is not None and answer.IsIn)
            jid = None
            if answer is not None and on_whatsapp:
                jid = await self._phone_jid(session, answer.JID) or phone_to_jid(number)
            result.append({"query": query, "on_whatsapp": on_whatsapp, "jid": jid})
        return result

    # --- sessions -----------------------------------------------------------------------

    def _check_can_pair(self) -> None:
        if not self._started or self._stopped:
            raise BridgeError(ErrorCode.NOT_CONNECTED, "the backend is not running")
        if self._paired:
            raise BridgeError(ErrorCode.ALREADY_LOGGED_IN, "a WhatsApp session is already paired")
        if self._pairing is not None:
            raise BridgeError(ErrorCode.BUSY, "a pairing is already running")

    def stuck_threads(self) -> int:
        """Connect threads still blocked although their session was stopped."""
        return sum(
            1
            for s in self._sessions
            if s.stop_sent and s.task is not None and not s.task.done() and s.retire_expired
        )

    def _restart_if_leaking(self) -> bool:
        """Replace the process when it holds what Go leaked and restarting loses nothing.

        An expired or abandoned QR pairing leaves its Go thread blocked for good (whatsmeow
        stops feeding the QR channel without closing it, or neonize polls for a device id
        that never comes), and Go offers no call to resume that client. So instead of
        collecting blocked threads, the bridge restarts as soon as one is blocked and no
        pairing runs: the integration has already been told the pairing failed, the
        supervisor starts a fresh process within seconds, and the next attempt starts clean.
        A paired session is never restarted for this (one blocked thread at most: nobody
        pairs while paired).
        """
        if self._stopped or self._paired or self._pairing is not None:
            return False
        stuck = self.stuck_threads()
        if not stuck:
            return False
        self._end_process(
            RESTART_EXIT_CODE,
            "An abandoned WhatsApp pairing left its thread blocked; restarting the bridge "
            "so the next pairing starts in a fresh process",
        )
        return True

    def _require(self, *, connected: bool) -> _Session:
        """The live session, or the protocol error explaining why there is none."""
        if not self._paired:
            raise BridgeError(ErrorCode.NOT_LOGGED_IN, "no paired WhatsApp session")
        session = self._session
        if session is None or session.retired or not session.logged_in:
            if self._active_ban():
                raise BridgeError(ErrorCode.TEMPORARILY_BANNED, "WhatsApp banned this session")
            raise BridgeError(ErrorCode.NOT_CONNECTED, "not connected to WhatsApp")
        if connected and not session.connected:
            raise BridgeError(ErrorCode.NOT_CONNECTED, "not connected to WhatsApp")
        return session

    def _active_ban(self) -> bool:
        return self._ban is not None and self._ban["expires_at"] > time.time()

    async def _open_session(self, mode: Mode) -> _Session:
        """Create a client (fresh uuid: Go keys its maps by it) and start ``Neonize()``."""
        if self._stopped:
            raise BridgeError(ErrorCode.NOT_CONNECTED, "the backend is stopping")
        if self._stopping:
            # A previous session's Stop must be done before Go registers a new one.
            await asyncio.wait(list(self._stopping), timeout=self._stop_timeout)
        loop = asyncio.get_running_loop()
        nz = self._nz
        self._seq += 1
        session = _Session(
            uuid=f"whatsapp-presence-{os.getpid()}-{id(self):x}-{self._seq}", mode=mode
        )
        if mode != "connect":
            session.first_qr = loop.create_future()

        def on_device(me: Any) -> None:
            loop.call_soon_threadsafe(self._guarded, "device", self._on_device, session, me)

        def on_login_status(status: str) -> None:
            loop.call_soon_threadsafe(
                self._guarded, "login status", self._on_login_status, session, status
            )

        client = nz.new_client(
            str(self._db_path),
            uuid=session.uuid,
            device_name=self._device_name,
            on_device=on_device,
            on_login_status=on_login_status,
        )
        session.client = client
        for event_name, event_cls in nz.EVENTS.items():
            client.event(event_cls)(self._handler(session, event_name))
        client.event.qr(self._handler(session, "qr"))
        self._sessions = [
            s for s in self._sessions if not (s.stop_sent and s.task and s.task.done())
        ]
        self._sessions.append(session)
        self._session = session
        async with self._ffi_lock:
            session.task = await client.connect(nz.proxy_settings(self._proxy))
        session.task.add_done_callback(
            lambda task: self._guarded("connect end", self._on_connect_done, session, task)
        )
        if mode == "connect":
            self._arm_watchdog(session)
        return session

    def _arm_watchdog(self, session: _Session) -> None:
        if session.watchdog is not None:
            session.watchdog.cancel()
        session.watchdog = self._spawn(self._watch_connect(session))

    async def _watch_connect(self, session: _Session) -> None:
        """Restart a paired session that has not connected ``connect_watchdog`` s later."""
        await self._sleep(self.connect_watchdog)
        if session.retired or session.connected or self._session is not session:
            return
        _LOGGER.warning(
            "WhatsApp did not connect within %d s; starting the session again",
            self.connect_watchdog,
        )
        self._retire_soon(session)
        self._emit(Disconnected("connect_timeout"))
        self._schedule_reconnect()

    def _handler(self, session: _Session, name: str) -> Callable[[Any, Any], Awaitable[None]]:
        """A neonize handler that never raises (neonize would swallow it silently)."""
        method = getattr(self, f"_on_{name}")

        async def handler(_client: Any, event: Any) -> None:
            try:
                await method(session, event)
            except Exception:
                _LOGGER.exception("neonize %s handler failed", name)

        return handler

    def _guarded(self, name: str, func: Callable[..., None], *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            _LOGGER.exception("neonize %s callback failed", name)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _call(
        self,
        session: _Session,
        operation: str,
        func: Callable[..., Awaitable[Any]],
        *args: Any,
        need: Literal["login", "connected", "registered"],
    ) -> Any:
        """One FFI call: serialised, and only while ``session`` can take it safely.

        The check runs under the lock, so no call can slip in after a ``Stop``. The lock is
        released when the Go call returns, even if the caller was cancelled meanwhile.
        """
        await self._ffi_lock.acquire()
        try:
            self._check_callable(session, need)
            task = asyncio.ensure_future(func(*args))
        except BaseException:
            self._ffi_lock.release()
            raise
        task.add_done_callback(self._release_ffi_lock)
        try:
            return await asyncio.shield(task)
        except BridgeError:
            raise
        except Exception as err:
            bridge_err = map_error(operation, err)
            _LOGGER.debug("%s failed: %s", operation, bridge_err.message)
            raise bridge_err from err

    def _check_callable(
        self, session: _Session, need: Literal["login", "connected", "registered"]
    ) -> None:
        """Raise unless an FFI call on ``session`` is safe now (called under the lock)."""
        if session.retired or session.stop_sent or self._session is not session:
            raise BridgeError(ErrorCode.NOT_CONNECTED, "the WhatsApp session ended")
        if need == "registered":
            # PairPhone: Go registered the client once the QR flow produced a code.
            if session.qr_count == 0 and not session.logged_in:
                raise BridgeError(ErrorCode.NOT_CONNECTED, "WhatsApp is not reachable yet")
        elif not session.logged_in:
            raise BridgeError(ErrorCode.NOT_LOGGED_IN, "not logged in to WhatsApp")
        elif need == "connected" and not session.connected:
            raise BridgeError(ErrorCode.NOT_CONNECTED, "not connected to WhatsApp")

    def _release_ffi_lock(self, task: asyncio.Future[Any]) -> None:
        self._ffi_lock.release()
        if not task.cancelled():
            task.exception()  # retrieved: the caller may be gone

    async def _retire(self, session: _Session, deadline: float) -> bool:
        """Stop ``session`` in Go and wait (until ``deadline``) for its thread to return.

        Returns False when the thread is stuck (abandoned QR pairing); ``stop()`` then ends
        the process.
        """
        loop = asyncio.get_running_loop()
        self._detach(session)
        if not session.stop_sent:
            if not session.settled.is_set():
                # Go writes its unlocked maps while Neonize() starts: stop only after that.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(deadline):
                        await session.settled.wait()
            await self._send_stop(session, deadline)
        task = session.task
        if task is None or task.done():
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                await asyncio.wait([task])
        if task.done():
            return True
        _LOGGER.warning("A WhatsApp connect thread did not end after stop (QR pairing)")
        session.retire_expired = True
        return False

    async def _send_stop(self, session: _Session, deadline: float) -> None:
        """Go ``Stop(uuid)`` under the FFI lock (bounded wait for the lock)."""
        if session.stop_sent:
            return
        locked = False
        # Even past the deadline, give a running FFI call a moment to return first.
        deadline = max(deadline, asyncio.get_running_loop().time() + 1.0)
        try:
            async with asyncio.timeout_at(deadline):
                await self._ffi_lock.acquire()
                locked = True
        except TimeoutError:
            _LOGGER.warning("An FFI call is still running; stopping the session anyway")
        session.stop_sent = True
        # We stop it ourselves: neonize's GC finalizer must not call Stop again later, from an
        # arbitrary thread and outside the lock.
        finalizer = getattr(session.client, "_stop_finalizer", None)
        if finalizer is not None:
            finalizer.detach()
        call = asyncio.ensure_future(session.client.stop())
        # Stop gets the rest of the budget, and at least a second whatever the wait took.
        stop_by = max(deadline, asyncio.get_running_loop().time() + 1.0)
        try:
            async with asyncio.timeout_at(stop_by):
                await asyncio.shield(call)
        except TimeoutError:
            # Go's Stop runs Disconnect, which waits for a lock a running dial holds. Nothing
            # may reach Go alongside it, so the lock stays held until it returns; the process
            # ends instead of hanging (a fresh one starts from the same stored session).
            if locked:
                call.add_done_callback(self._release_ffi_lock)
                locked = False
            else:
                call.add_done_callback(lambda task: task.cancelled() or task.exception())
            self._end_process(
                STOP_EXIT_CODE if self._stopped else RESTART_EXIT_CODE,
                "WhatsApp's stop did not return in time; ending the process",
            )
        except Exception:
            _LOGGER.exception("neonize stop failed")
        finally:
            if locked:
                self._ffi_lock.release()

    def _retire_soon(self, session: _Session) -> None:
        """Send Stop now (new sessions wait for it); wait for the thread in the background."""
        self._detach(session)
        if session.retiring or self._stopped:
            return  # already on its way out (stop() handles every session itself)
        session.retiring = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stop_timeout
        stopping = asyncio.ensure_future(self._send_stop_when_settled(session, deadline))
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopping.discard)
        self._spawn(self._retire_after(stopping, session, deadline))

    async def _send_stop_when_settled(self, session: _Session, deadline: float) -> None:
        if not session.settled.is_set():
            # Wait for Go's sign for at most half the budget: the thread still needs time to
            # end after Stop, or a slow machine would read a clean stop as a stuck thread.
            loop = asyncio.get_running_loop()
            settle_by = loop.time() + max(0.0, deadline - loop.time()) / 2
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(settle_by):
                    await session.settled.wait()
        await self._send_stop(session, deadline)

    async def _retire_after(
        self, stopping: asyncio.Future[None], session: _Session, deadline: float
    ) -> None:
        await asyncio.shield(stopping)
        if not await self._retire(session, deadline):
            self._restart_if_leaking()

    def _detach(self, session: _Session) -> None:
        """Make ``session`` stale: its events are ignored, no FFI call reaches it any more."""
        session.retired = True
        session.logged_in = False
        session.connected = False
        if session.presence_retry is not None:
            session.presence_retry.cancel()
        if session.watchdog is not None and session.watchdog is not asyncio.current_task():
            session.watchdog.cancel()
        if session.first_qr is not None and not session.first_qr.done():
            session.first_qr.set_exception(
                BridgeError(ErrorCode.NOT_CONNECTED, "the pairing session ended")
            )
            session.first_qr.exception()  # retrieved here; waiters get it too
        if self._session is session:
            self._session = None

    def _end_pairing(self, session: _Session) -> None:
        if self._pairing is not None and self._session is session:
            self._pairing = None
        self._retire_soon(session)

    def _forget_account(self) -> None:
        self._paired = False
        self._account = None
        self._lid_to_pn.clear()
        self._pn_to_lid.clear()

    def _on_connect_done(self, session: _Session, task: asyncio.Task[Any]) -> None:
        """``Neonize()`` returned: expected after our Stop, otherwise the connection is gone."""
        session.settled.set()
        error = None if task.cancelled() else task.exception()
        if session.retired:
            return
        lost = _LOST_EVENT_RE.search(_text(error)) if error is not None else None
        if lost is not None:
            self._on_lost_event(session, lost.group(1), lost.group(2))
            return
        if error is not None:
            _LOGGER.warning("WhatsApp connect failed: %s", redact(_text(error)))
        else:
            _LOGGER.warning("WhatsApp session ended unexpectedly")
        mode = session.mode
        self._retire_soon(session)
        if mode == "connect":
            self._emit(Disconnected("connect_failed"))
            self._schedule_reconnect()
        elif self._pairing is not None:
            self._pairing = None
            self._emit(PairingFailed("connect_failed"))

    def _on_lost_event(self, session: _Session, message: str, field_name: str) -> None:
        """Go could not encode an event (a value newer than neonize) and ended the session.

        The event is gone, but its type is known. A ``TemporaryBan`` (an unknown ban code) is a
        ban of unknown length; any other (a ``ConnectFailure`` or ``LoggedOut`` reason neonize
        does not know) is a refusal whose cause is unknown. Either way retrying soon is what
        a ban punishes, so the next attempt waits the longest a ban lasts.
        """
        _LOGGER.warning(
            "WhatsApp sent a %s that this neonize cannot read (%s unknown); waiting %d h "
            "before reconnecting so as not to prolong a possible ban. Updating neonize may help",
            message,
            field_name,
            UNKNOWN_BAN_SECONDS // 3600,
        )
        mode = session.mode
        self._retire_soon(session)
        if mode != "connect":
            if self._pairing is not None:
                self._pairing = None
                self._emit(PairingFailed("connect_failed"))
            return
        if message == "TemporaryBan":
            self._start_ban("unknown", UNKNOWN_BAN_SECONDS)
        else:
            self._emit(Disconnected(f"connect_failure:unknown_{message.lower()}"))
        self._schedule_reconnect(float(UNKNOWN_BAN_SECONDS))

    def _start_ban(self, code: str, expires_in: int) -> None:
        self._ban = {"code": code, "expires_in": expires_in, "expires_at": time.time() + expires_in}
        self._emit(TemporaryBan(code, expires_in, self._ban["expires_at"]))

    def _schedule_reconnect(self, delay: float | None = None) -> None:
        if self._stopped or not self._paired:
            return
        if delay is None:
            index = min(self._reconnect_attempt, len(self.reconnect_delays) - 1)
            delay = self.reconnect_delays[index]
            self._reconnect_attempt += 1
        if self._reconnect is not None:
            self._reconnect.cancel()
        self._reconnect = asyncio.ensure_future(self._reconnect_after(delay))

    async def _reconnect_after(self, delay: float) -> None:
        await self._sleep(delay)
        if self._stopped or not self._paired or self._session is not None or self._pairing:
            return
        if self._seq >= self.max_go_sessions:
            self._end_process(
                RESTART_EXIT_CODE,
                f"{self._seq} WhatsApp sessions opened in this process (Go keeps resources of "
                "each); restarting the bridge instead of opening another",
            )
            return
        # Go would silently start a QR session if the stored device vanished meanwhile.
        try:
            stored = await asyncio.to_thread(
                read_stored_account, self._db_path, self.store_busy_timeout
            )
        except StoreUnreadableError as err:
            _LOGGER.warning("The WhatsApp session store is busy (%s); retrying later", err)
            self._schedule_reconnect()
            return
        if stored is None:
            _LOGGER.warning("The stored WhatsApp session is gone; not reconnecting")
            self._forget_account()
            self._emit(LoggedOut("session_missing", on_connect=False))
            return
        try:
            await self._open_session("connect")
        except Exception:
            _LOGGER.exception("Reconnect to WhatsApp failed")
            self._schedule_reconnect()

    # --- Go callbacks (already on the loop) ------------------------------------------------

    def _on_device(self, session: _Session, me: Any) -> None:
        """Code-0 event: whatsmeow has a device ID, so the store-backed calls are safe now."""
        session.settled.set()
        if session.retired:
            return
        session.logged_in = True
        nz = self._nz
        own = nz.jid_str(me.JID)
        if own:
            phone = jid_to_phone(own)
            self._account = {
                "jid": phone_to_jid(phone),
                "phone": phone,
                "push_name": me.PushName or (self._account or {}).get("push_name"),
            }
            lid = nz.jid_str(me.LID)
            if lid:
                self._remember_lid(lid, phone_to_jid(phone))

    def _on_login_status(self, session: _Session, status: str) -> None:
        """End of the QR channel: ``success``, ``timeout`` or ``err-…``."""
        session.settled.set()
        if session.retired or status == "success":
            return
        _LOGGER.info("WhatsApp pairing ended: %s", status)
        if session.mode != "connect" and self._session is session:
            self._pairing = None
            if status.startswith("passkey"):
                # whatsmeow's passkey step (the account is protected by a passkey): neonize
                # cannot answer it, so say so rather than "error".
                _LOGGER.warning(
                    "WhatsApp asks for this account's passkey, which this bridge cannot "
                    "provide; remove the passkey on the phone to link this device"
                )
                reason = "passkey_required"
            elif status == "timeout":
                reason = "timeout"
            else:
                reason = status
            self._emit(PairingFailed(reason))
            self._retire_soon(session)

    async def _on_qr(self, session: _Session, data: bytes) -> None:
        session.settled.set()
        if session.retired:
            return
        if session.mode == "connect":
            # Go found no device in the store and started pairing on its own: never show it.
            _LOGGER.warning("The stored WhatsApp session is gone (a QR code was offered)")
            self._forget_account()
            self._retire_soon(session)
            self._emit(LoggedOut("session_missing", on_connect=True))
            return
        session.qr_count += 1
        if session.first_qr is not None and not session.first_qr.done():
            session.first_qr.set_result(None)
        if session.mode == "qr":
            code = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            ttl = FIRST_QR_TTL if session.qr_count == 1 else NEXT_QR_TTL
            self._emit(QrCode(code, ttl))

    async def _on_pair_status(self, session: _Session, event: Any) -> None:
        if session.retired:
            return
        nz = self._nz
        if nz.enum_name(event, "Status") == "success":
            self._pair_succeeded(session, nz.jid_str(event.ID))
        else:
            _LOGGER.warning("WhatsApp pairing failed: %s", redact(str(event.Error)))
            self._pairing = None
            self._emit(PairingFailed("error"))
            self._retire_soon(session)

    def _pair_succeeded(self, session: _Session, own: str | None) -> None:
        """The pairing session became a logged-in session: announce ``paired`` once."""
        session.logged_in = True
        session.mode = "connect"
        phone = jid_to_phone(own) if own else (self._account or {}).get("phone", "")
        push_name = (self._account or {}).get("push_name")
        self._account = {"jid": phone_to_jid(phone), "phone": phone, "push_name": push_name}
        self._paired = True
        self._pairing = None
        _LOGGER.info("WhatsApp pairing succeeded; waiting for the connection")
        self._emit(Paired(self._account["jid"], phone, push_name))
        if not session.connected:
            self._arm_watchdog(session)  # whatsmeow reconnects after pairing once, silently

    async def _on_connected(self, session: _Session, _event: Any) -> None:
        """Authenticated (also after each silent auto-reconnect): announce, re-send available."""
        session.settled.set()
        if session.retired:
            return
        if session.mode != "connect":
            # Connected before PairStatus (whatsmeow orders them the other way; be safe).
            self._pair_succeeded(session, (self._account or {}).get("jid"))
        session.logged_in = True
        session.connected = True
        session.link_stalled = False
        session.available_sent = False
        self._paired = True
        self._ban = None
        self._reconnect_attempt = 0
        _LOGGER.info("WhatsApp connected")
        account = self._account or {}
        self._emit(Connected(account.get("jid"), account.get("phone")))
        if self._want_available:
            await self._send_presence(session, raise_errors=False)

    async def _on_offline_sync_completed(self, session: _Session, _event: Any) -> None:
        """The push name is usually known now: the moment to retry ``available``."""
        if session.retired or not session.connected:
            return
        if self._want_available and not session.available_sent:
            await self._send_presence(session, raise_errors=False)

    async def _on_disconnected(self, session: _Session, _event: Any) -> None:
        if session.retired:
            return
        session.connected = False
        _LOGGER.info("WhatsApp disconnected; whatsmeow reconnects by itself")
        self._emit(Disconnected("connection_lost"))

    async def _on_keepalive_timeout(self, session: _Session, event: Any) -> None:
        """Pings fail: nothing flows although the socket is open, so the link counts as down.

        whatsmeow only drops the socket (and reconnects, without a Disconnected event) after
        three minutes of this; until then presence is lost and subscriptions go nowhere.
        """
        if session.retired:
            return
        _LOGGER.info("WhatsApp keepalive failing (%s errors)", event.ErrorCount)
        if session.connected:
            session.connected = False
            session.link_stalled = True
            self._emit(Disconnected("keepalive_timeout"))

    async def _on_keepalive_restored(self, session: _Session, _event: Any) -> None:
        """Pings answer again on the same socket: no Connected follows, so announce it here
        (the integration renews every subscription; some may have been lost meanwhile)."""
        if session.retired or not session.link_stalled:
            return
        _LOGGER.info("WhatsApp keepalive restored")
        await self._on_connected(session, _event)

    async def _on_stream_error(self, session: _Session, event: Any) -> None:
        _LOGGER.warning("WhatsApp stream error %s", redact(str(event.Code)))

    async def _on_logged_out(self, session: _Session, event: Any) -> None:
        """Unlinked (from the phone or by the server): whatsmeow already deleted the store."""
        if session.retired:
            return
        reason = self._nz.enum_name(event, "Reason")
        reason = ACCOUNT_BLOCKED_REASONS.get(reason, reason)
        _LOGGER.warning("WhatsApp logged this device out (%s)", reason)
        self._forget_account()
        self._retire_soon(session)
        self._emit(LoggedOut(reason, on_connect=bool(event.OnConnect)))

    async def _on_stream_replaced(self, session: _Session, _event: Any) -> None:
        """Another connection uses these keys; whatsmeow does not reconnect, nor do we."""
        if session.retired:
            return
        _LOGGER.warning("WhatsApp session replaced by another connection")
        self._retire_soon(session)
        self._emit(StreamReplaced())

    async def _on_temporary_ban(self, session: _Session, event: Any) -> None:
        if session.retired:
            return
        expires_in = int(event.Expire)
        code = self._nz.enum_name(event, "Code")
        if expires_in <= 0:
            # No expiry given: assume the longest rather than retrying every few seconds.
            _LOGGER.warning(
                "WhatsApp temporarily banned this session (%s) without saying for how long; "
                "waiting %d h",
                code,
                UNKNOWN_BAN_SECONDS // 3600,
            )
            expires_in = UNKNOWN_BAN_SECONDS
        else:
            _LOGGER.warning("WhatsApp temporarily banned this session (%s, %d s)", code, expires_in)
        self._retire_soon(session)
        self._start_ban(code, expires_in)
        self._schedule_reconnect(max(float(expires_in), self.reconnect_delays[0]))

    async def _on_client_outdated(self, session: _Session, _event: Any) -> None:
        if session.retired:
            return
        _LOGGER.error("WhatsApp refuses this client version: neonize needs an update")
        self._retire_soon(session)
        self._emit(ClientOutdated())

    async def _on_connect_failure(self, session: _Session, event: Any) -> None:
        if session.retired:
            return
        reason = self._nz.enum_name(event, "Reason")
        _LOGGER.warning("WhatsApp refused the connection (%s)", reason)
        self._retire_soon(session)
        self._emit(Disconnected(f"connect_failure:{reason}"))
        self._schedule_reconnect()

    async def _on_presence(self, session: _Session, event: Any) -> None:
        """Presence in arrival order (one at a time), LIDs mapped, hidden last seen = null."""
        at = time.time()
        async with self._presence_lock:
            if session.retired:
                return
            nz = self._nz
            sender = nz.jid_str(event.From)
            if sender is None:
                return
            lid = sender if sender.endswith("@" + LID_SERVER) else None
            jid = await self._phone_jid(session, event.From)
            if jid is None:
                _LOGGER.debug("Presence from an unmapped LID dropped")
                return
            last_seen = int(event.LastSeen)
            self._emit(
                Presence(
                    jid=jid,
                    lid=lid,
                    online=not event.Unavailable,
                    last_seen=last_seen if last_seen > 0 else None,
                    at=at,
                )
            )

    # --- helpers ------------------------------------------------------------------------

    def _remember_lid(self, lid: str, pn: str) -> None:
        self._lid_to_pn[lid] = pn
        self._pn_to_lid[pn] = lid

    async def _phone_jid(self, session: _Session, value: Any) -> str | None:
        """``<digits>@s.whatsapp.net`` for a user or LID JID protobuf; None when unknown."""
        nz = self._nz
        text = nz.jid_str(value)
        if text is None:
            return None
        if text.endswith("@" + USER_SERVER):
            pn = phone_to_jid(jid_to_phone(text))
            return pn if is_user_jid(pn) else None
        if not text.endswith("@" + LID_SERVER):
            return None
        cached = self._lid_to_pn.get(text)
        if cached is not None:
            return cached
        if not session.logged_in or session.retired:
            return None  # GetPNFromLID would abort the process
        try:
            mapped = await self._call(
                session,
                "lid lookup",
                session.client.get_pn_from_lid,
                nz.jid(text.split("@", 1)[0], LID_SERVER),
                need="login",
            )
        except BridgeError as err:
            _LOGGER.debug("LID lookup failed: %s", err.message)
            return None
        mapped_text = nz.jid_str(mapped)
        if not mapped_text or not mapped_text.endswith("@" + USER_SERVER):
            return None
        pn = phone_to_jid(jid_to_phone(mapped_text))
        if not is_user_jid(pn):
            return None
        self._remember_lid(text, pn)
        return pn

    async def _send_presence(self, session: _Session, *, raise_errors: bool) -> None:
        """Send the wanted presence; on failure (typically "no push name yet") retry later."""
        try:
            if await self._try_presence(session):
                return
        except BridgeError as err:
            if raise_errors:
                raise
            _LOGGER.warning("Could not send presence: %s", err.message)
        if session.presence_retry is None or session.presence_retry.done():
            session.presence_retry = self._spawn(self._presence_retry(session))

    async def _try_presence(self, session: _Session) -> bool:
        """One attempt; False when WhatsApp wants the push name first (bytes error message)."""
        want = self._want_available
        if want is None:
            return True
        nz = self._nz
        value = nz.Presence.AVAILABLE if want else nz.Presence.UNAVAILABLE
        try:
            await self._call(
                session, "send_presence", session.client.send_presence, value, need="connected"
            )
        except BridgeError as err:
            if _PUSH_NAME_ERROR in err.message.lower().replace(" ", ""):
                _LOGGER.info("WhatsApp needs the push name before presence; will retry")
                return False
            raise
        session.available_sent = True
        return True

    async def _presence_retry(self, session: _Session) -> None:
        """Backoff retries of the wanted presence (``OfflineSyncCompleted`` may come first)."""
        for delay in self.presence_retry_delays:
            await self._sleep(delay)
            if session.retired or self._want_available is None or session.available_sent:
                return
            if not session.connected:
                continue
            with contextlib.suppress(BridgeError):
                if await self._try_presence(session):
                    return
        _LOGGER.warning("WhatsApp kept refusing the presence update; waiting for a reconnect")
