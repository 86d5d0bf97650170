"""The real client against the real server on loopback, simulator backend."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from custom_components.whatsapp_presence.bridge import protocol
from custom_components.whatsapp_presence.bridge.client import (
    BridgeAuthError,
    BridgeClient,
    BridgeConnectionError,
    BridgeError,
    ProtocolError,
)
from custom_components.whatsapp_presence.bridge.protocol import ErrorCode, Hello
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend

from .common import TOKEN, ClientFactory, StartBridge, call


async def _contact(client: BridgeClient, **wanted: Any) -> dict[str, Any]:
    """First simulated contact with the given hidden properties."""
    contacts: list[dict[str, Any]] = await call(client, "sim.contacts")
    for contact in contacts:
        if all(contact[key] == value for key, value in wanted.items()):
            return contact
    raise AssertionError(f"no contact with {wanted}")


async def test_hello_reports_protocol_backend_and_status(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    client = make_client(server.url)
    hello = await client.connect()
    assert isinstance(hello, Hello)
    assert hello.protocol == protocol.PROTOCOL_VERSION
    assert hello.backend == "simulator"
    assert hello.status.paired is True
    assert hello.status.connected is True
    assert hello.status.account is not None
    assert hello.status.account.jid == "12025550100@s.whatsapp.net"
    assert client.connected
    assert server.client_count == 1


async def test_wrong_token_is_refused(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    client = make_client(server.url, token="not-the-token")
    with pytest.raises(BridgeAuthError) as err:
        await client.connect()
    assert err.value.code == ErrorCode.UNAUTHORIZED
    assert not client.connected
    assert server.client_count == 0
    # The server is unharmed: the right token still works.
    good = make_client(server.url)
    assert (await good.connect()).backend == "simulator"


async def test_wrong_token_closes_the_socket(
    start_bridge: StartBridge, session: aiohttp.ClientSession
) -> None:
    server = await start_bridge()
    async with session.ws_connect(server.url) as ws:
        await ws.send_str(json.dumps({"type": "auth", "token": TOKEN + "x"}))
        answer = await ws.receive_json()
        assert answer == {
            "type": "error",
            "id": None,
            "code": "unauthorized",
            "message": "wrong token",
        }
        closing = await ws.receive()
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == protocol.CLOSE_UNAUTHORIZED


async def test_request_before_auth_is_refused(
    start_bridge: StartBridge, session: aiohttp.ClientSession
) -> None:
    server = await start_bridge()
    async with session.ws_connect(server.url) as ws:
        await ws.send_str(json.dumps({"type": "request", "id": 1, "command": "status"}))
        answer = await ws.receive_json()
        assert answer["code"] == "unauthorized"
        assert answer["id"] == 1
        assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE


async def test_unreachable_bridge_raises_connection_error(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    url = server.url
    await server.stop()
    client = make_client(url)
    with pytest.raises(BridgeConnectionError) as err:
        await client.connect()
    assert err.value.code == ErrorCode.NOT_CONNECTED


# --- pairing ---------------------------------------------------------------------------


async def test_qr_pairing_rotates_codes_then_times_out(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge(paired=False)
    client = make_client(server.url)
    hello = await client.connect()
    assert hello.status.paired is False
    events = client.events  # type: ignore[attr-defined]
    await client.pair_qr()
    assert (await client.status()).pairing == "qr"
    first = events.named("qr")
    assert len(first) == 1
    assert first[0]["expires_in"] == 60
    assert first[0]["code"].startswith("2@")
    await call(client, "sim.advance", seconds=59.9)
    assert len(events.named("qr")) == 1
    await call(client, "sim.advance", seconds=0.1)
    assert [qr["expires_in"] for qr in events.named("qr")] == [60, 20]
    await call(client, "sim.advance", seconds=80)  # t = 140: codes 3..6 (80, 100, 120, 140)
    assert len(events.named("qr")) == 6
    assert events.named("pairing_failed") == []
    await call(client, "sim.advance", seconds=20)  # t = 160: the sixth expires
    codes = [qr["code"] for qr in events.named("qr")]
    assert len(codes) == 6
    assert len(set(codes)) == 6
    assert events.named("pairing_failed") == [{"reason": "timeout"}]
    assert (await client.status()).pairing is None


async def test_qr_pairing_completes_after_the_set_delay(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge(paired=False, pairing_delay=5.0, connect_delay=1.0)
    client = make_client(server.url)
    await client.connect()
    events = client.events  # type: ignore[attr-defined]
    await client.pair_qr()
    with pytest.raises(BridgeError) as err:
        await client.pair_qr()
    assert err.value.code == ErrorCode.BUSY
    await call(client, "sim.advance", seconds=4.9)
    assert events.named("paired") == []
    await call(client, "sim.advance", seconds=0.1)
    assert events.named("paired") == [
        {"jid": "12025550100@s.whatsapp.net", "phone": "12025550100", "push_name": "Sam Demo"}
    ]
    assert events.named("connected") == []
    await call(client, "sim.advance", seconds=1.0)
    assert events.named("connected") == [
        {"jid": "12025550100@s.whatsapp.net", "phone": "12025550100"}
    ]
    status = await client.status()
    assert status.paired is True
    assert status.connected is True
    assert status.pairing is None
    # No more QR codes once paired.
    await call(client, "sim.advance", seconds=200)
    assert len(events.named("qr")) == 1
    with pytest.raises(BridgeError) as err:
        await client.pair_qr()
    assert err.value.code == ErrorCode.ALREADY_LOGGED_IN


async def test_phone_pairing_returns_a_code_and_pairs_that_number(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge(paired=False)
    client = make_client(server.url)
    await client.connect()
    events = client.events  # type: ignore[attr-defined]
    with pytest.raises(BridgeError) as err:
        await client.pair_phone("0123")
    assert err.value.code == ErrorCode.INVALID_ARGUMENT
    code = await client.pair_phone("+1 (312) 555-0142")
    assert len(code.replace("-", "")) == 8
    assert code[4] == "-"
    assert all(ch in "123456789ABCDEFGHJKLMNPQRSTVWXYZ" for ch in code.replace("-", ""))
    assert (await client.status()).pairing == "phone"
    account = await call(client, "sim.complete_pairing", push_name="Kim")
    assert account == {
        "jid": "13125550142@s.whatsapp.net",
        "phone": "13125550142",
        "push_name": "Kim",
    }
    assert events.named("paired") == [account]
    assert events.named("connected") == [{"jid": account["jid"], "phone": "13125550142"}]
    assert events.named("qr") == []


async def test_cancel_pairing_and_logout(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge(paired=False)
    client = make_client(server.url)
    await client.connect()
    events = client.events  # type: ignore[attr-defined]
    with pytest.raises(BridgeError) as err:
        await client.logout()
    assert err.value.code == ErrorCode.NOT_LOGGED_IN
    with pytest.raises(BridgeError) as err:
        await client.contacts()
    assert err.value.code == ErrorCode.NOT_LOGGED_IN
    await client.pair_qr()
    await client.cancel_pairing()
    assert events.named("pairing_failed") == [{"reason": "cancelled"}]
    await call(client, "sim.advance", seconds=300)
    assert len(events.named("qr")) == 1
    await client.pair_qr()
    await call(client, "sim.complete_pairing")
    await client.logout()
    assert events.named("logged_out") == [{"reason": "logout", "on_connect": False}]
    status = await client.status()
    assert (status.paired, status.connected, status.account) == (False, False, None)


# --- presence --------------------------------------------------------------------------


async def test_subscribe_gives_current_presence_then_changes(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    client = make_client(server.url)
    await client.connect()
    events = client.events  # type: ignore[attr-defined]
    contact = await _contact(
        client, unresponsive=False, hides_last_seen=False, lid=None, online=False
    )
    await client.set_available(True)
    await client.subscribe_presence(contact["jid"])
    first = await events.wait("presence")
    assert first == {
        "jid": contact["jid"],
        "lid": None,
        "online": False,
        "last_seen": int(contact["last_seen"]),
        "at": 1_800_000_000.0,
    }
    assert first["last_seen"] < 1_800_000_000
    await call(client, "sim.advance", seconds=30)
    answer = await call(client, "sim.set_presence", jid=contact["jid"], online=True)
    assert answer == {"delivered": True}
    online = events.named("presence")[-1]
    assert (online["online"], online["last_seen"], online["at"]) == (True, None, 1_800_000_030.0)
    await call(client, "sim.advance", seconds=10)
    await call(client, "sim.set_presence", jid=contact["jid"], online=False)
    offline = events.named("presence")[-1]
    assert (offline["online"], offline["last_seen"]) == (False, 1_800_000_040)


async def test_presence_needs_availability_and_a_subscription(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    client = make_client(server.url)
    await client.connect()
    events = client.events  # type: ignore[attr-defined]
    contact = await _contact(client, unresponsive=False)
    await client.subscribe_presence(contact["jid"])  # not available yet
    toggled = await call(client, "sim.set_presence", jid=contact["jid"], online=True)
    assert toggled == {"delivered": False}
    await client.set_available(True)
    other = await _contact(client, unresponsive=False, subscribed=False)
    assert (await call(client, "sim.set_presence", jid=other["jid"], online=True)) == {
        "delivered": False
    }
    assert (await call(client, "sim.set_presence", jid=contact["jid"], online=False)) == {
        "delivered": True
    }
    assert [event["jid"] for event in events.named("presence")] == [contact["jid"]]


async def test_hidden_last_seen_lid_and_unresponsive_contacts(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge(
        hidden_last_seen_fraction=0.5, lid_fraction=0.5, unresponsive_fraction=0.3
    )
    client = make_client(server.url)
    await client.connect()
    events = client.events  # type: ignore[attr-defined]
    hidden = await _contact(client, hides_last_seen=True, unresponsive=False)
    lid = await _contact(client, unresponsive=False, hides_last_seen=False)
    lid = next(
        c
        for c in await call(client, "sim.contacts")
        if c["lid"] and not c["unresponsive"] and c["jid"] != hidden["jid"]
    )
    mute = await _contact(client, unresponsive=True)
    await client.set_available(True)
    for jid in (hidden["jid"], lid["jid"], mute["jid"]):
        await call(client, "sim.set_presence", jid=jid, online=False, last_seen=1_799_999_000)
        await client.subscribe_presence(jid)
    by_jid = {event["jid"]: event for event in events.named("presence")}
    assert set(by_jid) == {hidden["jid"], lid["jid"]}
    assert by_jid[hidden["jid"]]["last_seen"] is None
    assert by_jid[lid["jid"]]["lid"] == lid["lid"]
    assert by_jid[lid["jid"]]["lid"].endswith("@lid")
    assert by_jid[lid["jid"]]["jid"].endswith("@s.whatsapp.net")


async def test_disconnect_loses_subscriptions_and_availability(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    client = make_client(server.url)
    await client.connect()
    events = client.events  # type: ignore[attr-defined]
    contact = await _contact(client, unresponsive=False)
    await client.set_available(True)
    await client.subscribe_presence(contact["jid"])
    await call(client, "sim.disconnect", reconnect_after=5)
    assert events.named("disconnected") == [{"reason": "network"}]
    with pytest.raises(BridgeError) as err:
        await client.subscribe_presence(contact["jid"])
    assert err.value.code == ErrorCode.NOT_CONNECTED
    await call(client, "sim.advance", seconds=5)
    assert len(events.named("connected")) == 1
    assert (await client.status()).available is False
    assert (await call(client, "sim.set_presence", jid=contact["jid"], online=True)) == {
        "delivered": False
    }
    await client.set_available(True)
    mark = events.mark()
    await client.subscribe_presence(contact["jid"])
    assert events.named("presence", after=mark)[0]["online"] is True


async def test_subscription_ceiling_is_silent_then_bans(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge(
        sub_ceiling=5, sub_window=60, ban_threshold=3, ban_window=600, ban_duration=100
    )
    client = make_client(server.url)
    await client.connect()
    events = client.events  # type: ignore[attr-defined]
    await client.set_available(True)
    contacts = [c for c in await call(client, "sim.contacts") if not c["unresponsive"]]
    for contact in contacts[:5]:
        await client.subscribe_presence(contact["jid"])
    assert len(events.named("presence")) == 5
    await client.subscribe_presence(contacts[5]["jid"])  # over the ceiling: silently ignored
    await client.subscribe_presence(contacts[6]["jid"])
    assert len(events.named("presence")) == 5
    stats = await call(client, "sim.stats")
    assert stats["ceiling_hits"] == 2
    assert stats["ignored"] == {contacts[5]["jid"]: 1, contacts[6]["jid"]: 1}
    assert contacts[5]["jid"] not in stats["subscribed"]
    assert stats["bans"] == 0
    await client.subscribe_presence(contacts[7]["jid"])  # third ignored one: banned
    assert events.named("temporary_ban") == [
        {"code": 101, "expires_in": 100.0, "expires_at": 1_800_000_100.0}
    ]
    assert events.named("disconnected")[-1] == {"reason": "temporary_ban"}
    with pytest.raises(BridgeError) as err:
        await client.subscribe_presence(contacts[0]["jid"])
    assert err.value.code == ErrorCode.TEMPORARILY_BANNED
    status = await client.status()
    assert status.connected is False
    assert status.ban is not None
    assert status.ban.to_payload() == {
        "expires_at": 1_800_000_100.0,
        "expires_in": 100.0,
    }
    await call(client, "sim.advance", seconds=100 + 2)  # ban, then the reconnect delay
    assert (await client.status()).connected is True
    assert (await call(client, "sim.stats"))["bans"] == 1


async def test_the_ceiling_window_rolls(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge(sub_ceiling=2, sub_window=60, ban_threshold=0)
    client = make_client(server.url)
    await client.connect()
    contacts = await call(client, "sim.contacts")
    for contact in contacts[:3]:
        await client.subscribe_presence(contact["jid"])
    assert (await call(client, "sim.stats"))["ceiling_hits"] == 1
    await call(client, "sim.advance", seconds=60)
    await client.subscribe_presence(contacts[2]["jid"])
    stats = await call(client, "sim.stats")
    assert stats["ceiling_hits"] == 1
    assert contacts[2]["jid"] in stats["subscribed"]
    assert stats["subscriptions"][contacts[2]["jid"]] == 2


async def test_directory_commands(start_bridge: StartBridge, make_client: ClientFactory) -> None:
    server = await start_bridge(query_limit=3, query_window=60)
    client = make_client(server.url)
    await client.connect()
    contacts = await client.contacts()
    assert len(contacts) == 12
    assert all(set(c.to_payload()) == {"jid", "phone", "name"} for c in contacts)
    assert all(c.jid == f"{c.phone}@s.whatsapp.net" for c in contacts)
    assert all(c.phone[4:9] == "55501" for c in contacts)  # fictional +1 NPA 555-01xx
    groups = await client.groups()
    assert len(groups) == 3
    members = await client.group_participants(groups[0].jid)
    assert len(members) == groups[0].participants
    assert members[0].jid == "12025550100@s.whatsapp.net"
    stranger = next(m for m in members if m.name is None)
    resolved = await client.resolve([contacts[0].phone, "+" + stranger.phone, "19995550100"])
    assert [r.to_payload() for r in resolved] == [
        {"query": contacts[0].phone, "on_whatsapp": True, "jid": contacts[0].jid},
        {"query": "+" + stranger.phone, "on_whatsapp": True, "jid": stranger.jid},
        {"query": "19995550100", "on_whatsapp": False, "jid": None},
    ]
    with pytest.raises(BridgeError) as err:  # the fourth query in the window: WhatsApp's 429
        await client.groups()
    assert err.value.code == ErrorCode.RATE_LIMITED
    await call(client, "sim.advance", seconds=60)
    assert len(await client.groups()) == 3
    with pytest.raises(BridgeError) as err:
        await client.group_participants("12345@g.us")
    assert err.value.code == ErrorCode.INVALID_ARGUMENT


async def test_lifecycle_events(start_bridge: StartBridge, make_client: ClientFactory) -> None:
    server = await start_bridge()
    client = make_client(server.url)
    await client.connect()
    events = client.events  # type: ignore[attr-defined]
    await call(client, "sim.stream_replaced")
    assert [name for name, _ in events.items] == ["stream_replaced", "disconnected"]
    await call(client, "sim.connect")
    await call(client, "sim.client_outdated")
    assert events.named("client_outdated") == [{}]
    await call(client, "sim.connect")
    await call(client, "sim.logout", reason="unlinked", on_connect=True)
    assert events.named("logged_out") == [{"reason": "unlinked", "on_connect": True}]
    with pytest.raises(BridgeError) as err:
        await call(client, "sim.connect")
    assert err.value.code == ErrorCode.NOT_LOGGED_IN


async def test_every_client_gets_every_event(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    first, second = make_client(server.url), make_client(server.url)
    await first.connect()
    await second.connect()
    assert server.client_count == 2
    await call(first, "sim.disconnect", reconnect_after=None)
    await call(second, "ping")  # the event precedes this answer on the second link too
    for client in (first, second):
        assert client.events.named("disconnected") == [{"reason": "network"}]  # type: ignore[attr-defined]


# --- robustness ----------------------------------------------------------------------------


async def _raw(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url)
    await ws.send_str(json.dumps({"type": "auth", "token": TOKEN}))
    hello = await ws.receive_json()
    assert hello["type"] == "hello"
    return ws


async def test_malformed_frames_get_typed_errors(
    start_bridge: StartBridge, session: aiohttp.ClientSession
) -> None:
    server = await start_bridge()
    ws = await _raw(session, server.url)
    cases: list[tuple[str | bytes, Any, str]] = [
        ("not json", None, "invalid_message"),
        ("[1, 2]", None, "invalid_message"),
        ('"text"', None, "invalid_message"),
        ('{"type": "request", "args": {}}', None, "invalid_message"),
        ('{"type": "request", "id": 5}', 5, "invalid_message"),
        ('{"type": "request", "id": true, "command": "status"}', None, "invalid_message"),
        ('{"type": "request", "id": -1, "command": "status"}', None, "invalid_message"),
        ('{"type": "request", "id": 6, "command": "nope"}', 6, "unknown_command"),
        ('{"type": "request", "id": "s7", "command": "status", "args": [1]}', "s7", "invalid_argument"),
        ('{"type": "request", "id": 8, "command": "subscribe_presence", "args": {"jid": "x"}}', 8, "invalid_argument"),
        ('{"type": "request", "id": 9, "command": "set_available", "args": {"available": "yes"}}', 9, "invalid_argument"),
        ('{"type": "request", "id": 10, "command": "resolve", "args": {"phones": []}}', 10, "invalid_argument"),
        ('{"type": "request", "id": 11, "command": "sim.advance", "args": {"seconds": 1e400}}', 11, "invalid_argument"),
        ('{"type": "request", "id": 12, "command": "sim.set_presence", "args": {"jid": "15550100@s.whatsapp.net", "online": true}}', 12, "invalid_argument"),
        ('{"type": "bogus", "id": 13}', 13, "invalid_message"),
        ('{"type": "request", "id": "\\udc80", "command": "nope"}', "\udc80", "unknown_command"),
        ('{"type": "auth", "token": "again"}', None, "invalid_message"),
        ('{"type": "request", "id": 14, "command": "status", "args": {"x": NaN}}', None, "invalid_message"),
        (b"\x00\x01binary", None, "invalid_message"),
    ]  # fmt: skip
    for frame, req_id, code in cases:
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)
        answer = await ws.receive_json()
        assert answer["type"] == "error", frame
        assert (answer["id"], answer["code"]) == (req_id, code), frame
        assert isinstance(answer["message"], str)
        assert answer["message"]
    await ws.send_str(json.dumps({"type": "request", "id": 99, "command": "status"}))
    answer = await ws.receive_json()
    assert answer["type"] == "result"
    assert answer["id"] == 99
    assert answer["result"]["connected"] is True
    await ws.close()


async def test_oversized_frames(start_bridge: StartBridge, session: aiohttp.ClientSession) -> None:
    server = await start_bridge(server_options={"max_message_bytes": 1024})
    ws = await _raw(session, server.url)
    big = json.dumps({"type": "request", "id": 1, "command": "ping", "pad": "x" * 1100})
    await ws.send_str(big)
    answer = await ws.receive_json()
    assert (answer["type"], answer["id"], answer["code"]) == ("error", None, "message_too_large")
    await ws.send_str(json.dumps({"type": "request", "id": 2, "command": "ping"}))
    assert (await ws.receive_json()) == {"type": "result", "id": 2, "result": {}}
    # Far beyond the limit aiohttp drops the socket (1009) without reading it all...
    await ws.send_str("y" * 1024 * 17)
    msg = await ws.receive()
    assert msg.type == aiohttp.WSMsgType.CLOSE
    assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    # ...and the server carries on.
    again = await _raw(session, server.url)
    await again.send_str(json.dumps({"type": "request", "id": 3, "command": "ping"}))
    assert (await again.receive_json())["type"] == "result"
    await again.close()


async def test_a_client_that_does_not_read_is_dropped(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge(server_options={"send_queue_size": 4})
    lagging = make_client(server.url)
    await lagging.connect()
    steady = make_client(server.url)
    await steady.connect()
    # Emit faster than any writer can drain (no await in between): the queues overflow.
    for index in range(10):
        server.emit("test_event", {"index": index})
    # Both overflowed in this burst; each is closed with 4004 and reconnects later.
    changes: asyncio.Queue[bool] = asyncio.Queue()
    lagging._on_connection_change = changes.put_nowait
    assert await changes.get() is False
    assert server.client_count <= 1


async def test_request_timeout_and_drop_fail_pending_requests(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    backend = server.backend
    assert isinstance(backend, SimulatorBackend)
    never = asyncio.Event()

    async def hang(name: str, args: dict[str, Any]) -> Any:
        if name == "test.hang":
            await never.wait()
        return await SimulatorBackend.command(backend, name, args)

    backend.command = hang  # type: ignore[method-assign]
    client = make_client(server.url, request_timeout=0.05)
    await client.connect()
    with pytest.raises(BridgeError) as err:
        await call(client, "test.hang")
    assert err.value.code == ErrorCode.TIMEOUT
    assert "test.hang" in err.value.message
    # The link is still fine after a timeout.
    assert (await client.status()).connected is True
    # A request in flight when the link drops fails at once with a connection error.
    client.request_timeout = 30
    pending = asyncio.create_task(call(client, "test.hang"))
    await call(client, "ping")  # the hang request has reached the server before this answer
    await server.stop()
    with pytest.raises(BridgeConnectionError):
        await pending
    with pytest.raises(BridgeConnectionError):
        await client.status()
    await client.close()


async def test_client_ignores_unknown_frames_and_forwards_unknown_events(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    client = make_client(server.url)
    await client.connect()
    client._handle('{"type": "from_the_future", "x": 1}')
    # An unknown frame type is a newer bridge; a frame that does not decode is a broken one.
    with pytest.raises(ProtocolError):
        client._handle("garbage")
    client._handle('{"type": "result", "id": 12345, "result": 1}')
    client._handle('{"type": "event", "event": 5, "data": {}}')
    server.emit("new_kind_of_event", {"a": 1, "extra": [1, 2]})
    data = await client.events.wait("new_kind_of_event")  # type: ignore[attr-defined]
    assert data == {"a": 1, "extra": [1, 2]}
    assert (await client.status()).paired is True


# --- reconnect ---------------------------------------------------------------------------


async def test_client_reconnects_with_backoff_after_the_server_restarts(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    port = server.port
    delays: list[float] = []
    gate = asyncio.Event()
    fourth_wait = asyncio.Event()
    changes: asyncio.Queue[bool] = asyncio.Queue()

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) > 3:  # three failed attempts against the stopped server first
            fourth_wait.set()
            await gate.wait()

    client = make_client(
        server.url,
        sleep=fake_sleep,
        jitter=lambda delay: delay,
        backoff_initial=1.0,
        backoff_factor=2.0,
        backoff_max=5.0,
    )
    client._on_connection_change = changes.put_nowait
    await client.connect()
    await server.stop()
    assert await changes.get() is False
    assert not client.connected
    with pytest.raises(BridgeConnectionError):
        await client.status()
    await fourth_wait.wait()
    assert delays == [1.0, 2.0, 4.0, 5.0]
    restarted = await start_bridge(port=port, paired=False)
    gate.set()
    assert await changes.get() is True
    assert client.connected
    assert changes.empty()  # one reconnect: down once, up once
    assert (await client.status()).paired is False
    assert restarted.client_count == 1


async def test_close_during_backoff_leaves_no_task(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    sleeping = asyncio.Event()

    async def fake_sleep(delay: float) -> None:
        sleeping.set()
        await asyncio.Event().wait()

    client = make_client(server.url, sleep=fake_sleep)
    await client.connect()
    await server.stop()
    await sleeping.wait()
    await client.close()
    assert not client.connected
    assert [t for t in asyncio.all_tasks() if t.get_name() == "whatsapp bridge client"] == []
    with pytest.raises(BridgeConnectionError):
        await call(client, "ping")


async def test_keepalive_drops_a_link_that_stops_answering(
    start_bridge: StartBridge, make_client: ClientFactory
) -> None:
    server = await start_bridge()
    never = asyncio.Event()
    dispatch = server._dispatch

    async def deaf(command: str, args: dict[str, Any]) -> Any:
        if command == "ping":  # the bridge looks alive on TCP but answers nothing
            await never.wait()
        return await dispatch(command, args)

    server._dispatch = deaf  # type: ignore[method-assign]
    changes: asyncio.Queue[bool] = asyncio.Queue()
    gate = asyncio.Event()

    async def held_sleep(delay: float) -> None:
        await gate.wait()

    client = make_client(server.url, heartbeat=0.01, request_timeout=0.05, sleep=held_sleep)
    client._on_connection_change = changes.put_nowait
    await client.connect()
    assert await changes.get() is False  # ping unanswered: link closed, reconnect pending
    assert not client.connected
    server._dispatch = dispatch  # type: ignore[method-assign]
    gate.set()
    assert await changes.get() is True
    assert (await client.status()).connected is True


async def test_reconnecting_stops_when_the_http_session_is_closed(
    start_bridge: StartBridge,
) -> None:
    server = await start_bridge()
    own_session = aiohttp.ClientSession()
    slept = asyncio.Event()

    async def fake_sleep(delay: float) -> None:
        slept.set()

    changes: list[bool] = []
    client = BridgeClient(
        server.url,
        TOKEN,
        session=own_session,
        on_event=lambda _event: None,
        on_connection_change=changes.append,
        sleep=fake_sleep,
    )
    await client.connect()
    await own_session.close()  # e.g. Home Assistant shutting down first
    await slept.wait()
    task = client._task
    assert task is not None
    await task  # ends by itself instead of spinning
    assert changes == [False]
    await client.close()


async def test_client_limit_and_auth_timeout(
    start_bridge: StartBridge, make_client: ClientFactory, session: aiohttp.ClientSession
) -> None:
    server = await start_bridge(server_options={"max_clients": 1, "auth_timeout": 0.05})
    first = make_client(server.url)
    await first.connect()
    second = make_client(server.url)
    with pytest.raises(BridgeError) as err:
        await second.connect()
    assert err.value.code == ErrorCode.BUSY
    async with session.ws_connect(server.url) as ws:  # says nothing
        answer = await ws.receive_json()
        assert answer["code"] == "unauthorized"
        assert (await ws.receive()).type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == protocol.CLOSE_AUTH_TIMEOUT
    assert server.client_count == 1
    assert (await first.status()).connected is True
