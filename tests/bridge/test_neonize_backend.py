"""NeonizeBackend with the real neonize 0.5.2 loaded, no network.

Events are injected into the real ``NewAClient`` the backend built, the way Go delivers them
(``client.event.execute`` with an event code and a serialised protobuf). Go's side of a live
session (``Neonize``/``Stop``) is a stand-in where a WhatsApp server would be needed;
connect failures are real (dead loopback SOCKS proxy). Time is a ``ManualSleep``: backoffs,
retries and the watchdog wait until a test fires them. See ``neonize_fixtures``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import logging
import os
from pathlib import Path
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from custom_components.whatsapp_presence.bridge.neonize_backend import (
    CRASH_PRONE_FFI,
    SESSION_FILENAME,
    NeonizeBackend,
    StoreUnreadableError,
    map_error,
    read_stored_account,
)
from custom_components.whatsapp_presence.bridge.protocol import BridgeError, BridgeEvent, ErrorCode

from .neonize_fixtures import (
    FfiSpy,
    ManualSleep,
    answer,
    device_event,
    inject,
    insert_fake_device,
    jid,
    run_in_go_thread,
    send_login_status,
    send_qr,
    write_minimal_store,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEAD_PROXY = "socks5://127.0.0.1:9"
OWN_PHONE = "15550100001"
OWN_JID = f"{OWN_PHONE}@s.whatsapp.net"
GO_ZERO_TIME = -62135596800

# neonize event codes (neonize/events.py)
DEVICE, CONNECTED, PAIR_STATUS, LOGGED_OUT, TEMP_BAN, DISCONNECTED = 0, 3, 2, 6, 8, 12
KEEPALIVE_TIMEOUT, KEEPALIVE_RESTORED, STREAM_REPLACED, CONNECT_FAILURE = 4, 5, 7, 9
CLIENT_OUTDATED, STREAM_ERROR = 10, 11
PRESENCE, OFFLINE_SYNC_COMPLETED = 20, 27


class ProcessExitError(Exception):
    """Raised by the injected exit_process (the real one never returns either)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def fake_exit(code: int) -> Any:
    raise ProcessExitError(code)


class Harness:
    """A backend on a temporary data folder, the events it emitted, and the FFI spy."""

    def __init__(self, data_dir: Path, spy: FfiSpy, **kwargs: Any) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.exits: list[int] = []
        self.spy = spy
        self.data_dir = data_dir
        self.sleep = ManualSleep()
        kwargs.setdefault("stop_timeout", 2.0)
        self.backend = NeonizeBackend(
            self._emit, data_dir=data_dir, exit_process=self._exit, sleep=self.sleep, **kwargs
        )
        # No backoff timer may fire inside a test: they are far longer than any test.
        self.backend.reconnect_delays = (3600.0,)
        self.backend.presence_retry_delays = (3600.0,)
        self.backend.first_qr_timeout = 10.0

    def _emit(self, event: BridgeEvent) -> None:
        self.events.append((str(event.name), dict(event.to_payload())))

    def _exit(self, code: int) -> Any:
        """Record the exit; raise (as the real one never returns) only inside ``stop()``:
        from a background task the exception would go unread, so tests read ``exits``."""
        self.exits.append(code)
        if self.backend._stopped:
            fake_exit(code)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [data for event, data in self.events if event == name]

    @property
    def client(self) -> Any:
        session = self.backend._session
        assert session is not None
        return session.client

    async def go_session(self) -> Any:
        """The stand-in Go session of the current client (Neonize runs in a thread)."""
        for _ in range(1000):
            # Cleared before the look, so the wait below lasts until the next session starts
            # (an event left set by an earlier session made this loop end at once: flaky).
            self.spy.session_started.clear()
            current = self.backend._session
            for session in self.spy.sessions:
                if current is not None and session.uuid == current.client.uuid:
                    return session
            await asyncio.to_thread(self.spy.session_started.wait, 0.01)
        raise AssertionError("Neonize() was not called")

    async def login(self, push_name: str = "Tester", lid_user: str | None = "88001") -> None:
        """What Go sends for a stored session: Device (code 0), then Connected."""
        await inject(self.client, device_event(OWN_PHONE, lid_user, push_name), DEVICE)
        await inject(self.client, connected_event(), CONNECTED)


def connected_event() -> Any:
    from neonize.aioze.events import ConnectedEv

    return ConnectedEv(status=True)


def presence_event(user: str, server: str, *, unavailable: bool, last_seen: int) -> Any:
    from neonize.aioze.events import PresenceEv

    return PresenceEv(From=jid(user, server), Unavailable=unavailable, LastSeen=last_seen)


def pn_answer(user: str) -> bytes:
    from neonize.proto.Neonize_pb2 import GetJIDFromStoreReturnFunction

    return answer(GetJIDFromStoreReturnFunction(Jid=jid(user)))


def empty_jid_answer() -> bytes:
    from neonize.proto.Neonize_pb2 import GetJIDFromStoreReturnFunction

    return answer(GetJIDFromStoreReturnFunction())


@pytest.fixture
def spy(neonize_loaded: None, monkeypatch: pytest.MonkeyPatch) -> FfiSpy:
    import neonize.aioze.client as nclient

    return _install_spy(nclient, monkeypatch, fake_session=True)


@pytest.fixture
def real_go_spy(neonize_loaded: None, monkeypatch: pytest.MonkeyPatch) -> FfiSpy:
    """Records calls but lets Neonize/Stop reach the real Go library."""
    import neonize.aioze.client as nclient

    return _install_spy(nclient, monkeypatch, fake_session=False)


def _install_spy(nclient: Any, monkeypatch: pytest.MonkeyPatch, *, fake_session: bool) -> FfiSpy:
    spy = FfiSpy(nclient.gocode, fake_session=fake_session)
    monkeypatch.setattr(nclient, "gocode", spy)
    return spy


@pytest.fixture
async def make(tmp_path: Path, spy: FfiSpy) -> AsyncIterator[Any]:
    harnesses: list[Harness] = []

    def factory(**kwargs: Any) -> Harness:
        harness = Harness(tmp_path / "data", spy, **kwargs)
        harnesses.append(harness)
        return harness

    yield factory
    for harness in harnesses:
        with contextlib.suppress(ProcessExitError):
            await harness.backend.stop()
    spy.release_all()


async def paired(make: Any, **kwargs: Any) -> Harness:
    harness: Harness = make(**kwargs)
    harness.data_dir.mkdir(mode=0o700)
    write_minimal_store(harness.data_dir / SESSION_FILENAME, f"{OWN_PHONE}:7@s.whatsapp.net")
    await harness.backend.start()
    return harness


# --- start, files, logging ------------------------------------------------------------------


