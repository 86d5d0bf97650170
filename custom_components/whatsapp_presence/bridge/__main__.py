"""Command line: ``python -m bridge --backend simulator|neonize [options]``.

Once listening it prints exactly one JSON line on stdout, e.g.
``{"event": "listening", "url": "ws://127.0.0.1:43121/ws", "pid": 4242, ...}``, so a parent
process (the integration's local mode) can start it with ``--port 0`` and read where it
listens. Logs go to stderr. SIGTERM and SIGINT stop it cleanly. The token is never an option
(it would show in ``ps``): it comes from ``$WHATSAPP_BRIDGE_TOKEN`` or ``--token-file``.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import MISSING, fields
import json
import logging
import os
from pathlib import Path
import signal
import ssl
import sys
from typing import Any

from . import protocol
from .backend import Backend, EventSink
from .server import BridgeServer
from .simulator import SimulatorBackend, SimulatorConfig

_LOGGER = logging.getLogger(__name__)


def _sim_dest(name: str) -> str:
    return f"sim_{name}"


def build_parser() -> argparse.ArgumentParser:
    """All options; the simulator's come from SimulatorConfig so they cannot drift."""
    parser = argparse.ArgumentParser(
        prog="python -m bridge",
        description=(
            "WhatsApp bridge for the WhatsApp Presence integration: serves one WhatsApp "
            "session (real through neonize, or simulated) over a token-authenticated "
            "WebSocket (docs/bridge-protocol.md). Prints one JSON line "
            '{"event": "listening", "url": ...} on stdout once listening; logs go to stderr.'
        ),
        epilog=(
            f"The token comes from the environment variable {protocol.TOKEN_ENV} or from "
            "--token-file, never from the command line."
        ),
    )
    parser.add_argument(
        "--backend",
        choices=("simulator", "neonize"),
        required=True,
        help="neonize: real WhatsApp (needs neonize, glibc); simulator: a simulated network",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port to listen on; 0 lets the OS choose (default: %(default)s)",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the client token (default: ${protocol.TOKEN_ENV})",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=(
            "directory for the session (neonize: required, holds whatsmeow's database; "
            "simulator: optional, keeps the simulated pairing across restarts)"
        ),
    )
    parser.add_argument(
        "--tls-cert",
        type=Path,
        help=(
            "PEM certificate (chain) to serve wss:// instead of ws://; use it whenever the "
            "bridge is reached across a network (needs --tls-key)"
        ),
    )
    parser.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=protocol.DEFAULT_MAX_MESSAGE_BYTES,
        help="largest accepted client frame; larger ones get an error (default: %(default)s)",
    )
    parser.add_argument(
        "--max-clients",
        type=int,
        default=8,
        help="clients connected at once; each gets every event (default: %(default)s)",
    )
    parser.add_argument(
        "--auth-timeout",
        type=float,
        default=10.0,
        help="seconds a new client has to authenticate (default: %(default)s)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=30.0,
        help="WebSocket ping interval in seconds; 0 disables (default: %(default)s)",
    )
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop when stdin closes (local mode: the bridge dies with its parent)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level on stderr (default: %(default)s)",
    )

    neonize = parser.add_argument_group("neonize backend")
    neonize.add_argument(
        "--device-name",
        default="Home Assistant",
        help="name shown in the phone's linked devices (default: %(default)s)",
    )
    neonize.add_argument(
        "--proxy", default=None, help="proxy URL for the WhatsApp connection (default: none)"
    )
    neonize.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the session to end on stop (default: %(default)s)",
    )

    sim = parser.add_argument_group(
        "simulator backend", "durations are simulated seconds (see --time-scale)"
    )
    for item in fields(SimulatorConfig):
        if not item.metadata.get("cli", True) or item.default is MISSING:
            continue
        flag = "--" + item.name.replace("_", "-")
        text = str(item.metadata["help"]) + " (default: %(default)s)"
        if isinstance(item.default, bool):
            sim.add_argument(
                flag,
                dest=_sim_dest(item.name),
                action=argparse.BooleanOptionalAction,
                default=item.default,
                help=text,
            )
        else:
            kind = item.metadata.get("type", type(item.default))
            sim.add_argument(
                flag,
                dest=_sim_dest(item.name),
                metavar=item.name.upper(),
                type=kind,
                default=item.default,
                help=text,
            )
    return parser


