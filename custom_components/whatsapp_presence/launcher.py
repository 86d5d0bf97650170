"""Run the bridge as a child process (local and demo modes) and keep it running.

Why a child process at all: neonize's Go library aborts the process that loads it on several
misuses (DESIGN.md fact 4), so it never runs inside Home Assistant. The launcher starts
``python -m bridge`` from the integration folder, reads the one JSON line in which the bridge
says where it listens, and restarts it with backoff when it dies. The token travels in the
environment, never on the command line.

No Home Assistant import here: the launcher is plain asyncio, testable on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
import contextlib
import json
import logging
import os
from pathlib import Path
import secrets
import signal
import sys
import time
from typing import Final

from .bridge.protocol import TOKEN_ENV
from .redact import redact_text

_LOGGER = logging.getLogger(__name__)

PACKAGE_DIR: Final = Path(__file__).parent
START_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 10.0
RESTART_DELAYS: Final = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
HEALTHY_AFTER: Final = 60.0
"""A bridge that ran this long before dying restarts at the shortest delay again."""


class BridgeStartError(Exception):
    """The bridge process did not come up (it exited, or never said where it listens)."""


class BridgeProcess:
    """One child bridge: start, watch, restart with backoff, stop."""

    def __init__(
        self,
        bridge_args: Sequence[str],
        *,
        python: str = sys.executable,
        cwd: Path = PACKAGE_DIR,
        token: str | None = None,
        on_restart: Callable[[str], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        """``bridge_args`` follow ``python -m bridge`` (backend, data folder, ...)."""
        self._args = list(bridge_args)
        self._python = python
        self._cwd = cwd
        self.token = token or secrets.token_urlsafe(32)
        self._on_restart = on_restart
        self._sleep = sleep
        self._clock = clock
        self._start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._port = 0
        self._stopping = False
        self.url: str | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The running child's process id."""
        return self._process.pid if self._process else None

    async def start(self) -> str:
        """Start the bridge and return its WebSocket URL; then keep it alive."""
        self._stopping = False
        url = await self._spawn()
        self._watcher = asyncio.get_running_loop().create_task(
            self._watch(), name="whatsapp_presence bridge watcher"
        )
        return url

    async def stop(self) -> None:
        """Stop the bridge (SIGTERM, then SIGKILL) and every task watching it."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self._terminate()

    async def _spawn(self) -> str:
        """Start one process and wait for its ``listening`` line."""
        env = dict(os.environ)
        env[TOKEN_ENV] = self.token
        env["PYTHONUNBUFFERED"] = "1"
        # The bridge exits when its stdin closes: if Home Assistant dies without stopping it,
        # the bridge does not linger holding the WhatsApp session.
        args = [
            *self._args,
            "--host",
            "127.0.0.1",
            "--port",
            str(self._port),
            "--exit-on-stdin-eof",
        ]
        process = await asyncio.create_subprocess_exec(
            self._python,
            "-m",
            "bridge",
            *args,
            cwd=self._cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a Ctrl+C on Home Assistant's terminal is not the bridge's
        )
        self._process = process
        assert process.stdout is not None
        assert process.stderr is not None
        self._pumps = [asyncio.get_running_loop().create_task(self._pump_stderr(process.stderr))]
        try:
            async with asyncio.timeout(self._start_timeout):
                url = await self._read_listening_line(process.stdout)
        except (TimeoutError, BridgeStartError) as err:
            await self._terminate()
            raise BridgeStartError(f"the bridge did not start: {err or 'timed out'}") from err
        self._pumps.append(
            asyncio.get_running_loop().create_task(self._pump_stdout(process.stdout))
        )
        self.url = url
        self._port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        _LOGGER.debug("Bridge process %s listens on %s", process.pid, url)
        return url

    @staticmethod
    async def _read_listening_line(stdout: asyncio.StreamReader) -> str:
        while line := await stdout.readline():
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and message.get("event") == "listening":
                    return str(message["url"])
            _LOGGER.debug("bridge stdout: %s", line.decode(errors="replace").rstrip())
        raise BridgeStartError("it exited before listening")

    @staticmethod
    async def _pump_stdout(stdout: asyncio.StreamReader) -> None:
        """Drain stdout (the Go library prints there) so the pipe never blocks the bridge."""
        while line := await stdout.readline():
            _LOGGER.debug("bridge stdout: %s", line.decode(errors="replace").rstrip())

    @staticmethod
    async def _pump_stderr(stderr: asyncio.StreamReader) -> None:
        """Forward the bridge's log lines; problems stay visible, chatter stays at debug."""
        while line := await stderr.readline():
            text = line.decode(errors="replace").rstrip()
            important = any(level in text for level in ("ERROR", "CRITICAL", "Traceback"))
            if important:
                # Shown by default: WhatsApp's library may name contacts in its errors.
                _LOGGER.warning("bridge: %s", redact_text(text))
            else:
                _LOGGER.debug("bridge: %s", text)

    async def _watch(self) -> None:
        """Restart the bridge whenever it dies, with growing delays."""
        failures = 0
        while True:
            assert self._process is not None
            started = self._clock()
            code = await self._process.wait()
            await self._drain_pumps()
            if self._stopping:
                return
            if self._clock() - started >= HEALTHY_AFTER:
                failures = 0
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            _LOGGER.warning(
                "The WhatsApp bridge exited (code %s); restarting in %.0f s", code, delay
            )
            await self._sleep(delay)
            try:
                url = await self._spawn()
            except BridgeStartError as err:
                _LOGGER.warning("%s", err)
                failures += 1
                self._port = 0  # the old port may be taken: let the OS choose
                continue
            except OSError as err:
                _LOGGER.warning("Could not restart the WhatsApp bridge: %s", err)
                failures += 1
                continue
            failures += 1
            self.restarts += 1
            if self._on_restart is not None:
                self._on_restart(url)

    async def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await process.wait()
            except TimeoutError:
                _LOGGER.warning("The WhatsApp bridge did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await self._drain_pumps()

    async def _drain_pumps(self) -> None:
        pumps, self._pumps = self._pumps, []
        for pump in pumps:
            if not pump.done():
                # The pipes close with the process; a pump still running after that is stuck.
                try:
                    async with asyncio.timeout(1):
                        await asyncio.shield(pump)
                except TimeoutError:
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pump
