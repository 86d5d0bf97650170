"""``scripts/develop --demo``: Home Assistant with WhatsApp Presence set up on the simulated network.

The first run makes a config folder (``config-demo/``, git-ignored), starts ``hass``, completes
onboarding, links a simulated WhatsApp account through the real config flow (QR pairing, the
"small" preset), tracks the simulated address book and two groups through the subentry flows,
adds an automation from the repository's blueprint and the WhatsApp dashboard, and backfills
the past days' online time from the simulated network (``backfill.py``). Later runs start the
same Home Assistant as it was left (``--reset`` starts over). Everything goes through the HTTP
API the frontend uses, so the demo is also a smoke test of the product.
"""

from __future__ import annotations

import argparse
from datetime import datetime
import os
from pathlib import Path
import shlex
import shutil
import signal
import sys
import time
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# Beside this script (its folder is on the path); imported after the path is set.
from backfill import Window, hourly_online_today, import_command, statistics_rows  # noqa: E402

from tests.e2e.hass_api import (  # noqa: E402  (after the path is set)
    DASHBOARD_PATH,
    DOMAIN,
    HassApi,
    HassError,
    HassProcess,
    add_contact,
    add_whatsapp_dashboard,
    contact_options,
    expect,
    link_demo_account,
    prepare_config,
    wait_for,
)

USERNAME = "demo"
PASSWORD = "demo1234"  # noqa: S105 - the documented login of a local demo
CONFIG = ROOT / "config-demo"
SIMULATOR_ARGS_ENV = "WHATSAPP_PRESENCE_SIMULATOR_ARGS"
"""Extra options of the simulated network's bridge, read by the integration when it starts one."""
DEMO_EXTRA = """\
history:
logbook:
system_health:
diagnostics:
prometheus:
  requires_auth: false
"""
GROUPS = 2
AREA = "WhatsApp"
BACKFILL_DAYS = 15
"""Days of online time played before today: the 14 the dashboard's chart shows, and the day
before them, from whose end the first day's bar is measured."""


def log(message: str) -> None:
    """Progress on stderr, like the shell scripts' log lines."""
    print(f"\033[1m==> {message}\033[0m", file=sys.stderr, flush=True)


def set_up(api: HassApi, config: Path) -> str:
    """Onboarding, the account, contacts, groups and a blueprint automation; the entry id."""
    log("Onboarding (user, location, analytics)")
    api.onboard(USERNAME, PASSWORD, name="Demo")
    wait_for("Home Assistant running", lambda: api.get("/api/config")["state"] == "RUNNING", 120)
    log("Linking a simulated WhatsApp account (config flow: demo network, QR code, preset)")
    created, _ = link_demo_account(api, preset="small")
    entry_id: str = created["result"]["entry_id"]
    wait_for(
        "WhatsApp connected",
        lambda: (
            api.call(DOMAIN, "get_stats", {"config_entry_id": entry_id}, response=True)[
                "service_response"
            ]["connection"]
            == "connected"
        ),
        60,
    )
    options = contact_options(api, entry_id)
    log(f"Tracking {len(options)} contacts and {GROUPS} groups (subentry flows)")
    for index, option in enumerate(options):
        priority = "high" if index < 5 else "medium" if index < 15 else "low"
        add_contact(api, entry_id, option["value"], priority)
    for _ in range(GROUPS):
        result = api.flow_start("subentries/flow", [entry_id, "group"])
        if result["type"] != "form":
            break  # every group tracked already, or none
        group = next(f for f in result["data_schema"] if f["name"] == "group")
        value = group["selector"]["select"]["options"][0]["value"]
        expect(
            api.flow_step(
                "subentries/flow", result["flow_id"], {"group": value, "priority": "low"}
            ),
            "create_entry",
        )
    add_blueprint_automation(api, config, options[0]["label"].rsplit(" (+", 1)[0])
    log("Adding the WhatsApp dashboard (as Settings > Dashboards > Add dashboard does)")
    add_whatsapp_dashboard(api)
    put_devices_in_area(api, entry_id)
    backfill_online_time(api)
    make_dashboard_the_first_screen(api)
    ignore_install_notice(api, wait=30)
    return entry_id