def read_token(args: argparse.Namespace) -> str:
    """The token from --token-file or the environment; ValueError when missing or empty."""
    if args.token_file is not None:
        try:
            token = str(args.token_file.read_text(encoding="utf-8")).strip()
        except OSError as err:
            raise ValueError(f"cannot read the token file: {err.strerror}") from err
    else:
        token = os.environ.get(protocol.TOKEN_ENV, "").strip()
    if not token:
        raise ValueError(f"no token: set ${protocol.TOKEN_ENV} or pass --token-file")
    if len(token) < protocol.MIN_TOKEN_LENGTH:
        raise ValueError(
            f"the token has {len(token)} characters; use at least {protocol.MIN_TOKEN_LENGTH} "
            "(e.g. the output of: openssl rand -hex 32)"
        )
    return token


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server's TLS context from --tls-cert and --tls-key; ValueError when unusable."""
    if args.tls_cert is None and args.tls_key is None:
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise ValueError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except OSError as err:
        raise ValueError(f"cannot read the TLS certificate or key: {err.strerror}") from err
    except ssl.SSLError as err:
        raise ValueError(f"unusable TLS certificate or key: {err.reason}") from err
    return context


def simulator_config(args: argparse.Namespace) -> SimulatorConfig:
    """SimulatorConfig from parsed options (ValueError on bad values)."""
    values: dict[str, Any] = {
        item.name: getattr(args, _sim_dest(item.name))
        for item in fields(SimulatorConfig)
        if item.metadata.get("cli", True)
    }
    return SimulatorConfig(**values, state_dir=args.data_dir)


def backend_factory(args: argparse.Namespace) -> Any:
    """emit -> Backend for the chosen backend; neonize is imported only when chosen."""
    if args.backend == "neonize":
        from . import neonize_backend

        if args.data_dir is None:
            raise ValueError("--data-dir is required with --backend neonize")
        # Go prints to file descriptor 1: keep stdout for the one listening line.
        neonize_backend.redirect_native_stdout()

        def make_neonize(emit: EventSink) -> Backend:
            return neonize_backend.NeonizeBackend(
                emit,
                data_dir=args.data_dir,
                device_name=args.device_name,
                proxy=args.proxy,
                stop_timeout=args.stop_timeout,
            )

        return make_neonize
    config = simulator_config(args)

    def make_simulator(emit: EventSink) -> Backend:
        return SimulatorBackend(emit, config)

    return make_simulator


class _StdinWatcher(asyncio.Protocol):
    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    def data_received(self, data: bytes) -> None:
        """Input is ignored; only its end matters."""

    def connection_lost(self, exc: Exception | None) -> None:
        _LOGGER.info("stdin closed; stopping")
        self._stop.set()


async def serve(
    args: argparse.Namespace,
    token: str,
    factory: Any,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """Run the server until SIGTERM/SIGINT (or stdin EOF); print the listening line."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = BridgeServer(
        factory,
        token,
        args.host,
        args.port,
        max_message_bytes=args.max_message_bytes,
        max_clients=args.max_clients,
        auth_timeout=args.auth_timeout,
        heartbeat=args.heartbeat or None,
        ssl_context=ssl_context,
    )
    try:
        url = await server.start()
    except OSError as err:
        _LOGGER.error("Cannot listen on %s:%s: %s", args.host, args.port, err.strerror)
        return 1
    transport: asyncio.BaseTransport | None = None
    try:
        if args.exit_on_stdin_eof:
            transport, _ = await loop.connect_read_pipe(lambda: _StdinWatcher(stop), sys.stdin)
        line = {
            "event": "listening",
            "url": url,
            "host": args.host,
            "port": server.port,
            "pid": os.getpid(),
            "backend": server.backend.name,
            "protocol": protocol.PROTOCOL_VERSION,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        await stop.wait()
        _LOGGER.info("Stopping")
    finally:
        if transport is not None:
            transport.close()
        await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.port < 0 or args.port > 65535:
        parser.error("--port must be between 0 and 65535")
    if args.max_message_bytes < 1024:
        parser.error("--max-message-bytes must be at least 1024")
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        token = read_token(args)
        ssl_context = tls_context(args)
        factory = backend_factory(args)
    except ImportError as err:
        parser.error(f"the neonize backend is not available here: {err}")
    except ValueError as err:
        parser.error(str(err))
    try:
        return asyncio.run(serve(args, token, factory, ssl_context))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