async def test_start_unpaired_creates_private_files_and_does_not_connect(make: Any) -> None:
    harness = make()
    await harness.backend.start()

    db = harness.data_dir / SESSION_FILENAME
    assert stat.S_IMODE(harness.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert harness.spy.names() == []  # no Neonize(): an unpaired store must not start a QR
    assert await harness.backend.status() == {
        "paired": False,
        "connected": False,
        "pairing": None,
        "account": None,
        "available": False,
        "ban": None,
    }


async def test_calls_before_login_fail_without_reaching_go(make: Any) -> None:
    harness = make()
    backend = harness.backend
    await backend.start()

    for call in (
        backend.contacts(),
        backend.groups(),
        backend.group_participants("123-456@g.us"),
        backend.resolve(["+1 555 0100 002"]),
        backend.subscribe_presence("15550100002@s.whatsapp.net"),
        backend.set_available(True),
        backend.logout(),
    ):
        with pytest.raises(BridgeError) as err:
            await call
        assert err.value.code == ErrorCode.NOT_LOGGED_IN
    assert harness.spy.names() == []


async def test_paired_session_quiets_go_logs_and_connects(make: Any) -> None:
    harness = await paired(make)
    go = await harness.go_session()

    assert logging.getLogger("neonize.utils.log").level == logging.WARNING
    assert go.log_level == b"WARN"  # what Go filters its own logs with
    status = await harness.backend.status()
    assert status["paired"] is True
    assert status["connected"] is False
    assert status["account"] == {"jid": OWN_JID, "phone": OWN_PHONE, "push_name": "Tester"}
    await harness.login()
    assert (await harness.backend.status())["connected"] is True
    assert harness.client.me.JID.User == OWN_PHONE  # neonize's own handling of code 0


async def test_connecting_but_not_logged_in_never_calls_crash_prone_functions(make: Any) -> None:
    # stop_timeout: this session never settles (no Device event), so stop() waits that long
    # before it sends Stop anyway.
    harness = await paired(make, stop_timeout=0.2)
    backend = harness.backend
    await harness.go_session()
    # Neonize() runs but Go has sent no Device event: no device ID yet, so even presence
    # from a LID must not trigger GetPNFromLID.
    await inject(
        harness.client, presence_event("88002", "lid", unavailable=False, last_seen=0), PRESENCE
    )
    with pytest.raises(BridgeError) as err:
        await backend.contacts()
    assert err.value.code == ErrorCode.NOT_CONNECTED
    assert harness.spy.crash_prone_calls() == []
    assert harness.named("presence") == []


# --- connection lifecycle -------------------------------------------------------------------


async def test_every_connect_reports_connected_and_resends_available(make: Any) -> None:
    harness = await paired(make)
    spy = harness.spy
    await harness.go_session()
    spy.fakes["SendPresence"] = lambda uuid, value: b""
    await harness.backend.set_available(True)
    assert spy.count("SendPresence") == 0  # not connected yet: remembered, sent on connect

    await harness.login()
    assert harness.named("connected") == [{"jid": OWN_JID, "phone": OWN_PHONE}]
    assert spy.args_of("SendPresence")[-1][1] == b"available"

    await inject(harness.client, disconnected_event(), DISCONNECTED)
    assert harness.named("disconnected") == [{"reason": "connection_lost"}]
    assert (await harness.backend.status())["connected"] is False

    await inject(harness.client, connected_event(), CONNECTED)  # whatsmeow's silent reconnect
    assert len(harness.named("connected")) == 2
    assert spy.count("SendPresence") == 2
    assert (await harness.backend.status())["connected"] is True


def disconnected_event() -> Any:
    from neonize.aioze.events import DisconnectedEv

    return DisconnectedEv(status=True)


async def test_available_waits_for_push_name_then_retries_after_offline_sync(make: Any) -> None:
    harness = await paired(make)
    spy = harness.spy
    await harness.go_session()
    answers = [b"can't send presence without PushName set", b""]
    spy.fakes["SendPresence"] = lambda uuid, value: answers.pop(0)
    await harness.login()

    await harness.backend.set_available(True)  # refused by WhatsApp: no error, a retry
    assert spy.count("SendPresence") == 1
    from neonize.aioze.events import OfflineSyncCompletedEv

    await inject(harness.client, OfflineSyncCompletedEv(Count=3), OFFLINE_SYNC_COMPLETED)
    assert spy.count("SendPresence") == 2
    assert answers == []
    session = harness.backend._session
    assert session is not None
    assert session.available_sent is True


async def test_logged_out_event_forgets_the_session_and_stops_go(make: Any) -> None:
    from neonize.aioze.events import LoggedOutEv

    harness = await paired(make)
    go = await harness.go_session()
    await harness.login()

    await inject(harness.client, LoggedOutEv(OnConnect=True, Reason=2), LOGGED_OUT)
    assert harness.named("logged_out") == [{"reason": "logged_out", "on_connect": True}]
    await asyncio.to_thread(go.stopped.wait, 5)
    assert go.stopped.is_set()
    status = await harness.backend.status()
    assert status["paired"] is False
    assert status["account"] is None
    with pytest.raises(BridgeError) as err:
        await harness.backend.contacts()
    assert err.value.code == ErrorCode.NOT_LOGGED_IN
    assert harness.spy.crash_prone_calls() == []


async def test_temporary_ban_is_reported_and_calls_refused(make: Any) -> None:
    from neonize.aioze.events import TemporaryBanEv

    harness = await paired(make)
    await harness.go_session()
    await harness.login()
    before = time.time()

    await inject(harness.client, TemporaryBanEv(Code=2, Expire=3600), TEMP_BAN)
    [ban] = harness.named("temporary_ban")
    assert ban["expires_in"] == 3600
    assert before + 3600 <= ban["expires_at"] <= time.time() + 3600
    assert isinstance(ban["code"], str)
    with pytest.raises(BridgeError) as err:
        await harness.backend.subscribe_presence("15550100002@s.whatsapp.net")
    assert err.value.code == ErrorCode.TEMPORARILY_BANNED
    assert (await harness.backend.status())["ban"]["expires_in"] == 3600


async def real_go_store(tmp_path: Path) -> Path:
    """A data folder whose store real Go created, with a device row: a "paired" store."""
    import neonize.aioze.client as nclient
    import neonize.aioze.events as nevents

    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    db = data_dir / SESSION_FILENAME
    # Let real Go create its schema (an unpaired connect through the dead proxy), then add a
    # device row so the next connect is a "stored session" one.
    nevents.event_global_loop = asyncio.get_running_loop()
    probe = nclient.NewAClient(str(db), uuid=f"schema-{os.getpid()}-{id(tmp_path):x}")
    task = await probe.connect(nclient.ProxySettings(proxy_address=DEAD_PROXY))
    with pytest.raises(nclient.NeonizeError):
        await asyncio.wait_for(task, 30)
    await probe.stop()
    probe._stop_finalizer.detach()
    insert_fake_device(db, f"{OWN_PHONE}:7@s.whatsapp.net", "88001:7@lid", "Tester")
    return data_dir


def open_handles(path: Path) -> int:
    """File descriptors of this process open on ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
    return count


async def test_failed_first_connect_is_reported_with_real_go(
    tmp_path: Path, real_go_spy: FfiSpy
) -> None:
    """Real Neonize(), stored session, dead proxy: connect fails, nothing crash-prone runs."""
    data_dir = await real_go_store(tmp_path)
    real_go_spy.calls.clear()

    harness = Harness(data_dir, real_go_spy, proxy=DEAD_PROXY)
    try:
        await harness.backend.start()
        session = harness.backend._session
        assert session is not None
        assert session.task is not None
        await asyncio.wait({session.task}, timeout=30)  # the real connect attempt ends
        await asyncio.sleep(0)
        assert harness.named("disconnected") == [{"reason": "connect_failed"}]
        status = await harness.backend.status()
        assert status["paired"] is True
        assert status["connected"] is False
        with pytest.raises(BridgeError) as err:
            await harness.backend.contacts()
        assert err.value.code == ErrorCode.NOT_CONNECTED
        assert "Neonize" in real_go_spy.names()
        assert real_go_spy.crash_prone_calls() == []
        for path in data_dir.iterdir():  # Go created it 0644; the backend made it private
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    finally:
        await harness.backend.stop()
    assert real_go_spy.crash_prone_calls() == []


async def test_failed_connect_is_retried_with_a_new_client(make: Any) -> None:
    harness: Harness = make()
    harness.spy.connect_errors.append(b"failed to dial whatsapp web websocket: refused")
    harness.data_dir.mkdir(mode=0o700)
    write_minimal_store(harness.data_dir / SESSION_FILENAME, f"{OWN_PHONE}:7@s.whatsapp.net")
    harness.backend.reconnect_delays = (0.0,)
    await harness.backend.start()
    first = harness.backend._session
    assert first is not None
    assert first.task is not None
    await asyncio.wait({first.task}, timeout=10)
    await asyncio.sleep(0)
    assert harness.named("disconnected") == [{"reason": "connect_failed"}]
    assert harness.sleep.pending() == [0.0]  # the backoff (the watchdog ended with the session)
    await harness.sleep.fire(0.0)

    go = await harness.go_session()  # the reconnect's Neonize()
    assert go.uuid != first.client.uuid  # Go keys its maps by uuid: never reuse one
    await harness.login()
    assert harness.named("connected") == [{"jid": OWN_JID, "phone": OWN_PHONE}]
    assert harness.spy.count("Neonize") == 2


async def test_a_qr_offered_to_a_stored_session_means_it_is_gone(make: Any) -> None:
    harness = await paired(make)
    go = await harness.go_session()

    await run_in_go_thread(send_qr, go, "2@should,never,show")
    assert harness.named("qr") == []
    assert harness.named("logged_out") == [{"reason": "session_missing", "on_connect": True}]
    assert (await harness.backend.status())["paired"] is False
    await asyncio.to_thread(go.stopped.wait, 5)
    assert go.stopped.is_set()


async def test_events_of_a_stopped_client_are_ignored(make: Any) -> None:
    from neonize.aioze.events import LoggedOutEv

    harness = await paired(make)
    harness.spy.fakes["GetPNFromLID"] = lambda uuid, buf, size: pn_answer("15550100003")
    await harness.go_session()
    await harness.login()
    client = harness.client
    await inject(client, LoggedOutEv(OnConnect=False, Reason=4), LOGGED_OUT)
    harness.events.clear()

    await inject(client, presence_event("88003", "lid", unavailable=False, last_seen=0), PRESENCE)
    await inject(client, connected_event(), CONNECTED)
    assert harness.events == []
    assert harness.spy.count("GetPNFromLID") == 0


async def test_ffi_calls_are_serialised_and_stop_waits_for_them(make: Any) -> None:
    """Go's maps have no lock: one FFI call at a time, and Stop never overlaps a call."""
    import threading

    from neonize.proto.Neonize_pb2 import (
        ContactsGetAllContactsReturnFunction,
        GetJoinedGroupsReturnFunction,
    )

    harness = await paired(make)
    spy = harness.spy
    gate, entered = threading.Event(), threading.Event()
    lock = threading.Lock()
    state = {"inflight": 0, "max": 0}
    order: list[str] = []

    def slow(result: bytes, label: str) -> Any:
        def call(*_args: Any) -> bytes:
            with lock:
                state["inflight"] += 1
                state["max"] = max(state["max"], state["inflight"])
            entered.set()
            gate.wait(10)
            with lock:
                state["inflight"] -= 1
                order.append(label)
            return result

        return call

    spy.fakes["GetAllContacts"] = slow(answer(ContactsGetAllContactsReturnFunction()), "contacts")
    spy.fakes["GetJoinedGroups"] = slow(answer(GetJoinedGroupsReturnFunction()), "groups")
    real_stop = spy.fakes["Stop"]

    def stop(uuid: bytes) -> bytes:
        order.append("stop")
        return bytes(real_stop(uuid))

    spy.fakes["Stop"] = stop
    await harness.go_session()
    await harness.login()

    contacts = asyncio.ensure_future(harness.backend.contacts())
    await asyncio.to_thread(entered.wait, 10)
    groups = asyncio.ensure_future(harness.backend.groups())
    stopping = asyncio.ensure_future(harness.backend.stop())
    for _ in range(20):
        await asyncio.sleep(0)
    assert order == []  # groups() and Stop wait while GetAllContacts runs in Go
    gate.set()
    assert await asyncio.wait_for(contacts, 10) == []
    await asyncio.wait_for(stopping, 10)
    with pytest.raises(BridgeError) as err:
        await groups  # queued behind the lock, then refused: the session was stopped
    assert err.value.code == ErrorCode.NOT_CONNECTED
    assert order == ["contacts", "stop"]
    assert state["max"] == 1
    assert spy.count("GetJoinedGroups") == 0


async def test_an_abandoned_pairing_restarts_the_idle_bridge(make: Any) -> None:
    """A cancelled or expired QR pairing blocks its Go thread for good: one restart, at once."""
    harness = make(stop_timeout=0.2)
    harness.spy.stuck_sessions = True
    await harness.backend.start()
    await harness.backend.pair_qr()
    go = await harness.go_session()
    await run_in_go_thread(send_qr, go, "2@code")
    await run_in_go_thread(send_login_status, go, "timeout")  # the dialog expired
    assert harness.named("pairing_failed") == [{"reason": "timeout"}]
    assert harness.exits == []  # told first; the thread is not known to be stuck yet

    await asyncio.wait(list(harness.backend._background), timeout=10)
    assert harness.backend.stuck_threads() == 1
    assert harness.exits == [75]  # a fresh process for the next attempt


async def test_a_new_pairing_defers_the_restart_and_success_cancels_it(make: Any) -> None:
    """Retrying at once (before the old thread is found stuck) is never interrupted."""
    from neonize.aioze.events import PairStatusEv

    harness = make(stop_timeout=0.2)
    spy = harness.spy
    spy.stuck_sessions = True
    await harness.backend.start()
    await harness.backend.pair_qr()
    first = await harness.go_session()
    await run_in_go_thread(send_qr, first, "2@old")
    await harness.backend.cancel_pairing()
    spy.stuck_sessions = False
    await harness.backend.pair_qr()  # the user retries at once
    second = await harness.go_session()
    assert second.uuid != first.uuid

    await asyncio.wait(list(harness.backend._background), timeout=10)
    assert harness.backend.stuck_threads() == 1
    assert harness.exits == []  # a pairing runs: no restart under it
    await run_in_go_thread(send_qr, second, "2@new")
    await run_in_go_thread(send_login_status, second, "success")
    await inject(harness.client, device_event(OWN_PHONE, "88001"), DEVICE)
    await inject(harness.client, PairStatusEv(ID=jid(OWN_PHONE), Status=2), PAIR_STATUS)
    await inject(harness.client, connected_event(), CONNECTED)
    assert [name for name, _ in harness.events if name != "qr"] == ["paired", "connected"]
    assert harness.exits == []  # paired: one blocked thread is kept rather than the link lost


async def test_a_passkey_request_is_named(make: Any) -> None:
    harness = make()
    await harness.backend.start()
    await harness.backend.pair_qr()
    go = await harness.go_session()
    await run_in_go_thread(send_qr, go, "2@code")

    await run_in_go_thread(send_login_status, go, "passkey-request")
    assert harness.named("pairing_failed") == [{"reason": "passkey_required"}]
    assert (await harness.backend.status())["pairing"] is None


async def test_logout_unlinks_and_reports_logged_out(make: Any) -> None:
    harness = await paired(make)
    harness.spy.fakes["Logout"] = lambda uuid: b""
    go = await harness.go_session()
    with pytest.raises(BridgeError) as err:
        await harness.backend.logout()  # not connected yet
    assert err.value.code == ErrorCode.NOT_CONNECTED
    await harness.login()

    await harness.backend.logout()
    assert harness.spy.count("Logout") == 1
    assert harness.named("logged_out") == [{"reason": "logout", "on_connect": False}]
    assert (await harness.backend.status())["paired"] is False
    await asyncio.to_thread(go.stopped.wait, 5)
    assert go.stopped.is_set()


# --- what a live connection does -----------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "expected"),
    [(2, "logged_out"), (4, "account_locked"), (5, "account_banned")],
)
async def test_locked_and_banned_accounts_are_told_apart(
    make: Any, reason: int, expected: str
) -> None:
    """whatsmeow's 403 and 406 (neonize: MAIN_DEVICE_GONE, UNKNOWN_LOGOUT) are a locked and a
    banned account, not an unlink: the integration's repair tells the user what to do."""
    from neonize.aioze.events import LoggedOutEv

    harness = await paired(make)
    await harness.go_session()
    await harness.login()

    await inject(harness.client, LoggedOutEv(OnConnect=True, Reason=reason), LOGGED_OUT)
    assert harness.named("logged_out") == [{"reason": expected, "on_connect": True}]
    assert (await harness.backend.status())["paired"] is False