def backfill_online_time(api: HassApi) -> None:
    """Past days of every *Online today* sensor, played from the simulated network.

    The simulator's presence model, with the random seed and time scale of the demo's bridge, runs
    over the days before today in a moment; the integration's activity model counts it; the
    recorder imports the hourly statistics it would have compiled (``backfill.py``). Today is
    left to the running demo.
    """
    from zoneinfo import ZoneInfo

    from custom_components.whatsapp_presence.bridge.__main__ import build_parser, simulator_config
    from custom_components.whatsapp_presence.bridge.simulator import presence_history
    from custom_components.whatsapp_presence.const import MODE_SIMULATOR
    from custom_components.whatsapp_presence.launcher import bridge_args

    args = build_parser().parse_args(bridge_args(MODE_SIMULATOR, Path(os.devnull)))
    network = simulator_config(args)
    sensors = {
        entity["entity_id"]: entity["unique_id"].split("_")[-3]
        for entity in api.ws({"type": "config/entity_registry/list"})
        if entity["platform"] == DOMAIN and entity["unique_id"].endswith("_online_today")
    }

    def units() -> dict[str, str] | None:
        states = api.states()
        found = {
            entity_id: states[entity_id]["attributes"].get("unit_of_measurement")
            for entity_id in sensors
        }
        return found if all(found.values()) else None

    unit_of = wait_for("every Online today sensor", units, 30)
    time_zone = ZoneInfo(api.get("/api/config")["time_zone"])
    window = Window.days_before(datetime.now(time_zone), BACKFILL_DAYS)
    log(
        f"Backfilling {BACKFILL_DAYS} days of online time of {len(unit_of)} contacts "
        f"(the simulated network played at time scale {network.time_scale:g})"
    )
    jids = {phone: f"{phone}@s.whatsapp.net" for phone in sensors.values()}
    history = presence_history(network, window.start, window.end)
    hourly = hourly_online_today(history, jids.values(), window, time_zone)
    for entity_id, unit in unit_of.items():
        rows = statistics_rows(hourly[jids[sensors[entity_id]]], unit)
        api.ws(import_command(entity_id, unit, rows))
    # The recorder queues imports and stores them in order: once the last is stored, all are
    # (the dashboard opened earlier would chart only some contacts).
    last = list(unit_of)[-1]
    wait_for(
        "the recorder to store the past days",
        lambda: api.ws(
            {
                "type": "recorder/statistics_during_period",
                "start_time": datetime.fromtimestamp(window.start, time_zone).isoformat(),
                "statistic_ids": [last],
                "period": "day",
                "types": ["change"],
            }
        ).get(last),
        60,
    )


def make_dashboard_the_first_screen(api: HassApi) -> None:
    """The WhatsApp dashboard opens after login, as *Settings > Dashboards > Set as default*
    makes it (Home Assistant's generated overview only shows area tiles)."""
    api.ws(
        {
            "type": "frontend/set_system_data",
            "key": "core",
            "value": {"default_panel": DASHBOARD_PATH},
        }
    )


def put_devices_in_area(api: HassApi, entry_id: str) -> None:
    """The integration's devices in a "WhatsApp" area: the overview shows them from the start.

    Home Assistant's default overview lays entities out by area; what has none is left out.
    """
    areas = api.ws({"type": "config/area_registry/list"})
    area = next((a for a in areas if a["name"] == AREA), None)
    if area is None:
        area = api.ws({"type": "config/area_registry/create", "name": AREA, "icon": "mdi:whatsapp"})
    for device in api.ws({"type": "config/device_registry/list"}):
        if entry_id in device["config_entries"] and device["area_id"] is None:
            api.ws(
                {
                    "type": "config/device_registry/update",
                    "device_id": device["id"],
                    "area_id": area["area_id"],
                }
            )


def ignore_install_notice(api: HassApi, wait: float) -> None:
    """Ignore Home Assistant's "unsupported installation method" repair, as a user would.

    The demo runs Home Assistant Core from a virtual environment, an installation method Home
    Assistant no longer supports and says so once it has started; nothing in the configuration
    turns that off, and it is about the demo's machine, not the integration.
    """

    def notice() -> dict[str, Any] | None:
        issues = api.ws({"type": "repairs/list_issues"})["issues"]
        return next(
            (
                issue
                for issue in issues
                if issue["domain"] == "homeassistant"
                and issue["issue_id"].startswith("deprecated_method")
                and not issue["ignored"]
            ),
            None,
        )

    try:
        found = wait_for("the installation method notice", notice, wait, interval=0.5)
    except HassError:
        return  # not a Core installation (e.g. a container): no such notice
    api.ws(
        {
            "type": "repairs/ignore_issue",
            "domain": found["domain"],
            "issue_id": found["issue_id"],
            "ignore": True,
        }
    )


