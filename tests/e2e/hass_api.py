"""A real Home Assistant process and the HTTP API its frontend uses.

Shared by the end-to-end tests and by ``scripts/develop --demo``: both start ``hass`` on a
config folder, onboard it through ``/api/onboarding``, and walk config flows through
``/api/config/config_entries/flow`` the way the frontend does (a progress step is fetched
again with a GET until it moves on, which is what the frontend does when it hears the
``data_entry_flow_progressed`` event). Plain ``requests`` and ``subprocess``: no event loop,
so the caller's (pytest's) loop and threads are left alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
import contextlib
from dataclasses import dataclass, field
import json
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import aiohttp
import requests

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "whatsapp_presence"
DOMAIN = "whatsapp_presence"


LOG_PROBLEM = re.compile(
    r" (?:WARNING|ERROR|CRITICAL) \([^)]*\) \[custom_components\.whatsapp_presence[\].]"
    r"|Detected that custom integration"
)
"""A warning or error of this integration, or Home Assistant reporting a custom integration's
misuse of its API (deprecated calls, wrong thread, ...): each fails an end-to-end test."""


class HassError(AssertionError):
    """Home Assistant did not do what was expected in time (an assertion: tests fail on it)."""


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for[T](
    what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.2
) -> T:
    """Call ``probe`` until it returns something truthy; HassError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
        except (requests.RequestException, KeyError, ValueError) as err:
            value, last_error = None, err
        if value:
            return value
        if time.monotonic() > deadline:
            raise HassError(f"timed out after {timeout:.0f} s waiting for {what} ({last_error})")
        time.sleep(interval)


def configuration_yaml(*, frontend: bool = False, extra: str = "") -> str:
    """A small configuration: the HTTP API, config entries, onboarding (and the UI if asked).

    No ``http:`` block: since 2026.10 Home Assistant stores its HTTP settings itself and treats a
    YAML block as a new configuration on trial, which it reverts (and restarts for) when nobody
    confirms it within 5 minutes. ``http_storage`` writes the settings the current way.
    """
    ui = "frontend:\n" if frontend else ""
    return (
        "homeassistant:\n"
        "  name: WhatsApp Presence test\n"
        "  unit_system: metric\n"
        "  time_zone: UTC\n"
        "  country: NL\n"
        "  latitude: 52.37\n"
        "  longitude: 4.89\n"
        "  elevation: 0\n"
        "api:\n"
        "config:\n"
        "onboarding:\n"
        "automation: !include automations.yaml\n"
        f"{ui}"
        "logger:\n"
        "  default: warning\n"
        "  logs:\n"
        "    custom_components.whatsapp_presence: debug\n"
        f"{extra}"
    )


def http_storage(port: int) -> str:
    """``.storage/http`` for a server on 127.0.0.1:``port``, confirmed from the first start.

    Written in the store's first version (a plain settings dict), which every Home Assistant since
    2026.10 migrates into its confirmed ("stable") slot with its own defaults: no trial, no
    confirmation dialog, no repair about YAML.
    """
    data = {"server_host": ["127.0.0.1"], "server_port": port}
    return json.dumps({"version": 1, "minor_version": 1, "key": "http", "data": data}, indent=2)


