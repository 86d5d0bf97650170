"""The add-on as the Supervisor and Docker would see it, without Docker.

``image_tree`` lays out a copy of the add-on folder the way its Dockerfile does (every ``COPY``
applied under a temporary root), and ``AddonProcess`` runs the image's command (``CMD``) from
that root: ``run.sh`` for real, with the ``BRIDGE_*`` variables pointing at the temporary root
instead of ``/opt/app`` and ``/data``, and ``tests/addon/bin/bashio`` playing the Supervisor.
The bridge it starts is the real one, on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import sys
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "whatsapp_presence_bridge"
FAKE_BIN = Path(__file__).resolve().parent / "bin"
STARTUP_TIMEOUT = 60.0
"""Seconds for run.sh to announce the bridge (a cold neonize import takes about one)."""
SIMULATOR = [
    "--manual-clock",
    "--pairing-delay",
    "0",
    "--connect-delay",
    "0",
    "--presence-churn",
    "0",
    "--disconnect-rate",
    "0",
]
"""Simulator options for tests: pairing completes only by sim.complete_pairing; nothing random happens."""


def load_yaml(path: Path) -> Any:
    """A YAML file of the add-on."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def dockerfile_instructions(path: Path = ADDON / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        name, _, args = line.partition(" ")
        instructions.append((name.upper(), args.strip()))
    return instructions


def image_command() -> list[str]:
    """The image's CMD (JSON form)."""
    commands = [json.loads(args) for name, args in dockerfile_instructions() if name == "CMD"]
    assert len(commands) == 1, "one CMD in JSON form"
    command: list[str] = commands[0]
    return command


def image_tree(root: Path, addon: Path = ADDON) -> Path:
    """Apply the Dockerfile's COPY instructions from ``addon`` (the build context) under ``root``.

    Returns ``root``. The add-on folder is copied first, as the Supervisor's build sees it
    (only its own folder: no path may leave it).
    """
    context = root / "build-context"
    shutil.copytree(addon, context, ignore=shutil.ignore_patterns("__pycache__"))
    for name, args in dockerfile_instructions():
        if name != "COPY":
            continue
        parts = args.split()
        assert not any(part.startswith("--") for part in parts), "plain COPY only"
        *sources, dest = parts
        for source in sources:
            src = (context / source).resolve()
            assert src.is_relative_to(context.resolve()), f"COPY leaves the build context: {source}"
            target = root / dest.lstrip("/")
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True)
            elif dest.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target / src.name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
    return root


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def default_options() -> dict[str, Any]:
    """The options the Supervisor writes to /data/options.json for a fresh install."""
    options: dict[str, Any] = dict(load_yaml(ADDON / "config.yaml")["options"])
    return options


@dataclass
class AddonProcess:
    """``run.sh`` from an image tree, with a fake Supervisor (or none: plain container mode)."""

    root: Path
    data: Path
    port: int = field(default_factory=free_port)
    backend: str = "simulator"
    options: dict[str, Any] = field(default_factory=default_options)
    supervisor: bool = True
    env: dict[str, str] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None
    log: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    _announced: asyncio.Event = field(default_factory=asyncio.Event)
    _logged: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def discovery_file(self) -> Path:
        """Discovery messages the fake Supervisor received in this run (JSON lines)."""
        return self.root / "supervisor" / "discovery.jsonl"

    def discoveries(self) -> list[dict[str, Any]]:
        """Every discovery message received so far."""
        if not self.discovery_file.exists():
            return []
        lines = self.discovery_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    def environment(self) -> dict[str, str]:
        """What the container would get, plus the overrides that point into the tree."""
        config = load_yaml(ADDON / "config.yaml")
        supervisor_dir = self.root / "supervisor"
        supervisor_dir.mkdir(exist_ok=True)
        options_file = supervisor_dir / "options.json"
        options_file.write_text(json.dumps(self.options), encoding="utf-8")
        env = {
            "PATH": f"{FAKE_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LANG": "C.UTF-8",
            "BRIDGE_APP_DIR": str(self.root / "opt" / "app"),
            "BRIDGE_PYTHON": sys.executable,
            "BRIDGE_DATA_DIR": str(self.data),
            "BRIDGE_BACKEND": self.backend,
            "BRIDGE_HOST": "127.0.0.1",
            "BRIDGE_PORT": str(self.port),
            "FAKE_BASHIO_PYTHON": sys.executable,
            "FAKE_SUPERVISOR_OPTIONS": str(options_file),
            "FAKE_SUPERVISOR_DISCOVERY": str(self.discovery_file),
            "FAKE_ADDON_DISCOVERY": ",".join(config.get("discovery", [])),
            "FAKE_ADDON_HOSTNAME": "127.0.0.1",
        }
        if self.supervisor:
            env["SUPERVISOR_TOKEN"] = "fake-supervisor-token"
        env.update(self.env)
        return env

    async def start(self, *extra: str) -> None:
        """Run the image's CMD (plus ``extra`` arguments) and wait until it announces itself."""
        command = image_command()
        program = self.root / command[0].lstrip("/")
        self._announced.clear()
        self.discovery_file.unlink(missing_ok=True)  # what this run announces
        self.process = await asyncio.create_subprocess_exec(
            str(program),
            *command[1:],
            *extra,
            cwd=self.root / "opt" / "app",
            env=self.environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so cleanup reaches the bridge
        )
        self._reader = asyncio.create_task(self._read_log(self.process))
        waiter = asyncio.create_task(self._announced.wait())
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT):
                await asyncio.wait({waiter, self._reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self._announced.is_set():
            await self.wait()
            raise AssertionError("run.sh ended before announcing the bridge:\n" + self.text())

    async def _read_log(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        marker = re.compile(r"Announced the bridge|Listening on port")
        while line := await process.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self.log.append(text)
            self._logged.set()
            if marker.search(text):
                self._announced.set()

    async def wait_for_log(self, text: str) -> None:
        """Wait (bounded) until a log line contains ``text``."""
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not any(text in line for line in self.log):
                self._logged.clear()
                await self._logged.wait()

    def text(self) -> str:
        """The add-on log so far (run.sh and the bridge)."""
        return "\n".join(self.log)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal run.sh as Docker does on stop; its exit status."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await self.wait()

    async def wait(self) -> int:
        """Wait (bounded) for run.sh and its log to end; its exit status."""
        assert self.process is not None
        async with asyncio.timeout(STARTUP_TIMEOUT):
            status = await self.process.wait()
            if self._reader is not None:
                await self._reader
        return status

    async def kill(self) -> None:
        """Cleanup after a failed test: no process may outlive it."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