def add_blueprint_automation(api: HassApi, config: Path, name: str) -> None:
    """An automation from the repository's blueprint for the first contact, then a reload."""
    wanted = f"{name} Online"
    entity_id = wait_for(
        f"the entity of {name}",
        lambda: next(
            (
                entity
                for entity, state in api.entity_ids().items()
                if state.get("attributes", {}).get("friendly_name") == wanted
            ),
            None,
        ),
        30,
    )
    (config / "automations.yaml").write_text(
        "- id: demo_contact_online\n"
        f"  alias: Tell me when {name} comes online\n"
        "  use_blueprint:\n"
        "    path: whatsapp_presence/notify_contact_online.yaml\n"
        "    input:\n"
        f"      contact: {entity_id}\n"
        "      quiet_period:\n"
        "        minutes: 1\n",
        encoding="utf-8",
    )
    api.post("/api/services/automation/reload", {})


def simulator_args(contacts: int | None, time_scale: float | None) -> str:
    """The simulated network's size and speed as bridge options (empty: its defaults)."""
    args = shlex.split(os.environ.get(SIMULATOR_ARGS_ENV, ""))
    if contacts is not None:
        args += ["--contacts", str(contacts)]
    if time_scale is not None:
        args += ["--time-scale", str(time_scale)]
    return shlex.join(args)


def stop_on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM or SIGHUP (a closed terminal) end the demo like Ctrl+C: hass and bridges too.

    Home Assistant runs in its own session, so the signal does not reach it by itself.
    """
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Set up once, then run Home Assistant in the foreground until Ctrl+C, SIGTERM or SIGHUP."""
    parser = argparse.ArgumentParser(prog="scripts/develop --demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8123, help="HTTP port (default: 8123)")
    parser.add_argument("--reset", action="store_true", help="delete the demo's config, start over")
    parser.add_argument(
        "--contacts", type=int, help="people in the simulated address book (default: 30)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        help="simulated seconds per real second: how fast presence changes (default: 10)",
    )
    parser.add_argument(
        "--config", type=Path, default=CONFIG, help="config folder (default: config-demo/)"
    )
    parser.add_argument(
        "--setup-only", action="store_true", help="set up, then stop Home Assistant (for tests)"
    )
    args = parser.parse_args(argv)
    config: Path = args.config.resolve()
    if args.reset and config.exists():
        shutil.rmtree(config)
    fresh = not (config / ".storage" / "onboarding").exists()
    if fresh:
        shutil.rmtree(config, ignore_errors=True)
        prepare_config(config, args.port, frontend=True)
        with (config / "configuration.yaml").open("a", encoding="utf-8") as file:
            file.write(DEMO_EXTRA)
    # Read by the integration when it starts a simulator bridge (see the README's demo section).
    os.environ[SIMULATOR_ARGS_ENV] = simulator_args(args.contacts, args.time_scale)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop_on_signal)
    hass = HassProcess(config, args.port, config / "hass-output.log")
    url = f"http://127.0.0.1:{args.port}"
    started = time.monotonic()
    try:
        log(f"Starting Home Assistant on {url} (config: {config})")
        hass.start(timeout=120)
        api = HassApi(hass.url)
        if fresh:
            set_up(api, config)
        else:
            api.login(USERNAME, PASSWORD)
            wait_for(
                "Home Assistant running", lambda: api.get("/api/config")["state"] == "RUNNING", 120
            )
            ignore_install_notice(api, wait=5)  # raised again after an update of Home Assistant
        log(f"Ready in {time.monotonic() - started:.0f} s")
        print(
            f"\n  Home Assistant:  {url}\n"
            f"  Login:           {USERNAME} / {PASSWORD}\n"
            f"  Dashboard:       {url}/{DASHBOARD_PATH}\n"
            "  Past days:       online time per day played from the simulated network at\n"
            "                   set-up (backfilled); today's figures are observed live\n"
            "  Look at:         Settings > Devices & services > WhatsApp Presence\n"
            f"  Logs:            {config / 'home-assistant.log'}\n"
            "  Stop:            Ctrl+C\n",
            flush=True,
        )
        if args.setup_only:
            return 0
        assert hass.process is not None
        return hass.process.wait()
    except HassError as err:
        print(f"demo failed: {err}\n{hass.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second signal must not cut the stop short
        log("Stopping Home Assistant")
        hass.stop()


if __name__ == "__main__":
    sys.exit(main())
