"""The config flow's own link to a bridge: start or reach one, and pair a WhatsApp account.

Why apart from the coordinator: pairing happens before any entry exists (and again on reauth,
while the entry's own bridge may still be running), so a flow owns a short-lived bridge and
client of its own, and tears them down when it ends. Pairing state (the current QR code, the
phone code, the outcome) lives here; the flow only renders it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from functools import partial
import platform
import re
import shutil
import ssl
import sys
from typing import Any, Final

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.requirements import RequirementsNotFound, async_process_requirements

from .bridge.client import BridgeClient
from .bridge.protocol import (
    Account,
    BridgeError,
    BridgeEvent,
    Hello,
    Paired,
    PairingFailed,
    QrCode,
    is_user_jid,
    jid_to_phone,
)
from .connection import BridgeConnection
from .const import DOMAIN, LOGGER
from .launcher import BridgeProcess, bridge_args, session_dir

NEONIZE_REQUIREMENT: Final = "neonize==0.5.2"
NEONIZE_IMPORT_CHECK: Final = "import neonize.aioze.client"
"""Run in a child interpreter: loading neonize's Go library inside Home Assistant could abort it."""
NEONIZE_MACHINES: Final = frozenset({"x86_64", "amd64", "aarch64", "arm64"})
NEONIZE_MIN_GLIBC: Final = (2, 34)
"""neonize ships manylinux_2_34 wheels for these machines only."""

# Why neonize cannot run here; each has its own advice in the flow's abort (config_flow.py).
CAUSE_MUSL: Final = "musl"
CAUSE_OLD_GLIBC: Final = "old_glibc"
CAUSE_ARCHITECTURE: Final = "wrong_architecture"
CAUSE_INSTALL: Final = "install_failed"
CAUSE_LIBMAGIC: Final = "no_libmagic"
CAUSE_IMPORT: Final = "import_failed"

PAIRING_TIMEOUT: Final = 300.0
"""WhatsApp gives up after about 160 s of QR codes; this guards against a bridge that never says so."""

REASON_TIMEOUT: Final = "timeout"
REASON_BRIDGE_LOST: Final = "bridge_lost"
REASON_INVALID_ACCOUNT: Final = "invalid_account"
REASON_UNKNOWN: Final = "unknown"
PAIR_FAILURES: Final = (
    REASON_TIMEOUT,
    REASON_BRIDGE_LOST,
    REASON_INVALID_ACCOUNT,
    "busy",
    "connect_failed",
    "passkey_required",
    REASON_UNKNOWN,
)
"""Why linking failed, as the retry step says it (``selector.pair_failure`` in the strings);
any other reason from a bridge reads as ``unknown``."""


class NeonizeUnavailableError(Exception):
    """neonize cannot be installed or loaded on this host: ``cause`` says why."""

    def __init__(self, cause: str, *, detail: str = "", machine: str = "", glibc: str = "") -> None:
        """``detail``: the failing import's last line of error output, for ``import_failed``."""
        super().__init__(cause)
        self.cause = cause
        self.detail = detail
        self.machine = machine
        self.glibc = glibc


@dataclass(frozen=True, slots=True)
class PairingOutcome:
    """How a pairing attempt ended: an account, or a reason."""

    account: Account | None = None
    reason: str | None = None


def host_problem(machine: str, libc: tuple[str, str]) -> str | None:
    """What rules neonize out on this machine and C library, before anything is installed."""
    if machine.lower() not in NEONIZE_MACHINES:
        return CAUSE_ARCHITECTURE
    name, version = libc
    if name != "glibc":
        return CAUSE_MUSL  # Alpine: Home Assistant OS and Container
    parts = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    return CAUSE_OLD_GLIBC if parts < NEONIZE_MIN_GLIBC else None


def import_problem(stderr: str) -> str:
    """Why a child interpreter could not import neonize, from its error output."""
    if "libmagic" in stderr:
        return CAUSE_LIBMAGIC  # neonize imports python-magic, which needs the system's libmagic
    if re.search(r"GLIBC_\d+\.\d+' not found", stderr):
        return CAUSE_OLD_GLIBC
    if re.search(
        r"wrong ELF class|Exec format error|invalid ELF header|cannot open shared", stderr
    ):
        return CAUSE_ARCHITECTURE
    return CAUSE_IMPORT


def _host_facts() -> tuple[str, tuple[str, str]]:
    """The machine and C library (reading the interpreter's binary: in an executor)."""
    return platform.machine(), platform.libc_ver()


