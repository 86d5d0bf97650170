"""Test helpers for the neonize backend: a spy on neonize's FFI object and Go-side stand-ins.

Everything above the FFI stays real: ``NewAClient``, its ``connect()``, neonize's event
dispatcher (``client.event.execute``, fed serialised protobufs exactly as Go's event pump
feeds them: the event's code and a pointer to its bytes), the ctypes QR and login-status
callbacks. Only the library object that
``neonize.aioze.client`` calls into (``gocode``) is wrapped:

- every call is recorded, so a test can prove which Go functions were (not) reached;
- the process-aborting functions are never forwarded (in this environment no client is ever
  logged in, so forwarding one would abort pytest); a test can register a fake answer for them
  standing in for a logged-in store;
- with ``fake_session=True``, ``Neonize``/``Stop`` are replaced by a stand-in for a live
  WhatsApp session (there is no WhatsApp server here): ``Neonize`` blocks like the real one
  until ``Stop``, or forever if the session is "stuck" the way an abandoned QR pairing is.

``ManualSleep`` stands in for the backend's clock: its waits end only when a test says so.

The module imports neonize lazily so that importing it from a test module costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import ctypes
from dataclasses import dataclass, field
import sqlite3
import threading
from typing import Any

from custom_components.whatsapp_presence.bridge.neonize_backend import CRASH_PRONE_FFI

# How long a stand-in Neonize() blocks at most: a safety net so a broken test cannot leave a
# thread behind for ever. Tests release every session at teardown long before this.
SESSION_SAFETY_TIMEOUT = 120.0


class CrashProneCallError(RuntimeError):
    """Raised instead of forwarding a call that would abort the process (Go panic)."""


@dataclass
class FakeGoSession:
    """What the stand-in Neonize() received, and the switch that lets it return."""

    uuid: bytes
    log_level: bytes
    qr_cb: Any
    login_cb: Any
    event_cb: Any
    stuck: bool = False
    stopped: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


class FfiSpy:
    """Stands in for neonize's ctypes library object (``neonize.aioze.client.gocode``)."""

    def __init__(self, real: Any, *, fake_session: bool) -> None:
        self.real = real
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fakes: dict[str, Callable[..., Any]] = {}
        self.sessions: list[FakeGoSession] = []
        self.stuck_sessions = False
        self.connect_errors: list[bytes] = []
        """Answers for the next stand-in Neonize() calls: a Go error string ends it at once."""
        self.session_started = threading.Event()
        self._lock = threading.Lock()
        if fake_session:
            self.fakes["Neonize"] = self._neonize
            self.fakes["Stop"] = self._stop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any) -> Any:
            with self._lock:
                self.calls.append((name, args))
            fake = self.fakes.get(name)
            if fake is not None:
                return fake(*args)
            if name in CRASH_PRONE_FFI:
                raise CrashProneCallError(f"{name} would abort the process here")
            return getattr(self.real, name)(*args)

        return call

    # --- inspection ---------------------------------------------------------------------

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self.calls]

    def crash_prone_calls(self) -> list[str]:
        return [name for name in self.names() if name in CRASH_PRONE_FFI]

    def count(self, name: str) -> int:
        return self.names().count(name)

    def args_of(self, name: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return [args for called, args in self.calls if called == name]

    # --- stand-in Go session ------------------------------------------------------------

    def _neonize(self, *args: Any) -> bytes:
        session = FakeGoSession(
            uuid=args[1], log_level=args[5], qr_cb=args[6], login_cb=args[7], event_cb=args[8]
        )
        session.stuck = self.stuck_sessions
        with self._lock:
            self.sessions.append(session)
        self.session_started.set()
        if self.connect_errors:
            return self.connect_errors.pop(0)
        session.released.wait(SESSION_SAFETY_TIMEOUT)
        return b""

    def _stop(self, uuid: bytes) -> bytes:
        for session in list(self.sessions):
            if session.uuid == uuid:
                session.stopped.set()
                if not session.stuck:
                    session.released.set()
        return b""

    def release_all(self) -> None:
        """Let every stand-in Neonize() return (teardown; also ends "stuck" ones)."""
        for session in list(self.sessions):
            session.released.set()


class ManualSleep:
    """The backend's injected ``sleep``: every wait is recorded and ends only when fired."""

    def __init__(self) -> None:
        self.waits: list[tuple[float, asyncio.Future[None]]] = []

    async def __call__(self, delay: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self.waits.append((delay, future))
        try:
            await future
        finally:
            with contextlib.suppress(ValueError):
                self.waits.remove((delay, future))

    def pending(self) -> list[float]:
        """Delays of the waits still running, oldest first."""
        return [delay for delay, future in self.waits if not future.done()]

    async def fire(self, delay: float) -> None:
        """End the oldest running wait of ``delay`` seconds, then let its waiter run."""
        for wanted, future in self.waits:
            if wanted == delay and not future.done():
                future.set_result(None)
                break
        else:
            raise AssertionError(f"nothing waits {delay} s (waiting: {self.pending()})")
        for _ in range(5):
            await asyncio.sleep(0)


def send_qr(session: FakeGoSession, code: str) -> None:
    """Call the real ctypes QR callback as Go does (from a foreign thread)."""
    buf = ctypes.create_string_buffer(code.encode())
    session.qr_cb(None, ctypes.addressof(buf))


def send_login_status(session: FakeGoSession, status: str) -> None:
    """Call the real ctypes login-status callback (end of the QR channel)."""
    buf = ctypes.create_string_buffer(status.encode())
    session.login_cb(None, ctypes.addressof(buf))


def is_backend_handler(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    return "_handler.<locals>.handler" in getattr(coro, "__qualname__", "")


async def run_in_go_thread(func: Callable[..., Any], *args: Any) -> None:
    """Run a Go-side callback on another thread, then wait for the handlers it scheduled.

    neonize hands each event to the loop with ``run_coroutine_threadsafe``; those tasks exist
    by the time ``to_thread`` resumes us (both hops are FIFO ``call_soon_threadsafe``).
    """
    before = asyncio.all_tasks()
    await asyncio.to_thread(func, *args)
    await asyncio.sleep(0)
    pending = [t for t in asyncio.all_tasks() - before if is_backend_handler(t)]
    if pending:
        _done, not_done = await asyncio.wait(pending, timeout=10)
        assert not not_done, "event handlers did not finish"


def complete(message: Any) -> Any:
    """Give every unset proto2 *required* field its default, recursively, like Go's encoder.

    neonize's messages are proto2 with nearly every field required: Python refuses to
    serialise (and neonize to parse) a message that leaves one out.
    """
    for field_desc in message.DESCRIPTOR.fields:
        value = getattr(message, field_desc.name)
        is_message = field_desc.message_type is not None
        if field_desc.is_repeated:
            if is_message:
                for item in value:
                    complete(item)
            continue
        if is_message:
            if field_desc.is_required or message.HasField(field_desc.name):
                value.SetInParent()
                complete(value)
        elif field_desc.is_required and not message.HasField(field_desc.name):
            setattr(message, field_desc.name, field_desc.default_value)
    return message


def answer(message: Any) -> bytes:
    """A Go function's serialised answer."""
    return bytes(complete(message).SerializeToString())


async def inject(client: Any, message: Any, code: int) -> None:
    """Feed one serialised event to ``client.event.execute`` exactly as Go does."""
    data = complete(message).SerializeToString()
    buf = ctypes.create_string_buffer(data, len(data))
    await run_in_go_thread(
        client.event.execute, client.uuid, ctypes.addressof(buf), len(data), code
    )


def device_event(phone: str, lid_user: str | None = None, push_name: str = "Tester") -> Any:
    """The code-0 ``Device`` event Go sends once the store has an ID (sets ``client.me``)."""
    from neonize.proto.Neonize_pb2 import JID, Device

    me = Device(
        JID=JID(User=phone, Server="s.whatsapp.net", Device=7, RawAgent=0, Integrator=0),
        Platform="",
        BussinessName="",
        PushName=push_name,
        Initialized=True,
    )
    me.JID.IsEmpty = False
    if lid_user:
        me.LID.CopyFrom(
            JID(User=lid_user, Server="lid", Device=7, RawAgent=0, Integrator=0, IsEmpty=False)
        )
    return me


def jid(user: str, server: str = "s.whatsapp.net") -> Any:
    from neonize.proto.Neonize_pb2 import JID

    return JID(User=user, Server=server, Device=0, RawAgent=0, Integrator=0, IsEmpty=False)


def write_minimal_store(db_path: Any, jid_text: str, push_name: str = "Tester") -> None:
    """A whatsmeow_device row as ``read_stored_account`` sees it (stand-in Go sessions only)."""
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY, push_name TEXT)")
        db.execute("INSERT INTO whatsmeow_device VALUES (?, ?)", (jid_text, push_name))
    db.close()


def insert_fake_device(db_path: Any, jid_text: str, lid_text: str, push_name: str) -> None:
    """Add a device row with random keys to a store whose schema real Go created.

    Go then treats the store as paired and connects (no QR); the keys are never used because
    the connect goes to a dead proxy.
    """
    import secrets

    rand = secrets.token_bytes
    with sqlite3.connect(db_path) as db:
        db.execute(
            "INSERT INTO whatsmeow_device (jid, lid, registration_id, noise_key, identity_key,"
            " signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,"
            " adv_account_sig, adv_account_sig_key, adv_device_sig, push_name)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                jid_text,
                lid_text,
                1234,
                rand(32),
                rand(32),
                rand(32),
                1,
                rand(64),
                rand(32),
                b"x",
                rand(64),
                rand(32),
                rand(64),
                push_name,
            ),
        )
    db.close()
