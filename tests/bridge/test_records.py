"""The protocol's typed records: what the server sends decodes to the same record in the client,
and a payload of the wrong shape is refused at the edge (a malformed event is dropped there,
and the link and the events after it carry on)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
import json
import logging
from typing import Any

import aiohttp
import pytest

from custom_components.whatsapp_presence.bridge import protocol
from custom_components.whatsapp_presence.bridge.client import BridgeClient
from custom_components.whatsapp_presence.bridge.protocol import (
    MAX_TIMESTAMP,
    Account,
    Ban,
    BridgeError,
    BridgeEvent,
    ClientOutdated,
    Connected,
    Contact,
    Disconnected,
    ErrorCode,
    Event,
    Group,
    Hello,
    LoggedOut,
    MalformedPayloadError,
    Paired,
    PairingFailed,
    PhoneCode,
    Presence,
    QrCode,
    Resolution,
    Status,
    StreamReplaced,
    TemporaryBan,
    UnknownEvent,
)
from custom_components.whatsapp_presence.bridge.server import BridgeServer
from custom_components.whatsapp_presence.bridge.simulator import SimulatorBackend

from .common import SCRIPTED, TOKEN, StartBridge, call

JID = "15550100001@s.whatsapp.net"
AT = 1_800_000_000.5

ACCOUNT = Account("12025550100@s.whatsapp.net", "12025550100", "Sam")
STATUS = Status(
    paired=True,
    connected=True,
    pairing=None,
    account=ACCOUNT,
    available=False,
    ban=Ban(AT + 60, 60.0, 101),
)
RECORDS: list[Any] = [
    ACCOUNT,
    Account(JID, "15550100001", None),
    Ban(AT, 3600),
    STATUS,
    Status(paired=False, connected=False),
    Hello(1, "simulator", STATUS, 65536),
    Hello(1, "hostile", Status(paired=True, connected=True)),
    Contact(JID, "15550100001", "Ana"),
    Contact(JID, "15550100001", None),
    Group("120363025246125888@g.us", "Climbing", 12),
    Group("120363025246125888@g.us", None, 0),
    Resolution("+1 555 0100 001", True, JID),
    Resolution("0123", False, None),
    PhoneCode("ABCD1234"),
]
EVENTS: list[BridgeEvent] = [
    QrCode("2@abc", 60.0),
    Paired(JID, "15550100001", "Sam"),
    Paired("not-a-jid", None, None),
    PairingFailed("passkey_required"),
    Connected(JID, "15550100001"),
    Connected(None, None),
    Disconnected("keepalive_timeout"),
    LoggedOut("account_banned", on_connect=True),
    Presence(JID, None, online=True, last_seen=None, at=AT),
    Presence(JID, "123456789@lid", online=False, last_seen=1_799_999_000, at=AT),
    TemporaryBan(101, 3600.0, AT + 3600),
    TemporaryBan("unknown", 86400),
    StreamReplaced(),
    ClientOutdated(),
]


def _wire(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Through the frame encoder and back, as the client reads it."""
    decoded: dict[str, Any] = json.loads(protocol.encode(dict(payload)))
    return decoded


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_records_round_trip(record: Any) -> None:
    """What the server builds from a record decodes to that record."""
    assert type(record).from_payload(_wire(record.to_payload())) == record


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: str(e.name))
def test_events_round_trip(event: BridgeEvent) -> None:
    """Each event, sent by name with its payload, decodes to the same record."""
    assert protocol.decode_event(str(event.name), _wire(event.to_payload())) == event


def test_every_event_has_a_record() -> None:
    """The protocol's every event name has a typed record, and each is round-tripped above."""
    assert {str(event.name) for event in EVENTS} == {str(name) for name in Event}
    assert not any(isinstance(event, UnknownEvent) for event in EVENTS)


def test_unknown_events_pass_through() -> None:
    """A newer bridge's event is passed on as it came (an older client keeps working)."""
    event = protocol.decode_event("new_kind", {"a": 1, "extra": [1, 2]})
    assert event == UnknownEvent("new_kind", {"a": 1, "extra": [1, 2]})
    assert event.to_payload() == {"a": 1, "extra": [1, 2]}


GOOD_PRESENCE: dict[str, Any] = {
    "jid": JID,
    "lid": None,
    "online": True,
    "last_seen": None,
    "at": AT,
}

