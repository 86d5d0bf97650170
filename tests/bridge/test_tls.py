"""wss://: the bridge serves TLS given a certificate and key; the client always verifies it."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from custom_components.whatsapp_presence.bridge.client import BridgeConnectionError
from custom_components.whatsapp_presence.bridge.protocol import Hello
from tests.tls_certs import make_self_signed

from .common import ClientFactory, StartBridge


async def test_wss_with_a_trusted_certificate(
    start_bridge: StartBridge, make_client: ClientFactory, tmp_path: Path
) -> None:
    """The client trusting the bridge's certificate gets the hello over TLS."""
    cert = make_self_signed(tmp_path)
    server = await start_bridge(server_options={"ssl_context": cert.server_context()})
    assert server.url.startswith("wss://127.0.0.1:")
    client = make_client(server.url, ssl_context=cert.client_context())
    hello = await client.connect()
    assert isinstance(hello, Hello)
    assert (await client.status()).connected is True


@pytest.mark.usefixtures("quiet_failed_handshakes")
async def test_an_untrusted_certificate_is_refused(
    start_bridge: StartBridge, make_client: ClientFactory, tmp_path: Path
) -> None:
    """Default verification, or trust in another certificate: no link, so the token is not sent."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cert = make_self_signed(tmp_path / "a")
    other = make_self_signed(tmp_path / "b")
    server = await start_bridge(server_options={"ssl_context": cert.server_context()})
    for context in (None, other.client_context()):
        client = make_client(server.url, ssl_context=context)
        with pytest.raises(BridgeConnectionError, match="certificate"):
            await client.connect()
        assert not client.connected
    assert server.client_count == 0


@pytest.mark.usefixtures("quiet_failed_handshakes")
async def test_plain_ws_to_a_tls_bridge_fails(
    start_bridge: StartBridge, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A TLS bridge does not also speak plain WebSocket."""
    cert = make_self_signed(tmp_path)
    server = await start_bridge(server_options={"ssl_context": cert.server_context()})
    with pytest.raises(aiohttp.ClientError):
        await session.ws_connect(server.url.replace("wss://", "ws://"))
