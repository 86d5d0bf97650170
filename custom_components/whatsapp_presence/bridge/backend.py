"""The backend interface: one WhatsApp session behind the bridge server.

Two implementations exist: ``simulator.SimulatorBackend`` (a seeded simulated network for the
demo, tests and benchmarks) and ``neonize_backend.NeonizeBackend`` (real WhatsApp). The server
only talks to this interface, so both are interchangeable on the command line.

Rules every backend follows:

- Errors are raised as ``BridgeError(ErrorCode.X, "message")``; anything else is reported to the
  client as ``internal`` (and logged by the server).
- Events are pushed with ``emit(record)`` (a ``protocol`` event record: ``Presence``,
  ``Connected``, ...) from the event loop's thread (never from a foreign thread: hop with
  ``loop.call_soon_threadsafe`` first). ``emit`` never raises and never blocks; the server
  sends the record's payload (docs/bridge-protocol.md).
- Contact JIDs are phone-number JIDs ``<digits>@s.whatsapp.net`` everywhere; a backend maps
  LIDs back before emitting (the ``lid`` field of ``presence`` keeps the original).
- The server may call methods concurrently (several clients, several requests in flight); a
  backend that cannot cope serialises internally.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

from .protocol import BridgeError, BridgeEvent, ErrorCode

EventSink = Callable[[BridgeEvent], None]
"""An event record -> None."""


class Backend(abc.ABC):
    """One WhatsApp session; the server calls these, the backend pushes events through emit."""

    name: ClassVar[str] = "abstract"
    """Short name reported in the server's hello (``simulator``, ``neonize``)."""

    def __init__(self, emit: EventSink) -> None:
        self._emit = emit

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the session; connect when already paired. Must not wait for WhatsApp."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Clean stop (no task or thread left behind); idempotent."""

    @abc.abstractmethod
    async def status(self) -> dict[str, Any]:
        """Current state.

        ``{"paired": bool, "connected": bool, "pairing": None | "qr" | "phone",
        "account": None | {"jid": str, "phone": str, "push_name": str | None}}``; backends may
        add fields (clients ignore unknown ones), e.g. ``available`` and ``ban``.
        """

    @abc.abstractmethod
    async def pair_qr(self) -> None:
        """Start QR pairing; codes arrive as ``qr`` events, the end as ``paired`` or
        ``pairing_failed``. Raises already_logged_in when paired, busy when a pairing runs."""

    @abc.abstractmethod
    async def pair_phone(self, phone: str) -> str:
        """Start pairing by phone number (international digits, already normalised).

        Returns the 8-character code the user types on the phone (``XXXX-XXXX`` form allowed).
        """

    @abc.abstractmethod
    async def cancel_pairing(self) -> None:
        """Abort a running pairing; no-op when none runs."""

    @abc.abstractmethod
    async def logout(self) -> None:
        """Unlink this device and forget the session. Emits ``logged_out`` (reason ``logout``)."""

    @abc.abstractmethod
    async def set_available(self, available: bool) -> None:
        """Mark the account available (needed to receive presence) or unavailable."""

    @abc.abstractmethod
    async def subscribe_presence(self, jid: str) -> None:
        """Subscribe to a contact's presence. Fire-and-forget, like WhatsApp: no answer comes
        back, and a subscription WhatsApp ignores looks exactly like a quiet contact."""

    @abc.abstractmethod
    async def contacts(self) -> list[dict[str, Any]]:
        """Address book: ``[{"jid", "phone", "name"}]`` (name may be null)."""

    @abc.abstractmethod
    async def groups(self) -> list[dict[str, Any]]:
        """Joined groups: ``[{"jid", "name", "participants": int}]``."""

    @abc.abstractmethod
    async def group_participants(self, jid: str) -> list[dict[str, Any]]:
        """Members of a group: ``[{"jid", "phone", "name"}]``; invalid_argument if unknown."""

    @abc.abstractmethod
    async def resolve(self, phones: list[str]) -> list[dict[str, Any]]:
        """Which numbers have WhatsApp: ``[{"query", "on_whatsapp": bool, "jid": str | None}]``.

        ``phones`` are distinct, normalised international digits (the server validates and maps
        the client's raw queries); answer one entry per phone with ``query`` set to those digits.
        May raise rate_limited (WhatsApp's 429)."""

    async def command(self, name: str, args: dict[str, Any]) -> Any:
        """Backend-specific commands (e.g. the simulator's ``sim.*`` controls).

        The server routes every command it does not know itself here; the default refuses.
        """
        raise BridgeError(ErrorCode.UNKNOWN_COMMAND, f"unknown command {name!r}")
