"""The bridge server: one backend, a token-authenticated WebSocket for its clients.

Several clients may be connected at once (Home Assistant plus, say, a debugging tool); each
gets every event. A client that stops reading is disconnected rather than allowed to grow the
server's memory. Nothing a client sends can stop the server: every frame is validated, every
failure becomes an ``error`` answer, and a backend exception becomes ``internal``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
import contextlib
import hmac
import logging
import math
import ssl
import time
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from . import protocol
from .backend import Backend, EventSink
from .protocol import (
    JSON,
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

_LOGGER = logging.getLogger(__name__)

BackendFactory = Callable[[EventSink], Backend]

_HARD_LIMIT_FACTOR = 16
"""aiohttp drops the socket above max_message_bytes * this; between the two, frames get an
``message_too_large`` answer and the connection stays up."""

MAX_AUTH_FRAME_BYTES = 4096
"""Largest frame a client may send before it has authenticated (an auth frame is ~150 bytes)."""

_THROTTLE_MAX_PEERS = 1024


class _AuthThrottle:
    """Failed authentications per peer address: each one doubles the wait before the next try.

    The first ``free`` failures cost nothing (a mistyped token, retyped at once). While a peer
    waits, its attempts are refused without looking at the token, so guessing runs at a handful
    of tries a minute instead of hundreds a second.
    """

    def __init__(self, clock: Callable[[], float], base: float, cap: float, free: int) -> None:
        self._clock = clock
        self._base = base
        self._cap = cap
        self._free = free
        self._peers: dict[str, tuple[int, float]] = {}

    def wait(self, peer: str) -> float:
        """Seconds ``peer`` must still wait before its token is checked (0: go ahead)."""
        _, until = self._peers.get(peer, (0, 0.0))
        return max(0.0, until - self._clock())

    def failed(self, peer: str) -> float:
        """Record a wrong token; returns the wait now imposed."""
        failures = self._peers.pop(peer, (0, 0.0))[0] + 1
        over = failures - self._free
        delay = min(self._cap, self._base * 2 ** min(over - 1, 32)) if over > 0 else 0.0
        self._peers[peer] = (failures, self._clock() + delay)
        while len(self._peers) > _THROTTLE_MAX_PEERS:
            del self._peers[next(iter(self._peers))]  # the longest-quiet peer
        return delay

    def succeeded(self, peer: str) -> None:
        """The right token: forget the peer's failures."""
        self._peers.pop(peer, None)


def _set_frame_limit(ws: web.WebSocketResponse, request: web.Request, limit: int) -> bool:
    """Give an open WebSocket a new frame-size limit; False when aiohttp does not allow it.

    aiohttp fixes the limit when the socket opens, so a small pre-authentication limit needs
    a new frame parser once the client is known. Nothing is buffered at that point: a client
    sends nothing between its auth frame and the server's hello.
    """
    parser = getattr(ws, "_parser", None)
    queue = getattr(ws, "_reader", None)
    handler = request.protocol
    if parser is None or queue is None or not hasattr(handler, "_payload_parser"):
        return False
    try:
        from aiohttp._websocket.reader import WebSocketReader

        new = WebSocketReader(
            queue,
            limit,
            compress=bool(ws.compress),
            decode_text=getattr(ws, "_decode_text", True),
        )
    except AttributeError, ImportError, TypeError:
        return False
    handler._payload_parser = None  # noqa: SLF001
    handler.set_parser(new, data_received_cb=getattr(handler, "_data_received_cb", None))
    ws._parser = new  # noqa: SLF001
    return True


class _Connection:
    """One authenticated client: an outgoing queue drained by a writer task."""

    def __init__(self, ws: web.WebSocketResponse, peer: str, queue_size: int) -> None:
        self.ws = ws
        self.peer = peer
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=queue_size)
        self.seq = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.overflowed = False
        self.close_task: asyncio.Task[bool] | None = None

    def send(self, frame: str) -> bool:
        """Queue a frame; False (and the connection is doomed) when the client lags too far."""
        if self.overflowed:
            return False
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed = True
            _LOGGER.warning("Client %s does not read its events; disconnecting it", self.peer)
            # The reader loop notices the close and cleans up.
            self.close_task = asyncio.get_running_loop().create_task(
                self.ws.close(code=protocol.CLOSE_TOO_SLOW, message=b"too slow")
            )
            return False
        return True

    async def writer(self) -> None:
        """Send queued frames in order until None or a send fails."""
        while (frame := await self.queue.get()) is not None:
            try:
                await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError) as err:
                _LOGGER.debug("Send to %s failed: %s", self.peer, err)
                return
            except Exception:
                # A frame that cannot be sent must not leave the client waiting forever.
                _LOGGER.exception("Unexpected send failure; closing the client")
                await self.ws.close(code=aiohttp.WSCloseCode.INTERNAL_ERROR)
                return