async def async_check_neonize(hass: HomeAssistant) -> None:
    """Install neonize with Home Assistant's installer and check a child interpreter loads it.

    Raises NeonizeUnavailableError with the real cause: the wrong machine or C library (found
    before installing anything), a failed install, or the child's import error (kept in the
    debug log: it can be long, and is for whoever debugs the host).
    """
    machine, libc = await hass.async_add_executor_job(_host_facts)
    facts = {"machine": machine, "glibc": libc[1] or "none"}
    if (cause := host_problem(machine, libc)) is not None:
        raise NeonizeUnavailableError(cause, **facts)
    try:
        await async_process_requirements(hass, DOMAIN, [NEONIZE_REQUIREMENT])
    except RequirementsNotFound as err:
        LOGGER.debug("Installing %s failed: %s", NEONIZE_REQUIREMENT, err)
        raise NeonizeUnavailableError(CAUSE_INSTALL, **facts) from err
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        NEONIZE_IMPORT_CHECK,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, output = await process.communicate()
    if process.returncode == 0:
        return
    stderr = output.decode(errors="replace")
    LOGGER.debug("A child interpreter could not import neonize:\n%s", stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    raise NeonizeUnavailableError(
        import_problem(stderr), detail=lines[-1][:300] if lines else "", **facts
    )


async def async_remove_session(hass: HomeAssistant, session_id: str) -> None:
    """Delete a child bridge's session folder (a session nobody will use again)."""
    directory = session_dir(hass, session_id)

    def remove() -> None:
        try:
            shutil.rmtree(directory)
        except FileNotFoundError:
            return
        except OSError as err:
            # The folder holds a WhatsApp session, a secret: a leftover must not go unnoticed.
            LOGGER.warning(
                "Could not delete the WhatsApp session folder %s: %s", directory, err.strerror
            )

    await hass.async_add_executor_job(remove)


class FlowBridge:
    """One flow's bridge: an optional child process, a client, and the pairing in progress."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Nothing runs until ``start_child`` or ``async_connect``."""
        self.hass = hass
        self.bridge = BridgeConnection(
            hass, on_event=self._on_event, on_connection_change=self._on_link_change
        )
        self.session_id: str | None = None
        self.start_task: asyncio.Task[Hello] | None = None
        self.pairing: str | None = None  # "qr" or "phone" while an attempt runs
        self.qr: str | None = None
        self.code: str | None = None
        self.outcome: PairingOutcome | None = None
        self.paired_here = False
        self._changed = asyncio.Event()
        self._guard: CALLBACK_TYPE | None = None
        self._stop_unsub: CALLBACK_TYPE | None = None
        self._waiter: asyncio.Task[Any] | None = None

    @property
    def client(self) -> BridgeClient | None:
        """The flow's client, once connected."""
        return self.bridge.client

    @property
    def process(self) -> BridgeProcess | None:
        """The flow's child bridge, in the modes that have one."""
        return self.bridge.process

    @property
    def active(self) -> bool:
        """Something to tear down: a task, a client, a process or an unclaimed session folder."""
        return (
            self.start_task is not None
            or self.client is not None
            or self.process is not None
            or self.session_id is not None
        )

    # ------------------------------------------------------------------ connecting

    def start_child(self, mode: str, session_id: str, *, local: bool) -> asyncio.Task[Hello]:
        """Start a child bridge on a new session folder (in a task: it takes seconds)."""
        self.session_id = session_id
        if self._stop_unsub is None:
            # Open flows outlive Home Assistant's stop; the child bridge must not (it runs in
            # its own process group, so nothing else would stop it).
            self._stop_unsub = self.hass.bus.async_listen_once(
                EVENT_HOMEASSISTANT_STOP, self._async_on_hass_stop
            )
        self.start_task = self.hass.async_create_task(
            self._async_start_child(mode, session_id, local=local),
            "whatsapp_presence flow bridge start",
        )
        return self.start_task

    async def _async_start_child(self, mode: str, session_id: str, *, local: bool) -> Hello:
        if local:
            await async_check_neonize(self.hass)
        directory = session_dir(self.hass, session_id)
        await self.hass.async_add_executor_job(
            partial(directory.mkdir, parents=True, exist_ok=True)
        )
        url, token = await self.bridge.async_start_child(bridge_args(mode, directory))
        return await self.async_connect(url, token)

    async def async_connect(
        self, url: str, token: str, ssl_context: ssl.SSLContext | None = None
    ) -> Hello:
        """Connect and authenticate; returns the bridge's hello (raises BridgeError kinds)."""
        return await self.bridge.async_connect(url, token, ssl_context)

    # ------------------------------------------------------------------ pairing

    async def async_pair_qr(self) -> None:
        """Start QR pairing; codes then arrive as events and update ``qr``."""
        assert self.client is not None
        self._begin("qr")
        try:
            await self.client.pair_qr()
        except BridgeError:
            self._end()
            raise

    async def async_pair_phone(self, phone: str) -> str:
        """Start pairing by phone number; returns the code to type on the phone."""
        assert self.client is not None
        self._begin("phone")
        try:
            self.code = await self.client.pair_phone(phone)
        except BridgeError:
            self._end()
            raise
        return self.code

    async def async_cancel_pairing(self) -> None:
        """Ask the bridge to stop a pairing it may still be running (best effort)."""
        if self.client is not None:
            with contextlib.suppress(BridgeError):
                await self.client.cancel_pairing()

    def wait_change(self) -> asyncio.Task[Any]:
        """A task that ends on the next QR code, success or failure (a progress step's task)."""
        if self._waiter is not None and not self._waiter.done():
            return self._waiter  # the step was re-run while waiting: keep the one task
        self._changed.clear()
        # A background task: it may wait for minutes, and Home Assistant's shutdown (and
        # block_till_done) should not wait for a phone that is never picked up.
        self._waiter = self.hass.async_create_background_task(
            self._changed.wait(), "whatsapp_presence pairing change"
        )
        return self._waiter

    def take_outcome(self) -> PairingOutcome:
        """The finished attempt's outcome; the attempt is over afterwards."""
        outcome = self.outcome
        assert outcome is not None
        self._end()
        return outcome

    def _begin(self, kind: str) -> None:
        self._end()
        self.pairing = kind
        self._guard = async_call_later(self.hass, PAIRING_TIMEOUT, self._on_guard)

    def _end(self) -> None:
        self.pairing = None
        self.qr = None
        self.code = None
        self.outcome = None
        self._cancel_guard()

    def _cancel_guard(self) -> None:
        if self._guard is not None:
            self._guard()
            self._guard = None

    def _finish(self, outcome: PairingOutcome) -> None:
        if self.pairing is None or self.outcome is not None:
            return
        self.outcome = outcome
        if outcome.account is not None:
            self.paired_here = True
        self._cancel_guard()
        self._changed.set()

    @callback
    def _on_event(self, event: BridgeEvent) -> None:
        if self.pairing is None or self.outcome is not None:
            return
        match event:
            case QrCode(code=code):
                self.qr = code
                self._changed.set()
            case Paired(jid=jid, phone=phone, push_name=push_name) if is_user_jid(jid):
                account = Account(jid, phone or jid_to_phone(jid), push_name)
                self._finish(PairingOutcome(account=account))
            case Paired():
                self._finish(PairingOutcome(reason=REASON_INVALID_ACCOUNT))
            case PairingFailed(reason=reason):
                self._finish(PairingOutcome(reason=reason or REASON_UNKNOWN))

    @callback
    def _on_link_change(self, connected: bool) -> None:
        """A bridge that went away forgot the pairing in progress."""
        if not connected:
            self._finish(PairingOutcome(reason=REASON_BRIDGE_LOST))

    @callback
    def _on_guard(self, _now: datetime) -> None:
        self._guard = None
        self._finish(PairingOutcome(reason=REASON_TIMEOUT))

    # ------------------------------------------------------------------ teardown

    async def _async_on_hass_stop(self, _event: Event) -> None:
        self._stop_unsub = None  # a fired once-listener is gone already
        await self.async_close(discard=True)

    async def async_close(self, *, discard: bool) -> None:
        """Stop everything; ``discard`` also unlinks a session paired here and deletes its folder.

        Keep the session (``discard=False``) when an entry will use it.
        """
        self._end()
        if self._stop_unsub is not None:
            self._stop_unsub()
            self._stop_unsub = None
        task, self.start_task = self.start_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        if self.client is not None and discard and self.paired_here:
            with contextlib.suppress(BridgeError):
                await self.client.logout()
        await self.bridge.async_close()
        session_id, self.session_id = self.session_id, None
        if discard and session_id is not None:
            await async_remove_session(self.hass, session_id)
        self.paired_here = False
