"""``scripts/develop --demo``: Home Assistant with WhatsApp Presence set up on the simulated network.

The first run makes a config folder (``config-demo/``, git-ignored), starts ``hass``, completes
onboarding, links a simulated WhatsApp account through the real config flow (QR pairing, the
"small" preset), tracks the simulated address book and two groups through the subentry flows,
adds an automation from the repository's blueprint and the WhatsApp dashboard. Later runs start the same Home
Assistant as it was left (``--reset`` starts over). Everything goes through the HTTP API the
frontend uses, so the demo is also a smoke test of the product.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import shutil
import sys
import time

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

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
SIMULATOR_ARGS = "--time-scale 10 --pairing-delay 50"
"""Presence changes every few seconds; the QR code stays on screen for 5 s (simulated durations
are divided by the time scale). Read by the integration only if it supports the variable."""
DEMO_EXTRA = """\
history:
logbook:
system_health:
diagnostics:
prometheus:
  requires_auth: false
"""
GROUPS = 2


def log(message: str) -> None:
    """Progress on stderr, like the shell scripts' log lines."""
    print(f"\033[1m==> {message}\033[0m", file=sys.stderr, flush=True)


def set_up(api: HassApi) -> str:
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
    add_blueprint_automation(api, options[0]["label"].rsplit(" (+", 1)[0])
    log("Adding the WhatsApp dashboard (as Settings > Dashboards > Add dashboard does)")
    add_whatsapp_dashboard(api)
    return entry_id


def add_blueprint_automation(api: HassApi, name: str) -> None:
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
    (CONFIG / "automations.yaml").write_text(
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


def main() -> int:
    """Set up once, then run Home Assistant in the foreground until Ctrl+C."""
    parser = argparse.ArgumentParser(prog="scripts/develop --demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8123, help="HTTP port (default: 8123)")
    parser.add_argument("--reset", action="store_true", help="delete config-demo/ and start over")
    parser.add_argument(
        "--setup-only", action="store_true", help="set up, then stop Home Assistant (for tests)"
    )
    args = parser.parse_args()
    if args.reset and CONFIG.exists():
        shutil.rmtree(CONFIG)
    fresh = not (CONFIG / ".storage" / "onboarding").exists()
    if fresh:
        shutil.rmtree(CONFIG, ignore_errors=True)
        prepare_config(CONFIG, args.port, frontend=True)
        with (CONFIG / "configuration.yaml").open("a", encoding="utf-8") as file:
            file.write(DEMO_EXTRA)
    # Read by the integration when it starts a simulator bridge (see the README's demo section).
    os.environ.setdefault("WHATSAPP_PRESENCE_SIMULATOR_ARGS", SIMULATOR_ARGS)
    hass = HassProcess(CONFIG, args.port, CONFIG / "hass-output.log")
    url = f"http://127.0.0.1:{args.port}"
    started = time.monotonic()
    try:
        log(f"Starting Home Assistant on {url} (config: {CONFIG.relative_to(ROOT)})")
        hass.start(timeout=120)
        api = HassApi(hass.url)
        if fresh:
            set_up(api)
        log(f"Ready in {time.monotonic() - started:.0f} s")
        print(
            f"\n  Home Assistant:  {url}\n"
            f"  Login:           {USERNAME} / {PASSWORD}\n"
            f"  Dashboard:       {url}/{DASHBOARD_PATH}\n"
            "  Look at:         Settings > Devices & services > WhatsApp Presence\n"
            f"  Logs:            {(CONFIG / 'home-assistant.log').relative_to(ROOT)}\n"
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
        log("Stopping Home Assistant")
        hass.stop()


if __name__ == "__main__":
    sys.exit(main())
