"""``scripts/develop --demo`` as a newcomer meets it: a clean first screen, and a clean stop.

Runs the demo script itself (on a free port, a temporary config folder, the demo's own simulated
network: 30 contacts, ten simulated seconds per real second), logs in in Chromium, saves the
first screen after login (``artifacts/browser/demo_first_screen.png``), and checks: no dialog,
zero repairs through the API, the WhatsApp dashboard as the first screen, drawn with data (the
past days backfilled from the simulated network; ``artifacts/browser/demo_dashboard.png`` is the
README's picture); then SIGTERM ends Home Assistant and its bridges.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from functools import partial
import os
from pathlib import Path
import signal
import subprocess
import sys
from typing import Any

import pytest

from tests.e2e.hass_api import DASHBOARD_PATH, LOG_PROBLEM, ROOT, HassApi, free_port, wait_for

from .chromium import ARTIFACTS, CHROMIUM, wait_launch_screen_gone

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (scripts/setup installs it unless --no-browser)",
    ),
]

USER, PASSWORD = "demo", "demo1234"
CONTACTS = 30
"""The demo network's address book (the simulator's defaults for the demo)."""


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.extend(int(child) for child in task.read_text().split())
    return found


def _ended(pid: int) -> bool:
    return not _alive(pid)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def a_minute_seen(api: HassApi) -> bool:
    """Presence has been known for a minute and some contact was online in it (the
    recorder's history of the *Online* sensors)."""
    sensors = [
        entity_id
        for entity_id in api.entity_ids()
        if entity_id.startswith("binary_sensor.") and entity_id.endswith("_online")
    ]
    now = datetime.now(UTC)
    history = api.ws(
        {
            "type": "history/history_during_period",
            "start_time": (now - timedelta(hours=1)).isoformat(),
            "entity_ids": sensors,
            "minimal_response": True,
            "no_attributes": True,
        }
    )
    known = [
        state.get("lc", state["lu"])
        for states in history.values()
        for state in states
        if state["s"] in {"on", "off"}
    ]
    seen = any(state["s"] == "on" for states in history.values() for state in states)
    return seen and bool(known) and min(known) <= now.timestamp() - 60


def backfilled_days(api: HassApi) -> dict[str, float]:
    """Online time per day, summed over the contacts, from the recorder's statistics."""
    sensors = [
        entity_id
        for entity_id in api.entity_ids()
        if entity_id.startswith("sensor.") and entity_id.endswith("_online_today")
    ]
    start = datetime.now(UTC) - timedelta(days=14)  # what the dashboard's chart shows
    stats = api.ws(
        {
            "type": "recorder/statistics_during_period",
            "start_time": start.isoformat(),
            "statistic_ids": sensors,
            "period": "day",
            "types": ["change"],
        }
    )
    assert set(stats) == set(sensors), "every contact's past days are stored"
    totals: dict[str, float] = {}
    for rows in stats.values():
        for row in rows:
            day = datetime.fromtimestamp(row["start"] / 1000, UTC).date().isoformat()
            totals[day] = totals.get(day, 0.0) + row["change"]
    return totals


def test_demo_opens_clean_and_stops_on_sigterm(tmp_path: Path, page: Any) -> None:
    """No dialog, no repair, the WhatsApp dashboard first; SIGTERM stops hass and its bridges."""
    port = free_port()
    config = tmp_path / "config-demo"
    output = (tmp_path / "demo.out").open("w+b")
    demo = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "develop.d" / "demo.py"),
            *("--port", str(port), "--config", str(config)),
        ],
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    hass_pid = 0
    try:

        def ready() -> bool:
            if demo.poll() is not None:
                pytest.fail(f"the demo exited: {Path(output.name).read_text(errors='replace')}")
            return b"Login:" in Path(output.name).read_bytes()

        wait_for("the demo's ready message", ready, 180, interval=0.5)
        hass_pid = next(iter(_children(demo.pid)))
        bridges = _children(hass_pid)
        assert bridges, "the demo's hass runs no bridge"
        api = HassApi(f"http://127.0.0.1:{port}")
        api.login(USER, PASSWORD)

        # Zero repairs, as the Settings page counts them (ignored ones are not shown).
        issues = api.ws({"type": "repairs/list_issues"})["issues"]
        assert [i for i in issues if not i["ignored"]] == [], issues

        # The first screen after login: the overview, with the tracked contacts on it.
        page.goto(f"http://127.0.0.1:{port}", wait_until="domcontentloaded")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_selector("ha-sidebar", timeout=60_000)
        wait_launch_screen_gone(page)
        assert page.get_by_text("Confirm new HTTP server configuration").count() == 0
        names = [
            state["attributes"]["friendly_name"]
            for entity_id, state in api.entity_ids().items()
            if entity_id.startswith("binary_sensor.") and entity_id.endswith("_online")
        ]
        assert len(names) >= CONTACTS, names  # and the members of the tracked groups
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(3000)
        page.screenshot(path=ARTIFACTS / "demo_first_screen.png")
        # The WhatsApp dashboard (its timeline draws the contacts' names on a chart).
        assert f"/{DASHBOARD_PATH}/" in page.url, page.url
        strategy_error = page.get_by_text("Error loading the dashboard strategy")
        online_now = page.get_by_text("Online now").filter(visible=True).first
        try:
            online_now.wait_for(timeout=30_000)
        except Exception:  # noqa: BLE001 - Playwright's timeout
            # Seen on a loaded machine: the frontend gave up waiting for the strategy's module
            # on the very first page load. A reload finds it.
            assert strategy_error.count() > 0
            page.reload(wait_until="domcontentloaded")
            online_now.wait_for(timeout=60_000)
        assert page.locator("ha-dialog, ha-md-dialog").filter(visible=True).count() == 0

        # Data soon after start: the past days' online time of every contact, backfilled from
        # the simulated network, is in the recorder's statistics, and the dashboard draws it;
        # today's timeline is drawn; who is online is a list, or words when nobody is.
        daily_totals = backfilled_days(api)
        assert len(daily_totals) >= 14, daily_totals
        assert all(total > 0 for total in daily_totals.values()), daily_totals
        # A minute on (ten simulated minutes), the dashboard opened again spans
        # what is known of today: the timeline has contacts going online and offline.
        wait_for("a minute of presence", partial(a_minute_seen, api), 180, interval=2)
        page.reload(wait_until="domcontentloaded")
        wait_launch_screen_gone(page)
        daily = page.locator("hui-statistics-graph-card").first
        daily.locator("statistics-chart ha-chart-base").first.wait_for(timeout=30_000)
        assert daily.get_by_text("No statistics found").count() == 0
        page.locator("hui-history-graph-card state-history-charts").first.wait_for()
        shown = page.locator("hui-entities-card", has_text="Online now").filter(visible=True)
        nobody = page.get_by_text("Nobody right now").filter(visible=True)
        assert shown.count() + nobody.count() == 1
        page.wait_for_timeout(1500)  # the charts' animation, for the picture
        page.screenshot(path=ARTIFACTS / "demo_dashboard.png", full_page=True)

        demo.send_signal(signal.SIGTERM)
        assert demo.wait(60) == 128 + signal.SIGTERM
        for pid in (hass_pid, *bridges):
            wait_for(f"process {pid} to end", partial(_ended, pid), 10)
        log = (config / "hass-output.log").read_text(errors="replace").splitlines()
        assert [line for line in log if LOG_PROBLEM.search(line)] == []
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        for pid in [hass_pid, *(_children(hass_pid) if hass_pid else [])]:
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        output.close()
