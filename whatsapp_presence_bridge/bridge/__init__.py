"""WhatsApp bridge: the process that owns the WhatsApp session.

It knows nothing of Home Assistant and imports only its own modules (relative imports), aiohttp
and, for the real backend, neonize, so it can run as a top-level package (``python -m bridge``)
in a separate process or container. The integration talks to it through ``client.BridgeClient``
over the WebSocket protocol described in ``docs/bridge-protocol.md``.
"""

from .protocol import PROTOCOL_VERSION, BridgeError, ErrorCode, Event

__all__ = ["PROTOCOL_VERSION", "BridgeError", "ErrorCode", "Event"]