async def test_a_failing_keepalive_is_a_link_problem_until_restored(make: Any) -> None:
    from neonize.aioze.events import KeepAliveRestoredEv, KeepAliveTimeoutEv

    harness = await paired(make)
    spy = harness.spy
    spy.fakes["SendPresence"] = lambda uuid, value: b""
    spy.fakes["SubscribePresence"] = lambda uuid, buf, size: b""
    spy.fakes["GetLIDFromPN"] = lambda uuid, buf, size: empty_jid_answer()
    await harness.go_session()
    await harness.login()
    await harness.backend.set_available(True)
    client = harness.client

    await inject(client, KeepAliveRestoredEv(), KEEPALIVE_RESTORED)  # nothing was wrong
    assert len(harness.named("connected")) == 1
    for count in (1, 2):
        event = KeepAliveTimeoutEv(ErrorCount=count, LastSuccess=int(time.time()) - 30)
        await inject(client, event, KEEPALIVE_TIMEOUT)
    assert harness.named("disconnected") == [{"reason": "keepalive_timeout"}]  # once
    assert (await harness.backend.status())["connected"] is False
    with pytest.raises(BridgeError) as err:
        await harness.backend.subscribe_presence("15550100002@s.whatsapp.net")
    assert err.value.code == ErrorCode.NOT_CONNECTED
    assert spy.count("SubscribePresence") == 0

    # The same socket works again: whatsmeow sends no Connected, the backend announces it.
    await inject(client, KeepAliveRestoredEv(), KEEPALIVE_RESTORED)
    assert len(harness.named("connected")) == 2
    assert spy.count("SendPresence") == 2  # available re-sent
    assert (await harness.backend.status())["connected"] is True
    await harness.backend.subscribe_presence("15550100002@s.whatsapp.net")
    assert spy.count("SubscribePresence") == 1


