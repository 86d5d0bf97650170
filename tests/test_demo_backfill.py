"""The demo's past days: the simulated network's presence, counted as the sensors count it."""

from __future__ import annotations

from datetime import datetime
import importlib.util
import sys
from types import ModuleType
from zoneinfo import ZoneInfo

from custom_components.whatsapp_presence.activity import MERGE_GAP
from custom_components.whatsapp_presence.bridge.simulator import SimulatorConfig, presence_history

from .e2e.hass_api import ROOT

ZONE = ZoneInfo("Europe/Amsterdam")
JID = "12005550101@s.whatsapp.net"


def _backfill() -> ModuleType:
    """``scripts/develop.d/backfill.py`` (a script's folder, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "backfill", ROOT / "scripts" / "develop.d" / "backfill.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


def test_days_are_counted_as_the_sensor_counts_them() -> None:
    """Merged gaps count, a session over midnight is split, each day's bar is its total."""
    backfill = _backfill()
    now = datetime(2026, 3, 30, 15, 0, tzinfo=ZONE)  # the day after the spring DST change
    window = backfill.Window.days_before(now, 2)
    assert (window.end - window.start) / 3600 == 47  # March 29 has 23 hours
    history = [
        (window.start, JID, False),
        (_at("2026-03-28T10:00:00"), JID, True),
        (_at("2026-03-28T10:10:00"), JID, False),
        (_at("2026-03-28T10:10:00") + MERGE_GAP, JID, True),  # a gap WhatsApp made: merged
        (_at("2026-03-28T10:20:00"), JID, False),
        (_at("2026-03-28T23:30:00"), JID, True),  # over midnight
        (_at("2026-03-29T00:15:00"), JID, False),
    ]
    hourly = backfill.hourly_online_today(history, [JID, "never@s.whatsapp.net"], window, ZONE)
    minutes = {
        datetime.fromtimestamp(start, ZONE).strftime("%d %H"): round(seconds / 60, 3)
        for start, seconds in hourly[JID]
    }
    assert minutes["28 09"] == 0
    assert minutes["28 10"] == 20
    assert minutes["28 23"] == 50
    assert minutes["29 00"] == 15
    assert minutes["29 23"] == 15
    assert {seconds for _, seconds in hourly["never@s.whatsapp.net"]} == {0.0}

    rows = backfill.statistics_rows(hourly[JID], "min")
    assert rows[-1]["sum"] == 0  # where the recorder starts the live sensor's sum
    by_hour = {
        datetime.fromisoformat(row["start"]).astimezone(ZONE).strftime("%d %H"): row for row in rows
    }
    # A day's bar is the change of the sum over it: 50 minutes, then 15.
    assert by_hour["28 23"]["sum"] - rows[0]["sum"] + rows[0]["state"] == 50
    assert by_hour["29 23"]["sum"] - by_hour["28 23"]["sum"] == 15
    command = backfill.import_command("sensor.ada_online_today", "min", rows)
    assert command["metadata"]["has_sum"] is True
    assert command["stats"] == rows


def test_the_played_network_gives_every_answering_contact_a_day() -> None:
    """Played at the demo's defaults, answering contacts have online time on every day."""
    backfill = _backfill()
    config = SimulatorConfig(contacts=30, time_scale=10)
    window = backfill.Window.days_before(datetime(2026, 6, 15, 12, tzinfo=ZONE), 3)
    history = presence_history(config, window.start, window.end)
    jids = sorted({jid for _, jid, _ in history})
    hourly = backfill.hourly_online_today(history, jids, window, ZONE)
    days = {jid: [seconds for _, seconds in rows][23::24] for jid, rows in hourly.items()}
    assert len(jids) > 20
    assert all(len(totals) == 3 for totals in days.values())
    busy = [jid for jid, totals in days.items() if all(total > 0 for total in totals)]
    assert len(busy) > len(jids) // 2
