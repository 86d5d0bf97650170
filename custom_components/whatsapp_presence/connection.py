"""One link to a bridge: the child process when the bridge runs here, and the client.

The entry's coordinator and a config flow's pairing both need the same three things: start
a child bridge (or take a remote one's address), connect a client to it, and when the child
dies and comes back on another port, send the client there at once instead of letting it back
off against the old address. They differ only in what they do with events and link changes,
which they pass in as callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import ssl
import time

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .bridge.client import BridgeClient, EventCallback
from .bridge.protocol import Hello
from .launcher import BridgeProcess, OnDown


class BridgeConnection:
    """A child bridge (optional) and the client connected to it; nothing runs until started."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        on_event: EventCallback,
        on_connection_change: Callable[[bool], None],
        on_unresponsive: Callable[[], None] | None = None,
        on_auth_failed: Callable[[], None] | None = None,
        on_restart: Callable[[str], None] | None = None,
        on_down: OnDown | None = None,
    ) -> None:
        """The callbacks are the client's, plus the child's restart (after the client is
        redirected) and outage."""
        self.hass = hass
        self.process: BridgeProcess | None = None
        self.client: BridgeClient | None = None
        self._on_event = on_event
        self._on_connection_change = on_connection_change
        self._on_unresponsive = on_unresponsive
        self._on_auth_failed = on_auth_failed
        self._on_restart = on_restart
        self._on_down = on_down

    async def async_start_child(
        self, bridge_args: Sequence[str], *, clock: Callable[[], float] = time.monotonic
    ) -> tuple[str, str]:
        """Start a child bridge; its URL and token. ``clock``: what its restart delays run on.

        A child started before is stopped first: two would share one WhatsApp session.
        """
        process, self.process = self.process, None
        if process is not None:
            await process.stop()
        self.process = BridgeProcess(
            bridge_args, on_restart=self._child_restarted, on_down=self._on_down, clock=clock
        )
        return await self.process.start(), self.process.token

    async def async_connect(
        self, url: str, token: str, ssl_context: ssl.SSLContext | None = None
    ) -> Hello:
        """Connect and authenticate; the bridge's hello (raises the BridgeError kinds).

        The client is kept only once connected: a failed attempt leaves nothing to close. A
        client connected before is closed first (its events would arrive twice).
        """
        previous, self.client = self.client, None
        if previous is not None:
            await previous.close()
        client = BridgeClient(
            url,
            token,
            ssl_context=ssl_context,
            session=async_get_clientsession(self.hass),
            on_event=self._on_event,
            on_connection_change=self._on_connection_change,
            on_unresponsive=self._on_unresponsive,
            on_auth_failed=self._on_auth_failed,
        )
        hello = await client.connect()
        self.client = client
        return hello

    async def async_close(self) -> None:
        """Close the client, then stop the child; idempotent, never leaves a task behind."""
        client, self.client = self.client, None
        if client is not None:
            await client.close()
        process, self.process = self.process, None
        if process is not None:
            await process.stop()

    @callback
    def _child_restarted(self, url: str) -> None:
        """The child died and came back, maybe on another port: reconnect there now."""
        if self.client is not None:
            self.client.bridge_restarted(url)
        if self._on_restart is not None:
            self._on_restart(url)
