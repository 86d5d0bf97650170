"""Run the bridge as a child process (local and demo modes) and keep it running.

Why a child process at all: neonize's Go library aborts the process that loads it on several
misuses (a Go panic on a call made before login, say, is a SIGABRT), so it never runs
inside Home Assistant. The launcher starts
``python -m bridge`` from the integration folder, reads the one JSON line in which the bridge
says where it listens, and restarts it with backoff when it dies. The token travels in the
environment, never on the command line.

What to launch is decided here too (``bridge_args``, ``session_dir``): the entry's coordinator
and the config flow's own bridge both start one, and a flow must not import the runtime module.

No Home Assistant import at run time: the launcher is plain asyncio, testable on its own.
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
import shlex
import signal
import sys
import time
from typing import TYPE_CHECKING, Final

from .bridge.protocol import TOKEN_ENV
from .const import DOMAIN, LOGGER, MODE_SIMULATOR
from .redact import redact_text

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

_LOGGER = logging.getLogger(__name__)

PACKAGE_DIR: Final = Path(__file__).parent
START_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 10.0
RESTART_DELAY_INITIAL: Final = 1.0
RESTART_DELAY_MAX: Final = 300.0
"""Restart delays double from 1 s up to 5 minutes, and restarts never stop."""
HEALTHY_AFTER: Final = 60.0
"""A bridge that ran this long before dying restarts at the shortest delay again."""
MAX_LOG_LINE: Final = 4096
"""A longer log line from the bridge is cut: only its first few KiB are forwarded."""

OnDown = Callable[[str], None]
"""Called once per outage, with the reason, when the bridge went down."""


# The demo network: ~30 people and a few groups, ten simulated seconds per real second so
# presence visibly changes within a minute, and a QR code that stays up for about five seconds.
SIMULATOR_ARGS = (
    "--contacts",
    "30",
    "--groups",
    "4",
    "--time-scale",
    "10",
    "--pairing-delay",
    "50",
)
SIMULATOR_ARGS_ENV = "WHATSAPP_PRESENCE_SIMULATOR_ARGS"
"""More simulator options (e.g. ``--contacts 300 --time-scale 60``), after and so over the above."""


def bridge_args(mode: str, data_dir: Path) -> list[str]:
    """Command line of a child bridge for this entry's mode.

    With this integration's logger at debug, the bridge (and WhatsApp's own library in it)
    logs at debug too: what a problem on a real account needs.
    """
    if mode == MODE_SIMULATOR:
        extra = shlex.split(os.environ.get(SIMULATOR_ARGS_ENV, ""))
        return ["--backend", "simulator", "--data-dir", str(data_dir), *SIMULATOR_ARGS, *extra]
    args = ["--backend", "neonize", "--data-dir", str(data_dir)]
    if LOGGER.isEnabledFor(logging.DEBUG):
        args += ["--log-level", "DEBUG"]
    return args


def session_dir(hass: HomeAssistant, session_id: str) -> Path:
    """Where a child bridge keeps its WhatsApp session (private to Home Assistant's storage)."""
    return Path(hass.config.path(".storage", DOMAIN, session_id))


class BridgeStartError(Exception):
    """The bridge process did not come up (it exited, or never said where it listens)."""


class LineReader:
    """Lines of a pipe, whatever their length: a line longer than ``limit`` is cut.

    asyncio's ``readline`` raises on lines over its buffer limit (64 KiB), which would end the
    pump; a pipe nobody drains then blocks the bridge on its next write.
    """

    def __init__(self, stream: asyncio.StreamReader, limit: int = MAX_LOG_LINE) -> None:
        """Read ``stream``; lines come back without their newline, at most ``limit`` bytes."""
        self._stream = stream
        self._limit = limit
        self._buffer = bytearray()
        self._skipping = False  # the rest of a line already cut
        self._eof = False

    async def readline(self) -> bytes | None:
        """The next line, or None at the end of the stream."""
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                if self._skipping:
                    self._skipping = False
                    continue
                return line[: self._limit]
            if len(self._buffer) > self._limit and not self._skipping:
                line = bytes(self._buffer[: self._limit])
                self._buffer.clear()
                self._skipping = True
                return line + b" [cut]"
            if self._skipping:
                self._buffer.clear()
            if self._eof:
                if self._buffer and not self._skipping:
                    line = bytes(self._buffer[: self._limit])
                    self._buffer.clear()
                    return line
                return None
            chunk = await self._stream.read(65536)
            if not chunk:
                self._eof = True
            self._buffer += chunk


class BridgeProcess:
    """One child bridge: start, watch, restart with backoff forever, stop."""

    def __init__(
        self,
        bridge_args: Sequence[str],
        *,
        python: str = sys.executable,
        cwd: Path = PACKAGE_DIR,
        token: str | None = None,
        on_restart: Callable[[str], None] | None = None,
        on_down: OnDown | None = None,
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
        self._on_down = on_down
        self._sleep = sleep
        self._clock = clock
        self._start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._port = 0
        self._stopping = False
        self._kill_reason: str | None = None
        self.down_since: float | None = None
        """When (``clock``) the current outage began; None while the bridge runs."""
        self.url: str | None = None
        self.restarts = 0
        self.starting = False
        """True while a process is starting (waiting for it to say where it listens)."""

    @property
    def killing(self) -> bool:
        """True from ``kill()`` until the watcher has seen the process exit."""
        return self._kill_reason is not None

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
        """Stop the bridge (SIGTERM, then SIGKILL) and every task watching it; never raises."""
        self._stopping = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            try:
                await watcher
            except asyncio.CancelledError:
                pass
            except Exception:
                _LOGGER.exception("The WhatsApp bridge watcher had failed")
        try:
            await self._terminate()
        except Exception:
            _LOGGER.exception("Could not stop the WhatsApp bridge cleanly")

    def kill(self, reason: str) -> None:
        """Kill a bridge that stopped answering (SIGKILL ends a stopped process too).

        The watcher sees it exit and restarts it like any other death.
        """
        process = self._process
        if process is None or process.returncode is not None:
            return
        self._kill_reason = reason
        with contextlib.suppress(ProcessLookupError):
            process.kill()

    async def _spawn(self) -> str:
        """Start one process and wait for its ``listening`` line."""
        self.starting = True
        try:
            return await self._spawn_process()
        finally:
            self.starting = False

    async def _spawn_process(self) -> str:
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
        self._pumps = [
            asyncio.get_running_loop().create_task(self._pump_stderr(LineReader(process.stderr)))
        ]
        stdout = LineReader(process.stdout)
        try:
            async with asyncio.timeout(self._start_timeout):
                url = await self._read_listening_line(stdout)
        except (TimeoutError, BridgeStartError) as err:
            await self._terminate()
            raise BridgeStartError(f"the bridge did not start: {err or 'timed out'}") from err
        self._pumps.append(asyncio.get_running_loop().create_task(self._pump_stdout(stdout)))
        self.url = url
        self._port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        _LOGGER.debug("Bridge process %s listens on %s", process.pid, url)
        return url

    @staticmethod
    async def _read_listening_line(stdout: LineReader) -> str:
        while (line := await stdout.readline()) is not None:
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and message.get("event") == "listening":
                    return str(message["url"])
            _LOGGER.debug("bridge stdout: %s", line.decode(errors="replace").rstrip())
        raise BridgeStartError("it exited before listening")

    @staticmethod
    async def _pump_stdout(stdout: LineReader) -> None:
        """Drain stdout (the Go library prints there) so the pipe never blocks the bridge."""
        while (line := await stdout.readline()) is not None:
            _LOGGER.debug("bridge stdout: %s", line.decode(errors="replace").rstrip())

    @staticmethod
    async def _pump_stderr(stderr: LineReader) -> None:
        """Forward the bridge's log lines; problems stay visible, chatter stays at debug."""
        while (line := await stderr.readline()) is not None:
            text = line.decode(errors="replace").rstrip()
            important = any(level in text for level in ("ERROR", "CRITICAL", "Traceback"))
            if important:
                # Shown by default: WhatsApp's library may name contacts in its errors.
                _LOGGER.warning("bridge: %s", redact_text(text))
            else:
                _LOGGER.debug("bridge: %s", text)

    async def _watch(self) -> None:
        """Restart the bridge whenever it dies, forever, with delays doubling up to 5 minutes.

        Nothing may end this task but ``stop()``: a failed restart is retried on a fresh port,
        an unexpected error is logged and retried.
        """
        failures = 0
        while not self._stopping:
            try:
                failures = await self._watch_once(failures)
            except asyncio.CancelledError:
                raise
            except Exception:
                _LOGGER.exception("Unexpected error while watching the WhatsApp bridge")
                failures += 1
                await self._sleep(self._delay(failures))

    async def _watch_once(self, failures: int) -> int:
        """Wait for the running bridge to die (if one runs), then try one restart."""
        process = self._process
        if process is not None:
            started = self._clock()
            code = await process.wait()
            await self._drain_pumps()
            if self._stopping:
                return failures
            self._process = None
            if self._clock() - started >= HEALTHY_AFTER:
                failures = 0
            reason, self._kill_reason = self._kill_reason, None
            self._went_down(reason or f"it exited with code {code}")
        delay = self._delay(failures)
        _LOGGER.debug("Restarting the WhatsApp bridge in %.0f s", delay)
        await self._sleep(delay)
        failures += 1
        try:
            url = await self._spawn()
        except (BridgeStartError, OSError) as err:
            _LOGGER.debug("The WhatsApp bridge did not restart: %s", err)
            self._went_down(str(err))
            self._port = 0  # the old port may be taken: let the OS choose a fresh one
            return failures
        self.restarts += 1
        if self.down_since is not None:
            _LOGGER.info(
                "The WhatsApp bridge is back after %.0f s", self._clock() - self.down_since
            )
            self.down_since = None
        if self._on_restart is not None:
            try:
                self._on_restart(url)
            except Exception:
                _LOGGER.exception("Bridge restart callback failed")
        return failures

    @staticmethod
    def _delay(failures: int) -> float:
        return float(min(RESTART_DELAY_MAX, RESTART_DELAY_INITIAL * 2 ** min(failures, 16)))

    def _went_down(self, reason: str) -> None:
        """One warning per outage, with its reason; later failed attempts stay at debug."""
        if self.down_since is not None:
            return
        self.down_since = self._clock()
        _LOGGER.warning("The WhatsApp bridge is down (%s); restarting it", reason)
        if self._on_down is not None:
            try:
                self._on_down(reason)
            except Exception:
                _LOGGER.exception("Bridge outage callback failed")

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
