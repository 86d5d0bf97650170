"""A real ``hass`` process, driven only through the HTTP API the frontend uses.

One test, in the order a user lives it: onboarding, the config flow on the simulated network
(QR pairing, preset), contacts and a group through the subentry flows, presence reaching the
entities, a killed bridge restarted with every contact subscribed again, and a restart of
Home Assistant that keeps last seen and backoff state. Every wait has a deadline; the hass
process and the bridges it started are ended whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import partial
import os
from pathlib import Path
import signal
import time
from typing import Any

import pytest

from .bridge_access import sim_command
from .hass_api import (
    DOMAIN,
    HassApi,
    HassProcess,
    add_contact,
    add_group,
    contact_options,
    free_port,
    link_demo_account,
    prepare_config,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("socket_enabled")]

USER, PASSWORD = "demo", "demo-password"
BLUEPRINT_AUTOMATION = """\
- id: e2e_contact_online
  alias: E2E contact online
  use_blueprint:
    path: whatsapp_presence/notify_contact_online.yaml
    input:
      contact: binary_sensor.e2e_placeholder_online
"""


@pytest.fixture
def hass_proc(tmp_path: Path) -> Iterator[HassProcess]:
    """A configured (not yet started) hass; stopped with its bridges at the end."""
    config = tmp_path / "config"
    port = free_port()
    prepare_config(config, port, automations=BLUEPRINT_AUTOMATION)
    with (config / "configuration.yaml").open("a", encoding="utf-8") as file:
        file.write("diagnostics:\ninput_boolean:\n  notified:\n    name: Notified\n")
    proc = HassProcess(config, port, tmp_path / "hass.log")
    try:
        yield proc
    finally:
        proc.stop()
    proc.assert_clean_log()


def diagnostics(api: HassApi, entry_id: str) -> dict[str, Any]:
    """The integration's diagnostics (what a maintainer sees), through the REST API."""
    data: dict[str, Any] = api.get(f"/api/diagnostics/config_entry/{entry_id}")["data"]
    return data


def stats(api: HassApi, entry_id: str) -> dict[str, Any]:
    """The ``get_stats`` action's answer."""
    answer = api.call(DOMAIN, "get_stats", {"config_entry_id": entry_id}, response=True)
    result: dict[str, Any] = answer["service_response"]
    return result


def contact_entities(api: HassApi) -> dict[str, dict[str, Any]]:
    """The contacts' *online* binary sensors (the account has none named *Online*)."""
    return {
        entity_id: state
        for entity_id, state in api.entity_ids().items()
        if entity_id.startswith("binary_sensor.") and entity_id.endswith("_online")
    }


def test_http_settings_need_no_confirmation(hass_proc: HassProcess) -> None:
    """No HTTP trial: nothing to confirm, nothing reverted (and no restart) after 5 minutes.

    Home Assistant 2026.10+ tries an ``http:`` YAML block as a pending configuration and restarts
    to revert it when nobody confirms it within 5 minutes, which ended every demo and long run.
    """
    hass_proc.start()
    api = HassApi(hass_proc.url)
    api.onboard(USER, PASSWORD)
    wait_for("hass running", lambda: api.get("/api/config")["state"] == "RUNNING", 60)
    http = api.ws({"type": "http/config"})
    assert http["pending"] is None, http
    assert http["revert_at"] is None, http
    assert http["active_config_type"] == "stable", http
    assert http["stable"]["server_host"] == ["127.0.0.1"], http
    assert http["stable"]["server_port"] == hass_proc.port, http
    issues = api.ws({"type": "repairs/list_issues"})["issues"]
    assert [i for i in issues if i["domain"] == "http"] == [], issues


