"""The "WhatsApp" dashboard in Chromium: who is online, today's timeline, time per day.

A real ``hass`` with the frontend, the demo network linked through the config flow, a few
contacts tracked, the dashboard added as the *Add dashboard* dialog adds it; then the page is
opened in Chromium and its cards must be drawn. The screenshot goes to
``artifacts/browser/dashboard.png`` (the README's picture).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.bridge_access import sim_command
from tests.e2e.hass_api import (
    HassApi,
    HassProcess,
    add_contact,
    add_whatsapp_dashboard,
    contact_options,
    free_port,
    link_demo_account,
    prepare_config,
    wait_for,
)

from .chromium import ARTIFACTS, BROWSER_MARKS, PASSWORD, USER, log_in, wait_launch_screen_gone

pytestmark = BROWSER_MARKS


@pytest.fixture
def hass_ui(tmp_path: Path) -> Iterator[tuple[HassProcess, HassApi]]:
    """A started, onboarded hass with the frontend, the recorder and history (the charts)."""
    config = tmp_path / "config"
    port = free_port()
    prepare_config(config, port, frontend=True)
    with (config / "configuration.yaml").open("a", encoding="utf-8") as file:
        file.write("recorder:\nhistory:\n")
    proc = HassProcess(config, port, tmp_path / "hass.log")
    try:
        proc.start(timeout=90)
        api = HassApi(proc.url)
        api.onboard(USER, PASSWORD)
        wait_for("hass running", lambda: api.get("/api/config")["state"] == "RUNNING", 90)
        yield proc, api
    finally:
        proc.stop()
    proc.assert_clean_log()


CARDS = ("hui-history-graph-card", "hui-statistics-graph-card")
"""Always drawn; the list of who is online shows once someone is (words say so until then)."""


def test_whatsapp_dashboard_draws_its_cards(hass_ui: Any, page: Any) -> None:
    """The strategy's dashboard shows the online list, the timeline and the daily chart."""
    proc, api = hass_ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    created, _ = link_demo_account(api, preset="small")
    entry_id = created["result"]["entry_id"]
    picked = contact_options(api, entry_id)[:6]
    for option in picked:
        add_contact(api, entry_id, option["value"], "high")
    path = add_whatsapp_dashboard(api)
    (bridge_pid,) = wait_for("the entry's bridge", proc.bridge_pids, 30)
    online_name = picked[0]["label"].rsplit(" (+", 1)[0]

    def say_online() -> None:
        # The demo network changes presence by itself: say this contact is online. On a
        # thread of its own: Playwright's loop runs on this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(
                sim_command, bridge_pid, "sim.set_presence", jid=picked[0]["value"], online=True
            ).result()

    wait_for(
        "every contact subscribed",
        lambda: (
            api.call(
                "whatsapp_presence", "get_stats", {"config_entry_id": entry_id}, response=True
            )["service_response"]["active"]
            == len(picked)
        ),
        60,
        interval=1.0,
    )
    log_in(page, proc.url)
    page.goto(f"{proc.url}{path}/presence", wait_until="domcontentloaded")
    wait_launch_screen_gone(page)
    for card in CARDS:
        page.locator(card).first.wait_for(timeout=30_000)
    online_list = page.locator("hui-entities-card", has_text="Online now").first

    def listed_online() -> bool:
        say_online()
        return bool(online_list.get_by_text(online_name).count() > 0)

    wait_for(f"{online_name} in the online list", listed_online, 60, interval=1.0)
    # Today's timeline is drawn from the recorder's history, each row named after its contact
    # (not "Name ▸ Online", which the chart cuts short); the daily chart's card is there (a
    # fresh install has no long-term statistics yet: the recorder compiles them hourly).
    page.locator("hui-history-graph-card state-history-charts").first.wait_for()
    # The chart draws on a canvas: its rows' names are read from the card's configuration.
    rows = page.locator("hui-history-graph-card").first.evaluate(
        "card => card._config.entities.map((row) => row.name)"
    )
    assert online_name in rows, rows
    assert not any("▸" in row or row.endswith("Online") for row in rows), rows
    assert page.locator("hui-statistics-graph-card", has_text="Online time per day").count() == 1
    page.wait_for_timeout(1500)  # let the charts finish their animation for the picture
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