MALFORMED: list[tuple[Callable[[Mapping[str, object]], object], dict[str, Any], str]] = [
    # missing keys
    (Presence.from_payload, {k: v for k, v in GOOD_PRESENCE.items() if k != "at"}, "at is missing"),
    (Presence.from_payload, {"online": True, "at": AT}, "jid is missing"),
    (Status.from_payload, {"connected": True}, "paired is missing"),
    (Contact.from_payload, {"jid": JID, "phone": "15550100001"}, "name is missing"),
    (Hello.from_payload, {"protocol": 1, "backend": "simulator"}, "status is missing"),
    # wrong types
    (Presence.from_payload, {**GOOD_PRESENCE, "at": "soon"}, "at must be a number"),
    (Presence.from_payload, {**GOOD_PRESENCE, "last_seen": []}, "last_seen must be a number"),
    (Presence.from_payload, {**GOOD_PRESENCE, "jid": 15550100001}, "phone-number JID"),
    (Presence.from_payload, {**GOOD_PRESENCE, "jid": "123456789@lid"}, "phone-number JID"),
    (Presence.from_payload, {**GOOD_PRESENCE, "lid": 5}, "lid must be a string"),
    (QrCode.from_payload, {"code": None, "expires_in": 60}, "code must be a string"),
    (Status.from_payload, {"paired": True, "connected": True, "account": "me"}, "account must"),
    (Status.from_payload, {"paired": True, "connected": True, "ban": [1]}, "ban must be"),
    (Group.from_payload, {"jid": "1@g.us", "name": "x", "participants": "12"}, "participants"),
    (Resolution.from_payload, {"query": "1", "on_whatsapp": "yes", "jid": None}, "on_whatsapp"),
    # bools are not numbers, numbers are not bools
    (Presence.from_payload, {**GOOD_PRESENCE, "online": 1}, "online must be true or false"),
    (Presence.from_payload, {**GOOD_PRESENCE, "at": True}, "at must be a number"),
    (Status.from_payload, {"paired": 1, "connected": True}, "paired must be true or false"),
    (Group.from_payload, {"jid": "1@g.us", "name": None, "participants": True}, "participants"),
    (Hello.from_payload, {"protocol": True, "backend": "b", "status": {}}, "protocol must be"),
    # non-finite, negative and overflowing timestamps
    (Presence.from_payload, {**GOOD_PRESENCE, "at": float("nan")}, "at is out of range"),
    (Presence.from_payload, {**GOOD_PRESENCE, "at": float("inf")}, "at is out of range"),
    (Presence.from_payload, {**GOOD_PRESENCE, "at": -1}, "at is out of range"),
    (Presence.from_payload, {**GOOD_PRESENCE, "at": 1e300}, "at is out of range"),
    (Presence.from_payload, {**GOOD_PRESENCE, "at": MAX_TIMESTAMP + 1}, "at is out of range"),
    (Presence.from_payload, {**GOOD_PRESENCE, "last_seen": 10**400}, "last_seen is out of range"),
    (
        Presence.from_payload,
        {**GOOD_PRESENCE, "last_seen": float("-inf")},
        "last_seen is out of range",
    ),
    (QrCode.from_payload, {"code": "2@x", "expires_in": -5}, "expires_in is out of range"),
]


@pytest.mark.parametrize(("decode", "payload", "reason"), MALFORMED, ids=[m[2] for m in MALFORMED])
def test_malformed_payloads_are_refused(
    decode: Callable[[Mapping[str, object]], object], payload: dict[str, Any], reason: str
) -> None:
    """The protocol's own error, naming the field and never echoing its value."""
    with pytest.raises(MalformedPayloadError, match=reason) as err:
        decode(payload)
    assert err.value.code == ErrorCode.INVALID_MESSAGE
    assert "15550100001" not in err.value.message


# A connection-state event always arrives: its details fall back to their defaults. (These
# payloads were refused before, and the disconnect or logout with them was lost.)
TOLERATED: list[tuple[Callable[[Mapping[str, object]], object], dict[str, Any], object]] = [
    (Disconnected.from_payload, {}, Disconnected("unknown")),
    (Disconnected.from_payload, {"reason": None}, Disconnected("unknown")),
    (Disconnected.from_payload, {"reason": 3}, Disconnected("unknown")),
    (LoggedOut.from_payload, {}, LoggedOut("unknown", on_connect=False)),
    (LoggedOut.from_payload, {"reason": "logout"}, LoggedOut("logout", on_connect=False)),
    (LoggedOut.from_payload, {"reason": "x", "on_connect": 0}, LoggedOut("x", on_connect=False)),
    (LoggedOut.from_payload, {"reason": ["x"], "on_connect": True}, LoggedOut("unknown", True)),
    (Connected.from_payload, {}, Connected(None, None)),
    (Connected.from_payload, {"jid": 5, "phone": ["1"]}, Connected(None, None)),
    (TemporaryBan.from_payload, {}, TemporaryBan()),
    (TemporaryBan.from_payload, {"code": [101], "expires_in": 60}, TemporaryBan(None, 60)),
    (TemporaryBan.from_payload, {"code": True, "expires_in": 60}, TemporaryBan(None, 60)),
    (
        TemporaryBan.from_payload,
        {"code": 1, "expires_in": float("nan"), "expires_at": AT},
        TemporaryBan(1, None, AT),
    ),
    (
        TemporaryBan.from_payload,
        {"code": 1, "expires_in": 60, "expires_at": 10**20},
        TemporaryBan(1, 60, None),
    ),
]