def prepare_config(
    config_dir: Path, port: int, *, frontend: bool = False, automations: str = "[]\n"
) -> None:
    """Write the configuration, link the integration, and copy this repository's blueprints."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "configuration.yaml").write_text(
        configuration_yaml(frontend=frontend), encoding="utf-8"
    )
    storage = config_dir / ".storage"
    storage.mkdir(exist_ok=True)
    (storage / "http").write_text(http_storage(port), encoding="utf-8")
    (config_dir / "automations.yaml").write_text(automations, encoding="utf-8")
    components = config_dir / "custom_components"
    components.mkdir(exist_ok=True)
    link = components / DOMAIN
    if not link.exists():
        link.symlink_to(INTEGRATION, target_is_directory=True)
    blueprints = ROOT / "blueprints"
    if blueprints.is_dir():
        shutil.copytree(blueprints, config_dir / "blueprints", dirs_exist_ok=True)


@dataclass
class HassProcess:
    """One ``hass`` process on a config folder; ``stop`` also ends the bridges it started."""

    config_dir: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    children_seen: set[int] = field(default_factory=set)
    expected_warnings: list[str] = field(default_factory=list)
    """Log text a test provokes on purpose (e.g. a killed bridge's restart warning)."""

    @property
    def url(self) -> str:
        """Where the HTTP API listens."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start ``hass`` and wait until its HTTP server answers."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "homeassistant", "--config", str(self.config_dir), "--skip-pip"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.config_dir,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise HassError(f"hass exited with {self.process.returncode}: {self.log_tail()}")
            return requests.get(f"{self.url}/api/onboarding", timeout=2).status_code < 500

        wait_for("hass's HTTP server", up, timeout)

    def children(self) -> list[int]:
        """Process ids of hass's direct children (its bridges), from /proc."""
        if self.process is None:
            return []
        pids: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pids.extend(int(pid) for pid in task.read_text().split())
        self.children_seen.update(pids)
        return pids

    def bridge_pids(self) -> list[int]:
        """Children of hass that run ``python -m bridge``."""
        found = []
        for pid in self.children():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"bridge" in cmdline and b"-m" in cmdline:
                    found.append(pid)
        return found

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (hass stops its bridges itself), then SIGKILL whatever is left."""
        if self.process is None:
            return
        self.children()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for pid in self.children_seen:
            # A bridge runs in its own session; it exits on stdin EOF, this is the safety net.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.children_seen.clear()
        self.process = None

    def log_problems(self) -> list[str]:
        """Lines of hass's log matching ``LOG_PROBLEM`` and not expected by the test."""
        with contextlib.suppress(OSError):
            return [
                line
                for line in self.log_path.read_text(errors="replace").splitlines()
                if LOG_PROBLEM.search(line)
                and not any(expected in line for expected in self.expected_warnings)
            ]
        return []

    def assert_clean_log(self) -> None:
        """HassError listing what this integration warned about (or hass reported about it)."""
        if problems := self.log_problems():
            raise HassError("unexpected warnings or errors in hass's log:\n" + "\n".join(problems))

    def log_tail(self, lines: int = 40) -> str:
        """The end of hass's log, for failure messages."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextlib.contextmanager
def running_hass(config_dir: Path, port: int, log_path: Path) -> Iterator[HassProcess]:
    """A started hass that is stopped (with its children) whatever happens."""
    hass = HassProcess(config_dir, port, log_path)
    try:
        hass.start()
        yield hass
    finally:
        hass.stop()


class HassApi:
    """The REST API, authenticated as the onboarded owner."""

    def __init__(self, url: str) -> None:
        """Nothing is sent until ``onboard`` or ``login``."""
        self.url = url
        self.client_id = f"{url}/"
        self.session = requests.Session()
        self.token: str | None = None

    def _token_from_code(self, code: str) -> str:
        response = self.session.post(
            f"{self.url}/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
            timeout=10,
        )
        response.raise_for_status()
        token = str(response.json()["access_token"])
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.token = token
        return token

    def onboard(self, username: str, password: str, name: str = "Demo") -> str:
        """Every onboarding step, as the onboarding pages post them; returns an access token."""
        response = self.session.post(
            f"{self.url}/api/onboarding/users",
            json={
                "name": name,
                "username": username,
                "password": password,
                "client_id": self.client_id,
                "language": "en",
            },
            timeout=30,
        )
        response.raise_for_status()
        token = self._token_from_code(response.json()["auth_code"])
        self.post("/api/onboarding/core_config", None)
        self.post("/api/onboarding/analytics", None)
        self.post(
            "/api/onboarding/integration",
            {"client_id": self.client_id, "redirect_uri": f"{self.client_id}?auth_callback=1"},
        )
        return token

    def onboarded(self) -> bool:
        """Whether every onboarding step is done."""
        steps = self.session.get(f"{self.url}/api/onboarding", timeout=10).json()
        return all(step.get("done") for step in steps)

    def login(self, username: str, password: str) -> str:
        """Log in through the login flow the login page uses; returns an access token."""
        flow = self.session.post(
            f"{self.url}/auth/login_flow",
            json={
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": f"{self.client_id}?auth_callback=1",
            },
            timeout=10,
        ).json()
        result = self.session.post(
            f"{self.url}/auth/login_flow/{flow['flow_id']}",
            json={"username": username, "password": password, "client_id": self.client_id},
            timeout=10,
        ).json()
        return self._token_from_code(result["result"])

    def get(self, path: str) -> Any:
        """GET a JSON answer (raises on an HTTP error)."""
        response = self.session.get(f"{self.url}{path}", timeout=30)
        if response.status_code >= 400:
            raise HassError(f"GET {path}: {response.status_code} {response.text}")
        return response.json()

    def post(self, path: str, body: Any) -> Any:
        """POST JSON, return the JSON answer (raises on an HTTP error)."""
        response = self.session.post(f"{self.url}{path}", json=body, timeout=60)
        if response.status_code >= 400:
            raise HassError(f"POST {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def ws(self, command: dict[str, Any]) -> Any:
        """One WebSocket command's result (some answers, e.g. repairs, exist only there).

        Runs its own event loop on a worker thread, so a caller's loop is never touched.
        """

        async def send() -> Any:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(f"{self.url}/api/websocket") as socket_,
            ):
                await socket_.receive_json()  # auth_required
                await socket_.send_json({"type": "auth", "access_token": self.token})
                auth = await socket_.receive_json()
                if auth.get("type") != "auth_ok":
                    raise HassError(f"WebSocket auth: {auth}")
                await socket_.send_json({"id": 1, **command})
                while True:
                    answer = await socket_.receive_json()
                    if answer.get("id") == 1 and answer.get("type") == "result":
                        break
            if not answer.get("success"):
                raise HassError(f"WebSocket {command['type']}: {answer.get('error')}")
            return answer["result"]

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, send()).result()

    # ------------------------------------------------------------------ states

    def states(self) -> dict[str, dict[str, Any]]:
        """Every entity's state, by entity id."""
        return {state["entity_id"]: state for state in self.get("/api/states")}

    def entity_ids(self, platform: str = DOMAIN) -> dict[str, dict[str, Any]]:
        """The entity registry's entries of one integration (``config/entity_registry/list``
        is WebSocket only; the template API reads the registry instead)."""
        text = self.session.post(
            f"{self.url}/api/template",
            json={"template": "{{ integration_entities('" + platform + "') | tojson }}"},
            timeout=30,
        )
        if text.status_code >= 400:
            raise HassError(f"template: {text.status_code} {text.text}")
        states = self.states()
        return {entity_id: states.get(entity_id, {}) for entity_id in text.json()}

    def call(self, domain: str, service: str, data: dict[str, Any], *, response: bool) -> Any:
        """Call an action (``?return_response`` when it answers)."""
        suffix = "?return_response" if response else ""
        return self.post(f"/api/services/{domain}/{service}{suffix}", data)

    # ------------------------------------------------------------------ flows

    def flow_start(self, kind: str, handler: Any) -> dict[str, Any]:
        """Start a flow: kind is ``flow`` (config) or ``subentries/flow`` or ``options/flow``."""
        result: dict[str, Any] = self.post(
            f"/api/config/config_entries/{kind}",
            {"handler": handler, "show_advanced_options": False},
        )
        return result

    def flow_step(self, kind: str, flow_id: str, data: dict[str, Any] | None) -> dict[str, Any]:
        """Submit a step (``None``: fetch it again, as the frontend does after a progress event)."""
        path = f"/api/config/config_entries/{kind}/{flow_id}"
        result: dict[str, Any] = self.get(path) if data is None else self.post(path, data)
        return result

    def flow_until_not_progress(
        self, kind: str, result: dict[str, Any], timeout: float, *, seen: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Fetch a progress step again until it is something else; every result goes in ``seen``."""
        deadline = time.monotonic() + timeout
        while result["type"] in ("progress", "progress_done"):
            seen.append(result)
            if time.monotonic() > deadline:
                raise HassError(f"flow stuck in progress step {result.get('step_id')}")
            time.sleep(0.3)
            result = self.flow_step(kind, result["flow_id"], None)
        return result


def expect(result: dict[str, Any], kind: str, step_id: str | None = None) -> dict[str, Any]:
    """Check a flow result's type (and step); the whole result in the message when not."""
    if result.get("type") != kind or (step_id is not None and result.get("step_id") != step_id):
        raise HassError(f"expected {kind} {step_id or ''}, got {result}")
    return result


def link_demo_account(
    api: HassApi, preset: str = "small", timeout: float = 60.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The config flow on the simulated network with QR pairing; the created entry's result
    and the progress steps seen on the way (their QR codes)."""
    result = expect(api.flow_start("flow", DOMAIN), "menu", "user")
    flow_id = result["flow_id"]
    result = api.flow_step("flow", flow_id, {"next_step_id": "simulator"})
    seen: list[dict[str, Any]] = []
    result = api.flow_until_not_progress("flow", result, timeout, seen=seen)
    expect(result, "menu", "pair")
    result = api.flow_step("flow", flow_id, {"next_step_id": "pair_qr"})
    qr_steps: list[dict[str, Any]] = []
    result = api.flow_until_not_progress("flow", result, timeout, seen=qr_steps)
    expect(result, "form", "preset")
    result = expect(api.flow_step("flow", flow_id, {"preset": preset}), "create_entry")
    return result, qr_steps


def add_contact(api: HassApi, entry_id: str, jid: str, priority: str) -> dict[str, Any]:
    """The contact subentry flow: pick ``jid`` from the offered list."""
    result = expect(api.flow_start("subentries/flow", [entry_id, "contact"]), "form", "user")
    return expect(
        api.flow_step("subentries/flow", result["flow_id"], {"contact": jid, "priority": priority}),
        "create_entry",
    )


def contact_options(api: HassApi, entry_id: str) -> list[dict[str, str]]:
    """The contacts the contact picker offers (the flow is left open: it is only a form)."""
    result = expect(api.flow_start("subentries/flow", [entry_id, "contact"]), "form", "user")
    for field_ in result["data_schema"]:
        if field_["name"] == "contact":
            options: list[dict[str, str]] = field_["selector"]["select"]["options"]
            return options
    raise HassError(f"no contact field in {result}")


def add_group(api: HassApi, entry_id: str, priority: str) -> tuple[dict[str, Any], str]:
    """The group subentry flow: the first offered group; the result and the group's label."""
    result = expect(api.flow_start("subentries/flow", [entry_id, "group"]), "form", "user")
    field_ = next(f for f in result["data_schema"] if f["name"] == "group")
    option = field_["selector"]["select"]["options"][0]
    done = api.flow_step(
        "subentries/flow", result["flow_id"], {"group": option["value"], "priority": priority}
    )
    return expect(done, "create_entry"), str(option["label"])


DASHBOARD_PATH = "whatsapp-presence"


def add_whatsapp_dashboard(api: HassApi) -> str:
    """The "WhatsApp" dashboard as *Settings > Dashboards > Add dashboard > WhatsApp* creates
    it (a storage dashboard holding the integration's strategy); its path."""
    api.ws(
        {
            "type": "lovelace/dashboards/create",
            "url_path": DASHBOARD_PATH,
            "title": "WhatsApp",
            "icon": "mdi:whatsapp",
            "show_in_sidebar": True,
            "require_admin": False,
            "mode": "storage",
        }
    )
    api.ws(
        {
            "type": "lovelace/config/save",
            "url_path": DASHBOARD_PATH,
            "config": {"strategy": {"type": "custom:whatsapp-presence"}},
        }
    )
    return f"/{DASHBOARD_PATH}"