async def test_a_session_that_never_connects_is_started_again(make: Any) -> None:
    harness = await paired(make)
    first = await harness.go_session()
    await inject(harness.client, device_event(OWN_PHONE, "88001"), DEVICE)  # no Connected
    assert harness.sleep.pending() == [60.0]

    await harness.sleep.fire(60.0)
    assert harness.named("disconnected") == [{"reason": "connect_timeout"}]
    await asyncio.to_thread(first.stopped.wait, 5)
    assert first.stopped.is_set()
    assert harness.sleep.pending() == [3600.0]  # the reconnect backoff
    await harness.sleep.fire(3600.0)
    second = await harness.go_session()
    assert second.uuid != first.uuid
    await harness.login()
    await harness.sleep.fire(60.0)  # this one connected in time: the watchdog lets it be
    assert len(harness.named("disconnected")) == 1
    assert (await harness.backend.status())["connected"] is True


async def test_a_pairing_whose_reconnect_fails_is_started_again(make: Any) -> None:
    """whatsmeow reconnects once after pairing and only logs a failure: the watchdog acts."""
    from neonize.aioze.events import PairStatusEv

    harness = make()
    await harness.backend.start()
    await harness.backend.pair_qr()
    go = await harness.go_session()
    await run_in_go_thread(send_qr, go, "2@code")
    await run_in_go_thread(send_login_status, go, "success")
    await inject(harness.client, device_event(OWN_PHONE, "88001"), DEVICE)
    await inject(harness.client, PairStatusEv(ID=jid(OWN_PHONE), Status=2), PAIR_STATUS)
    assert len(harness.named("paired")) == 1
    write_minimal_store(harness.data_dir / SESSION_FILENAME, f"{OWN_PHONE}:7@s.whatsapp.net")

    await harness.sleep.fire(60.0)
    assert harness.named("disconnected") == [{"reason": "connect_timeout"}]
    await asyncio.to_thread(go.stopped.wait, 5)
    await harness.sleep.fire(3600.0)
    await harness.go_session()
    await harness.login()
    assert harness.named("connected") == [{"jid": OWN_JID, "phone": OWN_PHONE}]
    assert (await harness.backend.status())["paired"] is True


async def test_a_hanging_go_stop_ends_the_process(make: Any) -> None:
    """Go's Stop waits for a lock a dial holds: stop() is bounded, then ends the process."""
    import threading

    harness = await paired(make, stop_timeout=0.5)
    await harness.go_session()
    await harness.login()
    hang = threading.Event()
    harness.spy.fakes["Stop"] = lambda uuid: hang.wait(60) and b""
    try:
        with pytest.raises(ProcessExitError) as exited:
            await harness.backend.stop()
        assert exited.value.code == 0
    finally:
        hang.set()


async def test_a_hanging_go_stop_of_a_retired_session_restarts_the_process(
    make: Any,
) -> None:
    import threading

    from neonize.aioze.events import StreamReplacedEv

    harness = await paired(make, stop_timeout=0.5)
    await harness.go_session()
    await harness.login()
    hang = threading.Event()
    harness.spy.fakes["Stop"] = lambda uuid: hang.wait(60) and b""
    try:
        await inject(harness.client, StreamReplacedEv(), STREAM_REPLACED)
        await asyncio.wait(list(harness.backend._stopping), timeout=10)
        assert harness.exits == [75]
    finally:
        hang.set()


@pytest.mark.parametrize(
    ("field", "event", "data"),
    [
        (
            "ConnectFailure.Reason",
            "disconnected",
            {"reason": "connect_failure:unknown_connectfailure"},
        ),
        ("LoggedOut.Reason", "disconnected", {"reason": "connect_failure:unknown_loggedout"}),
        (
            "TemporaryBan.Code",
            "temporary_ban",
            {"code": "unknown", "expires_in": 86400},
        ),
    ],
)
async def test_an_event_go_cannot_encode_backs_off_a_day(
    make: Any, field: str, event: str, data: dict[str, Any]
) -> None:
    """Stand-in: with a value its encoder does not know, Go's event pump ends ``Neonize()``
    with protobuf's error (this exact text, either of its prefixes); making real Go do it
    needs a WhatsApp server sending such a value."""
    harness: Harness = make()
    harness.spy.connect_errors.append(
        f"proto:\u00a0required field neonize.{field} not set".encode()
    )
    harness.data_dir.mkdir(mode=0o700)
    write_minimal_store(harness.data_dir / SESSION_FILENAME, f"{OWN_PHONE}:7@s.whatsapp.net")
    await harness.backend.start()
    first = harness.backend._session
    assert first is not None
    assert first.task is not None
    await asyncio.wait({first.task}, timeout=10)
    await asyncio.sleep(0)

    [emitted] = harness.named(event)
    assert {key: emitted[key] for key in data} == data
    assert harness.sleep.pending() == [86400.0]  # not the usual 5 s backoff
    assert harness.named("connected") == []
    if event == "temporary_ban":
        with pytest.raises(BridgeError) as err:
            await harness.backend.contacts()
        assert err.value.code == ErrorCode.TEMPORARILY_BANNED


async def test_a_ban_without_expiry_waits_a_day(make: Any) -> None:
    from neonize.aioze.events import TemporaryBanEv

    harness = await paired(make)
    await harness.go_session()
    await harness.login()

    await inject(harness.client, TemporaryBanEv(Code=1, Expire=0), TEMP_BAN)
    [ban] = harness.named("temporary_ban")
    assert ban["code"] == "send_to_too_many_people"
    assert ban["expires_in"] == 86400
    assert harness.sleep.pending() == [86400.0]


@pytest.mark.parametrize(
    ("reason", "name"), [(1, "generic"), (8, "internal_server_error"), (10, "service_unavailable")]
)
async def test_connect_failure_reports_its_reason_and_backs_off(
    make: Any, reason: int, name: str
) -> None:
    from neonize.aioze.events import ConnectFailureEv

    harness = await paired(make)
    go = await harness.go_session()
    await harness.login()

    await inject(harness.client, ConnectFailureEv(Reason=reason, Message="x"), CONNECT_FAILURE)
    assert harness.named("disconnected") == [{"reason": f"connect_failure:{name}"}]
    assert (await harness.backend.status())["connected"] is False
    await asyncio.to_thread(go.stopped.wait, 5)
    assert go.stopped.is_set()
    assert harness.sleep.pending() == [3600.0]
    await harness.sleep.fire(3600.0)
    assert (await harness.go_session()).uuid != go.uuid  # a fresh client
    assert harness.spy.count("Neonize") == 2


@pytest.mark.parametrize(
    ("code", "event"), [(STREAM_REPLACED, "stream_replaced"), (CLIENT_OUTDATED, "client_outdated")]
)
async def test_final_refusals_stop_without_reconnecting(make: Any, code: int, event: str) -> None:
    """Another connection took the keys over, or WhatsApp refuses the library: no retry."""
    from neonize.aioze.events import ClientOutdatedEv, StreamReplacedEv

    harness = await paired(make)
    go = await harness.go_session()
    await harness.login()
    message = StreamReplacedEv() if code == STREAM_REPLACED else ClientOutdatedEv()

    await inject(harness.client, message, code)
    assert harness.named(event) == [{}]
    await asyncio.to_thread(go.stopped.wait, 5)
    assert go.stopped.is_set()
    status = await harness.backend.status()
    assert status["connected"] is False
    assert status["paired"] is True  # the session is kept: a reload may take it back
    assert harness.sleep.pending() == []  # no reconnect scheduled
    assert harness.spy.count("Neonize") == 1