@pytest.mark.parametrize(("decode", "payload", "record"), TOLERATED)
def test_connection_state_events_are_never_refused(
    decode: Callable[[Mapping[str, object]], object], payload: dict[str, Any], record: object
) -> None:
    """A missing or malformed detail becomes its default; the state change still arrives."""
    assert decode(payload) == record


def test_unknown_ban_details_are_left_out_on_the_wire() -> None:
    """What a backend does not know is not sent as null."""
    assert TemporaryBan().to_payload() == {}
    assert TemporaryBan(101, 60.0).to_payload() == {"code": 101, "expires_in": 60.0}


def test_lists_refuse_one_bad_item() -> None:
    """One malformed item refuses the whole answer: nothing half-decoded goes on."""
    good = Contact(JID, "15550100001", "Ana").to_payload()
    assert protocol.decode_list([good], Contact.from_payload, "contacts") == [
        Contact(JID, "15550100001", "Ana")
    ]
    for bad in ([good, {"jid": JID}], [good, "Ana"], {"jid": JID}):
        with pytest.raises(MalformedPayloadError):
            protocol.decode_list(bad, Contact.from_payload, "contacts")


async def test_a_malformed_event_is_dropped_and_the_next_one_arrives(
    start_bridge: StartBridge,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real bridge sends malformed presence events, then a good one: the good one arrives,
    typed, with one warning per bad one that holds no phone number, and the link stays up."""
    server = await start_bridge()
    received: list[BridgeEvent] = []
    client = BridgeClient(server.url, TOKEN, session=session, on_event=received.append)
    try:
        await client.connect()
        contact = next(c for c in await call(client, "sim.contacts") if not c["unresponsive"])
        await client.set_available(True)
        await client.subscribe_presence(contact["jid"])
        del received[:]  # the subscription's own answer
        caplog.set_level(logging.WARNING)
        server.emit("presence", {"jid": contact["jid"], "online": True, "at": 1e300})
        server.emit("presence", {"jid": contact["jid"], "online": "yes", "at": AT})
        answer = await call(client, "sim.set_presence", jid=contact["jid"], online=True)
        assert answer == {"delivered": True}  # events caused by a command come before its answer
        presences = [event for event in received if isinstance(event, Presence)]
        assert [(p.jid, p.online) for p in presences] == [(contact["jid"], True)]
        warnings = [r for r in caplog.records if "malformed presence event" in r.getMessage()]
        assert len(warnings) == 2  # one per malformed event
        assert contact["phone"] not in caplog.text
        assert client.connected
        assert (await client.status()).connected is True
    finally:
        await client.close()


class _BrokenContacts(SimulatorBackend):
    """A backend that breaks the protocol's shapes in one answer."""

    async def contacts(self) -> list[dict[str, Any]]:
        return [{"jid": 15550100001, "phone": "15550100001", "name": None}]


async def test_a_backend_answer_of_the_wrong_shape_is_internal(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """The server builds answers from the records: a backend breaking them answers
    ``internal`` (logged without the value), and the link and the other commands go on."""
    server = BridgeServer(lambda emit: _BrokenContacts(emit, SCRIPTED), TOKEN, "127.0.0.1", 0)
    await server.start()
    client = BridgeClient(server.url, TOKEN, session=session, on_event=lambda _event: None)
    try:
        await client.connect()
        with pytest.raises(BridgeError) as err:
            await client.contacts()
        assert err.value.code == ErrorCode.INTERNAL
        assert "wrong shape" in caplog.text
        assert "15550100001" not in caplog.text
        assert client.connected
        assert len(await client.groups()) == SCRIPTED.groups
    finally:
        await client.close()
        await server.stop()
