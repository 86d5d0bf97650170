"""Client for the bridge protocol (docs/bridge-protocol.md), used by the integration.

``connect()`` opens and authenticates the first link and returns the server's hello; after
that a background task keeps the link up, reconnecting with exponential backoff whenever the
bridge goes away. Requests fail fast with ``BridgeConnectionError`` while the link is down and
with ``BridgeError(timeout)`` when the bridge does not answer in time. Unknown frame types and
fields are ignored and unknown events passed on as ``UnknownEvent``, so an older client works
with a newer bridge.

Every message is decoded here, once, into the typed records of ``protocol``: what the
integration receives is valid by construction. A malformed event is dropped with one warning
(naming the event and the field, never a value) and the link stays up; a malformed answer
fails its request only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
import contextlib
import itertools
import json
import logging
import random
import ssl

import aiohttp

from . import protocol
from .protocol import (
    JSON,
    BridgeAuthError,
    BridgeConnectionError,
    BridgeError,
    BridgeEvent,
    Command,
    Contact,
    ErrorCode,
    Group,
    Hello,
    MalformedPayloadError,
    PhoneCode,
    Resolution,
    Status,
)

__all__ = [
    "BridgeAuthError",
    "BridgeClient",
    "BridgeConnectionError",
    "BridgeError",
    "ErrorCode",
]

_LOGGER = logging.getLogger(__name__)

EventCallback = Callable[[BridgeEvent], None]

MISSED_PINGS_LIMIT = 3
"""Unanswered pings in a row after which the bridge counts as hung (the link is dropped)."""
STABLE_LINK = 60.0
"""A link that lasted this long resets the reconnect backoff; shorter ones keep it growing."""


class ProtocolError(Exception):
    """The bridge sent a frame that cannot be decoded: the link cannot be trusted any more."""


def _default_jitter(delay: float) -> float:
    """Spread reconnects of many clients: 80-120 % of the nominal delay."""
    return delay * random.uniform(0.8, 1.2)


class BridgeClient:
    """One authenticated WebSocket link to a bridge, kept up in the background."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        session: aiohttp.ClientSession,
        on_event: EventCallback,
        on_connection_change: Callable[[bool], None] | None = None,
        on_unresponsive: Callable[[], None] | None = None,
        on_auth_failed: Callable[[], None] | None = None,
        request_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        heartbeat: float | None = 30.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        backoff_factor: float = 2.0,
        jitter: Callable[[float], float] = _default_jitter,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_message_bytes: int = 16 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self._token = token
        self._session = session
        self._on_event = on_event
        self._on_connection_change = on_connection_change
        self._on_unresponsive = on_unresponsive
        self._on_auth_failed = on_auth_failed
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self._heartbeat = heartbeat
        self._backoff = (backoff_initial, backoff_max, backoff_factor)
        self._jitter = jitter
        self._sleep = sleep
        self._max_message_bytes = max_message_bytes
        # wss:// is always verified: by this context (a private CA), else the session's.
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[JSON]] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self.missed_pings = 0
        self.auth_refused = False
        self.opening = False
        """True while a link is being opened and authenticated."""
        self._wake = asyncio.Event()
        """The bridge refused the token on a reconnect: no more retries until a new token."""

    # --- connection ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while an authenticated link is up."""
        return self._ws is not None and not self._ws.closed

    async def connect(self) -> Hello:
        """Open and authenticate the first link, then keep it up in the background.

        Returns the server's hello. Raises BridgeAuthError (wrong token, do not retry),
        BridgeConnectionError (unreachable) or BridgeError(unsupported_protocol).
        """
        if self._task is not None:
            raise RuntimeError("already connected; close() first")
        self._closing = False
        ws, hello = await self._open()
        self._ws = ws
        self._task = asyncio.create_task(self._run(ws), name="whatsapp bridge client")
        return hello

    async def close(self) -> None:
        """Close the link and stop reconnecting; no task is left behind, and it never raises."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                _LOGGER.exception("The bridge link had failed")
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            try:
                await ws.close()
            except Exception as err:  # noqa: BLE001 - closing a broken link may fail any way
                _LOGGER.debug("Closing the bridge link failed: %r", err)
        self._fail_pending(BridgeConnectionError("the client was closed"))

    def bridge_restarted(self, url: str) -> None:
        """The bridge is back (maybe on another address): reconnect now, not after the backoff."""
        self.url = url
        self._wake.set()

    async def _backoff_sleep(self, delay: float) -> bool:
        """Wait ``delay``; True when ``bridge_restarted`` cut the wait short (or came first)."""
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)
        woken = self._wake.is_set()
        self._wake.clear()
        return woken

    async def _open_unless_moved(
        self,
    ) -> tuple[aiohttp.ClientWebSocketResponse, Hello]:
        """``_open``, given up when the bridge restarts elsewhere meanwhile.

        An attempt at the old address (taken by another program, say) could otherwise hang
        for the whole connect timeout while the bridge already listens on its new one.
        """
        url = self.url
        opening = asyncio.ensure_future(self._open())
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((opening, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
            await asyncio.gather(waker, return_exceptions=True)
        if not opening.done() and self.url != url:
            opening.cancel()
            await asyncio.gather(opening, return_exceptions=True)
            raise BridgeConnectionError(f"the bridge moved to {self.url}")
        return await opening

    async def _open(self) -> tuple[aiohttp.ClientWebSocketResponse, Hello]:
        """Connect and authenticate one link."""
        self.opening = True
        try:
            return await self._open_link()
        finally:
            self.opening = False

    async def _open_link(self) -> tuple[aiohttp.ClientWebSocketResponse, Hello]:
        try:
            async with asyncio.timeout(self.connect_timeout):
                # No aiohttp heartbeat: it re-arms a timer when the peer's close frame arrives
                # after ours, leaving it behind; _keepalive pings at the protocol level instead.
                ws = await self._session.ws_connect(
                    self.url, max_msg_size=self._max_message_bytes, ssl=self._ssl
                )
        except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError) as err:
            # RuntimeError: the aiohttp session was closed under us.
            raise BridgeConnectionError(
                f"cannot reach the bridge: {err or type(err).__name__}"
            ) from err
        try:
            async with asyncio.timeout(self.connect_timeout):
                await ws.send_str(
                    protocol.encode(
                        {
                            "type": "auth",
                            "token": self._token,
                            "protocol": protocol.PROTOCOL_VERSION,
                        }
                    )
                )
                msg = await ws.receive()
            return ws, self._check_hello(ws, msg)
        except BaseException as err:
            await ws.close()
            if isinstance(err, BridgeError | asyncio.CancelledError):
                raise
            if isinstance(err, aiohttp.ClientError | OSError | TimeoutError | RuntimeError):
                raise BridgeConnectionError(
                    f"bridge handshake failed: {err or type(err).__name__}"
                ) from err
            raise

    @staticmethod
    def _check_hello(ws: aiohttp.ClientWebSocketResponse, msg: aiohttp.WSMessage) -> Hello:
        if msg.type != aiohttp.WSMsgType.TEXT:
            if ws.close_code == protocol.CLOSE_UNAUTHORIZED:
                raise BridgeAuthError
            raise BridgeConnectionError(f"the bridge closed the link (code {ws.close_code})")
        try:
            message: object = json.loads(msg.data)
        except (ValueError, RecursionError) as err:
            raise BridgeConnectionError("the bridge sent an unreadable hello") from err
        if not isinstance(message, dict):
            raise BridgeConnectionError("the bridge sent an unreadable hello")
        if message.get("type") == "error":
            code = message.get("code")
            text = str(message.get("message") or code)
            if code == ErrorCode.UNAUTHORIZED:
                raise BridgeAuthError(text)
            raise BridgeError(str(code), text)
        if message.get("type") != "hello":
            raise BridgeConnectionError("the bridge did not say hello")
        if message.get("protocol") != protocol.PROTOCOL_VERSION:
            raise BridgeError(
                ErrorCode.UNSUPPORTED_PROTOCOL,
                f"bridge speaks protocol {message.get('protocol')}, "
                f"client speaks {protocol.PROTOCOL_VERSION}",
            )
        try:
            return Hello.from_payload(message)
        except MalformedPayloadError as err:
            raise BridgeConnectionError(
                f"the bridge sent a malformed hello: {err.message}"
            ) from None

    async def _run(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read frames; when the link drops, reconnect with backoff until closed."""
        loop = asyncio.get_running_loop()
        strikes = 0  # links in a row that did not last: the backoff keeps growing
        while True:
            opened = loop.time()
            self.missed_pings = 0
            keepalive = (
                asyncio.create_task(self._keepalive(ws), name="whatsapp bridge keepalive")
                if self._heartbeat
                else None
            )
            try:
                await self._read(ws)
            except Exception:
                # Whatever went wrong reading, the link is dropped and re-established.
                _LOGGER.exception("Reading from the WhatsApp bridge failed")
                with contextlib.suppress(Exception):
                    await ws.close()
            finally:
                if keepalive is not None:
                    keepalive.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await keepalive
            self._ws = None
            self._fail_pending(BridgeConnectionError("the link to the bridge was lost"))
            if self._closing:
                return
            strikes = strikes + 1 if loop.time() - opened < STABLE_LINK else 0
            _LOGGER.info("Lost the link to the WhatsApp bridge; reconnecting")
            self._notify(False)
            reconnected = await self._reconnect(max(0, strikes - 1))
            if reconnected is None:
                return
            ws = self._ws = reconnected
            _LOGGER.info("Reconnected to the WhatsApp bridge")
            self._notify(True)

    async def _keepalive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Ping every ``heartbeat`` seconds; three unanswered in a row mean a hung bridge.

        Then the link is closed (and re-established with backoff) and ``on_unresponsive`` is
        called, so a local bridge can be killed and restarted.
        """
        assert self._heartbeat
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await self.request(Command.PING)
            except BridgeConnectionError:
                return
            except BridgeError as err:
                if err.code != ErrorCode.TIMEOUT:
                    continue
                self.missed_pings += 1
                if self.missed_pings < MISSED_PINGS_LIMIT:
                    _LOGGER.debug("The WhatsApp bridge missed %d ping(s)", self.missed_pings)
                    continue
                _LOGGER.warning(
                    "The WhatsApp bridge did not answer %d pings in a row; reconnecting",
                    self.missed_pings,
                )
                if self._on_unresponsive is not None:
                    try:
                        self._on_unresponsive()
                    except Exception:
                        _LOGGER.exception("Unresponsive-bridge callback failed")
                await ws.close()
                return
            else:
                self.missed_pings = 0

    async def _reconnect(self, attempt: int = 0) -> aiohttp.ClientWebSocketResponse | None:
        """Retry with exponential backoff; None when the session is gone or the token refused."""
        initial, maximum, factor = self._backoff
        while True:
            delay = self._jitter(min(maximum, initial * factor ** min(attempt, 32)))
            if await self._backoff_sleep(delay):
                attempt = 0
            if self._session.closed:
                _LOGGER.debug("The HTTP session was closed; no more reconnects")
                return None
            try:
                ws, _hello = await self._open_unless_moved()
            except BridgeAuthError:
                # Retrying cannot help: the user must give a new token (reauth).
                _LOGGER.warning("The WhatsApp bridge refused the token; no more reconnects")
                self.auth_refused = True
                if self._on_auth_failed is not None:
                    try:
                        self._on_auth_failed()
                    except Exception:
                        _LOGGER.exception("Refused-token callback failed")
                return None
            except BridgeError as err:
                _LOGGER.debug("Reconnect attempt %d failed: %s", attempt + 1, err)
            except Exception:
                # Whatever it was, giving up would leave the link down for good: try again.
                _LOGGER.exception("Reconnect attempt %d failed unexpectedly", attempt + 1)
            else:
                return ws
            attempt += 1

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._handle(msg.data)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    _LOGGER.debug("Bridge link error: %s", ws.exception())
                    break
        except (aiohttp.ClientError, ConnectionError) as err:
            _LOGGER.debug("Bridge link failed: %s", err)
        except ProtocolError as err:
            _LOGGER.warning("The WhatsApp bridge broke the protocol (%s); reconnecting", err)
        if not ws.closed:
            await ws.close()

    def _handle(self, data: str) -> None:
        try:
            message: object = json.loads(data)
        except (ValueError, RecursionError) as err:
            # RecursionError: JSON nested deeper than the parser can go.
            raise ProtocolError(f"an undecodable frame: {type(err).__name__}") from None
        if not isinstance(message, dict):
            raise ProtocolError("a frame that is not a JSON object")
        kind = message.get("type")
        if kind in ("result", "error"):
            req_id = message.get("id")
            future = self._pending.get(req_id) if isinstance(req_id, int) else None
            if future is None or future.done():
                if kind == "error":
                    _LOGGER.debug("Bridge error without a waiting request: %s", message.get("code"))
                return
            if kind == "result":
                future.set_result(message.get("result"))
            else:
                code = message.get("code")
                future.set_exception(
                    BridgeError(
                        str(code or ErrorCode.INTERNAL), str(message.get("message") or code)
                    )
                )
        elif kind == "event":
            name = message.get("event")
            payload = message.get("data")
            if not isinstance(name, str) or not isinstance(payload, dict):
                return
            try:
                event = protocol.decode_event(name, payload)
            except MalformedPayloadError as err:
                # The name is one of the protocol's own (unknown names are not decoded), and
                # the message names a field, never its value: no personal data in the log.
                _LOGGER.warning(
                    "Ignored a malformed %s event from the bridge: %s", name, err.message
                )
                return
            try:
                self._on_event(event)
            except Exception:
                _LOGGER.exception("Event callback failed for %s", name)

    def _notify(self, connected: bool) -> None:
        if self._on_connection_change is None:
            return
        try:
            self._on_connection_change(connected)
        except Exception:
            _LOGGER.exception("Connection callback failed")

    def _fail_pending(self, error: BridgeError) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)
                # Nobody may be waiting any more (timed out): avoid "never retrieved" noise.
                future.exception()

    # --- requests ------------------------------------------------------------------------

    async def request(self, command: str, /, **args: JSON) -> JSON:
        """Send a command and wait for its answer, as JSON (e.g. the simulator's ``sim.*``).

        The integration calls the typed methods below instead.
        """
        ws = self._ws
        if ws is None or ws.closed:
            raise BridgeConnectionError
        req_id = next(self._ids)
        try:
            frame = protocol.encode(
                {"type": "request", "id": req_id, "command": command, "args": args}
            )
        except (TypeError, ValueError) as err:
            raise BridgeError(ErrorCode.INVALID_ARGUMENT, f"arguments are not JSON: {err}") from err
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        try:
            try:
                await ws.send_str(frame)
            except (ConnectionError, RuntimeError, aiohttp.ClientError) as err:
                raise BridgeConnectionError(f"could not send to the bridge: {err}") from err
            try:
                async with asyncio.timeout(self.request_timeout):
                    return await future
            except TimeoutError:
                raise BridgeError(
                    ErrorCode.TIMEOUT,
                    f"the bridge did not answer {command!r} within {self.request_timeout:g} s",
                ) from None
        finally:
            self._pending.pop(req_id, None)

    async def _object[T](
        self, command: Command, decode: Callable[[Mapping[str, object]], T], **args: JSON
    ) -> T:
        """One answer object, decoded; a malformed one fails this request only."""
        answer = await self.request(command, **args)
        try:
            return decode(protocol.as_object(answer, "the answer"))
        except MalformedPayloadError as err:
            raise BridgeError(
                ErrorCode.INTERNAL, f"unexpected answer to {command}: {err.message}"
            ) from None

    async def _list[T](
        self, command: Command, decode: Callable[[Mapping[str, object]], T], **args: JSON
    ) -> list[T]:
        """An answer list, each item decoded; one malformed item fails this request only."""
        answer = await self.request(command, **args)
        try:
            return protocol.decode_list(answer, decode, "the answer")
        except MalformedPayloadError as err:
            raise BridgeError(
                ErrorCode.INTERNAL, f"unexpected answer to {command}: {err.message}"
            ) from None

    async def status(self) -> Status:
        """Backend status: paired, connected, pairing, account (+ backend extras)."""
        return await self._object(Command.STATUS, Status.from_payload)

    async def pair_qr(self) -> None:
        """Start QR pairing; codes arrive as ``QrCode`` events."""
        await self.request(Command.PAIR_QR)

    async def pair_phone(self, phone: str) -> str:
        """Start pairing by phone number; returns the code to type on the phone."""
        answer = await self._object(Command.PAIR_PHONE, PhoneCode.from_payload, phone=phone)
        return answer.code

    async def cancel_pairing(self) -> None:
        """Abort a running pairing."""
        await self.request(Command.CANCEL_PAIRING)

    async def logout(self) -> None:
        """Unlink the device and forget the session."""
        await self.request(Command.LOGOUT)

    async def set_available(self, available: bool) -> None:
        """Mark the account available (needed for presence) or unavailable."""
        await self.request(Command.SET_AVAILABLE, available=available)

    async def subscribe_presence(self, jid: str) -> None:
        """Subscribe to a contact's presence (fire-and-forget on WhatsApp's side)."""
        await self.request(Command.SUBSCRIBE_PRESENCE, jid=jid)

    async def contacts(self) -> list[Contact]:
        """The address book."""
        return await self._list(Command.CONTACTS, Contact.from_payload)

    async def groups(self) -> list[Group]:
        """Joined groups."""
        return await self._list(Command.GROUPS, Group.from_payload)

    async def group_participants(self, jid: str) -> list[Contact]:
        """Members of a group."""
        return await self._list(Command.GROUP_PARTICIPANTS, Contact.from_payload, jid=jid)

    async def resolve(self, phones: list[str]) -> list[Resolution]:
        """Which numbers have WhatsApp, one answer per number, in order."""
        return await self._list(Command.RESOLVE, Resolution.from_payload, phones=list(phones))