class BridgeServer:
    """Serves one backend over ``ws://host:port/ws`` (``wss://`` given an ``ssl_context``).

    ``backend`` is a Backend, or a factory ``emit -> Backend`` so the backend can be given the
    server's event sink (``publish``) at construction (``BridgeServer(lambda emit:
    SimulatorBackend(emit, config), token)``). ``start`` starts the backend and returns the URL; ``stop`` closes every
    client and stops the backend.

    ``heartbeat`` (seconds between WebSocket pings, to drop half-open clients) is off by
    default: aiohttp re-arms its heartbeat timer when the peer's close frame arrives after the
    server closed, which leaves a harmless but test-visible timer behind for up to that long.
    The command line turns it on (30 s).
    """

    def __init__(
        self,
        backend: Backend | BackendFactory,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES,
        max_clients: int = 8,
        auth_timeout: float = 10.0,
        heartbeat: float | None = None,
        send_queue_size: int = 1000,
        max_in_flight: int = 32,
        max_pending: int = 16,
        max_auth_frame_bytes: int = MAX_AUTH_FRAME_BYTES,
        auth_backoff: tuple[float, float] = (1.0, 60.0),
        free_auth_failures: int = 3,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not token:
            raise ValueError("the bridge needs a non-empty token")
        self._token = token.encode("utf-8")
        self.backend: Backend = backend if isinstance(backend, Backend) else backend(self.publish)
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.max_clients = max_clients
        self.auth_timeout = auth_timeout
        self.heartbeat = heartbeat
        self.send_queue_size = send_queue_size
        self.max_in_flight = max_in_flight
        self.max_pending = max_pending
        self.max_auth_frame_bytes = max_auth_frame_bytes
        self._throttle = _AuthThrottle(clock, *auth_backoff, free_auth_failures)
        self._pending = 0
        self.ssl_context = ssl_context
        self._clients: set[_Connection] = set()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        """``ws://host:port/ws`` once started."""
        if self._url is None:
            raise RuntimeError("server not started")
        return self._url

    @property
    def client_count(self) -> int:
        """Number of authenticated clients."""
        return len(self._clients)

    async def start(self) -> str:
        """Start the backend, then listen; returns the URL (with the real port when port=0)."""
        self._stopping = False
        await self.backend.start()
        app = web.Application()
        app.router.add_get(protocol.WS_PATH, self._handle_ws)
        app.router.add_get("/health", self._handle_health)
        # A connection that never upgrades to a WebSocket is closed once it has been idle for
        # the time a client has to authenticate (aiohttp's default is an hour).
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            keepalive_timeout=self.auth_timeout,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self.backend.stop()
            raise
        self._runner = runner
        address = runner.addresses[0]
        host, port = address[0], address[1]
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        scheme = "wss" if self.ssl_context is not None else "ws"
        self._url = f"{scheme}://{shown}:{port}{protocol.WS_PATH}"
        _LOGGER.info("Bridge listening on %s (backend %s)", self._url, self.backend.name)
        return self._url

    async def stop(self) -> None:
        """Close every client (code 1001), stop listening, stop the backend. Idempotent."""
        self._stopping = True
        if self._clients:
            # Concurrently: each close waits for the peer's close frame (or aiohttp's timeout).
            await asyncio.gather(
                *(
                    conn.ws.close(code=protocol.CLOSE_SHUTDOWN, message=b"bridge stopping")
                    for conn in list(self._clients)
                ),
                return_exceptions=True,
            )
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        await self.backend.stop()

    def publish(self, event: BridgeEvent) -> None:
        """Event sink for the backend: its record's payload, to every authenticated client."""
        self.emit(str(event.name), event.to_payload())

    def emit(self, name: str, payload: Mapping[str, Any]) -> None:
        """Broadcast one event as given, to every authenticated client.

        The raw form under ``publish``: what any bridge, a newer or a broken one, may send
        (the tests use it to send events this protocol does not define, or malformed ones).
        """
        for conn in list(self._clients):
            conn.seq += 1
            try:
                frame = protocol.encode(protocol.event_frame(name, payload, conn.seq))
            except TypeError, ValueError:
                _LOGGER.exception("Backend emitted a non-JSON %s event; dropped", name)
                continue
            conn.send(frame)

    async def _handle_health(self, request: web.Request) -> web.Response:
        """Unauthenticated liveness probe (no session details)."""
        return web.json_response({"status": "ok", "protocol": protocol.PROTOCOL_VERSION})

    @property
    def pending_count(self) -> int:
        """Connections still to authenticate."""
        return self._pending

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        peer = str(request.remote)
        if self._pending >= self.max_pending:
            _LOGGER.warning(
                "Refused %s: %d connections are already authenticating", peer, self._pending
            )
            return web.Response(status=503, text="too many pending connections")
        self._pending += 1
        try:
            ws = web.WebSocketResponse(
                heartbeat=self.heartbeat, max_msg_size=self.max_auth_frame_bytes
            )
            await ws.prepare(request)
            if not await self._authenticate(ws, peer):
                return ws
        finally:
            self._pending -= 1
        if not _set_frame_limit(ws, request, self.max_message_bytes * _HARD_LIMIT_FACTOR):
            # An aiohttp whose internals moved: the client keeps the small limit, which its
            # requests fit in (the largest, resolve, is about 2 KiB).
            _LOGGER.warning(
                "This aiohttp cannot raise the frame limit after authentication; "
                "%s may send frames of %d bytes at most",
                peer,
                self.max_auth_frame_bytes,
            )
        if len(self._clients) >= self.max_clients:
            await self._send_direct(
                ws, protocol.error_frame(None, ErrorCode.BUSY, "too many clients")
            )
            await ws.close(code=protocol.CLOSE_TOO_MANY_CLIENTS, message=b"too many clients")
            return ws
        conn = _Connection(ws, peer, self.send_queue_size)
        # Register before reading the status so no event falls between hello and the stream;
        # the hello is put in front of anything queued meanwhile.
        self._clients.add(conn)
        writer: asyncio.Task[None] | None = None
        try:
            try:
                status = await self._status()
            except Exception:
                # No hello rather than a made-up one: "not paired" would start a reauth of
                # an account that is still paired. The client's connect fails and is retried.
                _LOGGER.exception("Backend status failed during hello")
                await self._send_direct(
                    ws, protocol.error_frame(None, ErrorCode.INTERNAL, "internal bridge error")
                )
                await ws.close(code=protocol.CLOSE_INTERNAL, message=b"internal bridge error")
                return ws
            hello = protocol.encode(
                Hello(
                    protocol=protocol.PROTOCOL_VERSION,
                    backend=self.backend.name,
                    status=status,
                    max_message_bytes=self.max_message_bytes,
                ).to_payload()
            )
            await ws.send_str(hello)
            writer = asyncio.create_task(conn.writer())
            _LOGGER.debug("Client %s authenticated (%d connected)", peer, len(self._clients))
            await self._read_loop(conn)
        except (ConnectionError, RuntimeError) as err:
            _LOGGER.debug("Client %s connection error: %s", peer, err)
        finally:
            self._clients.discard(conn)
            for task in list(conn.tasks):
                task.cancel()
            if writer is not None:
                # Let the writer flush what is queued, unless it cannot get the end marker.
                try:
                    conn.queue.put_nowait(None)
                except asyncio.QueueFull:
                    writer.cancel()
                if conn.overflowed:
                    writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
            pending: list[asyncio.Task[Any]] = [*conn.tasks]
            if conn.close_task is not None:
                pending.append(conn.close_task)
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            if not ws.closed:
                await ws.close()
            _LOGGER.debug("Client %s gone (%d connected)", peer, len(self._clients))
        return ws

    async def _send_direct(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(protocol.encode(frame))

    async def _authenticate(self, ws: web.WebSocketResponse, peer: str) -> bool:
        """First frame must be ``{"type": "auth", "token": ...}``; anything else closes."""
        try:
            async with asyncio.timeout(self.auth_timeout):
                msg = await ws.receive()
        except TimeoutError:
            _LOGGER.warning("Refused %s: no auth frame within %s s", peer, self.auth_timeout)
            await self._send_direct(
                ws, protocol.error_frame(None, ErrorCode.UNAUTHORIZED, "no auth frame in time")
            )
            await ws.close(code=protocol.CLOSE_AUTH_TIMEOUT, message=b"auth timeout")
            return False
        if msg.type != WSMsgType.TEXT:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return False
            if msg.type == WSMsgType.ERROR:
                # Above the pre-authentication limit: aiohttp has closed (1009) already.
                _LOGGER.warning("Refused %s: oversized frame before authenticating", peer)
                return False
            _LOGGER.warning("Refused %s: first frame is not a JSON auth message", peer)
            await self._refuse(ws, None, "first frame must be a JSON auth message")
            return False
        try:
            message = protocol.decode(msg.data, self.max_message_bytes)
        except BridgeError as err:
            _LOGGER.warning("Refused %s: %s", peer, err.message)
            await self._refuse(ws, None, err.message)
            return False
        token = message.get("token")
        if message.get("type") != "auth" or not isinstance(token, str):
            _LOGGER.warning("Refused %s: first frame is not an auth message", peer)
            await self._refuse(
                ws, protocol.echo_id(message), "first frame must be an auth message with a token"
            )
            return False
        if wait := math.ceil(self._throttle.wait(peer)):
            # "busy", not "unauthorized": the token was not even checked, and a client with the
            # right one (sharing the address with a guesser) must retry, not give up for good.
            _LOGGER.warning("Refused %s: too many wrong tokens, %d s to wait", peer, wait)
            await self._send_direct(
                ws,
                protocol.error_frame(
                    protocol.echo_id(message),
                    ErrorCode.BUSY,
                    f"too many wrong tokens; retry in {wait} s",
                ),
            )
            await ws.close(code=aiohttp.WSCloseCode.TRY_AGAIN_LATER, message=b"retry later")
            return False
        if not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), self._token):
            delay = self._throttle.failed(peer)
            _LOGGER.warning("Refused %s: wrong token (next try in %.0f s)", peer, delay)
            await self._refuse(ws, protocol.echo_id(message), "wrong token")
            return False
        self._throttle.succeeded(peer)
        version = message.get("protocol", protocol.PROTOCOL_VERSION)
        # Strict: True == 1 and 1.0 == 1 in Python, but neither is protocol 1.
        if type(version) is not int or version != protocol.PROTOCOL_VERSION:
            await self._send_direct(
                ws,
                protocol.error_frame(
                    protocol.echo_id(message),
                    ErrorCode.UNSUPPORTED_PROTOCOL,
                    f"this bridge speaks protocol {protocol.PROTOCOL_VERSION}",
                ),
            )
            await ws.close(code=protocol.CLOSE_PROTOCOL_VERSION, message=b"protocol version")
            return False
        if self._stopping:
            await ws.close(code=protocol.CLOSE_SHUTDOWN, message=b"bridge stopping")
            return False
        return True

    async def _refuse(self, ws: web.WebSocketResponse, req_id: int | str | None, text: str) -> None:
        await self._send_direct(ws, protocol.error_frame(req_id, ErrorCode.UNAUTHORIZED, text))
        await ws.close(code=protocol.CLOSE_UNAUTHORIZED, message=b"unauthorized")

    async def _read_loop(self, conn: _Connection) -> None:
        async for msg in conn.ws:
            if msg.type == WSMsgType.TEXT:
                self._handle_text(conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                conn.send(
                    protocol.encode(
                        protocol.error_frame(
                            None, ErrorCode.INVALID_MESSAGE, "binary frames are not supported"
                        )
                    )
                )
            elif msg.type == WSMsgType.ERROR:
                # E.g. a frame above the hard limit: aiohttp has closed (1009) already.
                _LOGGER.debug("Client %s socket error: %s", conn.peer, conn.ws.exception())
                return
            if conn.overflowed:
                return

    def _answer(self, conn: _Connection, frame: dict[str, Any]) -> None:
        try:
            text = protocol.encode(frame)
        except TypeError, ValueError:
            _LOGGER.exception("Unserialisable answer; sending internal error")
            text = protocol.encode(
                protocol.error_frame(frame.get("id"), ErrorCode.INTERNAL, "unserialisable answer")
            )
        conn.send(text)

    def _handle_text(self, conn: _Connection, data: str) -> None:
        try:
            message = protocol.decode(data, self.max_message_bytes)
        except BridgeError as err:
            self._answer(conn, protocol.error_frame(None, err.code, err.message))
            return
        kind = message.get("type")
        if kind != "request":
            code = ErrorCode.INVALID_MESSAGE
            text = "unknown message type" if isinstance(kind, str) else "message needs a type"
            if kind == "auth":
                text = "already authenticated"
            self._answer(conn, protocol.error_frame(protocol.echo_id(message), code, text))
            return
        try:
            request = protocol.parse_request(message)
        except BridgeError as err:
            self._answer(
                conn, protocol.error_frame(protocol.echo_id(message), err.code, err.message)
            )
            return
        if len(conn.tasks) >= self.max_in_flight:
            self._answer(
                conn,
                protocol.error_frame(request.id, ErrorCode.BUSY, "too many requests in flight"),
            )
            return
        task = asyncio.create_task(self._run_request(conn, request))
        conn.tasks.add(task)
        task.add_done_callback(conn.tasks.discard)

    async def _run_request(self, conn: _Connection, request: protocol.Request) -> None:
        try:
            result = await self._dispatch(request.command, request.args)
        except BridgeError as err:
            frame = protocol.error_frame(request.id, err.code, err.message)
        except asyncio.CancelledError:
            raise
        except Exception:
            _LOGGER.exception("Command %s failed", request.command)
            frame = protocol.error_frame(request.id, ErrorCode.INTERNAL, "internal bridge error")
        else:
            frame = protocol.result_frame(request.id, result)
        self._answer(conn, frame)

    async def _status(self) -> Status:
        status = await self.backend.status()
        with _backend_contract("status"):
            return Status.from_payload(status)

    async def _dispatch(self, command: str, args: dict[str, Any]) -> Any:
        """Validate arguments and call the backend; answers are built from protocol records
        (a backend breaking the protocol's shapes is an ``internal`` error, not a bad frame)."""
        backend = self.backend
        match command:
            case Command.PING:
                return {}
            case Command.STATUS:
                return (await self._status()).to_payload()
            case Command.PAIR_QR:
                await backend.pair_qr()
                return None
            case Command.PAIR_PHONE:
                phone = protocol.normalize_phone(args.get("phone"))
                return PhoneCode(await backend.pair_phone(phone)).to_payload()
            case Command.CANCEL_PAIRING:
                await backend.cancel_pairing()
                return None
            case Command.LOGOUT:
                await backend.logout()
                return None
            case Command.SET_AVAILABLE:
                await backend.set_available(protocol.arg_bool(args, "available"))
                return None
            case Command.SUBSCRIBE_PRESENCE:
                await backend.subscribe_presence(protocol.arg_user_jid(args))
                return None
            case Command.CONTACTS:
                return _records(await backend.contacts(), Contact.from_payload)
            case Command.GROUPS:
                return _records(await backend.groups(), Group.from_payload)
            case Command.GROUP_PARTICIPANTS:
                members = await backend.group_participants(protocol.arg_group_jid(args))
                return _records(members, Contact.from_payload)
            case Command.RESOLVE:
                return await self._resolve(protocol.arg_phones(args))
            case _:
                return await backend.command(command, args)

    async def _resolve(self, queries: list[str]) -> list[JSON]:
        """Normalise each query; the backend sees valid, distinct digits only."""
        digits: dict[str, str | None] = {}
        for query in queries:
            try:
                digits[query] = protocol.normalize_phone(query)
            except BridgeError:
                digits[query] = None
        wanted = list(dict.fromkeys(d for d in digits.values() if d is not None))
        answers = await self.backend.resolve(wanted) if wanted else []
        by_digits = {str(item.get("query")): item for item in answers}
        results: list[JSON] = []
        for query in queries:
            found = by_digits.get(digits[query] or "")
            on_whatsapp = bool(found and found.get("on_whatsapp") and found.get("jid"))
            jid = found.get("jid") if found and on_whatsapp else None
            results.append(
                Resolution(query, on_whatsapp, None if jid is None else str(jid)).to_payload()
            )
        return results


def _records[T: (Contact, Group)](
    items: list[dict[str, Any]], decode: Callable[[Mapping[str, object]], T]
) -> list[JSON]:
    """A backend's list, checked against the protocol's record and sent as that record says."""
    with _backend_contract("list"):
        return [record.to_payload() for record in protocol.decode_list(items, decode, "the answer")]


@contextlib.contextmanager
def _backend_contract(what: str) -> Iterator[None]:
    """A backend answer of the wrong shape is the bridge's bug (``internal``), not the client's."""
    try:
        yield
    except MalformedPayloadError as err:
        _LOGGER.error("The backend answered a %s of the wrong shape: %s", what, err.message)
        raise BridgeError(ErrorCode.INTERNAL, "internal bridge error") from None