async def test_a_stream_error_is_logged_and_the_session_kept(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from neonize.aioze.events import StreamErrorEv

    harness = await paired(make)
    go = await harness.go_session()
    await harness.login()

    await inject(harness.client, StreamErrorEv(Code="4915112345678 conflict"), STREAM_ERROR)
    assert "WhatsApp stream error" in caplog.text
    assert "4915112345678" not in caplog.text  # redacted
    assert [name for name, _ in harness.events] == ["connected"]
    assert not go.stopped.is_set()
    assert (await harness.backend.status())["connected"] is True


async def reading_thread_waits(harness: Harness) -> None:
    """Let the store-reading thread finish its try, until the backend waits to retry.

    The read runs on a worker thread; on a loaded machine one hop of the loop is not enough.
    Bounded: a backend that never waits fails the caller's assertion on ``pending()``.
    """
    for _ in range(2_000):
        if harness.sleep.pending():
            return
        await asyncio.to_thread(time.sleep, 0)


async def test_a_busy_store_is_retried_not_read_as_unpaired(make: Any) -> None:
    """A locked database must never mean "never paired" (that would forget the account)."""
    harness: Harness = make()
    harness.backend.store_busy_timeout = 0.0
    harness.data_dir.mkdir(mode=0o700)
    db = harness.data_dir / SESSION_FILENAME
    write_minimal_store(db, f"{OWN_PHONE}:7@s.whatsapp.net")
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")  # what a Go write in progress looks like to a reader
    try:
        with pytest.raises(StoreUnreadableError):
            read_stored_account(db, busy_timeout=0.0)
        starting = asyncio.ensure_future(harness.backend.start())
        await reading_thread_waits(harness)
        assert harness.sleep.pending() == [0.5]
        await harness.sleep.fire(0.5)
        await reading_thread_waits(harness)
        assert harness.sleep.pending() == [1.0]  # still locked: retried again
    finally:
        holder.rollback()
        holder.close()
    await harness.sleep.fire(1.0)
    await asyncio.wait_for(starting, 10)
    assert harness.named("logged_out") == []
    assert (await harness.backend.status())["paired"] is True
    await harness.go_session()  # and it connects


async def test_a_store_locked_for_good_fails_the_start(make: Any) -> None:
    harness: Harness = make()
    harness.backend.store_busy_timeout = 0.0
    harness.backend.store_retry_delays = (0.5,)
    harness.data_dir.mkdir(mode=0o700)
    db = harness.data_dir / SESSION_FILENAME
    write_minimal_store(db, f"{OWN_PHONE}:7@s.whatsapp.net")
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        starting = asyncio.ensure_future(harness.backend.start())
        await reading_thread_waits(harness)
        await harness.sleep.fire(0.5)
        with pytest.raises(BridgeError) as err:
            await asyncio.wait_for(starting, 10)
    finally:
        holder.rollback()
        holder.close()
    assert err.value.code == ErrorCode.INTERNAL
    assert harness.spy.names() == []
    assert harness.events == []


def test_only_a_missing_or_empty_device_table_means_unpaired(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE whatsmeow_version (version INTEGER)")
    conn.close()
    assert read_stored_account(db) is None  # Go's schema is not there yet
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY, push_name TEXT)")
    conn.close()
    assert read_stored_account(db) is None  # empty table
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this is not a database, but it is not empty either" * 100)
    with pytest.raises(StoreUnreadableError):
        read_stored_account(damaged)


@pytest.mark.parametrize("error", ["runtime", "unsupported", "import"])
async def test_neonize_that_cannot_load_is_unsupported(
    make: Any, monkeypatch: pytest.MonkeyPatch, error: str
) -> None:
    from neonize.download import UnsupportedPlatform

    from custom_components.whatsapp_presence.bridge import neonize_backend

    raised = {
        "runtime": RuntimeError("no neonize library for this platform"),
        "unsupported": UnsupportedPlatform("linux-armv7"),
        "import": ImportError("libmagic not found"),
    }[error]

    def fail() -> Any:
        raise raised

    monkeypatch.setattr(neonize_backend, "_load_neonize", fail)
    harness = make()
    with pytest.raises(BridgeError) as err:
        await harness.backend.start()
    assert err.value.code == ErrorCode.UNSUPPORTED


async def test_debug_logging_reaches_go(make: Any) -> None:
    """At DEBUG, Go's own messages (privacy token, post-pairing, auth) reach the log."""
    from custom_components.whatsapp_presence.bridge import neonize_backend

    backend_logger = logging.getLogger(neonize_backend.__name__)
    level = backend_logger.level
    backend_logger.setLevel(logging.DEBUG)
    try:
        harness = await paired(make)
        go = await harness.go_session()
    finally:
        backend_logger.setLevel(level)
    assert go.log_level == b"DEBUG"
    assert logging.getLogger("whatsmeow").level == logging.DEBUG
    assert logging.getLogger("Whatsmeow").level == logging.DEBUG


async def test_clients_of_stopped_sessions_stay_alive(make: Any) -> None:
    """A goroutine of a stopped session may still call one of its ctypes callbacks."""
    import gc
    import weakref

    from neonize.aioze.events import LoggedOutEv

    harness = await paired(make)
    go = await harness.go_session()
    await harness.login()
    client = weakref.ref(harness.client)
    await inject(harness.client, LoggedOutEv(OnConnect=False, Reason=2), LOGGED_OUT)
    await asyncio.to_thread(go.stopped.wait, 5)
    await asyncio.wait(list(harness.backend._background), timeout=10)
    await harness.backend.pair_qr()  # a new session: the old one leaves the backend's list
    assert all(s.client is not client() for s in harness.backend._sessions)
    harness.spy.sessions.remove(go)  # the stand-in's own references to the callbacks
    harness.spy.calls.clear()
    del go
    gc.collect()

    kept = client()
    assert kept is not None
    qr_cb, login_cb, event_cb = kept._connect_refs[:3]
    assert all(callable(cb) for cb in (qr_cb, login_cb, event_cb))


async def test_reconnects_past_the_session_budget_restart_the_process(
    tmp_path: Path, real_go_spy: FfiSpy
) -> None:
    """Real Go: every Neonize() keeps the store open once more (an SQLite pool Go never
    closes); past ``max_go_sessions`` the backend restarts instead of opening another."""
    data_dir = await real_go_store(tmp_path)
    real_go_spy.calls.clear()
    db = data_dir / SESSION_FILENAME
    harness = Harness(data_dir, real_go_spy, proxy=DEAD_PROXY)
    harness.backend.reconnect_delays = (3600.0,)
    harness.backend.max_go_sessions = 3
    handles = [open_handles(db)]
    try:
        await harness.backend.start()
        for attempt in range(1, 4):
            for _ in range(3000):  # the real connect fails within milliseconds
                if harness.sleep.pending() == [3600.0]:
                    break
                await asyncio.to_thread(time.sleep, 0.001)
            while harness.backend._stopping:
                await asyncio.wait(list(harness.backend._stopping))
            handles.append(open_handles(db))
            assert harness.named("disconnected") == [{"reason": "connect_failed"}] * attempt
            assert harness.sleep.pending() == [3600.0], attempt
            await harness.sleep.fire(3600.0)
        assert harness.exits == [75]
        assert real_go_spy.count("Neonize") == 3
        assert harness.backend._session is None
    finally:
        await harness.backend.stop()
    assert handles[1] < handles[2] < handles[3]  # the leak the budget exists for


# --- presence -------------------------------------------------------------------------------


async def test_presence_from_phone_jid(make: Any) -> None:
    harness = await paired(make)
    await harness.go_session()
    await harness.login()
    before = time.time()

    await inject(
        harness.client,
        presence_event("15550100002", "s.whatsapp.net", unavailable=True, last_seen=1_790_000_000),
        PRESENCE,
    )
    [event] = harness.named("presence")
    assert event["jid"] == "15550100002@s.whatsapp.net"
    assert event["lid"] is None
    assert event["online"] is False
    assert event["last_seen"] == 1_790_000_000
    assert before <= event["at"] <= time.time()


@pytest.mark.parametrize("last_seen", [GO_ZERO_TIME, 0, -1])
async def test_hidden_last_seen_is_unknown(make: Any, last_seen: int) -> None:
    harness = await paired(make)
    await harness.go_session()
    await harness.login()

    await inject(
        harness.client,
        presence_event("15550100002", "s.whatsapp.net", unavailable=True, last_seen=last_seen),
        PRESENCE,
    )
    [event] = harness.named("presence")
    assert event["last_seen"] is None
    assert event["online"] is False


async def test_presence_from_lid_is_mapped_to_the_phone_jid(make: Any) -> None:
    harness = await paired(make)
    spy = harness.spy
    await harness.go_session()
    spy.fakes["GetPNFromLID"] = lambda uuid, buf, size: pn_answer("15550100003")
    await harness.login()

    for online in (True, False):
        await inject(
            harness.client,
            presence_event("88003", "lid", unavailable=not online, last_seen=GO_ZERO_TIME),
            PRESENCE,
        )
    assert harness.named("presence") == [
        {
            "jid": "15550100003@s.whatsapp.net",
            "lid": "88003@lid",
            "online": online,
            "last_seen": None,
            "at": event["at"],
        }
        for online, event in zip((True, False), harness.named("presence"), strict=True)
    ]
    assert spy.count("GetPNFromLID") == 1  # the mapping is cached


async def test_presence_from_unknown_lid_is_dropped(make: Any) -> None:
    harness = await paired(make)
    harness.spy.fakes["GetPNFromLID"] = lambda uuid, buf, size: empty_jid_answer()
    await harness.go_session()
    await harness.login()

    await inject(
        harness.client, presence_event("88004", "lid", unavailable=False, last_seen=0), PRESENCE
    )
    assert harness.named("presence") == []
    assert harness.spy.count("GetPNFromLID") == 1


async def test_handler_exceptions_are_contained(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    harness = await paired(make)
    await harness.go_session()
    await harness.login()
    failures = [RuntimeError("sink broke")]

    def emit(event: BridgeEvent) -> None:
        if failures:
            raise failures.pop()
        harness.events.append((str(event.name), dict(event.to_payload())))

    harness.backend._emit = emit
    for _ in range(2):
        await inject(
            harness.client,
            presence_event("15550100002", "s.whatsapp.net", unavailable=False, last_seen=0),
            PRESENCE,
        )
    assert len(harness.named("presence")) == 1  # the second event still went through
    assert "neonize presence handler failed" in caplog.text


async def test_subscribe_learns_the_lid_then_subscribes(make: Any) -> None:
    from neonize.proto.Neonize_pb2 import JID, GetJIDFromStoreReturnFunction

    harness = await paired(make)
    spy = harness.spy
    spy.fakes["GetLIDFromPN"] = lambda uuid, buf, size: answer(
        GetJIDFromStoreReturnFunction(Jid=jid("88005", "lid"))
    )
    spy.fakes["SubscribePresence"] = lambda uuid, buf, size: b""
    await harness.go_session()
    await harness.login()

    await harness.backend.subscribe_presence("15550100005@s.whatsapp.net")
    [(_, buf, size)] = spy.args_of("SubscribePresence")
    assert JID.FromString(buf[:size]).User == "15550100005"
    await inject(
        harness.client, presence_event("88005", "lid", unavailable=False, last_seen=0), PRESENCE
    )
    assert harness.named("presence")[0]["jid"] == "15550100005@s.whatsapp.net"
    assert spy.count("GetPNFromLID") == 0  # known from the subscription

    with pytest.raises(BridgeError) as err:
        await harness.backend.subscribe_presence("88005@lid")
    assert err.value.code == ErrorCode.INVALID_ARGUMENT


# --- address book ---------------------------------------------------------------------------


async def test_contacts_map_lids_and_pick_a_name(make: Any) -> None:
    from neonize.proto.Neonize_pb2 import Contact, ContactInfo, ContactsGetAllContactsReturnFunction

    def info(**names: str) -> ContactInfo:
        fields = ("FirstName", "FullName", "PushName", "BusinessName", "RedactedPhone")
        return ContactInfo(Found=True, **{name: names.get(name, "") for name in fields})

    harness = await paired(make)
    spy = harness.spy
    spy.fakes["GetAllContacts"] = lambda uuid: answer(
        ContactsGetAllContactsReturnFunction(
            Contact=[
                Contact(JID=jid("15550100006"), Info=info(FullName="Ada L", FirstName="Ada")),
                Contact(JID=jid("88007", "lid"), Info=info(PushName="Bob")),
                Contact(JID=jid("88008", "lid"), Info=info(FirstName="Nobody")),
                Contact(JID=jid("12345-678", "g.us"), Info=info()),
            ]
        )
    )
    mapping = {"88007": "15550100007"}

    def pn_from_lid(uuid: bytes, buf: bytes, size: int) -> bytes:
        from neonize.proto.Neonize_pb2 import JID

        user = mapping.get(JID.FromString(buf[:size]).User)
        return pn_answer(user) if user else empty_jid_answer()

    spy.fakes["GetPNFromLID"] = pn_from_lid
    await harness.go_session()
    with pytest.raises(BridgeError):
        await harness.backend.contacts()  # before login: refused, store never touched
    assert spy.count("GetAllContacts") == 0
    await harness.login(lid_user=None)

    assert await harness.backend.contacts() == [
        {"jid": "15550100006@s.whatsapp.net", "phone": "15550100006", "name": "Ada L"},
        {"jid": "15550100007@s.whatsapp.net", "phone": "15550100007", "name": "Bob"},
    ]


async def test_resolve_maps_answers_and_rate_limits(make: Any) -> None:
    from neonize.proto.Neonize_pb2 import IsOnWhatsAppResponse, IsOnWhatsAppReturnFunction

    harness = await paired(make)
    spy = harness.spy
    answers = [
        answer(
            IsOnWhatsAppReturnFunction(
                IsOnWhatsAppResponse=[
                    IsOnWhatsAppResponse(Query="+15550100009", JID=jid("15550100009"), IsIn=True),
                    IsOnWhatsAppResponse(Query="+15550100010", JID=jid("15550100010"), IsIn=False),
                ]
            )
        ),
        answer(IsOnWhatsAppReturnFunction(Error="info query returned status 429: rate-overlimit")),
    ]
    spy.fakes["IsOnWhatsApp"] = lambda uuid, buf, size: answers.pop(0)
    await harness.go_session()
    await harness.login()

    result = await harness.backend.resolve(["+1 555 0100 009", "0015550100010"])
    assert result == [
        {"query": "+1 555 0100 009", "on_whatsapp": True, "jid": "15550100009@s.whatsapp.net"},
        {"query": "0015550100010", "on_whatsapp": False, "jid": None},
    ]
    [(_, numbers, _)] = spy.args_of("IsOnWhatsApp")
    assert numbers == b"+15550100009 +15550100010"
    with pytest.raises(BridgeError) as err:
        await harness.backend.resolve(["+15550100009"])
    assert err.value.code == ErrorCode.RATE_LIMITED
    with pytest.raises(BridgeError) as err:
        await harness.backend.resolve(["12"])
    assert err.value.code == ErrorCode.INVALID_ARGUMENT


async def test_group_participants_prefer_phone_numbers(make: Any) -> None:
    from neonize.proto.Neonize_pb2 import (
        GetGroupInfoReturnFunction,
        GroupInfo,
        GroupName,
        GroupParticipant,
    )

    harness = await paired(make)
    spy = harness.spy
    spy.fakes["GetGroupInfo"] = lambda uuid, buf, size: answer(
        GetGroupInfoReturnFunction(
            GroupInfo=GroupInfo(
                JID=jid("1203630", "g.us"),
                GroupName=GroupName(Name="Family"),
                Participants=[
                    GroupParticipant(
                        JID=jid("88011", "lid"),
                        LID=jid("88011", "lid"),
                        PhoneNumber=jid("15550100011"),
                        DisplayName="Carol",
                    ),
                    GroupParticipant(JID=jid("15550100012"), LID=jid("88012", "lid")),
                    GroupParticipant(JID=jid("88013", "lid"), LID=jid("88013", "lid")),
                ],
            )
        )
    )
    spy.fakes["GetPNFromLID"] = lambda uuid, buf, size: empty_jid_answer()
    await harness.go_session()
    await harness.login()

    assert await harness.backend.group_participants("1203630@g.us") == [
        {"jid": "15550100011@s.whatsapp.net", "phone": "15550100011", "name": "Carol"},
        {"jid": "15550100012@s.whatsapp.net", "phone": "15550100012", "name": None},
    ]


async def test_joined_groups_are_mapped(make: Any) -> None:
    from neonize.proto.Neonize_pb2 import (
        GetJoinedGroupsReturnFunction,
        GroupInfo,
        GroupName,
        GroupParticipant,
    )

    harness = await paired(make)
    harness.spy.fakes["GetJoinedGroups"] = lambda uuid: answer(
        GetJoinedGroupsReturnFunction(
            Group=[
                GroupInfo(
                    JID=jid("120363001", "g.us"),
                    GroupName=GroupName(Name="Family"),
                    Participants=[
                        GroupParticipant(JID=jid("15550100011")),
                        GroupParticipant(JID=jid("88012", "lid")),
                        GroupParticipant(JID=jid("15550100013")),
                    ],
                ),
                GroupInfo(JID=jid("120363002", "g.us"), GroupName=GroupName(Name="")),
                GroupInfo(JID=jid("", "")),  # an empty JID: skipped
            ]
        )
    )
    await harness.go_session()
    with pytest.raises(BridgeError) as err:
        await harness.backend.groups()  # not connected yet: Go is not asked
    assert err.value.code == ErrorCode.NOT_CONNECTED
    assert harness.spy.count("GetJoinedGroups") == 0
    await harness.login()

    assert await harness.backend.groups() == [
        {"jid": "120363001@g.us", "name": "Family", "participants": 3},
        {"jid": "120363002@g.us", "name": "", "participants": 0},
    ]


async def test_resolve_maps_an_lid_answer_to_the_phone_jid(make: Any) -> None:
    """whatsmeow asks for LID addressing: a number can come back as ``…@lid``."""
    from neonize.proto.Neonize_pb2 import IsOnWhatsAppResponse, IsOnWhatsAppReturnFunction

    harness = await paired(make)
    spy = harness.spy
    spy.fakes["IsOnWhatsApp"] = lambda uuid, buf, size: answer(
        IsOnWhatsAppReturnFunction(
            IsOnWhatsAppResponse=[
                IsOnWhatsAppResponse(Query="+15550100014", JID=jid("88014", "lid"), IsIn=True),
                IsOnWhatsAppResponse(Query="+15550100015", JID=jid("88015", "lid"), IsIn=True),
            ]
        )
    )
    mapping = {"88014": "15550100014"}

    def pn_from_lid(uuid: bytes, buf: bytes, size: int) -> bytes:
        from neonize.proto.Neonize_pb2 import JID

        user = mapping.get(JID.FromString(buf[:size]).User)
        return pn_answer(user) if user else empty_jid_answer()

    spy.fakes["GetPNFromLID"] = pn_from_lid
    await harness.go_session()
    await harness.login(lid_user=None)

    assert await harness.backend.resolve(["+15550100014", "+15550100015"]) == [
        {"query": "+15550100014", "on_whatsapp": True, "jid": "15550100014@s.whatsapp.net"},
        # No mapping stored yet: the number asked for is the phone JID.
        {"query": "+15550100015", "on_whatsapp": True, "jid": "15550100015@s.whatsapp.net"},
    ]
    await inject(
        harness.client, presence_event("88014", "lid", unavailable=False, last_seen=0), PRESENCE
    )
    assert harness.named("presence")[0]["jid"] == "15550100014@s.whatsapp.net"
    assert spy.count("GetPNFromLID") == 2  # the first mapping was cached for presence


async def test_a_failed_pair_status_ends_the_pairing(make: Any) -> None:
    from neonize.aioze.events import PairStatusEv

    harness = make()
    await harness.backend.start()
    await harness.backend.pair_qr()
    go = await harness.go_session()
    await run_in_go_thread(send_qr, go, "2@code")

    event = PairStatusEv(ID=jid(OWN_PHONE), Status=1, Error="pairing 4915112345678 rejected")
    await inject(harness.client, event, PAIR_STATUS)
    assert harness.named("pairing_failed") == [{"reason": "error"}]
    assert harness.named("paired") == []
    status = await harness.backend.status()
    assert status["pairing"] is None
    assert status["paired"] is False
    await asyncio.to_thread(go.stopped.wait, 5)
    assert go.stopped.is_set()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("info query returned status 429: rate-overlimit", ErrorCode.RATE_LIMITED),
        ("failed to send usync query: websocket not connected", ErrorCode.NOT_CONNECTED),
        ("client is nil", ErrorCode.NOT_CONNECTED),
        (
            "failed to get privacy token: the store doesn't contain a device JID",
            ErrorCode.NOT_LOGGED_IN,
        ),
        (b"can't send presence without PushName set", ErrorCode.INTERNAL),
        ("info query returned status 400: bad-request", ErrorCode.INVALID_ARGUMENT),
        ("something else entirely", ErrorCode.INTERNAL),
    ],
)
def test_error_mapping(message: str | bytes, code: ErrorCode) -> None:
    err = map_error("op", RuntimeError(message))
    assert err.code == code
    assert "op failed" in err.message