def test_real_hass_end_to_end(hass_proc: HassProcess) -> None:
    """Everything a user does in the UI, against a real hass and a simulator child bridge."""
    started = time.monotonic()
    hass_proc.start()
    api = HassApi(hass_proc.url)
    api.onboard(USER, PASSWORD)
    assert all(step["done"] for step in api.get("/api/onboarding"))

    # The blueprint loaded: its automation exists and is on (an invalid one would not be).
    wait_for("hass running", lambda: api.get("/api/config")["state"] == "RUNNING", 60)
    automation = api.states()["automation.e2e_contact_online"]
    assert automation["state"] == "on", automation

    # Config flow: simulated network, QR pairing, preset.
    created, qr_steps = link_demo_account(api, preset="small")
    entry_id = created["result"]["entry_id"]
    qr_codes = [
        step["description_placeholders"]["qr"]
        for step in qr_steps
        if step.get("progress_action") == "scan_qr"
    ]
    assert qr_codes, qr_steps
    assert all(len(code) > 20 for code in qr_codes)
    entry = next(
        e for e in api.get("/api/config/config_entries/entry") if e["entry_id"] == entry_id
    )
    assert entry["state"] == "loaded", entry
    (bridge_pid,) = wait_for("the entry's bridge", hass_proc.bridge_pids, 30)

    # Contacts and a group through the subentry flows (groups need WhatsApp connected).
    wait_for("WhatsApp connected", lambda: stats(api, entry_id)["connection"] == "connected", 20)
    offered = contact_options(api, entry_id)
    assert len(offered) >= 10, offered
    picked = [option["value"] for option in offered[:3]]
    for jid, priority in zip(picked, ("high", "medium", "low"), strict=True):
        add_contact(api, entry_id, jid, priority)
    _, group_label = add_group(api, entry_id, "low")
    assert group_label

    # Every tracked contact (3 picked + the group's members) gets subscribed.
    def all_subscribed() -> dict[str, dict[str, Any]] | None:
        contacts = contact_entities(api)
        figures = stats(api, entry_id)
        if len(contacts) > 3 and figures["active"] == figures["total_subscriptions"]:
            return contacts
        return None

    contacts = wait_for("every contact subscribed", all_subscribed, 45)
    tracked = len(contacts)
    figures = stats(api, entry_id)
    assert figures["total_subscriptions"] == tracked
    assert figures["active"] == tracked
    assert figures["connection"] == "connected"

    # Presence from the simulator reaches the entities: WhatsApp's answers to the
    # subscriptions, then a change we make on the simulated network.
    assert any(s["state"] in ("on", "off") for s in contacts.values()), contacts
    first_jid = picked[0]
    first_name = offered[0]["label"].rsplit(" (+", 1)[0]
    first_entity = next(
        entity_id
        for entity_id, state in contacts.items()
        if state["attributes"].get("friendly_name") == f"{first_name} Online"
    )
    # The blueprint on a real contact: its actions run when the contact comes online.
    (hass_proc.config_dir / "automations.yaml").write_text(
        BLUEPRINT_AUTOMATION.replace("binary_sensor.e2e_placeholder_online", first_entity)
        + "      actions:\n"
        + "        - action: input_boolean.turn_on\n"
        + "          target: {entity_id: input_boolean.notified}\n",
        encoding="utf-8",
    )
    api.post("/api/services/automation/reload", {})
    assert api.states()["input_boolean.notified"]["state"] == "off"
    for online in (True, False, True):
        answer = sim_command(bridge_pid, "sim.set_presence", jid=first_jid, online=online)
        assert answer["delivered"], answer
        want = "on" if online else "off"
        wait_for(f"{first_entity} {want}", partial(_state_is, api, first_entity, want), 10)
    wait_for("the blueprint's action", partial(_state_is, api, "input_boolean.notified", "on"), 10)

    # Kill the bridge: the integration starts a new one and subscribes every contact again.
    calls_before = stats(api, entry_id)["subscribe_calls_total"]
    killed_at = time.time()
    hass_proc.expected_warnings.append("The WhatsApp bridge is down (it exited with code -9)")
    os.kill(bridge_pid, signal.SIGKILL)
    (new_pid,) = wait_for(
        "a new bridge",
        lambda: [pid for pid in hass_proc.bridge_pids() if pid != bridge_pid] or None,
        30,
    )

    def resubscribed() -> dict[str, Any] | None:
        report = diagnostics(api, entry_id)
        contacts_ = report["manager"]["contacts"]
        fresh = [c for c in contacts_ if (c["last_subscribed"] or 0) >= killed_at]
        if len(fresh) == tracked and all(c["state"] == "subscribed" for c in contacts_):
            return report
        return None

    report = wait_for("every contact subscribed again", resubscribed, 45)
    assert report["connection"]["bridge_restarts"] >= 1
    assert stats(api, entry_id)["subscribe_calls_total"] >= calls_before + tracked

    # One contact's next subscriptions fail (as neonize's SubscribePresenceError): backoff.
    sim_command(new_pid, "sim.fail_subscribe", jid=picked[2], times=5)
    api.call(
        DOMAIN, "resubscribe", {"config_entry_id": entry_id, "contact": picked[2]}, response=False
    )

    def in_backoff() -> dict[str, Any] | None:
        contacts_ = diagnostics(api, entry_id)["manager"]["contacts"]
        return next((c for c in contacts_ if c["state"] == "backoff"), None)

    backoff_before = wait_for("a contact in backoff", in_backoff, 20)
    assert backoff_before["fail_count"] >= 1
    assert backoff_before["next_retry"] > time.time()
    # Its last seen: WhatsApp's figure, which nothing replaces while it waits in backoff.
    third_name = offered[2]["label"].rsplit(" (+", 1)[0]
    last_seen_entity = next(
        entity_id
        for entity_id, state in api.entity_ids().items()
        if state.get("attributes", {}).get("friendly_name") == f"{third_name} Last seen"
    )
    answer = sim_command(
        new_pid, "sim.set_presence", jid=picked[2], online=False, last_seen=killed_at
    )
    assert answer["delivered"], answer
    wait_for(
        "last seen set",
        lambda: _timestamp(api.states()[last_seen_entity]["state"]) == int(killed_at),
        10,
    )

    # Restart Home Assistant: last seen and the backoff survive.
    hass_proc.stop()
    hass_proc.start()
    api = HassApi(hass_proc.url)
    api.login(USER, PASSWORD)
    wait_for("the entry loaded again", lambda: _entry_state(api, entry_id) == "loaded", 30)
    assert _timestamp(api.states()[last_seen_entity]["state"]) == int(killed_at)
    after = diagnostics(api, entry_id)["manager"]["contacts"]
    backoff_after = next(c for c in after if c["contact"] == backoff_before["contact"])
    assert backoff_after["fail_count"] == backoff_before["fail_count"], backoff_after
    assert backoff_after["next_retry"] == pytest.approx(backoff_before["next_retry"], abs=1)
    assert backoff_after["state"] == "backoff"

    assert time.monotonic() - started < 150, "the end-to-end test must stay bounded"


def _state_is(api: HassApi, entity_id: str, want: str) -> bool:
    return bool(api.states()[entity_id]["state"] == want)


def _entry_state(api: HassApi, entry_id: str) -> str:
    entries = api.get("/api/config/config_entries/entry")
    return str(next(e["state"] for e in entries if e["entry_id"] == entry_id))


def _timestamp(value: str) -> int | None:
    """A timestamp sensor's state as whole unix seconds (None when unknown)."""
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        return None