def test_error_messages_drop_phone_numbers() -> None:
    err = map_error("resolve", RuntimeError("no such user 4915112345678@s.whatsapp.net"))
    assert "4915112345678" not in err.message


def test_stored_account_is_read_without_go(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert read_stored_account(db) is None
    db.touch()
    assert read_stored_account(db) is None
    write_minimal_store(db, "4915112345678:12@s.whatsapp.net", push_name="A, B")
    assert read_stored_account(db) == {
        "jid": "4915112345678@s.whatsapp.net",
        "phone": "4915112345678",
        "push_name": "A, B",
    }


# --- pairing --------------------------------------------------------------------------------


async def test_qr_pairing_emits_codes_then_paired(make: Any) -> None:
    from neonize.aioze.events import PairStatusEv

    harness = make()
    backend = harness.backend
    await backend.start()
    await backend.pair_qr()
    go = await harness.go_session()
    assert (await backend.status())["pairing"] == "qr"
    with pytest.raises(BridgeError) as err:
        await backend.pair_qr()
    assert err.value.code == ErrorCode.BUSY

    await run_in_go_thread(send_qr, go, "2@first,code")
    await run_in_go_thread(send_qr, go, "2@second,code")
    assert harness.named("qr") == [
        {"code": "2@first,code", "expires_in": 60},
        {"code": "2@second,code", "expires_in": 20},
    ]
    await run_in_go_thread(send_login_status, go, "success")
    await inject(harness.client, device_event(OWN_PHONE, "88001", push_name="Me"), DEVICE)
    await inject(harness.client, PairStatusEv(ID=jid(OWN_PHONE), Status=2), PAIR_STATUS)
    assert harness.named("paired") == [{"jid": OWN_JID, "phone": OWN_PHONE, "push_name": "Me"}]
    status = await backend.status()
    assert status["paired"] is True
    assert status["pairing"] is None
    with pytest.raises(BridgeError) as err:
        await backend.pair_qr()
    assert err.value.code == ErrorCode.ALREADY_LOGGED_IN
    assert harness.spy.crash_prone_calls() == []


async def test_phone_pairing_waits_for_the_qr_flow(make: Any) -> None:
    from neonize.proto.Neonize_pb2 import PairPhoneParams, PairPhoneReturnFunction

    harness = make()
    spy = harness.spy
    spy.fakes["PairPhone"] = lambda uuid, buf, size: answer(
        PairPhoneReturnFunction(Code="ABCD-EFGH")
    )
    await harness.backend.start()

    pairing = asyncio.ensure_future(harness.backend.pair_phone("+1 555 0100 001"))
    go = await harness.go_session()
    await asyncio.sleep(0)
    assert spy.count("PairPhone") == 0  # issue #192: not before the QR flow runs
    await run_in_go_thread(send_qr, go, "2@qr,code")
    code = await asyncio.wait_for(pairing, 10)

    assert code == "ABCDEFGH"
    [(_, buf, size)] = spy.args_of("PairPhone")
    assert PairPhoneParams.FromString(buf[:size]).phone == OWN_PHONE
    assert harness.named("qr") == []  # phone pairing shows no QR
    assert (await harness.backend.status())["pairing"] == "phone"


async def test_stop_while_phone_pairing_waits_for_the_qr_flow(make: Any) -> None:
    # No QR yet, so stop() cannot tell whether Go registered the client: it waits up to half
    # of stop_timeout for a sign, then sends Stop anyway and gives the thread the rest.
    harness = make(stop_timeout=2.0)
    await harness.backend.start()
    pairing = asyncio.ensure_future(harness.backend.pair_phone("15550100001"))
    go = await harness.go_session()

    await harness.backend.stop()  # Go registered the client (Neonize runs) but no QR yet
    with pytest.raises(BridgeError) as err:
        await pairing
    assert err.value.code == ErrorCode.NOT_CONNECTED
    assert go.stopped.is_set()
    assert harness.spy.count("PairPhone") == 0


async def test_refused_phone_pairing_can_be_retried(make: Any) -> None:
    from neonize.proto.Neonize_pb2 import PairPhoneReturnFunction

    harness = make()
    answers = [
        answer(PairPhoneReturnFunction(Error="info query returned status 400: bad-request")),
        answer(PairPhoneReturnFunction(Code="WXYZ-2345")),
    ]
    harness.spy.fakes["PairPhone"] = lambda uuid, buf, size: answers.pop(0)
    await harness.backend.start()

    for expected in (ErrorCode.INVALID_ARGUMENT, None):
        pairing = asyncio.ensure_future(harness.backend.pair_phone("15550100001"))
        go = await harness.go_session()
        await run_in_go_thread(send_qr, go, "2@qr,code")
        if expected is None:
            assert await asyncio.wait_for(pairing, 10) == "WXYZ2345"
        else:
            with pytest.raises(BridgeError) as err:
                await asyncio.wait_for(pairing, 10)
            assert err.value.code == expected
            assert (await harness.backend.status())["pairing"] is None
    assert harness.spy.count("Neonize") == 2  # a fresh client for the second attempt


async def test_qr_timeout_reports_pairing_failed(make: Any) -> None:
    harness = make()
    await harness.backend.start()
    await harness.backend.pair_qr()
    go = await harness.go_session()
    await run_in_go_thread(send_qr, go, "2@code")

    await run_in_go_thread(send_login_status, go, "timeout")
    assert harness.named("pairing_failed") == [{"reason": "timeout"}]
    assert (await harness.backend.status())["pairing"] is None
    await asyncio.to_thread(go.stopped.wait, 5)
    assert go.stopped.is_set()


async def test_stop_during_qr_pairing_ends_the_process(make: Any) -> None:
    harness = make(stop_timeout=0.5)
    harness.spy.stuck_sessions = True  # whatsmeow's QR loop never returns after Stop
    await harness.backend.start()
    await harness.backend.pair_qr()
    go = await harness.go_session()
    await run_in_go_thread(send_qr, go, "2@code")

    with pytest.raises(ProcessExitError) as exited:
        await harness.backend.stop()
    assert exited.value.code == 0
    assert go.stopped.is_set()  # Stop was sent first


async def test_cancelled_pairing_still_ends_the_process_at_stop(make: Any) -> None:
    harness = make(stop_timeout=0.5)
    harness.spy.stuck_sessions = True
    await harness.backend.start()
    await harness.backend.pair_qr()
    go = await harness.go_session()
    await run_in_go_thread(send_qr, go, "2@code")

    await harness.backend.cancel_pairing()
    assert (await harness.backend.status())["pairing"] is None
    await asyncio.to_thread(go.stopped.wait, 5)
    assert go.stopped.is_set()
    with pytest.raises(ProcessExitError):
        await harness.backend.stop()


async def test_clean_stop_does_not_exit(make: Any) -> None:
    harness = await paired(make)
    go = await harness.go_session()
    await harness.login()

    await harness.backend.stop()  # would raise ProcessExitError if it wanted to exit
    assert go.stopped.is_set()
    assert (await harness.backend.status())["connected"] is False
    await harness.backend.stop()  # idempotent


# --- real processes ---------------------------------------------------------------------------

_STUCK_PAIRING_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys, tempfile, threading
    from pathlib import Path
    import neonize.aioze.client as nclient
    from custom_components.whatsapp_presence.bridge.neonize_backend import NeonizeBackend
    from tests.bridge.neonize_fixtures import FfiSpy, send_qr

    spy = FfiSpy(nclient.gocode, fake_session=True)
    spy.stuck_sessions = True
    nclient.gocode = spy

    async def main():
        backend = NeonizeBackend(
            lambda event: print("event", event.name, flush=True),
            data_dir=Path(tempfile.mkdtemp()) / "data",
            stop_timeout=0.5,
        )
        await backend.start()
        await backend.pair_qr()
        while not spy.sessions:
            await asyncio.to_thread(spy.session_started.wait, 0.05)
        await asyncio.to_thread(send_qr, spy.sessions[0], "2@code")
        print("stopping", flush=True)
        await backend.stop()
        print("stop returned", flush=True)

    asyncio.run(main())
    print("interpreter exiting", flush=True)
    """
)


def _run_script(script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_stop_during_pairing_ends_a_real_process() -> None:
    """Without the exit the interpreter would wait for ever on the blocked connect thread."""
    proc = _run_script(_STUCK_PAIRING_SCRIPT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "event qr" in proc.stdout
    assert "stopping" in proc.stdout
    assert "stop returned" not in proc.stdout  # os._exit inside stop()
    assert "cannot finish" in proc.stderr


_REAL_GO_GUARD_SCRIPT = textwrap.dedent(
    """
    import asyncio, ctypes, tempfile
    from pathlib import Path
    import neonize.aioze.client as nclient
    from neonize.aioze.events import PresenceEv
    from neonize.proto.Neonize_pb2 import JID
    from custom_components.whatsapp_presence.bridge.neonize_backend import (
        SESSION_FILENAME, NeonizeBackend)
    from custom_components.whatsapp_presence.bridge.protocol import BridgeError

    MODE = {mode!r}

    async def main():
        data = Path(tempfile.mkdtemp()) / "data"
        backend = NeonizeBackend(lambda e: print("event", e.name, flush=True), data_dir=data,
                                 proxy="socks5://127.0.0.1:9")
        await backend.start()
        await backend.pair_qr()  # real Neonize(): the dead proxy makes the connect fail
        session = backend._session
        client = session.client
        await asyncio.wait({{session.task}}, timeout=30)
        await asyncio.sleep(0)
        while backend._stopping:  # the backend's own Stop of the failed session is done
            await asyncio.wait(list(backend._stopping))
        if MODE == "direct":
            print("calling GetPNFromLID directly", flush=True)
            await client.get_pn_from_lid(JID(User="88001", Server="lid", RawAgent=0, Device=0, Integrator=0, IsEmpty=False))
        msg = PresenceEv(From=JID(User="88001", Server="lid", RawAgent=0, Device=0, Integrator=0, IsEmpty=False), Unavailable=False,
                         LastSeen=0).SerializeToString()
        buf = ctypes.create_string_buffer(msg, len(msg))
        await asyncio.to_thread(client.event.execute, client.uuid, ctypes.addressof(buf),
                                len(msg), 20)
        for call in (backend.contacts(), backend.resolve(["+15550100002"])):
            try:
                await call
            except BridgeError as err:
                print("refused", err.code, flush=True)
        await backend.stop()
        print("survived", flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("mode", ["backend", "direct"])
def test_real_go_guards_against_the_crash(mode: str) -> None:
    """With the unwrapped library: the backend's calls survive; the direct call aborts.

    The "direct" run is the control: it shows the panic the guard exists for is real.
    """
    proc = _run_script(_REAL_GO_GUARD_SCRIPT.format(mode=mode))
    if mode == "backend":
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "survived" in proc.stdout
        assert proc.stdout.count("refused not_logged_in") == 2
    else:
        assert proc.returncode == -6, (proc.returncode, proc.stderr[-2000:])  # SIGABRT
        assert "survived" not in proc.stdout


def test_native_stdout_goes_to_stderr() -> None:
    script = textwrap.dedent(
        """
        import os
        from custom_components.whatsapp_presence.bridge.neonize_backend import (
            redirect_native_stdout)
        print("before", flush=True)
        redirect_native_stdout()
        print("listening on 127.0.0.1:1234", flush=True)
        os.write(1, b"Login event: success\\n")  # what Go's fmt.Println does
        """
    )
    proc = _run_script(script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "before\nlistening on 127.0.0.1:1234\n"
    assert "Login event: success" in proc.stderr


def test_crash_prone_list_names_every_aborting_call() -> None:
    assert {
        "GetMe",
        "GetAllContacts",
        "GetContact",
        "GetChatSettings",
        "GetLIDFromPN",
        "GetPNFromLID",
    } == set(CRASH_PRONE_FFI)


async def test_real_bridge_process_with_neonize(tmp_path: Path) -> None:
    """``python -m bridge --backend neonize``: clean listening line, real Go pairing attempt
    through the dead proxy, clean exit on SIGTERM, private session file."""
    import json
    import signal

    import aiohttp

    from custom_components.whatsapp_presence.bridge.client import BridgeClient

    token = "neonize-test-token-0123456789abcdef"
    data_dir = tmp_path / "data"
    env = {**os.environ, "WHATSAPP_BRIDGE_TOKEN": token}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "--backend",
        "neonize",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--proxy",
        DEAD_PROXY,
        "--stop-timeout",
        "5",
        cwd=REPO_ROOT / "custom_components" / "whatsapp_presence",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):  # safety net for a hung child, not a delay
            line = json.loads(await process.stdout.readline())
        assert (line["event"], line["backend"]) == ("listening", "neonize")

        loop = asyncio.get_running_loop()
        failed: asyncio.Future[dict[str, Any]] = loop.create_future()

        def on_event(event: BridgeEvent) -> None:
            if event.name == "pairing_failed" and not failed.done():
                failed.set_result(dict(event.to_payload()))

        async with aiohttp.ClientSession() as http:
            client = BridgeClient(line["url"], token, session=http, on_event=on_event)
            hello = await client.connect()
            assert hello.status.paired is False
            await client.pair_qr()
            assert await asyncio.wait_for(failed, 60) == {"reason": "connect_failed"}
            assert (await client.status()).pairing is None
            with pytest.raises(BridgeError) as err:
                await client.contacts()
            assert err.value.code == ErrorCode.NOT_LOGGED_IN
            await client.close()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            out, err_out = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    assert process.returncode == 0, err_out.decode()[-2000:]
    assert out == b""  # the listening line stayed the only stdout output
    assert stat.S_IMODE((data_dir / SESSION_FILENAME).stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
